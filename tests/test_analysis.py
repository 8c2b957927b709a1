"""The analysis stage on constructed studies where the answer is known: degenerate counting (NaN and
collapsed runs), Table 1 marks, claim verdicts, the tables written, and the report and paper map.

`make_study` builds a complete study folder (runs.csv, curves, drift, per-run update logs, splits
metadata, selection files, study.json) from a small synthetic grid, so nothing here needs torch or a
finished fine-tuning study. The last tests also run on results/smoke when it exists.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "results" / "smoke"

# known effects (0-1 scale) of the synthetic study, on top of a per-seed offset shared by all conditions
BASE = {"rte": 0.70, "sts-b": 0.85}
SHIFT = {
    "debiased": 0.0,
    "reinit": 0.04,
    "longer": 0.02,
    "reinit_longer": 0.05,
    "bertadam": -0.04,
    "mixout": 0.0,
    "prior_wd": -0.001,
    "wd": 0.0,
    "llrd": 0.001,
    "intermediate": 0.03,
    "reinit_sweep-L1": 0.01,
    "reinit_sweep-L2": 0.03,
    "reinit_sweep-L3": 0.02,
}


def synthetic_config(**over) -> dict:
    from pipeline.config import deep_merge, validate

    cfg = deep_merge(
        yaml.safe_load((REPO / "params.yaml").read_text()),
        yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text()),
    )
    cfg = deep_merge(
        cfg,
        {
            "study": {"name": "synthetic"},
            "seeds": {
                "optimiser": list(range(8)),
                "main": list(range(8)),
                "longer": list(range(6)),
                "stabiliser": list(range(4)),
                "selection": [100, 101],
            },
            # the collapse rule is exercised with a non-zero spread ratio (the default study uses 0)
            "analysis": {"n_boot": 400, "expected_draws": 50, "degenerate": {"collapse_std_ratio": 0.05}},
        },
    )
    cfg = deep_merge(cfg, over)
    errors = validate(cfg)
    assert not errors, errors
    return cfg


def _value(task, cond, seed, rng):
    """test_best of one synthetic run, with its spread columns (pred_major_share, pred_std)."""
    offset = 0.004 * ((seed * 7) % 5 - 2)  # shared by every condition of this seed: a paired design
    v = BASE[task] + SHIFT.get(cond, 0.0) + offset + rng.normal(0, 0.002)
    share, pstd = (0.6, np.nan) if task == "rte" else (np.nan, 1.2)
    if cond == "bertadam" and task == "rte" and seed < 4:  # 4 of 8 below the 55% rule
        v, share = 0.50, 1.0
    if cond == "bertadam" and task == "sts-b" and seed == 0:  # a NaN correlation (constant predictions)
        v, pstd = np.nan, 0.0
    if cond == "bertadam" and task == "sts-b" and seed == 1:  # collapsed, yet a positive Spearman
        v, pstd = 0.08, 0.01
    return v, share, pstd


def make_study(root: Path, cfg: dict | None = None) -> dict:
    """A complete synthetic study folder under root; returns the config (with _config_hash)."""
    from pipeline.aggregate import curves_table, drift_table
    from pipeline.config import config_hash, resolve_settings, run_grid, sweep_families
    from pipeline.io import atomic_write_csv, atomic_write_json
    from pipeline.select import choose
    from pipeline.stats import bias_ratio

    cfg = cfg or synthetic_config()
    root = Path(root)
    rng = np.random.default_rng(0)
    rows, dirs = [], []
    blocks = ["embeddings"] + [f"block{i}" for i in range(6)] + ["pooler", "head"]
    for task, cond, seed in run_grid(cfg):
        s = resolve_settings(cfg, task, cond, seed)
        if s.get(
            "select"
        ):  # the engine records the chosen candidate's settings: here L = 2 (best on validation)
            s.update(reinit_layers=2, reinit_pooler=True)
        metric = "accuracy" if task == "rte" else "spearman"
        steps = 8 if s["epochs"] == 2 else 4
        v, share, pstd = _value(task, cond, seed, rng)
        val = (v if np.isfinite(v) else 0.0) + 0.01 + rng.normal(0, 0.003)
        rows.append(
            {
                "task": task,
                "condition": cond,
                "seed": seed,
                "init_seed": seed,
                "data_seed": seed,
                "metric": metric,
                "test_best": v,
                "test_last": v - 0.005 if np.isfinite(v) else np.nan,
                "val_best": val,
                "val_last": val - 0.01,
                "majority_test": 0.52 if task == "rte" else 0.0,
                "label_std_test": 0.5 if task == "rte" else 1.4,
                "pred_std_best": pstd,
                "pred_major_share_best": share,
                "pred_std_last": pstd,
                "pred_major_share_last": share,
                "total_steps": steps,
                "best_step": steps,
                "n_train": 32,
                "n_val": 24,
                "n_test": 48,
                **{
                    k: s.get(k)
                    for k in (
                        "lr",
                        "bias_correction",
                        "reinit_layers",
                        "reinit_pooler",
                        "max_steps",
                        "epochs",
                        "mixout_p",
                        "prior_wd",
                        "weight_decay",
                        "llrd_eta",
                        "intermediate_task",
                    )
                },
            }
        )
        d = root / "runs" / task / cond / f"seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        st = np.arange(1, steps + 1)
        loss = 0.7 * np.exp(-st / (6 if cond == "bertadam" else 3)) + 0.01 * seed
        curve = pd.DataFrame({"step": st, "lr": 1e-4, "train_loss": loss, "grad_norm": 1.0})
        curve[f"val_{metric}"] = [val - 0.02 * (steps - i) / steps if i % 2 == 0 else np.nan for i in st]
        curve.to_csv(
            d / "curve.csv", index=False
        )  # plain writes: fsync per file would dominate the test time
        drift = [
            {
                "step": k,
                "level": "block",
                "name": b,
                "l2": 0.01 * k * (j + 1) * (1 + 0.1 * seed) / (1 + s["reinit_layers"]),
                "rel": 0.001 * k,
            }
            for k in (0, steps // 2, steps)
            for j, b in enumerate(blocks)
        ]
        pd.DataFrame(drift).to_csv(d / "drift.csv", index=False)
        upd = [
            {
                "step": k,
                "name": b,
                "update_l2": (0.1 + 0.01 * j + 0.001 * seed)
                * (float(bias_ratio(k)) if not s["bias_correction"] else 1.0),
            }
            for k in range(1, 5)
            for j, b in enumerate(blocks)
        ]
        pd.DataFrame(upd).to_csv(d / "updates.csv", index=False)
        dirs.append((task, cond, seed, d))
    runs = pd.DataFrame(rows)
    atomic_write_csv(root / "summary" / "runs.csv", runs)
    atomic_write_csv(root / "summary" / "curves.csv", curves_table(dirs))
    atomic_write_csv(root / "summary" / "drift.csv", drift_table(dirs))
    for task in cfg["study"]["tasks"]:
        metric = "accuracy" if task == "rte" else "spearman"
        maj = {
            "test": {metric: 0.52 if task == "rte" else 0.0},
            "val": {metric: 0.54 if task == "rte" else 0.0},
            "train": {metric: 0.5 if task == "rte" else 0.0},
        }
        atomic_write_json(
            root / "splits" / task / "meta.json",
            {"task": task, "sizes": {"train": 32, "val": 24, "test": 48}, "majority_baseline": maj},
        )
    fams = sweep_families(cfg["conditions"])
    for task in cfg["study"]["tasks"]:
        for fam, members in fams.items():
            g = runs[(runs["task"] == task) & runs["condition"].isin(members)]
            if g.empty:
                continue
            cands = [
                {
                    "name": m,
                    "overrides": {"reinit_layers": int(m[-1]), "reinit_pooler": True},
                    "val": g.loc[g["condition"] == m, "val_best"].tolist(),
                }
                for m in members
            ]
            sel = choose(cands)
            sel.update(task=task, family=fam, seeds=sorted(g["seed"].unique().tolist()))
            atomic_write_json(root / "selection" / task / f"{fam}.json", sel)
    cfg = {**cfg, "_config_hash": config_hash(cfg)}
    atomic_write_json(root / "study.json", cfg)
    return json.loads((root / "study.json").read_text())  # as the stages read it: keys sorted


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    from pipeline import analysis

    root = tmp_path_factory.mktemp("synthetic")
    cfg = make_study(root)
    out = analysis.run_analysis(cfg, root, root / "summary" / "runs.csv", root / "stats", root / "tables")
    return {"root": root, "cfg": cfg, **out}


# ---- degenerate runs --------------------------------------------------------------------------------


def test_degenerate_counts_nan_collapsed_and_rule(synthetic):
    f = synthetic["flagged"]
    g = f[(f["task"] == "rte") & (f["condition"] == "bertadam")]
    assert g["degenerate"].sum() == 4  # the RTE rule: below 0.55
    assert set(g.loc[g["degenerate"], "degenerate_reason"]) == {"below 0.55"}
    s = f[(f["task"] == "sts-b") & (f["condition"] == "bertadam")].set_index("seed")
    # constant predictions: Spearman undefined, scored 0 (no skill), collapsed, kept
    assert s.loc[0, "degenerate"] and s.loc[0, "degenerate_reason"] == "collapsed"
    assert s.loc[0, "test_best"] == 0.0 and s.loc[0, "test_best_undefined"]
    assert (
        s.loc[1, "degenerate"] and s.loc[1, "degenerate_reason"] == "collapsed"
    )  # Spearman 0.08 > 0, yet collapsed
    assert s["degenerate"].sum() == 2
    assert not f[f["condition"] == "debiased"]["degenerate"].any()
    summ = synthetic["summary"].set_index(["task", "condition"])
    assert summ.loc[("sts-b", "bertadam"), "n_degenerate"] == 2
    assert summ.loc[("sts-b", "bertadam"), "test_best_n_nan"] == 0  # it enters the moments at 0
    assert summ.loc[("sts-b", "bertadam"), "n_undefined_scored_0"] == 1
    assert summ.loc[("sts-b", "bertadam"), "n_collapsed"] == 2
    deg = pd.read_csv(synthetic["root"] / "tables" / "degenerate.csv").set_index(["task", "condition"])
    assert deg.loc[("rte", "bertadam"), "n_degenerate"] == 4 and deg.loc[("rte", "bertadam"), "n"] == 8
    assert deg.loc[("sts-b", "bertadam"), "n_nan"] == 0 and deg.loc[("sts-b", "bertadam"), "n_collapsed"] == 2
    assert deg.loc[("sts-b", "bertadam"), "n_scored_0"] == 1
    assert "scored 0" in (synthetic["root"] / "tables" / "degenerate.md").read_text()


def test_degenerate_flags_on_hand_built_runs():
    from pipeline.degenerate import flag_runs

    cfg = synthetic_config()
    runs = pd.DataFrame(
        [
            {
                "task": "sts-b",
                "condition": "x",
                "seed": 0,
                "metric": "spearman",
                "test_best": np.nan,
                "test_last": 0.5,
                "majority_test": 0.0,
                "label_std_test": 1.0,
                "pred_std_best": 0.0,
                "pred_major_share_best": np.nan,
            },
            {
                "task": "sts-b",
                "condition": "x",
                "seed": 1,
                "metric": "spearman",
                "test_best": 0.1,
                "test_last": 0.1,
                "majority_test": 0.0,
                "label_std_test": 1.0,
                "pred_std_best": 0.04,
                "pred_major_share_best": np.nan,
            },
            {
                "task": "sts-b",
                "condition": "x",
                "seed": 2,
                "metric": "spearman",
                "test_best": 0.8,
                "test_last": 0.8,
                "majority_test": 0.0,
                "label_std_test": 1.0,
                "pred_std_best": 0.9,
                "pred_major_share_best": np.nan,
            },
            {
                "task": "sts-b",
                "condition": "x",
                "seed": 3,
                "metric": "spearman",
                "test_best": -0.01,
                "test_last": 0.8,
                "majority_test": 0.0,
                "label_std_test": 1.0,
                "pred_std_best": 0.9,
                "pred_major_share_best": np.nan,
            },
            {
                "task": "rte",
                "condition": "x",
                "seed": 0,
                "metric": "accuracy",
                "test_best": 0.56,
                "test_last": 0.56,
                "majority_test": 0.52,
                "label_std_test": 0.5,
                "pred_std_best": np.nan,
                "pred_major_share_best": 0.97,
            },
            {
                "task": "rte",
                "condition": "x",
                "seed": 1,
                "metric": "accuracy",
                "test_best": 0.54,
                "test_last": 0.56,
                "majority_test": 0.52,
                "label_std_test": 0.5,
                "pred_std_best": np.nan,
                "pred_major_share_best": 0.6,
            },
        ]
    )
    f = flag_runs(runs, cfg)
    assert f["degenerate"].tolist() == [True, True, False, True, True, True]
    assert f["degenerate_reason"].tolist() == ["collapsed", "collapsed", "", "<= 0", "collapsed", "below 0.55"]
    assert f["test_best"].iloc[0] == 0.0 and f["test_best_undefined"].tolist() == [True] + [False] * 5


def _record(diverged=None) -> dict:
    """A run record as the engine writes it (the fields aggregate.run_row reads); diverged=None: an
    older record without the `diverged` field."""
    rec = {
        "task": "sts-b", "condition": "bertadam", "seed": 0, "init_seed": 0, "data_seed": 0,
        "glue_task": "sts-b", "metric": "spearman", "selection_metric": "spearman",
        "test_best": {"spearman": 0.3}, "test_last": {"spearman": None}, "val_best": {"spearman": 0.35},
        "val_last": {"spearman": None}, "majority_test": {"spearman": 0.0}, "label_std_test": 1.4,
        "spread_best": {"pred_std": 0.8, "pred_major_share": None},
        "spread_last": {"pred_std": None, "pred_major_share": None},
        "total_steps": 48, "best_step": 12, "n_train": 256, "n_val": 100, "n_test": 300,
        "timing": {"wall_s": 1.0, "train_examples_per_s": 100.0},
        "settings": {"lr": 1e-4, "bias_correction": False},
    }
    if diverged is not None:
        rec.update(diverged=diverged, diverged_step=20 if diverged else None)
    return rec


def test_aggregate_carries_diverged_into_runs_csv(tmp_path):
    from pipeline.aggregate import runs_table

    df = runs_table([_record(True), {**_record(False), "seed": 1}, {**_record(), "seed": 2}])
    assert df["diverged"].tolist() == [True, False, False]  # an older record (no field): not diverged
    assert "diverged_step" not in df.columns
    df.to_csv(tmp_path / "runs.csv", index=False)
    assert pd.read_csv(tmp_path / "runs.csv")["diverged"].dtype == bool


def _diverged_runs(with_column=True) -> pd.DataFrame:
    """Constructed runs.csv rows: seed 0 diverged with a finite, good-looking best checkpoint; seed 1
    diverged with NaN metrics; seed 2 a NaN run that did not diverge; seed 3 healthy."""
    base = {"task": "sts-b", "condition": "bertadam", "metric": "spearman", "majority_test": 0.0,
            "label_std_test": 1.0, "pred_major_share_best": np.nan, "pred_major_share_last": np.nan,
            "total_steps": 48}
    rows = [
        {**base, "seed": 0, "diverged": True, "test_best": 0.6, "test_last": np.nan, "val_best": 0.6,
         "pred_std_best": 0.9, "pred_std_last": np.nan},
        {**base, "seed": 1, "diverged": True, "test_best": np.nan, "test_last": np.nan, "val_best": np.nan,
         "pred_std_best": np.nan, "pred_std_last": np.nan},
        {**base, "seed": 2, "diverged": False, "test_best": np.nan, "test_last": np.nan, "val_best": 0.1,
         "pred_std_best": 0.0, "pred_std_last": 0.0},
        {**base, "seed": 3, "diverged": False, "test_best": 0.7, "test_last": 0.7, "val_best": 0.7,
         "pred_std_best": 0.9, "pred_std_last": 0.9},
    ]
    df = pd.DataFrame(rows)
    return df if with_column else df.drop(columns="diverged")


def test_diverged_run_is_degenerate_with_its_own_reason(tmp_path):
    from pipeline import degenerate, tables
    from pipeline.reported import load_reported

    cfg = synthetic_config(seeds={"optimiser": [0, 1, 2, 3]})
    csv = tmp_path / "runs.csv"
    _diverged_runs().to_csv(csv, index=False)  # through a CSV file, as the analyze stage reads it
    f = degenerate.flag_runs(pd.read_csv(csv), cfg)
    assert f["degenerate"].tolist() == [True, True, True, False]
    assert f["degenerate_reason"].tolist() == ["diverged", "diverged", "collapsed", ""]
    assert f["degenerate_last"].tolist() == [True, True, True, False]
    assert f["diverged"].tolist() == [True, True, False, False]
    s = degenerate.summaries(f).iloc[0]
    assert (s["n_degenerate"], s["n_diverged"], s["n_collapsed"], s["test_best_n"]) == (3, 2, 1, 4)
    t = tables.table_degenerate(f, cfg, load_reported())
    num, disp = t.numbers.iloc[0], t.display.iloc[0]
    assert (num["n"], num["n_degenerate"], num["n_diverged"], num["n_nan"], num["n_scored_0"]) == (4, 3, 2, 0, 2)
    assert disp["diverged"] == 2 and disp["NaN"] == 0 and disp["runs"] == 4
    assert list(t.display.columns).index("diverged") == list(t.display.columns).index("NaN") + 1
    assert any("diverged" in n for n in t.notes)
    # never dropped: the diverged run's metric stays in the cell statistics (its undefined Spearman at 0)
    d, k = tables.cell_stats(f, "sts-b", "bertadam")
    assert (d["n"], d["n_nan"], k) == (4, 0, 3)


def test_validation_columns_are_scored_by_the_selection_metric():
    """val_best/val_last hold the selection metric, test_* the report metric: an undefined validation
    correlation is scored 0 by the selection metric even where the report metric is accuracy (and an
    undefined accuracy stays NaN), from runs.csv's selection_metric where recorded, else the configuration."""
    from pipeline.degenerate import flag_runs

    cfg = synthetic_config()
    base = {"task": "rte", "condition": "x", "seed": 0, "metric": "accuracy", "test_best": np.nan,
            "test_last": np.nan, "val_best": np.nan, "val_last": np.nan, "majority_test": 0.52,
            "label_std_test": 0.5, "pred_std_best": np.nan, "pred_major_share_best": 0.6}
    recorded = flag_runs(pd.DataFrame([{**base, "selection_metric": "mcc"}]), cfg).iloc[0]
    assert recorded["val_best"] == 0.0 and recorded["val_last"] == 0.0 and recorded["val_best_undefined"]
    assert np.isnan(recorded["test_best"]) and not recorded["test_best_undefined"]
    # without the column: the configured selection metric of the run's GLUE task
    cfg["evaluation"]["selection_metric"] = {"rte": "mcc"}  # hypothetical: rte selected on a correlation
    configured = flag_runs(pd.DataFrame([base]), cfg).iloc[0]
    assert configured["val_best"] == 0.0 and np.isnan(configured["test_best"])
    # and the other way round: a correlation reported, accuracy selected: the validation NaN stays NaN
    sts = {**base, "task": "sts-b", "metric": "spearman", "majority_test": 0.0, "label_std_test": 1.0,
           "pred_std_best": 0.0, "pred_major_share_best": np.nan, "selection_metric": "accuracy"}
    other = flag_runs(pd.DataFrame([sts]), synthetic_config()).iloc[0]
    assert other["test_best"] == 0.0 and np.isnan(other["val_best"]) and not other["val_best_undefined"]


