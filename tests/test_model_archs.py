"""Re-init of the top blocks (`pipeline.reinit.reinit_top_layers`) across architectures, their depth
tags, ELECTRA's official head, and which settings each architecture supports.

Tiny randomly configured BERT, RoBERTa, ELECTRA, XLNet and BART sequence classifiers (no download) are
first filled with arbitrary "pre-trained" values, so that every re-initialised parameter visibly
changes (a fresh LayerNorm is already (1, 0)); then the top blocks, the pooler flag, the generator and
the range check are tested, and an architecture without a known block list must fail clearly.
"""
from __future__ import annotations

import pytest
import torch
import transformers
from torch import nn

from pipeline.model import base_model, encoder_layers
from pipeline.reinit import reinit_top_layers

N_BLOCKS = 4
STD = 0.05  # initializer_range, distinct from the default 0.02 and from the "pre-trained" values
COMMON = dict(vocab_size=100, hidden_size=32, num_hidden_layers=N_BLOCKS, num_attention_heads=2,
              intermediate_size=64, max_position_embeddings=64, num_labels=2, initializer_range=STD)
ARCHS = {
    "bert": (transformers.BertConfig, transformers.BertForSequenceClassification, {}),
    "roberta": (transformers.RobertaConfig, transformers.RobertaForSequenceClassification, {}),
    # embedding_size != hidden_size gives ELECTRA an embeddings_project, which must stay untouched
    "electra": (transformers.ElectraConfig, transformers.ElectraForSequenceClassification,
                {"embedding_size": 16}),
}
POOLERLESS = ["roberta", "electra"]


# XLNet and BART: their own config keys; N_BLOCKS layers where Re-init draws (BART: the decoder)
OTHER_ARCHS = {
    "xlnet": (transformers.XLNetConfig, transformers.XLNetForSequenceClassification,
              dict(vocab_size=100, d_model=32, n_layer=N_BLOCKS, n_head=2, d_inner=64, num_labels=2,
                   initializer_range=STD)),
    "bart": (transformers.BartConfig, transformers.BartForSequenceClassification,
             dict(vocab_size=100, d_model=32, encoder_layers=3, decoder_layers=N_BLOCKS,
                  encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                  decoder_ffn_dim=64, max_position_embeddings=64, num_labels=2, init_std=STD)),
}


def build(arch: str) -> nn.Module:
    """A tiny classifier whose every parameter is an arbitrary, deterministic non-initial value."""
    if arch in OTHER_ARCHS:
        config_cls, model_cls, kwargs = OTHER_ARCHS[arch]
    else:
        config_cls, model_cls, extra = ARCHS[arch]
        kwargs = {**COMMON, **extra}
    torch.manual_seed(0)
    model = model_cls(config_cls(**kwargs)).eval()
    g = torch.Generator().manual_seed(2024)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + 0.1)
    return model


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def layer_prefix(model: nn.Module, i: int) -> str:
    return f"{model.base_model_prefix}.encoder.layer.{i}."


def top_prefixes(model: nn.Module, n_layers: int) -> list[str]:
    return [layer_prefix(model, i) for i in range(N_BLOCKS - n_layers, N_BLOCKS)]


def pooler_prefix(model: nn.Module) -> str:
    return f"{model.base_model_prefix}.pooler."


def changed_keys(before: dict, model: nn.Module) -> set[str]:
    after = model.state_dict()
    assert after.keys() == before.keys()
    return {k for k in before if not torch.equal(before[k], after[k])}


def param_keys_under(model: nn.Module, prefixes: list[str]) -> set[str]:
    return {n for n, _ in model.named_parameters() if any(n.startswith(p) for p in prefixes)}


