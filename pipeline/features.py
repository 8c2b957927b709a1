"""Tokenisation, once per (task, model, max_seq_length), shared by every run of a study.

Sequences are stored unpadded (flat token tensor + offsets); each batch is padded to its own
longest sequence when it is built.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .data import read_rows
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


def tokenize_splits(task: str, rows: dict, model_name: str, max_len: int) -> dict:
    """The features of one task's splits: {'task', 'model', 'max_seq_length', 'train'|'val'|'test':
    tokenised rows}; `rows` maps each split to its rows (index, text_a, text_b, label)."""
    from .model import load_tokenizer

    spec = task_spec(task)
    tok = load_tokenizer(model_name)
    out = {"task": spec.name, "model": model_name, "max_seq_length": max_len}
    for split in ("train", "val", "test"):
        out[split] = tokenize_rows(tok, rows[split], max_len, spec.is_regression)
    return out


def build_features(task: str, split_dir: Path, model_name: str, max_len: int) -> dict:
    """The features of the split files in `split_dir` (the features stage)."""
    rows = {split: read_split(Path(split_dir) / f"{split}.jsonl") for split in ("train", "val", "test")}
    return tokenize_splits(task, rows, model_name, max_len)


def head(feats: dict, n: int) -> dict:
    """The first n examples of one split's tokenised features (offsets re-based; copies)."""
    n = min(n, len(feats["labels"]))
    end = int(feats["offsets"][n])
    return {"ids": feats["ids"][:end].clone(), "types": feats["types"][:end].clone(),
            "offsets": feats["offsets"][: n + 1].clone(), "labels": feats["labels"][:n].clone(),
            "index": feats["index"][:n].clone()}


def read_split(path: Path) -> list[tuple]:
    """Rows (index, text_a, text_b, label) of a split file."""
    return read_rows(path)


def load_features(path: Path) -> dict:
    return torch.load(path, weights_only=True)


PAD_ID = 0  # the id batches are padded with (masked out by the attention mask)


class Examples:
    """Random access to tokenised examples of one split, and padded batches of them."""

    def __init__(self, feats: dict, pad_id: int = PAD_ID):
        self.ids, self.types, self.offsets = feats["ids"], feats["types"], feats["offsets"]
        self.labels = feats["labels"]
        self.lengths = (self.offsets[1:] - self.offsets[:-1])
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index) -> dict:
        """Padded to the batch's own longest sequence."""
        index = torch.as_tensor(index, dtype=torch.int64)
        lens = self.lengths[index]
        width = int(lens.max())
        n = len(index)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.int64)
        token_type = torch.zeros((n, width), dtype=torch.int64)
        mask = torch.zeros((n, width), dtype=torch.int64)
        for row, i in enumerate(index.tolist()):
            s, e = int(self.offsets[i]), int(self.offsets[i + 1])
            input_ids[row, : e - s] = self.ids[s:e]
            token_type[row, : e - s] = self.types[s:e]
            mask[row, : e - s] = 1
        return {"input_ids": input_ids, "token_type_ids": token_type, "attention_mask": mask,
                "labels": self.labels[index]}


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