def test_a_diverged_runs_undefined_correlation_is_labelled_diverged():
    """Seed 1 diverged with NaN predictions, seed 2 predicted a constant: both are scored 0 and enter the
    tests, but only seed 2's undefined correlation is put down to constant predictions."""
    from pipeline import degenerate, tables
    from pipeline.reported import load_reported

    cfg = synthetic_config(seeds={"optimiser": [0, 1, 2, 3]})
    f = degenerate.flag_runs(_diverged_runs(), cfg)
    assert f["test_best_undefined"].tolist() == [False, True, True, False]
    assert f["test_best_undefined_cause"].tolist() == ["", "diverged", "constant predictions", ""]
    assert f["degenerate_reason"].tolist()[1:3] == ["diverged", "collapsed"]
    assert degenerate.summaries(f).iloc[0]["n_undefined_scored_0_diverged"] == 1
    t = tables.table_degenerate(f, cfg, load_reported())
    num, disp = t.numbers.iloc[0], t.display.iloc[0]
    assert (num["n_scored_0"], num["n_scored_0_constant"], num["n_scored_0_diverged"]) == (2, 1, 1)
    assert disp["scored 0: constant predictions"] == 1 and disp["scored 0: diverged (non-finite predictions)"] == 1
    # an older record without the diverged column: the same NaN is put down to constant predictions
    g = degenerate.flag_runs(_diverged_runs(with_column=False), cfg)
    assert g["test_best_undefined_cause"].tolist()[1] == "constant predictions"