def check_initialised(module: nn.Module, std: float) -> dict[str, int]:
    """Linear weights ~ N(0, std^2), biases 0, LayerNorm weight 1 and bias 0; returns the counts."""
    found = {"linear": 0, "layernorm": 0}
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double()
            n = w.numel()
            assert abs(float(w.mean())) < 5 * std / n ** 0.5, name
            assert float(w.std()) == pytest.approx(std, rel=6 / (2 * n) ** 0.5), name
            assert m.bias is not None and torch.count_nonzero(m.bias) == 0, name
            found["linear"] += 1
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)), name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
            found["layernorm"] += 1
    return found


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("n_layers", [1, 2, N_BLOCKS])
def test_top_blocks_reinitialised_rest_bit_identical(arch, n_layers):
    model = build(arch)
    before = snapshot(model)
    assert reinit_top_layers(model, n_layers, reinit_pooler=False,
                             generator=torch.Generator().manual_seed(7)) is model
    layers = encoder_layers(model)
    for layer in list(layers)[N_BLOCKS - n_layers:]:
        # every block has Q, K, V, attention output, intermediate, output Linear and two LayerNorms
        assert check_initialised(layer, STD) == {"linear": 6, "layernorm": 2}
    top = param_keys_under(model, top_prefixes(model, n_layers))
    assert len(top) == n_layers * 16
    # exactly the top blocks' parameters changed: lower blocks, embeddings, pooler, head are bit-identical
    assert changed_keys(before, model) == top


@pytest.mark.parametrize("reinit_pooler", [True, False])
def test_bert_pooler_follows_flag(reinit_pooler):
    model = build("bert")
    assert base_model(model).pooler is not None
    before = snapshot(model)
    reinit_top_layers(model, 1, reinit_pooler=reinit_pooler, generator=torch.Generator().manual_seed(7))
    expected = param_keys_under(model, top_prefixes(model, 1))
    if reinit_pooler:
        assert check_initialised(base_model(model).pooler, STD) == {"linear": 1, "layernorm": 0}
        expected |= {pooler_prefix(model) + "dense.weight", pooler_prefix(model) + "dense.bias"}
    assert changed_keys(before, model) == expected


@pytest.mark.parametrize("arch", POOLERLESS)
def test_poolerless_classifiers_ignore_reinit_pooler(arch):
    model = build(arch)
    assert getattr(base_model(model), "pooler", None) is None  # the premise: no pooler in the classifier
    assert not any(k.startswith(pooler_prefix(model)) for k in model.state_dict())
    before = snapshot(model)
    reinit_top_layers(model, 2, reinit_pooler=True, generator=torch.Generator().manual_seed(7))
    assert changed_keys(before, model) == param_keys_under(model, top_prefixes(model, 2))


@pytest.mark.parametrize("arch", list(ARCHS))
def test_generator_seed_determines_weights(arch):
    def reinit(seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        model = build(arch)
        torch.manual_seed(global_seed)  # the global stream must not matter, only the generator
        reinit_top_layers(model, 2, reinit_pooler=True, generator=torch.Generator().manual_seed(seed))
        return snapshot(model)

    a, b, c = reinit(11, 0), reinit(11, 999), reinit(12, 0)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = build(arch)
    drawn = [n + ".weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)
             and any((n + ".").startswith(p) for p in top_prefixes(model, 2) + [pooler_prefix(model)])]
    assert len(drawn) == 12 + (1 if arch == "bert" else 0)
    for k in drawn:  # every re-drawn weight differs under another seed
        assert not torch.equal(a[k], c[k]), k
    for k in set(a) - set(drawn):  # biases/LayerNorm (constants) and untouched parameters agree
        assert torch.equal(a[k], c[k]), k


@pytest.mark.parametrize("arch", list(ARCHS) + list(OTHER_ARCHS))
def test_zero_layers_without_pooler_changes_nothing(arch):
    model = build(arch)
    before = snapshot(model)
    reinit_top_layers(model, 0, reinit_pooler=False, generator=torch.Generator().manual_seed(7))
    assert changed_keys(before, model) == set()


@pytest.mark.parametrize("arch", list(ARCHS) + list(OTHER_ARCHS))
@pytest.mark.parametrize("n_layers", [N_BLOCKS + 1, -1])
def test_out_of_range_layers_raise(arch, n_layers):
    model = build(arch)
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"0\.\.{N_BLOCKS}\b.*got {n_layers}"):
        reinit_top_layers(model, n_layers, generator=torch.Generator().manual_seed(7))
    assert changed_keys(before, model) == set()  # nothing (not even the pooler) touched before raising


