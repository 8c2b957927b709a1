"""From run directories to tables: one row per run (runs.csv), learning curves and drift summarised
across seeds, and the DVC metrics file (numbers only, so `dvc metrics diff` shows real changes)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .io import read_record

SETTING_COLUMNS = ("lr", "bias_correction", "reinit_layers", "reinit_pooler", "max_steps", "epochs",
                   "mixout_p", "prior_wd", "weight_decay", "llrd_eta", "intermediate_task")


def run_dir(root, task: str, condition: str, seed: int) -> Path:
    return Path(root) / "runs" / task / condition / f"seed{seed}"


def _num(x):
    return float("nan") if x is None else x


def run_row(rec: dict) -> dict:
    m = rec["metric"]
    s = rec["settings"]
    row = {"task": rec["task"], "condition": rec["condition"], "seed": rec["seed"],
           "init_seed": rec["init_seed"], "data_seed": rec["data_seed"], "metric": m,
           "test_best": _num(rec["test_best"][m]), "test_last": _num(rec["test_last"][m]),
           "val_best": _num(rec["val_best"][rec["selection_metric"]]),
           "val_last": _num(rec["val_last"].get(rec["selection_metric"])),
           "majority_test": rec["majority_test"][m], "label_std_test": rec["label_std_test"],
           "pred_std_best": _num(rec["spread_best"]["pred_std"]),
           "pred_major_share_best": _num(rec["spread_best"]["pred_major_share"]),
           "pred_std_last": _num(rec["spread_last"]["pred_std"]),
           "pred_major_share_last": _num(rec["spread_last"]["pred_major_share"]),
           "total_steps": rec["total_steps"], "best_step": rec["best_step"],
           # the warm-up the engine used (the pull of a decay setting depends on it; older records: absent)
           "warmup_steps": _num(rec.get("warmup_steps")),
           # the engine stopped the run at a non-finite training loss (records before it: absent = false)
           "diverged": bool(rec.get("diverged", False)),
           "n_train": rec["n_train"], "n_val": rec["n_val"], "n_test": rec["n_test"]}
    for split in ("val_best", "test_best", "test_last"):
        for k, v in rec[split].items():
            row[f"{split}_{k}"] = _num(v)
    for k in SETTING_COLUMNS:
        row[k] = s.get(k)
    return row


def runs_table(records: list[dict], cfg: dict | None = None) -> pd.DataFrame:
    """One row per run; with the study's configuration, also each run's GLUE task and training-subset
    seed (datasets: variants may draw other subsets of one task: a factor of the spread, Fig. 10b).
    Results only: the same records give the same bytes whichever machine ran them, how fast
    (timing_table) or when, so a rebuilt runs.csv changes only when a result did."""
    rows = [run_row(r) for r in records]
    if cfg is not None:
        from .config import split_settings

        for row, rec in zip(rows, records):
            row["glue_task"] = rec["glue_task"]
            row["subset_seed"] = split_settings(cfg, rec["task"])["subset_seed"]
    df = pd.DataFrame(rows)
    return df.sort_values(["task", "condition", "seed"], kind="stable").reset_index(drop=True)


TIMING_COLUMNS = ("wall_s", "train_examples_per_s")


def timing_table(records: list[dict]) -> pd.DataFrame:
    """One row per run: task, condition, seed and its timings (wall_s, train_examples_per_s): what
    changes on every rerun, kept out of runs.csv (summary/timing.csv)."""
    rows = [{"task": r["task"], "condition": r["condition"], "seed": r["seed"],
             **{k: r["timing"].get(k) for k in TIMING_COLUMNS}} for r in records]
    df = pd.DataFrame(rows, columns=["task", "condition", "seed", *TIMING_COLUMNS])
    return df.sort_values(["task", "condition", "seed"], kind="stable").reset_index(drop=True)


def curves_table(run_dirs: list[tuple[str, str, int, Path]]) -> pd.DataFrame:
    """Training loss and validation metric per step: mean, min and max across seeds."""
    frames = []
    for task, cond, seed, d in run_dirs:
        c = pd.read_csv(d / "curve.csv")
        val_cols = [k for k in c.columns if k.startswith("val_")]
        c = c.assign(task=task, condition=cond, seed=seed)
        frames.append(c[["task", "condition", "seed", "step", "lr", "train_loss", "grad_norm"] + val_cols])
    if not frames:
        return pd.DataFrame()
    allc = pd.concat(frames, ignore_index=True)
    value_cols = [k for k in allc.columns if k in ("train_loss", "grad_norm") or k.startswith("val_")]
    g = allc.groupby(["task", "condition", "step"], sort=True)[value_cols]
    out = g.mean().add_suffix("_mean").join(g.min().add_suffix("_min")).join(g.max().add_suffix("_max"))
    out["n_runs"] = allc.groupby(["task", "condition", "step"]).size()
    return out.reset_index()


def drift_table(run_dirs) -> pd.DataFrame:
    """Per block drift at every logged step: mean across seeds (and min/max)."""
    frames = []
    for task, cond, seed, d in run_dirs:
        df = pd.read_csv(d / "drift.csv")
        frames.append(df[df["level"] == "block"].assign(task=task, condition=cond, seed=seed))
    if not frames:
        return pd.DataFrame()
    allr = pd.concat(frames, ignore_index=True)
    g = allr.groupby(["task", "condition", "name", "step"], sort=False)[["l2", "rel"]]
    out = g.mean().add_suffix("_mean").join(g.min().add_suffix("_min")).join(g.max().add_suffix("_max"))
    return out.reset_index()


def _finite(x) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), 6)


def metrics_summary(runs: pd.DataFrame) -> dict:
    """{task: {condition: {test_best_mean, test_best_std, test_last_mean, n_runs, n_nan}}}."""
    out: dict = {}
    for (task, cond), g in runs.groupby(["task", "condition"], sort=True):
        finite = g["test_best"].dropna()
        out.setdefault(task, {})[cond] = {
            "test_best_mean": _finite(finite.mean()) if len(finite) else None,
            "test_best_std": _finite(finite.std(ddof=1)) if len(finite) > 1 else None,
            "test_last_mean": _finite(g["test_last"].dropna().mean()) if g["test_last"].notna().any() else None,
            "val_best_mean": _finite(g["val_best"].dropna().mean()) if g["val_best"].notna().any() else None,
            "n_runs": int(len(g)), "n_nan": int(g["test_best"].isna().sum())}
    return out


def load_records(root, grid) -> tuple[list[dict], list]:
    records, dirs = [], []
    for task, cond, seed in grid:
        d = run_dir(root, task, cond, seed)
        records.append(read_record(d / "record.json"))
        dirs.append((task, cond, seed, d))
    return records, dirs