def test_runs_without_a_diverged_column_are_not_diverged():
    from pipeline.degenerate import flag_runs, is_diverged

    cfg = synthetic_config(seeds={"optimiser": [0, 1, 2, 3]})
    f = flag_runs(_diverged_runs(with_column=False), cfg)
    assert f["diverged"].tolist() == [False] * 4
    assert f["degenerate_reason"].tolist() == ["", "collapsed", "collapsed", ""]
    assert [is_diverged(v) for v in (True, "True", "false", np.nan, None, 0, 1.0)] == [
        True, True, False, False, False, False, True]


# ---- comparisons, Table 1 and claims ------------------------------------------------------------------


def test_comparisons_paired_by_seed_and_holm(synthetic):
    from pipeline import stats

    c = synthetic["comparisons"]
    r = c[(c["comparison"] == "reinit") & (c["task"] == "rte")].iloc[0]
    assert r["n_pairs"] == 8 and r["decided_by"] == "paired_t"
    assert r["effect"] == pytest.approx(0.04, abs=0.004)
    assert r["ci_low"] < 0.04 < r["ci_high"]
    assert r["p_raw"] < 0.001 and r["verdict"] == "reproduced"
    block = c[c["comparison"] == "reinit"]
    assert block["p_holm"].tolist() == pytest.approx(stats.holm(block["p_raw"].tolist()), nan_ok=True)
    # a method with no effect on 4 seeds: inconclusive, and it says which kind
    m = c[(c["comparison"] == "mixout")].iloc[0]
    assert m["verdict"] in ("inconclusive", "reproduced") and m["expect"] == "no_gain"
    if m["verdict"] == "inconclusive":
        assert m["category"] in ("no effect", "too few seeds")
    for _, row in c.iterrows():
        assert np.isfinite(row["mde_metric"]) or row["n_pairs"] < 2