# ---- XLNet and BART: the official code's Re-init (paper-details.md 4.2) ------------------------------

XLNET_DRAWN = ["rel_attn.q", "rel_attn.k", "rel_attn.v", "rel_attn.o", "rel_attn.r", "rel_attn.r_r_bias",
               "rel_attn.r_s_bias", "rel_attn.r_w_bias", "rel_attn.seg_embed", "ff.layer_1.weight",
               "ff.layer_2.weight"]
XLNET_ZERO = ["ff.layer_1.bias", "ff.layer_2.bias", "rel_attn.layer_norm.bias", "ff.layer_norm.bias"]
XLNET_ONE = ["rel_attn.layer_norm.weight", "ff.layer_norm.weight"]
BART_LINEARS = [f"{a}.{p}" for a in ("self_attn", "encoder_attn")
                for p in ("q_proj", "k_proj", "v_proj", "out_proj")] + ["fc1", "fc2"]
BART_LAYERNORMS = ["self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"]


def stack_prefix(arch: str, i: int) -> str:
    return {"xlnet": "transformer.layer.", "bart": "model.decoder.layers."}[arch] + f"{i}."


def check_normal(tensors: list[torch.Tensor], std: float, what: str) -> None:
    """Pooled draws ~ N(0, std^2): mean and std within sampling error, no value beyond 6 std (the
    "pre-trained" fill, N(0.1, 0.5^2), would fail all three)."""
    x = torch.cat([t.detach().double().reshape(-1) for t in tensors])
    n = x.numel()
    assert abs(float(x.mean())) < 5 * std / n ** 0.5, what
    assert float(x.std()) == pytest.approx(std, rel=6 / (2 * n) ** 0.5), what
    assert float(x.abs().max()) < 6 * std, what


@pytest.mark.parametrize("n_layers", [1, 2, N_BLOCKS])
def test_xlnet_top_layers_reinitialised_as_official(n_layers):
    """Top-L transformer.layer blocks: relative attention q, k, v, o, r, r_r_bias, r_s_bias, r_w_bias,
    seg_embed and the feed-forward weights ~ N(0, std^2), Linear biases 0, LayerNorms (1, 0); every
    other parameter (lower blocks, word embedding, mask_emb, sequence summary, classifier) bit-identical."""
    model = build("xlnet")
    before = snapshot(model)
    reinit_top_layers(model, n_layers, reinit_pooler=True, generator=torch.Generator().manual_seed(7))
    params = dict(model.named_parameters())
    top = [stack_prefix("xlnet", i) for i in range(N_BLOCKS - n_layers, N_BLOCKS)]
    for pre in top:
        names = {n[len(pre):] for n in params if n.startswith(pre)}
        assert names == set(XLNET_DRAWN + XLNET_ZERO + XLNET_ONE)
        for name in XLNET_DRAWN:
            if params[pre + name].numel() >= 1000:  # q, k, v, o, r (32 x 2 x 16), the two Linear weights
                check_normal([params[pre + name]], STD, pre + name)
        check_normal([params[pre + n] for n in XLNET_DRAWN if params[pre + n].numel() < 1000], STD,
                     pre + "relative biases and segment embedding")
        for name in XLNET_ZERO:
            assert torch.count_nonzero(params[pre + name]) == 0, name
        for name in XLNET_ONE:
            assert torch.equal(params[pre + name], torch.ones_like(params[pre + name])), name
    assert changed_keys(before, model) == param_keys_under(model, top)  # no pooler: the flag does nothing


