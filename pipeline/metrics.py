"""GLUE metrics, and the spread of predictions that tells a collapsed run from a weak one.

Correlations of constant predictions are undefined: Pearson and Spearman return NaN (recorded,
never dropped). Matthews follows scikit-learn and the official code (0 for constant predictions).
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .tasks import TaskSpec


def accuracy(pred, gold) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(gold)))


def f1(pred, gold, positive=1) -> float:
    pred, gold = np.asarray(pred), np.asarray(gold)
    tp = float(np.sum((pred == positive) & (gold == positive)))
    fp = float(np.sum((pred == positive) & (gold != positive)))
    fn = float(np.sum((pred != positive) & (gold == positive)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def mcc(pred, gold) -> float:
    """Matthews correlation for binary labels; 0 when undefined (as scikit-learn)."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    tp = float(np.sum((pred == 1) & (gold == 1)))
    tn = float(np.sum((pred != 1) & (gold != 1)))
    fp = float(np.sum((pred == 1) & (gold != 1)))
    fn = float(np.sum((pred != 1) & (gold == 1)))
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denom == 0 else (tp * tn - fp * fn) / denom


def _constant(x) -> bool:
    x = np.asarray(x, dtype=np.float64)
    return x.size < 2 or bool(np.all(x == x[0]))


def pearson(pred, gold) -> float:
    if _constant(pred) or _constant(gold):
        return float("nan")
    from scipy.stats import pearsonr

    return float(pearsonr(np.asarray(pred, np.float64), np.asarray(gold, np.float64))[0])


def spearman(pred, gold) -> float:
    if _constant(pred) or _constant(gold):
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(pred, np.float64), np.asarray(gold, np.float64))[0])


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": mcc, "pearson": pearson, "spearman": spearman}


def compute_metrics(spec: TaskSpec, pred, gold) -> dict:
    return {name: METRICS[name](pred, gold) for name in spec.metrics}


def prediction_spread(spec: TaskSpec, pred) -> dict:
    """std of regression outputs; share of the most frequent predicted class."""
    pred = np.asarray(pred)
    if spec.is_regression:
        return {"pred_std": float(np.std(pred.astype(np.float64))), "pred_major_share": None}
    counts = Counter(pred.tolist())
    return {"pred_std": None, "pred_major_share": max(counts.values()) / len(pred)}
