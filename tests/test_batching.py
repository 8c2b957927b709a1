"""Batches laid out as each architecture needs (`pipeline.features.batching_of`, `Examples`).

Tiny tokenizers with each family's real special-token ids and tiny random BERT, RoBERTa, ELECTRA (with
the official head), XLNet and BART classifiers (no download): the recorded layout per architecture, the
features file recording it only when it is not BERT's, and, with synthetic token ids, each example's
logits in a padded batch equal to its logits alone (evaluation mode). A negative control shows the
test would catch XLNet padded on the wrong side.
"""
from __future__ import annotations

import inspect

import pytest
import torch
import transformers

from pipeline.features import BERT_BATCHING, Examples, batching, batching_of, head

LAYOUTS = {  # pad id, pad side, token types passed
    "bert": (0, "right", True),
    "electra": (0, "right", True),
    "roberta": (1, "right", True),  # RoBERTa's token types are all 0, as the model defaults them
    "xlnet": (5, "left", True),     # its head reads the last position; official code pads left too
    "bart": (1, "right", False),    # BartForSequenceClassification.forward takes no token_type_ids
}
WORDS = ["a", "b", "c", "the", "cat"]


def tokenizer(arch: str):
    if arch in ("bert", "electra"):
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(specials + WORDS)})
    if arch in ("roberta", "bart"):
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        vocab = {w: i for i, w in enumerate(specials + WORDS + ["Ġ"] + [f"Ġ{w}" for w in WORDS])}
        cls = transformers.RobertaTokenizer if arch == "roberta" else transformers.BartTokenizer
        return cls(vocab=vocab, merges=[("Ġ", w) for w in WORDS])
    specials = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]
    pieces = specials + [f"▁{w}" for w in WORDS] + ["▁"]
    return transformers.XLNetTokenizer(vocab=[(w, -1.0) for w in pieces])


def config(arch: str):
    common = dict(vocab_size=100, num_labels=3)
    bert_like = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64)
    return {
        "bert": lambda: transformers.BertConfig(**common, **bert_like),
        "electra": lambda: transformers.ElectraConfig(**common, **bert_like, embedding_size=16),
        "roberta": lambda: transformers.RobertaConfig(**common, **bert_like),
        "xlnet": lambda: transformers.XLNetConfig(**common, d_model=32, n_layer=2, n_head=2, d_inner=64),
        "bart": lambda: transformers.BartConfig(**common, d_model=32, encoder_layers=2, decoder_layers=2,
                                                encoder_attention_heads=2, decoder_attention_heads=2,
                                                encoder_ffn_dim=64, decoder_ffn_dim=64,
                                                max_position_embeddings=64),
    }[arch]()


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_layout_per_architecture(arch):
    tok, cfg = tokenizer(arch), config(arch)
    layout = batching_of(tok, cfg)
    assert (layout["pad_id"], layout["padding_side"], layout["token_types"]) == LAYOUTS[arch]
    assert layout["pad_id"] == cfg.pad_token_id  # the tokenizer and the model agree on padding
    assert (layout == BERT_BATCHING) == (arch in ("bert", "electra"))
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    model_cls = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(cfg)]
    assert ("token_type_ids" in inspect.signature(model_cls.forward).parameters) == layout["token_types"]


def test_embedded_model_batches_as_bert():
    """The embedded model's features record nothing: the default study's files are unchanged."""
    from pipeline.model import load_model_config, load_tokenizer

    assert batching_of(load_tokenizer("minilm-l6"), load_model_config("minilm-l6")) == BERT_BATCHING


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_features_record_the_layout_only_when_not_berts(arch, monkeypatch, tmp_path):
    import pipeline.model
    from pipeline.features import load_features, tokenize_splits

    monkeypatch.setattr(pipeline.model, "load_tokenizer", lambda name: tokenizer(arch))
    monkeypatch.setattr(pipeline.model, "load_model_config", lambda name: config(arch))
    rows = [(0, "the cat", "a b", 1), (1, "a", "b", 0), (2, "b c a the", "c cat a", 1)]
    feats = tokenize_splits("rte", {"train": rows, "val": rows[:2], "test": rows[2:]}, arch, 16)
    for split in ("train", "val", "test"):
        assert ("batching" in feats[split]) == (arch not in ("bert", "electra"))
        assert batching(feats[split]) == batching_of(tokenizer(arch), config(arch))
    assert batching(head(feats["train"], 2)) == batching(feats["train"])  # head() keeps it
    torch.save(feats, tmp_path / "f.pt")  # the record survives the features file (weights_only load)
    assert batching(load_features(tmp_path / "f.pt")["val"]) == batching(feats["val"])
    b = Examples(feats["train"]).batch([0, 1, 2])
    pad, side, types = LAYOUTS[arch]
    assert ("token_type_ids" in b) == types
    short = int(b["attention_mask"].sum(1).argmin())
    n = int(b["attention_mask"][short].sum())
    width = b["input_ids"].shape[1]
    assert n < width
    real = slice(width - n, width) if side == "left" else slice(0, n)
    padded = slice(0, width - n) if side == "left" else slice(n, width)
    assert (b["input_ids"][short, padded] == pad).all() and (b["attention_mask"][short, padded] == 0).all()
    assert (b["attention_mask"][short, real] == 1).all()
    if arch == "xlnet":  # <sep> <cls> last, <cls> of token type 2: what XLNet's head reads
        assert b["input_ids"][short, -2:].tolist() == [4, 3] and b["token_type_ids"][short, -1] == 2