def test_claims_verdicts(synthetic):
    from pipeline.stats import CATEGORIES

    claims = pd.read_csv(synthetic["root"] / "tables" / "claims.csv")
    v = claims.groupby("comparison")["claim_verdict"].first()
    assert v["reinit"] == "reproduced"  # +0.04 on 8 paired seeds, both tasks
    assert v["longer"] == "reproduced"  # +0.02 on 6 paired seeds
    assert v["intermediate"] == "reproduced"  # +0.03 on 4 paired seeds (sts-b only)
    # BERTAdam: clearly worse on RTE; on STS-B the collapsed run enters at 0 and makes 8 seeds too few
    bc = claims[claims["comparison"] == "bias_correction"].set_index("task")
    assert bc.loc["rte", "task_verdict"] == "reproduced"
    assert (bc.loc["sts-b", "task_verdict"], bc.loc["sts-b", "category"]) == ("inconclusive", "too few seeds")
    assert bc.loc["sts-b", "n"] == 8  # every pair, the collapsed one included
    assert v["bias_correction"] == "inconclusive"
    # 4 steps of decay at lr 3e-4 barely move the weights: uninformative, never "adds little"
    assert v["prior_wd"] == "uninformative" and v["wd"] == "uninformative"
    assert v["mixout"] == "reproduced" and v["llrd"] == "reproduced"  # non-superiority at 2 points
    # RQ 2 as two sub-claims and their combination
    assert {"bias_correction_fewer_degenerate", "bias_correction_smaller_spread",
            "bias_correction_degenerate_and_spread"} <= set(v.index)
    md = (synthetic["root"] / "tables" / "claims.md").read_text()
    assert "Verdict rule" in md and "| RQ |" in md
    for rq in ("1", "2a", "2b", "2", "3", "4", "5"):
        assert re.search(rf"^\| {rq} \|", md, re.M), rq
    # every claim row carries a test, an interval and the smallest detectable effect
    rows = claims[claims["task"].notna() & (claims["task"] != "") & (claims["rq"].astype(str) != "2")]
    assert rows["mde_metric"].notna().all() and rows["ci_low"].notna().all()
    assert set(claims["category"].dropna()) <= {c for cs in CATEGORIES.values() for c in cs}


