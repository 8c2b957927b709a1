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
collapsed (`*_undefined` columns keep the fact that the score was imputed, `*_undefined_cause` why:
"constant predictions", or "diverged" for a run the engine marked diverged, whose predictions were
non-finite rather than constant; such a run is degenerate for the reason "diverged"). The test columns
hold the report metric, the validation columns the selection metric (runs.csv `selection_metric` where
recorded, else the configured one, config.task_metrics), and each is scored by its own metric, as
selection does (select.no_skill_score).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import stats
from .config import glue_task_of, task_metrics
from .plan import seed_union
from .select import no_skill_score

NAN = float("nan")
SCORED_COLUMNS = ("test_best", "test_last", "val_best", "val_last")  # the metric columns that enter tests
VALIDATION_COLUMNS = ("val_best", "val_last")  # these hold the selection metric, the others the report metric


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


def selection_metrics(runs: pd.DataFrame, cfg: dict) -> list[str]:
    """Each run's selection metric (the metric of its val_* columns): runs.csv's `selection_metric` where
    recorded, else the study's configured one for the run's GLUE task."""
    recorded = runs["selection_metric"] if "selection_metric" in runs.columns else [None] * len(runs)
    out = []
    for task, rec in zip(runs["task"], recorded):
        if isinstance(rec, str) and rec:
            out.append(rec)
        else:
            out.append(task_metrics(cfg, glue_task_of(cfg, task))[0])
    return out


def score_undefined(runs: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """runs.csv with every undefined correlation scored as no skill (0), and `<column>_undefined` flags
    saying which values were imputed, `<column>_undefined_cause` why ("constant predictions", or
    "diverged" for a run whose record says it diverged). Test columns are scored by the report metric
    (`metric`), validation columns by the selection metric. Accuracy and F1 are never undefined; a NaN
    there stays NaN."""
    out = runs.copy()
    diverged = [is_diverged(v) for v in (out["diverged"] if "diverged" in out.columns else [False] * len(out))]
    metric_of = {"report": list(out["metric"]), "selection": selection_metrics(out, cfg)}
    for col in SCORED_COLUMNS:
        if col not in out.columns:
            continue
        metrics = metric_of["selection" if col in VALIDATION_COLUMNS else "report"]
        values = out[col].astype(float)
        scored = [no_skill_score(m, v) for m, v in zip(metrics, values)]
        imputed = [bool(np.isnan(v) and not np.isnan(s)) for v, s in zip(values, scored)]
        out[f"{col}_undefined"] = pd.Series(imputed, index=out.index, dtype=bool)
        out[f"{col}_undefined_cause"] = [
            ("diverged" if d else "constant predictions") if i else "" for i, d in zip(imputed, diverged)
        ]
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
    out = score_undefined(runs, cfg)
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
        row["n_undefined_scored_0_diverged"] = (
            int((g["test_best_undefined_cause"] == "diverged").sum()) if "test_best_undefined_cause" in g else 0
        )
        row["n_degenerate"] = int(g["degenerate"].sum())
        row["n_degenerate_last"] = int(g["degenerate_last"].sum())
        row["n_collapsed"] = int((g["degenerate_reason"] == "collapsed").sum())
        row["n_diverged"] = int((g["degenerate_reason"] == "diverged").sum())
        row["share_degenerate"] = float(g["degenerate"].mean()) if len(g) else NAN
        row["total_steps"] = float(g["total_steps"].median())
        rows.append(row)
    return pd.DataFrame(rows)
