"""Selection on validation, as the paper does: each family of candidate settings (Re-init's L,
Longer's step count, a stabiliser's strength) is run on the selection seeds; per task the candidate
with the highest mean validation score is chosen, and only then is it run on the report seeds.

Only validation metrics are read here, never test metrics. Ties go to the candidate listed first in
the family (the order of the values in params.yaml), so a tie never depends on test data or chance.
"""
from __future__ import annotations

import math
from statistics import mean, stdev


def choose(candidates: list[dict]) -> dict:
    """candidates: [{"name", "overrides", "val": [scores]}] in family order. Returns the selection
    record: every candidate's mean/std/n on validation and the chosen name and overrides."""
    rows = []
    for c in candidates:
        vals = [v for v in c["val"] if v is not None and not (isinstance(v, float) and math.isnan(v))]
        rows.append({"name": c["name"], "overrides": c["overrides"], "n": len(vals),
                     "n_nan": len(c["val"]) - len(vals),
                     "val_mean": mean(vals) if vals else None,
                     "val_std": stdev(vals) if len(vals) > 1 else None})
    scored = [r for r in rows if r["val_mean"] is not None]
    if not scored:
        raise ValueError("no candidate has a finite validation score: nothing to select")
    best = scored[0]
    for r in scored[1:]:
        if r["val_mean"] > best["val_mean"]:  # strict: the first listed wins ties
            best = r
    return {"candidates": rows, "chosen": best["name"], "overrides": best["overrides"],
            "rule": "highest mean validation score over the selection seeds; ties: first listed"}