def test_claims_json_holds_the_numbers_of_claims_md(synthetic):
    from pipeline.tableformat import x100

    js = json.loads((synthetic["root"] / "tables" / "claims.json").read_text())
    md = (synthetic["root"] / "tables" / "claims.md").read_text()
    csv = pd.read_csv(synthetic["root"] / "tables" / "claims.csv")
    assert js["reinit"]["all tasks"]["verdict"] == "reproduced"
    n = 0
    for claim, per_task in js.items():
        for task, t in per_task.items():
            if task == "all tasks" or "effect" not in t:
                continue
            for key in ("effect", "ci_low", "ci_high", "p", "p_holm", "deciding_test", "smallest_detectable_effect",
                        "verdict", "category"):
                assert key in t, (claim, task, key)
            assert f"{task}: {x100(t['effect'])}" in md or f"reduction {x100(t['effect'])}" in md, (claim, task)
            if t["deciding_test"] in ("paired_t", "student_t"):
                assert f"[{x100(t['ci_low'])}, {x100(t['ci_high'])}]" in md, (claim, task)
            row = csv[(csv["comparison"] == claim) & (csv["task"] == task)].iloc[0]
            assert row["p"] == pytest.approx(t["p"]) and row["category"] == t["category"]
            assert row["task_verdict"] == t["verdict"]
            n += 1
    assert n >= 15


