"""Degenerate runs: which runs failed, why, and how a failed run is scored so that it stays in every test.

A run is degenerate (stats.is_degenerate on the best-checkpoint columns test_best, majority_test,
pred_major_share_best, pred_std_best, label_std_test, with analysis.degenerate's thresholds) when it is
no better than the majority-class predictor of the test half, below a configured per-dataset rule (the
paper's RTE rule "test accuracy below 55%" applies to the dataset of exactly that name), or collapsed.
A run the engine marked diverged (runs.csv `diverged`: non-finite training loss) is degenerate with
reason "diverged". All are counted, never dropped.

Scoring: a correlation (Spearman, Pearson; Matthews is already 0) of constant predictions is undefined,
and a NaN would drop the run from every mean and test, so the worst runs of a comparison about
stability would vanish from it. Such a value is scored as no skill, 0, and the run is recorded as
collapsed (`*_undefined` columns keep the fact that the score was imputed). The same rule scores the
validation metric, as selection does (select.no_skill_score).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import stats
from .plan import seed_union
from .select import no_skill_score

NAN = float("nan")
SCORED_COLUMNS = ("test_best", "test_last", "val_best", "val_last")  # the metric columns that enter tests


def degenerate_rule(cfg: dict, task: str) -> dict | None:
    return cfg["analysis"]["degenerate"]["rules"].get(task)  # a rule per dataset, where one is configured


def is_diverged(value) -> bool:
    """runs.csv's `diverged` column: the engine stopped the run when its training loss became
    non-finite. Runs of older records have no such column (or an empty cell): not diverged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _constant(share, pred_std) -> bool:
    return (not stats._isnan(pred_std) and float(pred_std) == 0) or (
        not stats._isnan(share) and float(share) >= 1.0
    )


def score_undefined(runs: pd.DataFrame) -> pd.DataFrame:
    """runs.csv with every undefined correlation scored as no skill (0), and `<column>_undefined` flags
    saying which values were imputed. Accuracy and F1 are never undefined; a NaN there stays NaN."""
    out = runs.copy()
    for col in SCORED_COLUMNS:
        if col not in out.columns:
            continue
        values = out[col].astype(float)
        scored = [no_skill_score(m, v) for m, v in zip(out["metric"], values)]
        out[f"{col}_undefined"] = pd.Series(
            [bool(np.isnan(v) and not np.isnan(s)) for v, s in zip(values, scored)],
            index=out.index,
            dtype=bool,
        )
        out[col] = scored
    return out


def _deg(
    cfg, task, metric, value, undefined, majority, share, pred_std, label_std, diverged=False
) -> tuple[bool, str]:
    d = cfg["analysis"]["degenerate"]
    kw = dict(
        collapse_share=d["collapse_share"],
        collapse_std_ratio=d["collapse_std_ratio"],
        rule=degenerate_rule(cfg, task),
    )
    if diverged:  # a result of the study (e.g. BERTAdam blowing up), never dropped: counted as degenerate
        return True, "diverged"
    if undefined:  # constant predictions: the correlation was undefined and is scored 0
        return True, "collapsed"
    if value is None or not np.isfinite(value):
        return True, "nan"
    if stats.is_degenerate(metric, value, majority, NAN, NAN, NAN, **kw):
        rule = kw["rule"]
        return True, (
            f"below {rule['below']}"
            if rule
            else ("<= 0" if metric in stats.CORRELATION_METRICS else "<= majority")
        )
    full = stats.is_degenerate(metric, value, majority, share, pred_std, label_std, **kw)
    return (True, "collapsed") if full else (False, "")


def flag_runs(runs: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """runs.csv, scored (score_undefined), plus degenerate flags (best checkpoint, and last checkpoint
    for reference) and the seed role (report / selection / other). A diverged run is degenerate at both
    checkpoints (reason "diverged"); `diverged` is False for runs.csv files written before the engine
    recorded it."""
    out = score_undefined(runs)
    out["diverged"] = pd.Series(
        [is_diverged(v) for v in (out["diverged"] if "diverged" in out.columns else [False] * len(out))],
        index=out.index,
        dtype=bool,
    )
    a = cfg["analysis"]
    rep = seed_union(cfg, a["report_seeds"])
    sel = seed_union(cfg, a["selection_seeds"]) or set()
    flags, reasons, flags_last = [], [], []
    for _, r in out.iterrows():
        share_b, std_b = r.get("pred_major_share_best", NAN), r.get("pred_std_best", NAN)
        share_l, std_l = r.get("pred_major_share_last", NAN), r.get("pred_std_last", NAN)
        f, why = _deg(
            cfg,
            r["task"],
            r["metric"],
            r["test_best"],
            r["test_best_undefined"],
            r["majority_test"],
            share_b,
            std_b,
            r.get("label_std_test", NAN),
            diverged=r["diverged"],
        )
        fl, _ = _deg(
            cfg,
            r["task"],
            r["metric"],
            r["test_last"],
            r["test_last_undefined"],
            r["majority_test"],
            share_l,
            std_l,
            r.get("label_std_test", NAN),
            diverged=r["diverged"],
        )
        flags.append(f)
        reasons.append(why)
        flags_last.append(fl)
    out["degenerate"] = pd.Series(flags, index=out.index, dtype=bool)
    out["degenerate_reason"] = reasons
    out["degenerate_last"] = pd.Series(flags_last, index=out.index, dtype=bool)
    out["degenerate_rule"] = [
        (
            f"below {degenerate_rule(cfg, t)['below']}"
            if degenerate_rule(cfg, t)
            else "majority baseline / correlation <= 0, or collapsed"
        )
        for t in out["task"]
    ]
    out["seed_role"] = [
        "report" if (rep is None or int(s) in rep) else ("selection" if int(s) in sel else "other")
        for s in out["seed"]
    ]
    return out


def summaries(flagged: pd.DataFrame) -> pd.DataFrame:
    """Per task and condition: moments of the scored metrics, and the degenerate counts by reason."""
    rows = []
    for (task, cond), g in flagged.groupby(["task", "condition"], sort=True):
        row = {
            "task": task,
            "condition": cond,
            "metric": g["metric"].iloc[0],
            "seed_role": ",".join(sorted(set(g["seed_role"]))),
            "seeds": " ".join(str(int(s)) for s in sorted(g["seed"])),
        }
        for col in ("test_best", "test_last", "val_best"):
            for k, v in stats.describe(g[col].to_numpy(dtype=float)).items():
                row[f"{col}_{k}"] = v
        row["n_undefined_scored_0"] = int(g["test_best_undefined"].sum()) if "test_best_undefined" in g else 0
        row["n_degenerate"] = int(g["degenerate"].sum())
        row["n_degenerate_last"] = int(g["degenerate_last"].sum())
        row["n_collapsed"] = int((g["degenerate_reason"] == "collapsed").sum())
        row["n_diverged"] = int((g["degenerate_reason"] == "diverged").sum())
        row["share_degenerate"] = float(g["degenerate"].mean()) if len(g) else NAN
        row["total_steps"] = float(g["total_steps"].median())
        rows.append(row)
    return pd.DataFrame(rows)