def synthetic_split(arch: str, layout: dict, lengths=(3, 9, 5, 12, 4, 7)) -> dict:
    """Token ids 10..99 framed by each family's special tokens; every other example a pair."""
    g = torch.Generator().manual_seed(len(arch))
    ids, types = [], []
    for k, n in enumerate(lengths):
        body = torch.randint(10, 100, (n,), generator=g).tolist()
        cut = n // 2 if k % 2 else n
        a, b = body[:cut], body[cut:]
        if arch in ("bert", "electra"):  # [CLS] a [SEP] (b [SEP])
            seq = [2] + a + [3] + (b + [3] if b else [])
            typ = [0] * (len(a) + 2) + ([1] * (len(b) + 1) if b else [])
        elif arch == "xlnet":  # a <sep> (b <sep>) <cls>
            seq = a + [4] + (b + [4] if b else []) + [3]
            typ = [0] * (len(a) + 1) + ([1] * (len(b) + 1) if b else []) + [2]
        else:  # <s> a </s> (</s> b </s>); one example = one fixed count of </s> per batch for BART
            seq = [0] + a + [2] + ([5] + b + [5] if b else [6, 6, 6])
            typ = [0] * len(seq)
        ids.append(seq)
        types.append(typ)
    offsets = torch.zeros(len(ids) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.tensor([len(s) for s in ids]), 0)
    return {"ids": torch.tensor([t for s in ids for t in s], dtype=torch.int32),
            "types": torch.tensor([t for s in types for t in s], dtype=torch.int8), "offsets": offsets,
            "labels": torch.zeros(len(ids), dtype=torch.int64), "index": torch.arange(len(ids)),
            "batching": dict(layout)}


def classifier(arch: str):
    from pipeline.model import official_head

    torch.manual_seed(0)
    return official_head(transformers.AutoModelForSequenceClassification.from_config(config(arch))).eval()


def logits(model, examples: Examples, index) -> torch.Tensor:
    b = examples.batch(index)
    b.pop("labels")
    with torch.no_grad():
        return model(**b).logits


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_padded_batch_logits_equal_each_example_alone(arch):
    model = classifier(arch)
    examples = Examples(synthetic_split(arch, batching_of(tokenizer(arch), model.config)))
    together = logits(model, examples, range(len(examples)))
    alone = torch.cat([logits(model, examples, [i]) for i in range(len(examples))])
    assert examples.lengths.unique().numel() > 1  # really padded
    assert torch.allclose(together, alone, rtol=1e-4, atol=1e-5), (together - alone).abs().max()


def test_control_xlnet_padded_on_the_right_reads_padding():
    """The test above would catch the wrong side: XLNet padded on the right reads a padding position
    for every example shorter than the batch (the longest one is unaffected)."""
    model = classifier("xlnet")
    layout = dict(batching_of(tokenizer("xlnet"), model.config), padding_side="right")
    examples = Examples(synthetic_split("xlnet", layout))
    together = logits(model, examples, range(len(examples)))
    alone = torch.cat([logits(model, examples, [i]) for i in range(len(examples))])
    longest = int(examples.lengths.argmax())
    assert torch.allclose(together[longest], alone[longest], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together, alone, rtol=1e-3, atol=1e-3)


def test_split_without_a_record_and_explicit_pad_id():
    """A split without "batching" (every file before it was recorded) batches as BERT; an explicit
    pad_id (ids remapped by embedding compaction) overrides the recorded one."""
    feats = synthetic_split("bert", BERT_BATCHING)
    del feats["batching"]
    b = Examples(feats).batch([0, 3])
    assert list(b) == ["input_ids", "token_type_ids", "attention_mask", "labels"]
    assert b["input_ids"][0, -1] == 0 and b["token_type_ids"][0, -1] == 0 and b["attention_mask"][0, -1] == 0
    assert Examples(feats, pad_id=7).batch([0, 3])["input_ids"][0, -1] == 7
