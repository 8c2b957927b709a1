"""Few-sample splits, made the way the official code makes them, with seeds that are
configuration and never the run's seed.

- The labelled dev set is halved per class (per score bin for STS-B) into validation and test,
  each class's index list shuffled by numpy RandomState(split_seed) (re-created per class, as the
  official code does); the first floor(n/2) go to validation, the rest to test.
- The training set is optionally down-sampled to `train_size`, class-balanced: one
  RandomState(subset_seed) stream shuffles each class in label order and the first
  train_size // num_classes of each class are kept. Regression (STS-B(1k)) is not class-balanced:
  the official `torch.randperm(len(train))[:N]` after `set_seed(subset_seed)` (the official code's
  `set_seed(0)`), drawn here from a torch.Generator seeded as `torch.manual_seed(subset_seed)` seeds
  the global one (the same permutation, the global RNG untouched). The permutation is the installed
  torch's: torch 1.4, which produced the paper's subset, may permute differently, so the 1,000
  examples are the official rule's, not necessarily the paper's own.
- The paper's 1k protocol for the large tasks (`val_source: train`) takes `val_size` examples from
  the end of the same shuffled class lists (disjoint from training) and uses the whole dev set as test.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .tasks import TaskSpec


class SplitError(ValueError):
    pass


def strata(labels, is_regression: bool, bin_width: float) -> list:
    """The stratum of each example: its class, or for regression its score bin
    (bin_width 0 = exact score, the official code's rule)."""
    if not is_regression:
        return list(labels)
    if bin_width <= 0:
        return [float(x) for x in labels]
    return [int(math.floor(float(x) / bin_width + 1e-9)) for x in labels]


def _groups(keys) -> dict:
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return dict(sorted(groups.items()))


def dev_halves(keys, split_seed: int) -> tuple[list[int], list[int]]:
    val, test = [], []
    for _, idx in _groups(keys).items():
        idx = np.array(idx)
        np.random.RandomState(split_seed).shuffle(idx)
        half = len(idx) // 2
        val += idx[:half].tolist()
        test += idx[half:].tolist()
    return sorted(val), sorted(test)


def proportional_subsample(indices, keys, size: int, seed: int) -> list[int]:
    """A stratified subset of `indices` of exactly `size` (largest-remainder quotas per stratum)."""
    if size >= len(indices):
        return sorted(indices)
    by = _groups([keys[i] for i in indices])
    total = len(indices)
    quotas = {k: size * len(v) / total for k, v in by.items()}
    base = {k: int(math.floor(q)) for k, q in quotas.items()}
    rest = size - sum(base.values())
    for k in sorted(quotas, key=lambda k: (-(quotas[k] - base[k]), str(k)))[:rest]:
        base[k] += 1
    rng = np.random.RandomState(seed)
    out = []
    for k, members in by.items():
        members = np.array([indices[j] for j in members])
        rng.shuffle(members)
        out += members[: base[k]].tolist()
    return sorted(out)


def subsample_train(labels, spec: TaskSpec, train_size, subset_seed: int, val_size: int = 0):
    """(train indices, validation indices taken from training) by the official rule."""
    n = len(labels)
    if train_size is None:
        if val_size:
            raise SplitError("val_source 'train' needs a train_size (the rest of the training set "
                             "would overlap validation)")
        return list(range(n)), []
    if train_size + val_size > n:
        raise SplitError(f"{spec.name}: train_size {train_size} + validation {val_size} exceeds the "
                         f"{n} training examples")
    if spec.is_regression:  # the official rule (module docstring); validation from the permutation's end
        import torch

        perm = torch.randperm(n, generator=torch.Generator().manual_seed(subset_seed)).tolist()
        return sorted(perm[:train_size]), sorted(perm[n - val_size:]) if val_size else []
    rng = np.random.RandomState(subset_seed)
    k = spec.num_labels
    per_train, per_val = train_size // k, val_size // k
    train, val = [], []
    for label, idx in _groups(labels).items():
        if per_train + per_val > len(idx):
            raise SplitError(f"{spec.name}: class {label} has {len(idx)} training examples, fewer than "
                             f"the {per_train} (train) + {per_val} (validation) a balanced split needs")
        idx = np.array(idx)
        rng.shuffle(idx)
        train += idx[:per_train].tolist()
        if per_val:
            val += idx[len(idx) - per_val:].tolist()
    return sorted(train), sorted(val)


def make_splits(train_rows, dev_rows, spec: TaskSpec, cfg: dict) -> dict:
    """{'train'|'val'|'test': [(source, index), ...]} for one task; cfg holds split_seed,
    subset_seed, train_size, val_source ('dev_half'|'train'), val_size, regression_bin_width."""
    train_labels = [r[2] for r in train_rows]
    dev_labels = [r[2] for r in dev_rows]
    width = float(cfg.get("regression_bin_width", 0) or 0)
    if cfg["val_source"] == "train":
        train_idx, val_idx = subsample_train(train_labels, spec, cfg["train_size"], cfg["subset_seed"],
                                             int(cfg["val_size"]))
        out = {"train": [("train", i) for i in train_idx], "val": [("train", i) for i in val_idx],
               "test": [("dev", i) for i in range(len(dev_rows))]}
    elif cfg["val_source"] == "dev_half":
        train_idx, _ = subsample_train(train_labels, spec, cfg["train_size"], cfg["subset_seed"])
        keys = strata(dev_labels, spec.is_regression, width)
        val_idx, test_idx = dev_halves(keys, cfg["split_seed"])
        if cfg.get("val_size"):
            val_idx = proportional_subsample(val_idx, keys, int(cfg["val_size"]), cfg["split_seed"])
        if cfg.get("test_size"):
            test_idx = proportional_subsample(test_idx, keys, int(cfg["test_size"]), cfg["split_seed"])
        out = {"train": [("train", i) for i in train_idx], "val": [("dev", i) for i in val_idx],
               "test": [("dev", i) for i in test_idx]}
    else:
        raise SplitError(f"val_source must be 'dev_half' or 'train', got {cfg['val_source']!r}")
    seen = set()
    for name in ("train", "val", "test"):
        ids = set(out[name])
        if seen & ids:
            raise SplitError(f"{spec.name}: split {name} overlaps another split")  # guards the rule above
        seen |= ids
    return out


def majority_baseline(spec: TaskSpec, labels) -> dict:
    """Every metric of the constant majority-class predictor on these labels (correlations: 0)."""
    from .metrics import compute_metrics

    if spec.is_regression:
        return {m: 0.0 for m in spec.metrics}
    counts = Counter(labels)
    majority = sorted(counts, key=lambda c: (-counts[c], c))[0]
    scores = compute_metrics(spec, np.full(len(labels), majority), np.asarray(labels))
    return {m: (0.0 if m == "mcc" else v) for m, v in scores.items()}