@pytest.mark.parametrize("n_layers", [1, 2, N_BLOCKS])
def test_bart_top_decoder_layers_reinitialised_as_official(n_layers):
    """Top-L DECODER layers through BART's _init_weights: Linear weights ~ N(0, init_std^2), biases 0,
    LayerNorms kept (that helper has no LayerNorm branch); encoder, embeddings, lower decoder layers and
    the classification head bit-identical."""
    model = build("bart")
    before = snapshot(model)
    reinit_top_layers(model, n_layers, reinit_pooler=True, generator=torch.Generator().manual_seed(7))
    params = dict(model.named_parameters())
    expected = set()
    for i in range(N_BLOCKS - n_layers, N_BLOCKS):
        pre = stack_prefix("bart", i)
        assert {n[len(pre):] for n in params if n.startswith(pre)} == (
            {f"{m}.{w}" for m in BART_LINEARS + BART_LAYERNORMS for w in ("weight", "bias")})
        for name in BART_LINEARS:
            check_normal([params[f"{pre}{name}.weight"]], STD, pre + name)
            assert torch.count_nonzero(params[f"{pre}{name}.bias"]) == 0, name
            expected |= {f"{pre}{name}.weight", f"{pre}{name}.bias"}
        for name in BART_LAYERNORMS:  # pre-trained values, bit for bit
            for w in ("weight", "bias"):
                assert torch.equal(params[f"{pre}{name}.{w}"], before[f"{pre}{name}.{w}"])
    assert changed_keys(before, model) == expected


@pytest.mark.parametrize("arch", list(OTHER_ARCHS))
def test_xlnet_bart_draws_come_from_the_generator(arch):
    def reinit(seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        model = build(arch)
        torch.manual_seed(global_seed)
        reinit_top_layers(model, 2, generator=torch.Generator().manual_seed(seed))
        return snapshot(model)

    a, b, c = reinit(11, 0), reinit(11, 999), reinit(12, 0)
    assert all(torch.equal(a[k], b[k]) for k in a)
    drawn = [k for k in a if any(k.startswith(stack_prefix(arch, i)) for i in (N_BLOCKS - 2, N_BLOCKS - 1))
             and (k.endswith("weight") and "norm" not in k or arch == "xlnet" and "rel_attn." in k
                  and "layer_norm" not in k)]
    assert len(drawn) == 2 * (len(XLNET_DRAWN) if arch == "xlnet" else len(BART_LINEARS))
    assert all(not torch.equal(a[k], c[k]) for k in drawn)
    assert all(torch.equal(a[k], c[k]) for k in set(a) - set(drawn))


def test_reinit_refuses_a_layer_with_unknown_parameters():
    """A parameter the architecture's Re-init does not know is refused before anything is drawn."""
    model = build("bart")
    model.model.decoder.layers[-1].extra = nn.Parameter(torch.ones(3))
    before = snapshot(model)
    with pytest.raises(NotImplementedError, match="extra"):
        reinit_top_layers(model, 2, generator=torch.Generator().manual_seed(7))
    assert changed_keys(before, model) == set()


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)


def tiny_gpt2() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                  num_labels=2, pad_token_id=0, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2ForSequenceClassification(cfg)


@pytest.mark.parametrize("make", [tiny_gpt2, TinyMLP], ids=["gpt2", "plain-module"])
def test_unsupported_architecture_fails_clearly(make):
    model = make()
    before = snapshot(model)
    name = model.__class__.__name__
    with pytest.raises(NotImplementedError, match=name) as info:
        reinit_top_layers(model, 1, generator=torch.Generator().manual_seed(7))
    assert "encoder.layer" in str(info.value)
    assert changed_keys(before, model) == set()


# ---- pipeline.architecture: the model's config.json against the settings (no weights) ----------

from pipeline.architecture import (BERT_STYLE_MODEL_TYPES, LLRD_MODEL_TYPES,  # noqa: E402
                                   REINIT_MODEL_TYPES, local_model_config, model_problems, usable_positions)


def problems(cfg: dict, model="m", reinit_layers=0, reinit_pooler=False, llrd_eta=1.0, max_seq_length=128):
    return model_problems(cfg, model=model, reinit_layers=reinit_layers, reinit_pooler=reinit_pooler,
                          llrd_eta=llrd_eta, max_seq_length=max_seq_length)


