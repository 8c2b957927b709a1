"""The paper's reported numbers (pipeline/reported.yaml) and where a study departs from its protocol.

A table sets the paper's numbers beside this study's only where the two measure the same thing; every
table says, per task, whether the study follows the paper's protocol (then the paper's numbers are
directly comparable and a claim can be tested against the paper's own effect) or how it departs.
The paper's protocols, as the paper describes them (paper-details.md, Sec. 2):
- the four small tasks (RTE, MRPC, STS-B, CoLA): the full training set, or a 1,000-example subset
  (the 1k rows of Table 1), with the dev set halved into validation and test;
- the four large tasks (SST-2, QNLI, QQP, MNLI) as 1k sets: 1,000 training examples, 1,000 further
  training examples held out for validation (`val_source: train`, `val_size: 1000`) and the whole dev
  set as test;
- full MNLI, the paper's own Appendix D / Table 5 experiment (bias correction on large data).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .config import glue_task_of, resolve_settings, run_grid, split_settings
from .plan import roles
from .tasks import TASKS, TRAIN_ROWS

REPORTED_PATH = Path(__file__).with_name("reported.yaml")
PAPER_1K = 1000  # the paper's few-sample training (and, for the large tasks, validation) size


def load_reported(path=None) -> dict:
    return yaml.safe_load(Path(path or REPORTED_PATH).read_text())


def paper_key(cfg: dict, task: str) -> tuple[str, str]:
    """('full' | 'train_1k', GLUE task) of the paper's rows a dataset stands beside."""
    glue = glue_task_of(cfg, task)
    n = split_settings(cfg, task)["train_size"]
    return ("train_1k" if (task != glue or TASKS[glue].large) and n == PAPER_1K else "full"), glue


def paper_cell(reported: dict, table: str, cfg: dict, task: str, col: str):
    """(mean, std) x100 the paper reports for this table, task and column, or None."""
    kind, glue = paper_key(cfg, task)
    t = reported.get(table) or {}
    if table == "table1":
        t = t.get(kind) or {}
    elif kind != "full":
        return None
    cell = (t.get(glue) or {}).get(col)
    return tuple(cell) if isinstance(cell, (list, tuple)) and len(cell) == 2 else None


def paper_effect(reported: dict, cfg: dict, task: str, base: str, treat: str) -> float | None:
    """The paper's treatment - baseline difference (0-1 scale) where one of its tables holds both conditions."""
    for tname in ("table1", "table2"):
        spec = cfg["analysis"]["tables"].get(tname)  # tables are named by the study: this one may be absent
        cols = spec["columns"] if spec else {}
        inv: dict = {}
        for col, cond in cols.items():
            inv.setdefault(cond, col)
        if base in inv and treat in inv:
            pa, pb = (
                paper_cell(reported, tname, cfg, task, inv[base]),
                paper_cell(reported, tname, cfg, task, inv[treat]),
            )
            if pa and pb:
                return (pb[0] - pa[0]) / 100
    return None


def paper_degenerate_share(reported: dict, cfg: dict, task: str) -> float | None:
    """The paper's share of degenerate BERTAdam runs (against none with debiasing) for this dataset:
    printed for full RTE only (48% below 55% accuracy)."""
    kind, glue = paper_key(cfg, task)
    if glue == "rte" and kind == "full":
        return (reported.get("bias_correction") or {}).get("rte_bertadam_degenerate_share")
    return None


def _split_deviations(cfg: dict, task: str) -> list[str]:
    sp = split_settings(cfg, task)
    kind, glue = paper_key(cfg, task)
    large = TASKS[glue].large
    out = []
    if large and not (glue == "mnli" and sp["train_size"] is None):  # full MNLI is Table 5's experiment
        if sp["train_size"] != PAPER_1K:
            out.append(
                f"training set {sp['train_size'] or 'full'} examples (the paper uses {glue} only as a "
                f"1,000-example subset, and full MNLI for Table 5)"
            )
    elif not large and kind == "full" and sp["train_size"] is not None:
        out.append(
            f"training set {sp['train_size']} examples (paper: the full {TRAIN_ROWS[glue]:,}, or "
            f"1,000 for its 1k rows)"
        )
    if sp["val_source"] == "train":
        if not (large and kind == "train_1k"):
            out.append("validation held out from the training set (paper: half of the dev set)")
        elif sp["val_size"] != PAPER_1K:
            out.append(f"validation {sp['val_size']} held-out training examples (paper: 1,000)")
    else:
        if large and kind == "train_1k":
            out.append(
                "validation and test from halves of the dev set (the paper's 1k protocol: 1,000 "
                "held-out training examples for validation, the whole dev set for test)"
            )
        if sp["val_size"] is not None or sp["test_size"] is not None:
            out.append(
                f"validation/test halves capped at {sp['val_size']}/{sp['test_size']} examples "
                f"(paper: whole halves)"
            )
    return out


def protocol_deviations(cfg: dict, task: str, reported: dict, runs=None) -> list[str]:
    """Where this study's runs of `task` depart from the paper's recipe (empty: the paper's protocol)."""
    proto = reported.get("protocol") or {}
    r = roles(cfg)
    grid_conds = [c for t, c, _ in run_grid(cfg) if t == task]
    cond = r["standard"] if r["standard"] in grid_conds else (grid_conds[0] if grid_conds else None)
    if cond is None:
        return ["not run in this study"]
    s = resolve_settings(cfg, task, cond, 0)
    out = []
    if s["model"] != proto.get("model"):
        out.append(f"model {s['model']} (paper: {proto.get('model')})")
    out += _split_deviations(cfg, task)
    for key in ("lr", "batch_size", "max_seq_length"):
        if proto.get(key) is not None and s[key] != proto[key]:
            out.append(f"{key} {s[key]} (paper: {proto[key]})")
    if s["max_steps"] is None and s["epochs"] != proto.get("epochs"):
        out.append(f"{s['epochs']} epochs for Standard (paper: {proto.get('epochs')})")
    if runs is not None and len(runs) and "total_steps" in runs.columns:
        kind, glue = paper_key(cfg, task)
        steps = runs[(runs["task"] == task) & (runs["condition"] == cond)]["total_steps"]
        paper_steps = (reported.get("splits") or {}).get("steps_3_epochs_batch32") or {}
        ps = paper_steps.get("train_1k") if kind == "train_1k" else paper_steps.get(glue)
        if len(steps) and ps is not None and int(steps.median()) != int(ps):
            out.append(f"{int(steps.median())} optimisation steps for Standard (paper: {ps})")
    return out


def follows_protocol(cfg: dict, task: str, reported: dict, runs=None) -> bool:
    return not protocol_deviations(cfg, task, reported, runs)


def protocol_notes(cfg: dict, tasks, reported: dict, runs=None) -> list[str]:
    """One line per task: the paper's protocol, or how this study departs from it."""
    notes = []
    for t in tasks:
        dev = protocol_deviations(cfg, t, reported, runs)
        notes.append(
            f"{t}: follows the paper's protocol; the paper's numbers are directly comparable."
            if not dev
            else f"{t}: NOT the paper's protocol, so the paper's numbers are for reference only: "
            + "; ".join(dev)
            + "."
        )
    return notes