def test_smallest_effect_of_interest_sets_the_non_superiority_margin(synthetic):
    """A 2-point margin shows that LLRD adds little on 4 paired seeds; a margin far below the noise cannot,
    and the verdict says that the study could not have shown it."""
    from pipeline import claims, plan
    from pipeline.config import deep_merge
    from pipeline.reported import load_reported

    rep = plan.report_runs(synthetic["flagged"], synthetic["cfg"])
    c = claims.comparisons(rep, synthetic["cfg"], load_reported()).set_index("comparison")
    assert c.loc["llrd", "expect"] == "no_gain" and c.loc["llrd", "ci_high"] < 0.02
    assert (c.loc["llrd", "verdict"], c.loc["llrd", "category"]) == ("reproduced", "gain below margin")
    assert c.loc["intermediate", "expect"] == "better"
    tiny = deep_merge(synthetic["cfg"], {"analysis": {"smallest_effect_of_interest": {"mean": 1e-4}}})
    c = claims.comparisons(rep, tiny, load_reported()).set_index("comparison")
    assert (c.loc["llrd", "verdict"], c.loc["llrd", "category"]) == ("inconclusive", "too few seeds")


def test_table1_marks(synthetic):
    t1 = pd.read_csv(synthetic["root"] / "tables" / "table1.csv")
    rte = t1[t1["task"] == "rte"].set_index("column")
    assert rte.loc["reinit_longer", "best"]  # +0.05 is the best mean
    assert not rte.loc["standard_3ep", "equivalent"]  # 5 points worse on 6-8 seeds
    assert rte.loc["standard_3ep", "p_vs_best"] < 0.05
    assert rte.loc["standard_3ep", "paper_mean_x100"] == pytest.approx(69.5)
    assert rte.loc["reinit_3ep", "mean"] == pytest.approx(0.74, abs=0.004)
    md = (synthetic["root"] / "tables" / "table1.md").read_text()
    assert "**" in md and "NOT the paper's protocol" in md and "model minilm-l6" in md
    tex = (synthetic["root"] / "tables" / "table1.tex").read_text()
    assert r"\underline{\textbf{" in tex and r"\begin{tabular}" in tex