def test_embedded_model_config_is_read_without_weights():
    cfg = local_model_config("minilm-l6")
    assert (cfg["model_type"], cfg["num_hidden_layers"], cfg["max_position_embeddings"]) == ("bert", 6, 512)
    kw = dict(model="minilm-l6", reinit_pooler=True, llrd_eta=0.9)
    assert problems(cfg, reinit_layers=6, max_seq_length=512, **kw) == []
    assert problems(cfg, reinit_layers=8, max_seq_length=64, **kw) == ["train.reinit_layers: 8, but minilm-l6 has 6 layers"]
    [msg] = problems(cfg, reinit_layers=1, max_seq_length=513, **kw)
    assert msg.startswith("train.max_seq_length: 513, but minilm-l6 takes at most 512 tokens")


def test_local_folder_and_hub_cache(tmp_path, monkeypatch):
    import huggingface_hub

    folder = tmp_path / "my-model"
    folder.mkdir()
    assert local_model_config(str(folder)) is None  # a folder without config.json
    (folder / "config.json").write_text('{"model_type": "roberta", "num_hidden_layers": 3}')
    assert local_model_config(str(folder)) == {"model_type": "roberta", "num_hidden_layers": 3}
    cache = tmp_path / "hub"
    snap = cache / "models--someone--tiny" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (cache / "models--someone--tiny" / "refs").mkdir()
    (cache / "models--someone--tiny" / "refs" / "main").write_text("abc123")
    (snap / "config.json").write_text('{"model_type": "electra", "num_hidden_layers": 2}')
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert local_model_config("someone/tiny") == {"model_type": "electra", "num_hidden_layers": 2}
    assert local_model_config("someone/not-cached") is None  # never the network
    assert local_model_config("not a valid id!") is None


def test_unsupported_architecture_blames_only_the_settings_that_are_on():
    gpt2 = transformers.GPT2Config(n_layer=2, n_positions=64).to_dict()
    assert problems(gpt2, model="gpt2", max_seq_length=64) == []  # plain fine-tuning: any classifier
    [msg] = problems(gpt2, model="gpt2", reinit_layers=2, max_seq_length=64)
    assert msg.startswith("train.model: gpt2 (model type 'gpt2'): Re-init (train.reinit_layers: 2)")
    assert "llrd" not in msg and "reinit_pooler" not in msg and "xlnet, bart" in msg
    reinit_msg, llrd_msg = problems(gpt2, model="gpt2", llrd_eta=0.9, reinit_pooler=True, max_seq_length=64)
    assert "train.reinit_pooler: true" in reinit_msg and "reinit_layers" not in reinit_msg
    assert "train.llrd_eta: 0.9" in llrd_msg and "reinit" not in llrd_msg
    assert problems({"model_type": "distilbert", "n_layers": 6}, reinit_layers=1)[0].startswith("train.model: m ")


@pytest.mark.parametrize("arch", list(OTHER_ARCHS))
def test_xlnet_and_bart_support(arch):
    """Re-init: both (L up to XLNet's n_layer, BART's decoder_layers); LLRD: XLNet only, BART refused
    with the reason."""
    cfg = build(arch).config.to_dict()
    assert arch in REINIT_MODEL_TYPES
    assert problems(cfg, reinit_layers=N_BLOCKS, max_seq_length=32) == []
    [msg] = problems(cfg, model=arch, reinit_layers=N_BLOCKS + 1, max_seq_length=32)
    assert msg == f"train.reinit_layers: {N_BLOCKS + 1}, but {arch} has {N_BLOCKS} " + (
        "decoder layers" if arch == "bart" else "layers")
    llrd = problems(cfg, model=arch, llrd_eta=0.9, max_seq_length=32)
    if arch == "xlnet":
        assert llrd == [] and "xlnet" in LLRD_MODEL_TYPES
    else:
        [msg] = llrd
        assert msg.startswith("train.model: bart (model type 'bart'): layer-wise LR decay "
                              "(train.llrd_eta: 0.9)")
        assert "encoder-decoder" in msg and "bart" not in LLRD_MODEL_TYPES


