"""The calibration table: the debiased baseline's validation score per task and setting, against
the majority class of the validation half, and the setting chosen per task.

Reads validation metrics only. Whether a setting "learns" is judged on a score that did not pick the
checkpoint: the LAST checkpoint's validation score. The best of the run's evaluations is optimistic
(on 100 validation examples, the best of 12 evaluations of a model at chance can sit well above
chance), so it is shown for reference only. A setting "learns" when its mean last-checkpoint
validation score beats the majority-class score by at least `margin` and no seed is below the
majority class. The chosen setting keeps the paper's recipe as far as it can: the shortest training
length at which some learning rate learns (so "3 epochs" stays the baseline whenever it works, and
Longer remains a question for the study), and at that length the learning rate with the highest mean
last-checkpoint score. An undefined correlation (constant predictions) counts as no skill (0).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .config import expand_conditions, run_grid
from .select import no_skill_score


def calibration_table(cfg: dict, root: Path, margin: float) -> tuple[pd.DataFrame, dict]:
    expanded = expand_conditions(cfg["conditions"])
    rows = []
    for task, cond, seed in run_grid(cfg):
        path = root / "runs" / task / cond / f"seed{seed}" / "record.json"
        if not path.exists():  # an interrupted calibration: the table reports n per setting
            continue
        rec = json.loads(path.read_text())
        meta = json.loads((root / "splits" / task / "meta.json").read_text())
        sel = rec["selection_metric"]
        rows.append({"task": task, "condition": cond, "seed": seed, "metric": sel,
                     "lr": rec["settings"]["lr"], "epochs": rec["settings"]["epochs"],
                     "steps": rec["total_steps"], "val_best": no_skill_score(sel, rec["val_best"][sel]),
                     "val_last": no_skill_score(sel, (rec.get("val_last") or {}).get(sel)),
                     "majority_val": meta["majority_baseline"]["val"][sel],
                     "wall_s": rec["timing"]["wall_s"], "attn": rec["settings"]["attn_implementation"]})
    if not rows:
        from .errors import RecordError

        raise RecordError(f"{root / 'runs'}: no calibration run has finished (the table is built from their "
                          f"records): run `make calibration` first")
    runs = pd.DataFrame(rows)
    g = runs.groupby(["task", "condition"], sort=False)
    table = g.agg(metric=("metric", "first"), lr=("lr", "first"), epochs=("epochs", "first"),
                  steps=("steps", "first"), val_last_mean=("val_last", "mean"), val_last_std=("val_last", "std"),
                  val_last_min=("val_last", "min"), val_best_mean=("val_best", "mean"), n=("val_last", "size"),
                  majority_val=("majority_val", "first"), wall_s=("wall_s", "mean")).reset_index()
    table["margin"] = table["val_last_mean"] - table["majority_val"]
    table["learns"] = (table["margin"] >= margin) & (table["val_last_min"] > table["majority_val"])
    chosen = {}
    for task, t in table.groupby("task", sort=False):
        ok = t[t["learns"]]
        if len(ok):
            ok = ok[ok["steps"] == ok["steps"].min()]
            best = ok.loc[ok["val_last_mean"].idxmax()]
            over = {k: v for k, v in expanded[best["condition"]].items() if k not in ("family", "description")}
            chosen[task] = {"condition": best["condition"], "settings": over,
                            "val_last_mean": float(best["val_last_mean"]),
                            "majority_val": float(best["majority_val"])}
    table["chosen"] = [chosen.get(r.task, {}).get("condition") == r.condition for r in table.itertuples()]
    return table, chosen


def to_markdown(table: pd.DataFrame, margin: float) -> str:
    lines = [f"Debiased baseline on validation (selection seeds only). 'learns': the mean validation score "
             f"of the LAST checkpoint (not used to pick any checkpoint) beats the majority class of the "
             f"validation half by >= {margin:g} and no seed is below it; the best-checkpoint mean (the best "
             f"of the run's evaluations, optimistic) is shown for reference. Chosen: the shortest length at "
             f"which some learning rate learns, then the best learning rate at that length (last checkpoint).",
             "",
             "| task | metric | lr | epochs | steps | val last mean ± std (n) | val best mean | majority | learns "
             "| chosen | s/run |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.task} | {r.metric} | {r.lr:g} | {r.epochs} | {r.steps} | "
                     f"{r.val_last_mean:.3f} ± {r.val_last_std:.3f} ({r.n}) | {r.val_best_mean:.3f} | "
                     f"{r.majority_val:.3f} | {'yes' if r.learns else 'no'} | {'**chosen**' if r.chosen else ''} "
                     f"| {r.wall_s:.0f} |")
    return "\n".join(lines) + "\n"
