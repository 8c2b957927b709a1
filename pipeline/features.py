"""Tokenisation, once per (task, model, max_seq_length), shared by every run of a study.

Sequences are stored unpadded (flat token tensor + offsets); each batch is padded to its own
longest sequence when it is built, the way the model's architecture needs (`batching_of`):

- the padding id is the tokenizer's (BERT and ELECTRA 0, RoBERTa and BART 1, XLNet 5);
- the padding side is the tokenizer's: XLNet pads on the LEFT, because its head reads the last position
  (summary_type "last"; the official code pads on the left for XLNet too), every other model on the right;
- token_type_ids are passed only when the model's sequence classifier takes them: not to BART (its
  forward has no such argument); BERT, ELECTRA, XLNet (segment ids, its <cls> type 2) and RoBERTa (all
  zeros, as it would default to) get them.

Each split of a features file records that layout under "batching" only when it differs from BERT's
(`BERT_BATCHING`: pad id 0, right padding, token types passed), so the features of BERT-style models
(the embedded model's among them) and every file written before the layout was recorded read as they
did, byte for byte; `Examples` reads the layout back.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .tasks import task_spec


def tokenize_rows(tokenizer, rows, max_len: int, regression: bool) -> dict:
    a = [r[1] for r in rows]
    b = [r[2] for r in rows] if rows and rows[0][2] is not None else None
    enc = tokenizer(a, b, truncation=True, max_length=max_len, return_token_type_ids=True)
    ids, types = enc["input_ids"], enc["token_type_ids"]
    lengths = torch.tensor([len(x) for x in ids], dtype=torch.int64)
    offsets = torch.zeros(len(ids) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, 0)
    flat = [t for seq in ids for t in seq]
    flat_types = [t for seq in types for t in seq]
    labels = [r[3] for r in rows]
    return {"ids": torch.tensor(flat, dtype=torch.int32), "types": torch.tensor(flat_types, dtype=torch.int8),
            "offsets": offsets,
            "labels": torch.tensor(labels, dtype=torch.float32 if regression else torch.int64),
            "index": torch.tensor([r[0] for r in rows], dtype=torch.int64)}


# The batch layout of BERT (and of any split without a "batching" record).
BERT_BATCHING = {"pad_id": 0, "pad_type_id": 0, "padding_side": "right", "token_types": True}


def takes_token_types(model_type: str | None) -> bool:
    """Whether the model type's sequence classifier takes token_type_ids (True when unknown)."""
    import inspect

    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    cls = getattr(transformers, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(model_type, ""), None)
    if cls is None:
        return True
    return "token_type_ids" in inspect.signature(cls.forward).parameters


def batching_of(tokenizer, model_config) -> dict:
    """How batches of this model's inputs are padded: the tokenizer's padding id, token type id of
    padding and padding side, and whether the sequence classifier takes token_type_ids (from the
    model's config, `model_config.model_type`). A tokenizer without a padding token pads with the
    config's pad_token_id, else 0."""
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = getattr(model_config, "pad_token_id", None)
    return {"pad_id": int(pad or 0), "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
            "padding_side": str(tokenizer.padding_side),
            "token_types": takes_token_types(getattr(model_config, "model_type", None))}


def batching(feats: dict) -> dict:
    """The batch layout recorded in one split's features (BERT's when none is recorded)."""
    return {**BERT_BATCHING, **feats.get("batching", {})}


def tokenize_splits(task: str, rows: dict, model_name: str, max_len: int) -> dict:
    """The features of one task's splits: {'task', 'model', 'max_seq_length', 'train'|'val'|'test':
    tokenised rows}; `rows` maps each split to its rows (index, text_a, text_b, label). Each split
    records its batch layout ("batching") when it is not BERT's."""
    from .model import load_model_config, load_tokenizer

    spec = task_spec(task)
    tok = load_tokenizer(model_name)
    layout = batching_of(tok, load_model_config(model_name))
    out = {"task": spec.name, "model": model_name, "max_seq_length": max_len}
    for split in ("train", "val", "test"):
        out[split] = tokenize_rows(tok, rows[split], max_len, spec.is_regression)
        if layout != BERT_BATCHING:
            out[split]["batching"] = dict(layout)
    return out


def head(feats: dict, n: int) -> dict:
    """The first n examples of one split's tokenised features (offsets re-based; copies)."""
    n = min(n, len(feats["labels"]))
    end = int(feats["offsets"][n])
    out = {"ids": feats["ids"][:end].clone(), "types": feats["types"][:end].clone(),
           "offsets": feats["offsets"][: n + 1].clone(), "labels": feats["labels"][:n].clone(),
           "index": feats["index"][:n].clone()}
    if "batching" in feats:
        out["batching"] = dict(feats["batching"])
    return out


def load_features(path: Path) -> dict:
    return torch.load(path, weights_only=True)


PAD_ID = BERT_BATCHING["pad_id"]  # BERT's padding id; a split's own: batching(feats)["pad_id"]


class Examples:
    """Random access to tokenised examples of one split, and padded batches of them, laid out as the
    split's features record (`batching`). `pad_id` overrides the recorded padding id (for ids remapped
    by pipeline.model.compact_word_embeddings); None keeps it."""

    def __init__(self, feats: dict, pad_id: int | None = None):
        self.ids, self.types, self.offsets = feats["ids"], feats["types"], feats["offsets"]
        self.labels = feats["labels"]
        self.lengths = (self.offsets[1:] - self.offsets[:-1])
        layout = batching(feats)
        if layout["padding_side"] not in ("left", "right"):
            raise ValueError(f"padding_side must be left or right, got {layout['padding_side']!r}")
        self.pad_id = layout["pad_id"] if pad_id is None else int(pad_id)
        self.pad_type_id = layout["pad_type_id"]
        self.pad_left = layout["padding_side"] == "left"
        self.token_types = layout["token_types"]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index) -> dict:
        """Padded to the batch's own longest sequence, on the recorded side; token_type_ids only when
        the model takes them."""
        index = torch.as_tensor(index, dtype=torch.int64)
        lens = self.lengths[index]
        width = int(lens.max())
        n = len(index)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.int64)
        token_type = torch.full((n, width), self.pad_type_id, dtype=torch.int64)
        mask = torch.zeros((n, width), dtype=torch.int64)
        for row, i in enumerate(index.tolist()):
            s, e = int(self.offsets[i]), int(self.offsets[i + 1])
            cols = slice(width - (e - s), width) if self.pad_left else slice(0, e - s)
            input_ids[row, cols] = self.ids[s:e]
            token_type[row, cols] = self.types[s:e]
            mask[row, cols] = 1
        out = {"input_ids": input_ids}
        if self.token_types:
            out["token_type_ids"] = token_type
        out.update(attention_mask=mask, labels=self.labels[index])
        return out


def micro_batches(index, lengths, token_budget: int) -> list[list[int]]:
    """Split one optimiser batch into length-sorted micro-batches of at most `token_budget` padded
    tokens each (0: one micro-batch). The set of examples, hence the step, is unchanged."""
    index = list(index)
    if token_budget <= 0:
        return [index]
    order = sorted(index, key=lambda i: (-int(lengths[i]), i))
    out, current, width = [], [], 0
    for i in order:
        w = max(width, int(lengths[i]))
        if current and w * (len(current) + 1) > token_budget:
            out.append(current)
            current, w = [], int(lengths[i])
        current.append(i)
        width = w
    if current:
        out.append(current)
    return out


def write_meta(path: Path, meta: dict) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