def test_mark_rule_on_known_groups():
    """Identical groups: the first is best and the others equivalent; a clear shift is not equivalent."""
    from pipeline.reported import load_reported
    from pipeline.tableformat import Table
    from pipeline.tables import table_layout1

    cfg = synthetic_config()
    rows = []
    for seed in range(6):
        for cond, v in (("debiased", 0.70), ("reinit", 0.70), ("longer", 0.60), ("reinit_longer", 0.70)):
            rows.append(
                {
                    "task": "rte",
                    "condition": cond,
                    "seed": seed,
                    "test_best": v + 0.01 * (seed % 3),
                    "degenerate": False,
                }
            )
    t = table_layout1(
        "table1", cfg["analysis"]["tables"]["table1"], pd.DataFrame(rows), cfg, load_reported(), mode="best"
    )
    assert list(t.numbers["column"].unique()) == [
        "standard_3ep",
        "standard_longer",
        "reinit_3ep",
        "reinit_longer",
    ]
    assert isinstance(t, Table)
    n = t.numbers.set_index("column")
    assert (
        n.loc["standard_3ep", "best"]
        and n.loc["reinit_3ep", "equivalent"]
        and n.loc["reinit_longer", "equivalent"]
    )
    assert not n.loc["standard_longer", "equivalent"]