@pytest.mark.parametrize("arch", list(OTHER_ARCHS))
def test_xlnet_and_bart_depth_tags(arch):
    """Every base-model parameter is tagged embeddings or block<i>, bottom to top (BART: the encoder's
    blocks, then the decoder's), the head outside; so drift and pre-trained weight decay see the
    pre-trained layers as such, and LLRD (XLNet) decays each block one factor more than the one above."""
    from pipeline.model import block_of, n_blocks
    from pipeline.optim import parameter_groups

    model = build(arch)
    prefix = model.base_model_prefix + "."
    tags = {n: block_of(n, model) for n, _ in model.named_parameters()}
    for name, tag in tags.items():
        assert (tag == "embeddings" or tag.startswith("block")) == name.startswith(prefix), name
    n_enc = 3 if arch == "bart" else 0
    assert n_blocks(model) == n_enc + N_BLOCKS == len(encoder_layers(model))
    stacks = [("model.encoder.layers.", 0), ("model.decoder.layers.", n_enc)] if arch == "bart" else \
        [("transformer.layer.", 0)]
    for name, tag in tags.items():
        for stack, offset in stacks:
            if name.startswith(stack):
                assert tag == f"block{offset + int(name[len(stack):].split('.')[0])}", name
    embeddings = {n for n, t in tags.items() if t == "embeddings"}
    bart_embeddings = {f"model.{n}" for n in ["shared.weight", "encoder.embed_positions.weight",
                                              "decoder.embed_positions.weight"]}
    bart_embeddings |= {f"model.{s}.layernorm_embedding.{w}" for s in ("encoder", "decoder")
                        for w in ("weight", "bias")}
    xlnet_embeddings = {"transformer.word_embedding.weight", "transformer.mask_emb"}
    assert embeddings == (xlnet_embeddings if arch == "xlnet" else bart_embeddings)
    if arch == "xlnet":
        groups = parameter_groups(model, lr=1.0, llrd_eta=0.5)
        scale = {g["depth"]: g["lr_scale"] for g in groups}
        assert scale == {"embeddings": 0.5 ** (N_BLOCKS + 1), "head": 1.0,
                         **{f"block{i}": 0.5 ** (N_BLOCKS - i) for i in range(N_BLOCKS)}}


def test_position_limits_and_robertas_padding_offset():
    bert = transformers.BertConfig(max_position_embeddings=512).to_dict()
    roberta = transformers.RobertaConfig(max_position_embeddings=514, pad_token_id=1).to_dict()
    assert usable_positions(bert) == 512 and usable_positions(roberta) == 512
    assert problems(roberta, max_seq_length=512) == []
    [msg] = problems(roberta, model="roberta-base", max_seq_length=513)
    assert msg.startswith("train.max_seq_length: 513, but roberta-base takes at most 512 tokens")
    assert "padding offset 2" in msg
    assert problems(bert, max_seq_length=513)[0].startswith("train.max_seq_length: 513")
    assert problems({"model_type": "xlnet"}, max_seq_length=4096) == []  # no absolute positions: no limit


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_usable_positions_match_the_model(arch):
    """The longest input the model takes is the one usable_positions computes (RoBERTa: 2 fewer)."""
    config_cls, model_cls, extra = ARCHS[arch]
    cfg = config_cls(**{**COMMON, "max_position_embeddings": 20}, **extra)
    model = model_cls(cfg).eval()
    n = usable_positions(cfg.to_dict())
    with torch.no_grad():
        model(input_ids=torch.full((1, n), 5))
        with pytest.raises((IndexError, RuntimeError)):  # past the position table
            model(input_ids=torch.full((1, n + 1), 5))


