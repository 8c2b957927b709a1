"""Selection on validation, as the paper does: each family of candidate settings (Re-init's L,
Longer's step count, a stabiliser's strength) is run on the selection seeds; per task the candidate
with the highest mean validation score is chosen, and only then is it run on the report seeds.

Only validation metrics are read here, never test metrics. Ties go to the candidate listed first in
the family (the order of the values in params.yaml), so a tie never depends on test data or chance.

A validation score that is undefined (a correlation of constant predictions: the run collapsed) is
scored as no skill, 0, never dropped: dropping it would raise the mean of exactly the candidates whose
runs collapse. This module imports nothing from the analysis, so editing the analysis never reruns a
selection; pipeline/degenerate.py applies the same `no_skill_score` to the runs table.
"""
from __future__ import annotations

import math
from statistics import mean, stdev

# Metrics that are undefined for constant predictions, and the score of a model with no skill.
NO_SKILL = {"spearman": 0.0, "pearson": 0.0, "mcc": 0.0}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def no_skill_score(metric: str, value):
    """`value`, or the no-skill score of `metric` where the value is undefined (None/NaN) and the metric
    can be undefined (a correlation); other missing values stay NaN."""
    if not _missing(value):
        return float(value)
    return NO_SKILL.get(str(metric).lower(), float("nan"))


def choose(candidates: list[dict]) -> dict:
    """candidates: [{"name", "overrides", "val": [scores], "metric"?}] in family order. An undefined score
    of a correlation metric ("metric" given) counts as no skill (n_undefined); any other NaN makes the
    candidate's mean NaN, so it is never chosen over a candidate with a finite mean. Returns the
    selection record: every candidate's mean/std/n on validation and the chosen name and overrides."""
    rows = []
    for c in candidates:
        metric = c.get("metric", "")
        vals = [no_skill_score(metric, v) for v in c["val"]]
        undefined = sum(_missing(v) and not math.isnan(s) for v, s in zip(c["val"], vals))
        n_nan = sum(math.isnan(v) for v in vals)
        rows.append({"name": c["name"], "overrides": c["overrides"], "n": len(vals), "n_nan": n_nan,
                     "n_undefined": undefined,
                     "val_mean": mean(vals) if vals and not n_nan else None,
                     "val_std": stdev(vals) if len(vals) > 1 and not n_nan else None})
    scored = [r for r in rows if r["val_mean"] is not None]
    if not scored:
        raise ValueError("no candidate has a finite mean validation score: nothing to select")
    best = scored[0]
    for r in scored[1:]:
        if r["val_mean"] > best["val_mean"]:  # strict: the first listed wins ties
            best = r
    return {"candidates": rows, "chosen": best["name"], "overrides": best["overrides"],
            "rule": "highest mean validation score over the selection seeds (an undefined correlation "
                    "counts as 0, no skill); ties: first listed"}
