"""Metrics equal scikit-learn / scipy; undefined correlations are NaN; prediction spread."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from pipeline.metrics import accuracy, compute_metrics, f1, mcc, pearson, prediction_spread, spearman
from pipeline.tasks import task_spec

SEEDS = range(20)


def _binary(rng, n, p_pos=0.5):
    return (rng.random(n) < p_pos).astype(int)


@pytest.mark.parametrize("seed", SEEDS)
def test_classification_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    gold = _binary(rng, n, rng.uniform(0.1, 0.9))
    pred = np.where(rng.random(n) < rng.uniform(0.3, 0.9), gold, 1 - gold)
    assert accuracy(pred, gold) == pytest.approx(accuracy_score(gold, pred), abs=1e-12)
    assert f1(pred, gold) == pytest.approx(f1_score(gold, pred, zero_division=0), abs=1e-12)
    assert mcc(pred, gold) == pytest.approx(matthews_corrcoef(gold, pred), abs=1e-12)


def test_accuracy_multiclass():
    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    assert accuracy(pred, gold) == pytest.approx(accuracy_score(gold, pred), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_correlations_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 300))
    gold = np.round(rng.uniform(0, 5, n) * 5) / 5  # STS-like scores with ties
    pred = gold + rng.normal(0, rng.uniform(0.1, 3), n)
    if seed % 3 == 0:
        pred = np.round(pred)  # ties in the predictions too
    assert pearson(pred, gold) == pytest.approx(pearsonr(pred, gold)[0], abs=1e-12)
    assert spearman(pred, gold) == pytest.approx(spearmanr(pred, gold)[0], abs=1e-12)


def test_correlations_accept_float32_lists():
    gold = [0.0, 1.5, 2.0, 4.8, 3.3]
    pred = np.array([0.1, 1.0, 2.5, 4.0, 3.0], dtype=np.float32)
    assert pearson(pred, gold) == pytest.approx(pearsonr(pred.astype(np.float64), gold)[0], abs=1e-7)
    assert spearman(list(pred), gold) == pytest.approx(1.0)


@pytest.mark.parametrize("const", [0.0, 2.5])
def test_constant_predictions(const):
    rng = np.random.default_rng(1)
    gold = rng.uniform(0, 5, 50)
    pred = np.full(50, const)
    assert math.isnan(pearson(pred, gold))
    assert math.isnan(spearman(pred, gold))
    assert math.isnan(pearson(gold, np.full(50, 1.0)))  # constant gold too
    assert math.isnan(spearman([1.0], [2.0]))  # a single example
    labels = _binary(rng, 50)
    for c in (0, 1):
        constant = np.full(50, c)
        assert mcc(constant, labels) == matthews_corrcoef(labels, constant) == 0.0
        assert f1(constant, labels) == pytest.approx(f1_score(labels, constant, zero_division=0))
        assert accuracy(constant, labels) == pytest.approx(np.mean(labels == c))


def test_f1_no_positive_is_zero():
    gold = np.array([0, 0, 1, 1])
    assert f1(np.zeros(4, int), gold) == 0.0
    assert f1(np.array([1, 0, 1, 1]), gold) == pytest.approx(0.8)


def test_compute_metrics_per_task():
    rng = np.random.default_rng(2)
    gold, pred = _binary(rng, 40), _binary(rng, 40)
    assert set(compute_metrics(task_spec("mrpc"), pred, gold)) == {"accuracy", "f1"}
    assert set(compute_metrics(task_spec("cola"), pred, gold)) == {"mcc"}
    assert set(compute_metrics(task_spec("rte"), pred, gold)) == {"accuracy"}
    m = compute_metrics(task_spec("sts-b"), np.full(40, 3.0), rng.uniform(0, 5, 40))
    assert set(m) == {"spearman", "pearson"} and all(math.isnan(v) for v in m.values())
    assert task_spec("mrpc").selection_metric == "accuracy" and task_spec("mrpc").report_metric == "f1"


def test_prediction_spread():
    spec_c, spec_r = task_spec("rte"), task_spec("sts-b")
    assert prediction_spread(spec_c, np.array([1, 1, 1, 0])) == {"pred_std": None, "pred_major_share": 0.75}
    assert prediction_spread(spec_c, np.zeros(9, int))["pred_major_share"] == 1.0
    pred = np.random.default_rng(0).normal(2, 0.7, 100).astype(np.float32)
    out = prediction_spread(spec_r, pred)
    assert out["pred_major_share"] is None
    assert out["pred_std"] == pytest.approx(np.std(pred.astype(np.float64)), rel=1e-9)
    assert prediction_spread(spec_r, np.full(10, 1.25))["pred_std"] == 0.0