@pytest.mark.parametrize("model_type", BERT_STYLE_MODEL_TYPES)
def test_reinit_model_types_have_the_layout_reinit_and_llrd_need(model_type):
    """Every BERT-style type: blocks at <base>.encoder.layer made of Linear and LayerNorm only (what
    Re-init redraws), every base-model parameter tagged embeddings, block<i> or pooler (LLRD's depths),
    the head outside the base model; Re-init of the top block then runs."""
    from pipeline.model import block_of

    cfg = transformers.AutoConfig.for_model(model_type, **COMMON)
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_config(cfg)
    layers = encoder_layers(model)
    assert len(layers) == N_BLOCKS
    for layer in layers:
        for m in layer.modules():
            if list(m.parameters(recurse=False)):
                assert isinstance(m, (nn.Linear, nn.LayerNorm)), type(m).__name__
    prefix = model.base_model_prefix + "."
    for name, _ in model.named_parameters():
        tag = block_of(name, model)
        assert (tag in ("embeddings", "pooler") or tag.startswith("block")) == name.startswith(prefix), name
    assert problems(cfg.to_dict(), reinit_layers=1, reinit_pooler=True, llrd_eta=0.9, max_seq_length=32) == []
    reinit_top_layers(model, 1, reinit_pooler=True, generator=torch.Generator().manual_seed(7))


def test_plain_finetuning_of_an_unsupported_architecture_builds_its_optimiser():
    """No encoder.layer (GPT-2): no depth, but parameter groups and drift work (Re-init/LLRD are refused
    before, by model_problems)."""
    from pipeline.drift import layer_drift
    from pipeline.optim import parameter_groups

    model = tiny_gpt2()
    groups = parameter_groups(model, lr=1e-3)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert {g["lr_scale"] for g in groups} == {1.0}
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    assert (layer_drift(initial, model)["l2"] == 0).all()


# ---- Loading: ELECTRA's official head, attention fallback ------------------------------------------

def saved(arch: str, folder) -> str:
    """A tiny pre-trained checkpoint of `arch` in `folder`: its base model (no task head), as a Hub
    checkpoint is; config.json + weights, no tokenizer needed to load."""
    base_model(build(arch)).save_pretrained(folder)
    return str(folder)


def test_electra_gets_the_official_first_token_head(tmp_path):
    """load_model gives ELECTRA the official code's head: dropout + one linear layer on the first
    token's hidden state (no dense + gelu), drawn by init_head like any head; Mixout mixes its linear."""
    from pipeline.model import ElectraFirstTokenHead, apply_mixout, init_head, load_model

    model = load_model(saved("electra", tmp_path / "electra"), 3, dropout=0.2, attn_implementation="eager")
    head = model.classifier
    assert isinstance(head, ElectraFirstTokenHead)
    assert [n for n, _ in model.named_parameters() if n.startswith("classifier.")] == [
        "classifier.out_proj.weight", "classifier.out_proj.bias"]
    assert head.out_proj.weight.shape == (3, 32) and head.dropout.p == 0.2
    init_head(model, torch.Generator().manual_seed(1))
    check_normal([head.out_proj.weight], STD, "head")
    assert torch.count_nonzero(head.out_proj.bias) == 0
    ids = torch.randint(5, 100, (2, 9), generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        first = model.electra(input_ids=ids).last_hidden_state[:, 0]
        expected = first @ head.out_proj.weight.T + head.out_proj.bias
        assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-6)
    model.train()  # the head's dropout acts in training
    with torch.no_grad():
        assert not torch.allclose(model(input_ids=ids).logits, model(input_ids=ids).logits)
    apply_mixout(model, 0.5, torch.Generator().manual_seed(0), grad="official")
    assert head.dropout.p == 0.0 and type(head.out_proj).__name__ == "MixoutLinear"
    assert model(input_ids=ids).logits.shape == (2, 3)


@pytest.mark.parametrize("arch", ["xlnet", "bart"])
def test_xlnet_and_bart_load_for_plain_finetuning(tmp_path, arch):
    """Loadable with the default attention setting: XLNet has no SDPA attention, so it falls back to
    eager; the head is transformers' (the official code's for both)."""
    from pipeline.model import head_modules, load_model

    model = load_model(saved(arch, tmp_path / arch), 2, attn_implementation="sdpa")
    assert model.config._attn_implementation == ("eager" if arch == "xlnet" else "sdpa")
    assert [type(m).__name__ for m in head_modules(model)] == (
        ["XLNetSequenceSummary", "Linear"] if arch == "xlnet" else ["BartClassificationHead"])
