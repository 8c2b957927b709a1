"""Splits: the official rules (dev halves per class with RandomState(split_seed), class-balanced
training subsets with RandomState(subset_seed), the regression subset by torch.randperm after
set_seed(subset_seed)), disjointness, sizes, independence from any run seed, and the paper's split
sizes."""
from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import split_config
from pipeline.metrics import f1
from pipeline.splits import SplitError, majority_baseline, make_splits
from pipeline.tasks import task_spec

SMALL = ["rte", "mrpc", "sts-b", "cola"]


def _data(glue_rows, task):
    return glue_rows(task, "train"), glue_rows(task, "dev")


def _ids(part, source):
    assert all(s == source for s, _ in part)
    return [i for _, i in part]


def _check_disjoint(parts):
    sets = {k: set(v) for k, v in parts.items()}
    for k, v in parts.items():
        assert len(v) == len(sets[k]), f"{k} has duplicates"
    assert not sets["train"] & sets["val"]
    assert not sets["train"] & sets["test"]
    assert not sets["val"] & sets["test"]


# ---- independent re-implementations of the official code's rules -----------------------------

def official_dev_halves(labels, seed=1):
    """run_glue.py --test_val_split: group by label value, shuffle each group's index list with a fresh
    np.random.RandomState(seed), first floor(n/2) to validation, the rest to test."""
    val, test = [], []
    for lab in sorted(set(labels)):
        idx = np.array([i for i, x in enumerate(labels) if x == lab])
        np.random.RandomState(seed).shuffle(idx)
        val += list(idx[: len(idx) // 2])
        test += list(idx[len(idx) // 2:])
    return sorted(val), sorted(test)


def official_subset(labels, n_classes, train_size, val_size, seed=0):
    """--downsample_trainset / --resplit_val: one seeded stream, each class shuffled in label order,
    the first train_size // k per class to training, the last val_size // k to validation."""
    rng = np.random.RandomState(seed)
    train, val = [], []
    for lab in range(n_classes):
        idx = np.array([i for i, x in enumerate(labels) if x == lab])
        rng.shuffle(idx)
        train += list(idx[: train_size // n_classes])
        if val_size:
            val += list(idx[len(idx) - val_size // n_classes:])
    return sorted(train), sorted(val)


# ---- the paper's sizes -------------------------------------------------------------------------

@pytest.mark.parametrize("task,sizes", [("rte", (138, 139)), ("mrpc", (203, 205)), ("cola", (521, 522))])
@pytest.mark.parametrize("bin_width", [0.0, 0.5, 1.0])
def test_paper_dev_halves(glue_rows, task, sizes, bin_width):
    train, dev = _data(glue_rows, task)
    parts = make_splits(train, dev, task_spec(task), split_config(regression_bin_width=bin_width))
    val, test = _ids(parts["val"], "dev"), _ids(parts["test"], "dev")
    assert (len(val), len(test)) == sizes
    assert sorted(val + test) == list(range(len(dev)))
    assert _ids(parts["train"], "train") == list(range(len(train)))  # no train_size: the full set
    _check_disjoint(parts)
    # per class: floor(n/2) to validation, the rest to test
    labels = [r[2] for r in dev]
    n = Counter(labels)
    cv, ct = Counter(labels[i] for i in val), Counter(labels[i] for i in test)
    for c in n:
        assert cv[c] == n[c] // 2 and ct[c] == n[c] - n[c] // 2
    # exactly the official rule
    assert (val, test) == official_dev_halves(labels)


def test_stsb_official_halves(glue_rows):
    train, dev = _data(glue_rows, "sts-b")
    parts = make_splits(train, dev, task_spec("sts-b"), split_config(regression_bin_width=0))
    val, test = _ids(parts["val"], "dev"), _ids(parts["test"], "dev")
    assert (len(val), len(test)) == (722, 778)
    assert (val, test) == official_dev_halves([r[2] for r in dev])
    _check_disjoint(parts)


@pytest.mark.parametrize("width", [0.5, 1.0])
def test_stsb_score_bins(glue_rows, width):
    train, dev = _data(glue_rows, "sts-b")
    parts = make_splits(train, dev, task_spec("sts-b"), split_config(regression_bin_width=width))
    val, test = _ids(parts["val"], "dev"), _ids(parts["test"], "dev")
    assert sorted(val + test) == list(range(len(dev)))
    bins = [int(np.floor(r[2] / width + 1e-9)) for r in dev]
    n, cv = Counter(bins), Counter(bins[i] for i in val)
    for b in n:
        assert cv[b] == n[b] // 2
    assert (val, test) == official_dev_halves(bins)


def test_paper_majority_baselines(glue_rows):
    """Table 3's baselines confirm the halves: RTE 73/138 and 73/139; MRPC all-positive F1 81.3 / 81.2."""
    spec = task_spec("rte")
    train, dev = _data(glue_rows, "rte")
    parts = make_splits(train, dev, spec, split_config())
    val = [dev[i][2] for _, i in parts["val"]]
    test = [dev[i][2] for _, i in parts["test"]]
    assert round(100 * majority_baseline(spec, val)["accuracy"], 1) == 52.9
    assert round(100 * majority_baseline(spec, test)["accuracy"], 1) == 52.5
    spec = task_spec("mrpc")
    train, dev = _data(glue_rows, "mrpc")
    parts = make_splits(train, dev, spec, split_config())
    for name, expected in (("val", 81.3), ("test", 81.2)):
        gold = np.array([dev[i][2] for _, i in parts[name]])
        assert round(100 * f1(np.ones_like(gold), gold), 1) == expected
        assert majority_baseline(spec, gold.tolist())["f1"] == pytest.approx(f1(np.ones_like(gold), gold))


# ---- training subsets --------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["rte", "mrpc", "cola"])
@pytest.mark.parametrize("train_size", [16, 100, 1000])
def test_balanced_train_subset(glue_rows, task, train_size):
    train, dev = _data(glue_rows, task)
    parts = make_splits(train, dev, task_spec(task), split_config(train_size=train_size))
    ids = _ids(parts["train"], "train")
    assert len(ids) == train_size
    counts = Counter(train[i][2] for i in ids)
    assert counts == {0: train_size // 2, 1: train_size // 2}
    assert ids == official_subset([r[2] for r in train], 2, train_size, 0)[0]
    _check_disjoint(parts)


def official_regression_subset(n, train_size, seed=0):
    """STS-B(1k) in load_and_cache_examples: set_seed(seed) (python random, numpy, torch), then
    torch.randperm(len(dataset))[:N], computed with the installed torch through the global RNG as the
    official code does (the global states are restored afterwards)."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        perm = torch.randperm(n)
    random.setstate(py)
    np.random.set_state(npy)
    return sorted(perm[:train_size].tolist())


@pytest.mark.parametrize("train_size,subset_seed", [(100, 0), (256, 0), (1000, 0), (1000, 3)])
def test_regression_train_subset_is_the_official_rule(glue_rows, train_size, subset_seed):
    """STS-B(1k): the subset of the mirrored training file is the official torch.randperm rule's."""
    train, dev = _data(glue_rows, "sts-b")
    assert len(train) == 5749  # the GLUE STS-B training file
    state = torch.get_rng_state()
    parts = make_splits(train, dev, task_spec("sts-b"), split_config(train_size=train_size, subset_seed=subset_seed))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    ids = _ids(parts["train"], "train")
    assert len(ids) == train_size == len(set(ids))
    assert ids == official_regression_subset(len(train), train_size, subset_seed)
    _check_disjoint(parts)


def test_val_size_caps_the_validation_half_stratified(glue_rows):
    train, dev = _data(glue_rows, "mrpc")
    full = make_splits(train, dev, task_spec("mrpc"), split_config())
    capped = make_splits(train, dev, task_spec("mrpc"), split_config(val_size=50))
    val = _ids(capped["val"], "dev")
    assert len(val) == 50
    assert set(val) <= set(_ids(full["val"], "dev"))  # a subset of the validation half
    assert capped["test"] == full["test"]  # the test half is untouched
    labels = [r[2] for r in dev]
    full_counts = Counter(labels[i] for _, i in full["val"])
    counts = Counter(labels[i] for i in val)
    for c, n in full_counts.items():  # proportional to the half's class shares (largest remainder)
        assert abs(counts[c] - 50 * n / len(full["val"])) < 1
    _check_disjoint(capped)


def test_test_size_caps_the_test_half_stratified(glue_rows):
    train, dev = _data(glue_rows, "cola")
    full = make_splits(train, dev, task_spec("cola"), split_config())
    capped = make_splits(train, dev, task_spec("cola"), split_config(val_size=100, test_size=200))
    test = _ids(capped["test"], "dev")
    assert len(test) == 200 and len(capped["val"]) == 100
    assert set(test) <= set(_ids(full["test"], "dev"))
    labels = [r[2] for r in dev]
    full_counts = Counter(labels[i] for _, i in full["test"])
    counts = Counter(labels[i] for i in test)
    for c, n in full_counts.items():
        assert abs(counts[c] - 200 * n / len(full["test"])) < 1
    _check_disjoint(capped)


def test_sizes_as_configured_stsb(glue_rows):
    train, dev = _data(glue_rows, "sts-b")
    parts = make_splits(train, dev, task_spec("sts-b"),
                        split_config(train_size=200, val_size=120, regression_bin_width=1.0))
    assert len(parts["train"]) == 200 and len(parts["val"]) == 120
    assert len(parts["val"]) + len(parts["test"]) < len(dev)
    _check_disjoint(parts)


# ---- the paper's 1k protocol (validation from training, the whole dev set as test) -------------

@pytest.mark.parametrize("task", ["sst-2", "rte"])
def test_val_from_train(glue_rows, task):
    train, dev = _data(glue_rows, task)
    parts = make_splits(train, dev, task_spec(task),
                        split_config(val_source="train", train_size=1000, val_size=1000))
    tr, va = _ids(parts["train"], "train"), _ids(parts["val"], "train")
    assert len(tr) == 1000 and len(va) == 1000
    assert not set(tr) & set(va)
    assert Counter(train[i][2] for i in va) == {0: 500, 1: 500}
    assert Counter(train[i][2] for i in tr) == {0: 500, 1: 500}
    assert parts["test"] == [("dev", i) for i in range(len(dev))]
    assert (tr, va) == official_subset([r[2] for r in train], 2, 1000, 1000, 0)
    _check_disjoint(parts)


def test_val_from_train_regression(glue_rows):
    train, dev = _data(glue_rows, "sts-b")
    parts = make_splits(train, dev, task_spec("sts-b"),
                        split_config(val_source="train", train_size=1000, val_size=500))
    tr, va = _ids(parts["train"], "train"), _ids(parts["val"], "train")
    assert len(tr) == 1000 and len(va) == 500 and not set(tr) & set(va)
    assert tr == official_regression_subset(len(train), 1000)  # validation does not change the training subset
    assert parts["test"] == [("dev", i) for i in range(len(dev))]


def test_training_subset_same_under_both_protocols(glue_rows):
    """Taking validation from the end of the class lists leaves the training subset unchanged."""
    train, dev = _data(glue_rows, "sst-2")
    a = make_splits(train, dev, task_spec("sst-2"), split_config(train_size=1000))
    b = make_splits(train, dev, task_spec("sst-2"), split_config(train_size=1000, val_source="train",
                                                                  val_size=1000))
    assert a["train"] == b["train"]


# ---- independence from the run seed -----------------------------------------------------------

@pytest.mark.parametrize("cfg", [split_config(train_size=64, val_size=40),
                                 split_config(train_size=64, val_size=40, val_source="train")])
def test_splits_ignore_every_global_rng(glue_rows, cfg):
    """The functions take no run seed; whatever the global RNG states, the output is the same."""
    train, dev = _data(glue_rows, "rte")
    outs = []
    for run_seed in (0, 1, 12345):
        random.seed(run_seed)
        np.random.seed(run_seed)
        torch.manual_seed(run_seed)
        outs.append(make_splits(train, dev, task_spec("rte"), dict(cfg)))
        np.random.rand(7)  # disturb the global streams between calls
        torch.rand(7)
    assert outs[0] == outs[1] == outs[2]
    # a run seed slipped into the settings changes nothing either
    for run_seed in (0, 7):
        assert make_splits(train, dev, task_spec("rte"), {**cfg, "seed": run_seed, "data_seed": run_seed,
                                                          "init_seed": run_seed}) == outs[0]


def test_splits_depend_on_their_own_seeds(glue_rows):
    train, dev = _data(glue_rows, "rte")
    spec = task_spec("rte")
    base = make_splits(train, dev, spec, split_config(train_size=64))
    other_split = make_splits(train, dev, spec, split_config(train_size=64, split_seed=2))
    other_subset = make_splits(train, dev, spec, split_config(train_size=64, subset_seed=1))
    assert other_split["train"] == base["train"] and other_split["val"] != base["val"]
    assert other_subset["val"] == base["val"] and other_subset["test"] == base["test"]
    assert other_subset["train"] != base["train"]


# ---- impossible sizes --------------------------------------------------------------------------

def test_impossible_sizes(glue_rows):
    train, dev = _data(glue_rows, "rte")
    spec = task_spec("rte")
    with pytest.raises(SplitError):  # more than the training set
        make_splits(train, dev, spec, split_config(train_size=5000))
    with pytest.raises(SplitError):  # balanced 1245/class, but not_entailment has only 1241
        make_splits(train, dev, spec, split_config(train_size=2490))
    with pytest.raises(SplitError):  # train + validation exceed the training set
        make_splits(train, dev, spec, split_config(train_size=2000, val_size=1000, val_source="train"))
    with pytest.raises(SplitError):  # would overlap within a class (1241 < 700 + 600)
        make_splits(train, dev, spec, split_config(train_size=1400, val_size=1200, val_source="train"))
    with pytest.raises(SplitError):  # validation from training needs a training subset
        make_splits(train, dev, spec, split_config(val_size=100, val_source="train"))
    with pytest.raises(SplitError):
        make_splits(train, dev, spec, split_config(val_source="test"))
    train_s, dev_s = _data(glue_rows, "sts-b")
    with pytest.raises(SplitError):
        make_splits(train_s, dev_s, task_spec("sts-b"),
                    split_config(train_size=5000, val_size=1000, val_source="train"))


def test_largest_possible_sizes_work(glue_rows):
    train, dev = _data(glue_rows, "rte")
    parts = make_splits(train, dev, task_spec("rte"), split_config(train_size=2482))  # 1241 per class
    assert len(parts["train"]) == 2482
    parts = make_splits(train, dev, task_spec("rte"),
                        split_config(train_size=1240, val_size=1240, val_source="train"))
    assert len(parts["train"]) == 1240 and len(parts["val"]) == 1240
    _check_disjoint(parts)