def test_tables_written_with_expected_rows(synthetic):
    from pipeline.plan import planned_tables

    root = synthetic["root"]
    idx = json.loads((root / "tables" / "index.json").read_text())
    assert [t["name"] for t in idx["tables"]] == planned_tables(synthetic["cfg"])
    for name in planned_tables(synthetic["cfg"]):
        for ext in ("md", "tex", "csv"):
            assert (root / "tables" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    t3 = pd.read_csv(root / "tables" / "table3_splits.csv").set_index("task")
    assert list(t3.index) == ["rte", "sts-b"]
    assert t3.loc["rte", "paper_val"] == 139 and t3.loc["rte", "majority_test"] == pytest.approx(0.52)
    opt = pd.read_csv(root / "tables" / "optimiser.csv").set_index("task")
    assert opt.loc["rte", "n_degenerate_a"] == 4 and opt.loc["rte", "n_degenerate_b"] == 0
    assert opt.loc["rte", "fisher_p"] < 0.05
    sel = pd.read_csv(root / "tables" / "selection.csv")
    assert sel.groupby("task")["chosen"].sum().tolist() == [1, 1]
    assert set(sel.loc[sel["chosen"], "candidate"]) == {"reinit_sweep-L2"}  # the highest validation mean
    t2 = pd.read_csv(root / "tables" / "table2.csv")
    assert set(t2["task"]) == {"rte", "sts-b"}
    assert t2.set_index(["task", "column"]).loc[("sts-b", "reinit"), "better_than_first"]
    s = pd.read_csv(root / "stats" / "summary.csv")
    assert {"test_best_mean", "test_last_mean", "n_degenerate"} <= set(s.columns)


def test_selection_table_reads_validation_only(synthetic, tmp_path):
    """The selection table prints the selection files' validation numbers, and of the runs table it reads
    only which seeds ran: changing every metric of the runs (test and validation) changes nothing, changing
    their seeds changes the overlap it reports; no column of it is a test metric."""
    from pipeline import tables
    from pipeline.reported import load_reported

    root, cfg = synthetic["root"], synthetic["cfg"]
    runs = synthetic["flagged"]
    base = tables.table_selection(cfg, root, load_reported(), runs)
    a = base.numbers
    for task in ("rte", "sts-b"):
        sel = json.loads((root / "selection" / task / "reinit_sweep.json").read_text())
        got = a[a["task"] == task].set_index("candidate")
        assert got["val_mean"].to_dict() == pytest.approx({c["name"]: c["val_mean"] for c in sel["candidates"]})
        assert got["val_std"].to_dict() == pytest.approx({c["name"]: c["val_std"] for c in sel["candidates"]})
        # the selection files' means are validation means, not the test means of the same runs
        cand = runs[(runs["task"] == task) & runs["condition"].str.startswith("reinit_sweep")]
        test_means = cand.groupby("condition")["test_best"].mean()
        assert all(abs(got.loc[c, "val_mean"] - test_means[c]) > 1e-3 for c in test_means.index)
    metric_cols = [c for c in runs.columns if c.startswith(("test_", "val_"))]
    rng = np.random.default_rng(1)
    shuffled = runs.copy()
    for c in metric_cols:
        shuffled[c] = rng.permutation(shuffled[c].to_numpy())
    again = tables.table_selection(cfg, root, load_reported(), shuffled)
    assert again.numbers.equals(a) and again.display.equals(base.display)
    # what it does read: the selection files (a changed validation mean is printed) and the runs' seeds
    shutil.copytree(root / "selection", tmp_path / "selection")
    f = tmp_path / "selection" / "rte" / "reinit_sweep.json"
    sel = json.loads(f.read_text())
    sel["candidates"][0]["val_mean"] = 0.123
    f.write_text(json.dumps(sel))
    edited = tables.table_selection(cfg, tmp_path, load_reported(), runs).numbers.set_index(["task", "candidate"])
    assert edited.loc[("rte", sel["candidates"][0]["name"]), "val_mean"] == 0.123
    assert set(a["disjoint"]) == {True}  # selection seeds 100, 101; report seeds 0-7
    assert not [c for c in list(a.columns) + list(base.display.columns) if "test" in c.lower()]


# ---- report and paper map ---------------------------------------------------------------------------


def _report_on(root: Path, cfg: dict, tmp: Path) -> dict:
    from pipeline import analysis, figures, report

    analysis.run_analysis(cfg, root, root / "summary" / "runs.csv", tmp / "stats", tmp / "tables")
    figures.run_figures(
        cfg,
        root,
        tmp / "stats" / "runs_flagged.csv",
        root / "summary" / "curves.csv",
        root / "summary" / "drift.csv",
        tmp / "figures",
    )
    report.run_report(cfg, root, tmp / "tables", tmp / "figures", tmp / "report.html", tmp / "paper_map.md")
    return {"html": (tmp / "report.html").read_text(), "map": (tmp / "paper_map.md").read_text(), "tmp": tmp}


def _check_report_and_map(out: dict, cfg: dict):
    from pipeline.plan import planned_figures

    html = out["html"]
    assert html.lower().startswith("<!doctype html>")
    assert html.count('src="data:image/png;base64,') == len(planned_figures(cfg))
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html), "external reference in the report"
    assert cfg["_config_hash"] in html
    pm = out["map"]
    for i in range(1, 8):
        assert re.search(rf"^\| Table {i} \|", pm, re.M), f"Table {i} missing from the paper map"
    for i in range(1, 19):
        assert re.search(rf"^\| Figure {i} \|", pm, re.M), f"Figure {i} missing from the paper map"
    # every file the map names as produced exists
    named = re.findall(r"`((?:tables|figures)/[^`]+)`", pm)
    assert named
    for rel in named:
        assert (out["tmp"] / rel).exists(), rel


def test_report_and_paper_map_on_smoke_results(tmp_path):
    """On the finished smoke study when it exists; otherwise on a synthetic study with the smoke grid."""
    if (SMOKE / "summary" / "runs.csv").exists() and (SMOKE / "study.json").exists():
        root, cfg = SMOKE, json.loads((SMOKE / "study.json").read_text())
    else:
        from pipeline.config import deep_merge

        root = tmp_path / "smoke-like"
        cfg = make_study(
            root,
            deep_merge(
                yaml.safe_load((REPO / "params.yaml").read_text()),
                yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text()),
            ),
        )
    out = _report_on(root, cfg, tmp_path / "out")
    _check_report_and_map(out, cfg)
    claims = pd.read_csv(tmp_path / "out" / "tables" / "claims.csv")
    assert {"bias_correction", "reinit", "longer"} <= set(claims["comparison"])
