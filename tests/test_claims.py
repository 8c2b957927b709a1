"""Constructed cases where the right verdict is known, one per rule of issue 23: Holm on every directional
verdict, collapsed runs scored and kept, RQ 2 as two sub-claims, prospective power, selection compared on
actual seeds, true protocol notes, Table 4 two-tailed, the pull of a decay setting, the paper map."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as st

from test_analysis import synthetic_config

REPO = Path(__file__).resolve().parents[1]
METRIC = {"rte": "accuracy", "sts-b": "spearman"}


def _z(n, seed):
    x = np.random.default_rng(seed).normal(size=n)
    return (x - x.mean()) / x.std(ddof=1)


def _runs(rows) -> pd.DataFrame:
    """runs.csv rows from {task, condition, seed, test_best} (+ overrides), with healthy defaults."""
    out = []
    for r in rows:
        task = r["task"]
        v = r["test_best"]
        out.append(
            {
                "metric": METRIC[task],
                "test_last": v,
                "val_best": v,
                "val_last": v,
                "majority_test": 0.52 if task == "rte" else 0.0,
                "label_std_test": 0.5 if task == "rte" else 1.4,
                "pred_std_best": np.nan if task == "rte" else 1.0,
                "pred_major_share_best": 0.6 if task == "rte" else np.nan,
                "pred_std_last": np.nan if task == "rte" else 1.0,
                "pred_major_share_last": 0.6 if task == "rte" else np.nan,
                "total_steps": 48,
                **r,
            }
        )
    return pd.DataFrame(out)


def _paired_rows(task, base, treat, diffs, seed=0, level=0.7):
    shared = level + 0.02 * _z(len(diffs), seed)
    rows = []
    for s, (v, d) in enumerate(zip(shared, diffs)):
        rows += [
            {"task": task, "condition": base, "seed": s, "test_best": v},
            {"task": task, "condition": treat, "seed": s, "test_best": v + d},
        ]
    return rows


def _comparisons(rows, cfg):
    from pipeline.claims import comparisons
    from pipeline.degenerate import flag_runs
    from pipeline.reported import load_reported

    return comparisons(flag_runs(_runs(rows), cfg), cfg, load_reported())


def _only(name, rq=3, expect=None):
    comp = {
        "name": name,
        "rq": rq,
        "baseline": "debiased",
        "treatment": "reinit",
        "claim": "Re-init beats Standard",
    }
    if expect:
        comp["expect"] = expect
    return synthetic_config(analysis={"comparisons": [comp]})


def _diffs_with_p(p_one_tailed, n=4, sd=0.01, sign=-1, seed=0):
    """Paired differences whose one-tailed paired t p-value (in direction `sign`) is exactly p."""
    t = st.t.isf(p_one_tailed, n - 1)
    return sign * t * sd / math.sqrt(n) + sd * _z(n, seed + 100)


# ---- Holm on every directional verdict ----------------------------------------------------------------


def test_holm_applies_to_the_opposite_direction_too():
    """Raw opposite one-tailed p 0.043 and 0.040 on two tasks: Holm makes both 0.080, so neither task (nor
    the claim) is "not reproduced"; the verdict says that Holm changed the decision."""
    cfg = _only("holm_case")
    rows = _paired_rows("rte", "debiased", "reinit", _diffs_with_p(0.043), seed=1) + _paired_rows(
        "sts-b", "debiased", "reinit", _diffs_with_p(0.040), seed=2, level=0.8
    )
    c = _comparisons(rows, cfg).set_index("task")
    assert c.loc["rte", "p_against"] == pytest.approx(0.043) and c.loc["sts-b", "p_against"] == pytest.approx(
        0.040
    )
    assert c["p_against_holm"].tolist() == pytest.approx([0.080, 0.080])
    assert "not reproduced" not in set(c["verdict"])
    assert set(c["category"]) == {"significant before Holm only"}
    assert all("Holm" in r for r in c["reason"])
    from pipeline.claims import claim_verdict

    assert claim_verdict(c.reset_index().to_dict("records"))["verdict"] == "inconclusive"


def test_interval_beside_the_verdict_agrees_with_the_unadjusted_test():
    cfg = _only("agree")
    rows = _paired_rows("rte", "debiased", "reinit", _diffs_with_p(0.043, sign=1), seed=3) + _paired_rows(
        "sts-b", "debiased", "reinit", _diffs_with_p(0.2, sign=1), seed=4, level=0.8
    )
    c = _comparisons(rows, cfg).set_index("task")
    for task in ("rte", "sts-b"):
        assert (c.loc[task, "ci_low"] > 0) == (c.loc[task, "p_raw"] < 0.05)
    assert c.loc["rte", "ci_level"] == pytest.approx(0.90)


# ---- collapsed runs --------------------------------------------------------------------------------------


def test_constant_prediction_runs_enter_every_test_at_zero():
    cfg = synthetic_config()
    rows = []
    for s in range(6):
        rows.append({"task": "sts-b", "condition": "debiased", "seed": s, "test_best": 0.80 + 0.01 * s})
        collapsed = s < 2  # constant predictions: Spearman undefined (NaN), prediction std 0
        rows.append(
            {
                "task": "sts-b",
                "condition": "bertadam",
                "seed": s,
                "test_best": np.nan if collapsed else 0.78 + 0.01 * s,
                "pred_std_best": 0.0 if collapsed else 1.0,
            }
        )
    c = _comparisons(rows, cfg)
    r = c[c["comparison"] == "bias_correction"].iloc[0]
    assert (r["n_a"], r["n_nan_a"], r["n_pairs"]) == (6, 0, 6)
    assert r["mean_a"] == pytest.approx(np.mean([0, 0, 0.80, 0.81, 0.82, 0.83]))
    assert r["n_scored_0_a"] == 2
    from pipeline.degenerate import flag_runs

    f = flag_runs(_runs(rows), cfg)
    b = f[f["condition"] == "bertadam"].set_index("seed")
    assert b.loc[0, "degenerate_reason"] == "collapsed" and b.loc[0, "test_best_undefined"]


# ---- RQ 2 ----------------------------------------------------------------------------------------------


def test_rq2_fewer_degenerate_runs_but_a_significantly_larger_spread_is_not_reproduced():
    from pipeline.claims import degenerate_claim
    from pipeline.degenerate import flag_runs
    from pipeline.reported import load_reported

    cfg = synthetic_config()
    rows = []
    for s in range(16):
        rows.append(
            {"task": "rte", "condition": "bertadam", "seed": s, "test_best": 0.50 if s % 2 else 0.505}
        )
        rows.append({"task": "rte", "condition": "debiased", "seed": s, "test_best": 0.56 + 0.026 * s})
    (c,) = degenerate_claim(flag_runs(_runs(rows), cfg), cfg, load_reported())
    (t,) = c["tasks"]
    assert (t["k_a"], t["k_b"]) == (16, 0)  # every BERTAdam run below the RTE rule's 55%
    assert t["fewer_verdict"] == "reproduced"
    assert (t["spread_verdict"], t["spread_category"]) == ("not reproduced", "opposite effect")
    assert t["verdict"] == "not reproduced" and c["verdict"] == "not reproduced"


# ---- prospective power ------------------------------------------------------------------------------------


def test_a_4_pair_reversed_estimate_is_too_few_seeds():
    cfg = _only("reversed")
    c = _comparisons(
        _paired_rows("sts-b", "debiased", "reinit", -0.01 + 0.03 * _z(4, 5), seed=5, level=0.8), cfg
    ).iloc[0]
    assert c["effect"] < 0 and c["p_against"] > 0.05
    assert (c["verdict"], c["category"]) == ("inconclusive", "too few seeds")
    assert c["dec_power_for_interest"] < 0.8 and 4 < c["seeds_needed"] < math.inf


# ---- selection on actual seeds ------------------------------------------------------------------------------


def _selection_study(tmp_path, seeds_selection, disjoint):
    from pipeline.degenerate import flag_runs

    cfg = synthetic_config(seeds={"selection": seeds_selection}, analysis={"disjoint_selection": False})
    cfg["analysis"]["disjoint_selection"] = (
        disjoint  # validation would refuse the overlap: the table must too
    )
    for task in ("rte", "sts-b"):
        sel = {
            "candidates": [
                {
                    "name": f"reinit_sweep-L{k}",
                    "overrides": {"reinit_layers": k, "reinit_pooler": True},
                    "n": 2,
                    "val_mean": 0.7,
                    "val_std": 0.01,
                }
                for k in (1, 2, 3)
            ],
            "chosen": "reinit_sweep-L2",
            "overrides": {"reinit_layers": 2},
            "seeds": seeds_selection,
        }
        (tmp_path / "selection" / task).mkdir(parents=True, exist_ok=True)
        (tmp_path / "selection" / task / "reinit_sweep.json").write_text(json.dumps(sel))
    rows = [
        {"task": t, "condition": c, "seed": s, "test_best": 0.7}
        for t in ("rte", "sts-b")
        for c in ("debiased", "reinit")
        for s in range(8)
    ]
    rows += [
        {"task": t, "condition": f"reinit_sweep-L{k}", "seed": s, "test_best": 0.7}
        for t in ("rte", "sts-b")
        for k in (1, 2, 3)
        for s in seeds_selection
    ]
    return cfg, flag_runs(_runs(rows), cfg)


def test_selection_seeds_equal_to_report_seeds_under_other_names_are_flagged(tmp_path):
    from pipeline.reported import load_reported
    from pipeline.tables import table_selection

    cfg, runs = _selection_study(
        tmp_path, [0, 1], disjoint=True
    )  # "selection" = [0, 1] and "main" has 0 and 1
    t = table_selection(cfg, tmp_path, load_reported(), runs)
    assert set(t.numbers["seeds_shared_with_report"]) == {"0 1"} and not t.numbers["disjoint"].any()
    assert t.display["seeds shared with reported runs"].str.contains("NOT disjoint").all()
    assert any("shared" in n and "rte/reinit_sweep: [0, 1]" in n for n in t.notes)
    # the same check from the configured grid (no runs table)
    assert set(table_selection(cfg, tmp_path, load_reported()).numbers["seeds_shared_with_report"]) == {"0 1"}
    cfg, runs = _selection_study(tmp_path, [100, 101], disjoint=True)
    t = table_selection(cfg, tmp_path, load_reported(), runs)
    assert t.numbers["disjoint"].all() and any("disjoint on every task" in n for n in t.notes)


# ---- protocol notes -----------------------------------------------------------------------------------------


def _paper_cfg():
    from pipeline.config import deep_merge

    return deep_merge(
        yaml.safe_load((REPO / "params.yaml").read_text()),
        yaml.safe_load((REPO / "configs" / "paper.yaml").read_text()),
    )


def test_the_paper_overlay_1k_tasks_and_full_mnli_carry_no_deviation_note():
    from pipeline.reported import load_reported, protocol_deviations

    cfg = _paper_cfg()
    rep = load_reported()
    for task in (
        "sst-2_1k",
        "qnli_1k",
        "qqp_1k",
        "mnli_1k",
        "rte_1k",
        "mrpc_1k",
        "sts-b_1k",
        "cola_1k",
        "mnli",
        "rte",
    ):
        assert protocol_deviations(cfg, task, rep) == [], task


def test_departures_from_the_1k_protocol_are_still_noted():
    from pipeline.config import deep_merge
    from pipeline.reported import _split_deviations

    cfg = _paper_cfg()
    bad = deep_merge(cfg, {"datasets": {"sst-2_1k": {"splits": {"val_size": 500}}}})
    assert any("500 held-out" in d for d in _split_deviations(bad, "sst-2_1k"))
    halves = deep_merge(
        cfg, {"datasets": {"qnli_1k": {"splits": {"val_source": "dev_half", "val_size": None}}}}
    )
    assert any("1,000 held-out training examples" in d for d in _split_deviations(halves, "qnli_1k"))
    default = synthetic_config()
    assert any("capped" in d for d in _split_deviations(default, "sts-b"))


def test_table4_is_marked_with_a_two_tailed_test():
    from pipeline.degenerate import flag_runs
    from pipeline.reported import load_reported
    from pipeline.tables import table_layout1, table_mode

    assert table_mode("table4") == "two_sided"
    cfg = synthetic_config(
        analysis={
            "tables": {
                "table4": {
                    "title": "T4",
                    "columns": {"mixed_precision": "debiased", "full_precision": "reinit"},
                }
            }
        }
    )
    n, sd = 10, 0.01
    shift = st.t.isf(0.03, 2 * n - 2) * sd * math.sqrt(2 / n)  # one-tailed p 0.03, two-tailed 0.06
    rows = [
        {"task": "rte", "condition": "debiased", "seed": s, "test_best": 0.7 + sd * z}
        for s, z in enumerate(_z(n, 1))
    ]
    rows += [
        {"task": "rte", "condition": "reinit", "seed": s, "test_best": 0.7 + shift + sd * z}
        for s, z in enumerate(_z(n, 2))
    ]
    t = table_layout1(
        "table4",
        cfg["analysis"]["tables"]["table4"],
        flag_runs(_runs(rows), cfg),
        cfg,
        load_reported(),
        mode="two_sided",
    )
    full = t.numbers.set_index("column").loc["full_precision"]
    assert full["p_vs_first"] == pytest.approx(0.06) and not full["differs_from_first"]
    assert "two-tailed" in t.notes[0]


# ---- how far a decay setting moves the weights ---------------------------------------------------------------


def test_schedule_sum_is_the_engines_schedule():
    from pipeline.claims import schedule_sum
    from pipeline.optim import linear_schedule

    for total, warmup in ((48, 4), (96, 9), (234, 23), (5, 0)):
        assert schedule_sum(total, warmup) == pytest.approx(
            sum(linear_schedule(s, total, warmup) for s in range(total))
        )


def test_weight_pull_of_the_default_study_settings():
    """The issue's numbers: 48 steps at lr 1e-4, warm-up 10%: prior WD 1.0 pulls 0.24% of (w - w0) over the
    run, WD 0.01 pulls 0.0024% of w; both are below min_pull and so uninformative."""
    from pipeline.claims import weight_pull

    cfg = synthetic_config()
    rows = [
        {
            "task": "sts-b",
            "condition": c,
            "seed": s,
            "test_best": 0.8,
            "lr": 1e-4,
            "total_steps": 48,
            "prior_wd": 1.0 if c == "prior_wd" else 0.0,
            "weight_decay": 0.01 if c == "wd" else 0.0,
        }
        for c in ("debiased", "prior_wd", "wd")
        for s in range(4)
    ]
    runs = _runs(rows)
    pw = weight_pull(runs, cfg, "sts-b", "debiased", "prior_wd")
    wd = weight_pull(runs, cfg, "sts-b", "debiased", "wd")
    assert pw["kind"] == "prior_wd" and pw["pull"] == pytest.approx(0.0024, rel=0.05)
    assert wd["kind"] == "weight_decay" and wd["pull"] == pytest.approx(0.000024, rel=0.05)
    assert weight_pull(runs, cfg, "sts-b", "debiased", "debiased") is None
    # the released code's wrapper zeroes plain weight decay (configs/paper.yaml): no pull at all
    noop = synthetic_config(train={"weight_decay_impl": "official_noop"})
    assert weight_pull(runs, noop, "sts-b", "debiased", "wd")["pull"] == 0.0
    c = _comparisons(
        rows,
        synthetic_config(
            analysis={
                "comparisons": [
                    {
                        "name": "prior_wd",
                        "rq": 5,
                        "baseline": "debiased",
                        "treatment": "prior_wd",
                        "expect": "no_gain",
                        "claim": "Pre-trained weight decay adds little",
                    }
                ]
            }
        ),
    ).iloc[0]
    assert (c["verdict"], c["category"]) == ("uninformative", "setting too weak")


# ---- calibration on scores that did not pick the checkpoint -------------------------------------------------


def test_calibration_judges_learning_on_the_last_checkpoint(tmp_path):
    from pipeline.calibration import calibration_table
    from pipeline.config import deep_merge

    cfg = deep_merge(
        yaml.safe_load((REPO / "params.yaml").read_text()),
        yaml.safe_load((REPO / "configs" / "calibration.yaml").read_text()),
    )
    cfg["grid"] = [{"tasks": ["cola"], "conditions": ["calib"], "seeds": "calibration"}]
    cfg["conditions"] = {"calib": {"lr": [1e-4]}}
    (tmp_path / "splits" / "cola").mkdir(parents=True)
    (tmp_path / "splits" / "cola" / "meta.json").write_text(
        json.dumps({"majority_baseline": {"val": {"mcc": 0.0}}})
    )
    for seed in (100, 101):
        d = tmp_path / "runs" / "cola" / "calib-lr0.0001" / f"seed{seed}"
        d.mkdir(parents=True)
        d.joinpath("record.json").write_text(
            json.dumps(
                {
                    "selection_metric": "mcc",
                    "settings": {"lr": 1e-4, "epochs": 3, "attn_implementation": "eager"},
                    "total_steps": 48,
                    "val_best": {"mcc": 0.15},
                    "val_last": {"mcc": 0.01 if seed == 100 else -0.02},
                    "timing": {"wall_s": 1.0},
                }
            )
        )
    table, chosen = calibration_table(cfg, tmp_path, 0.10)
    row = table.iloc[0]
    assert row["val_best_mean"] == pytest.approx(0.15)  # the best of the evaluations would say "learns"
    assert not row["learns"] and chosen == {}


# ---- the paper map --------------------------------------------------------------------------------------------


def test_seed_grid_paper_map_gives_the_true_reason_for_figure_17(tmp_path):
    from pipeline.config import deep_merge
    from pipeline.plan import FIGURE_BY_NAME
    from pipeline.report import paper_map_rows

    cfg = deep_merge(
        yaml.safe_load((REPO / "params.yaml").read_text()),
        yaml.safe_load((REPO / "configs" / "seed-grid.yaml").read_text()),
    )
    rows = {r["item"]: r for r in paper_map_rows(cfg, tmp_path / "tables", tmp_path / "figures", tmp_path)}
    assert "no STS-B runs" not in rows["Figure 17"]["reason"]
    assert rows["Figure 17"]["reason"] == FIGURE_BY_NAME["fig07_drift_steps"].absent
    assert rows["Figure 15"]["reason"] == "this study has no RTE runs"
    assert rows["Figure 9"]["status"] == "produced"


# ---- review of issue 23: verdicts over tasks, power at Holm's level, counts, exact pull -----------------------


def test_a_refutation_on_some_tasks_shows_in_the_claims_verdict():
    """A clear, Holm-significant opposite effect on RTE and an undecided STS-B: the claim is not
    "too few seeds" over its tasks, it is refuted on some of them, and the verdict says so."""
    from pipeline.claims import claim_verdict

    cfg = _only("agg")
    rows = _paired_rows("rte", "debiased", "reinit", -0.05 + 0.005 * _z(8, 1), seed=1)
    rows += _paired_rows("sts-b", "debiased", "reinit", 0.03 * _z(4, 2), seed=2, level=0.8)
    c = _comparisons(rows, cfg).set_index("task")
    assert (c.loc["rte", "verdict"], c.loc["sts-b", "verdict"]) == ("not reproduced", "inconclusive")
    assert c.loc["rte", "p_against_holm"] < 0.05
    v = claim_verdict(c.reset_index().to_dict("records"))
    assert (v["verdict"], v["category"]) == ("inconclusive", "refuted on some tasks")
    assert "rte: not reproduced (opposite effect)" in v["reason"]


def test_holm_applies_to_the_supporting_direction_too():
    """Raw supporting p 0.043 and 0.040 on two tasks: Holm makes both 0.080, so neither is reproduced."""
    cfg = _only("holm_support")
    rows = _paired_rows("rte", "debiased", "reinit", _diffs_with_p(0.043, sign=1), seed=1) + _paired_rows(
        "sts-b", "debiased", "reinit", _diffs_with_p(0.040, sign=1), seed=2, level=0.8
    )
    c = _comparisons(rows, cfg).set_index("task")
    assert c["p_raw"].tolist() == pytest.approx([0.043, 0.040])
    assert c["p_holm"].tolist() == pytest.approx([0.080, 0.080])
    assert "reproduced" not in set(c["verdict"])
    assert set(c["category"]) == {"significant before Holm only"}


def test_power_and_seeds_needed_are_at_holms_most_demanding_level():
    """Two tasks in the family: power for the effect of interest, the smallest detectable effect and seeds
    needed are computed at alpha/2, and claims.json and claims.md state that level beside them. A task
    whose test has no p-value leaves Holm's family, and the level follows."""
    from pipeline import stats
    from pipeline.claims import degenerate_claim
    from pipeline.degenerate import flag_runs
    from pipeline.reported import load_reported
    from pipeline.tables import table_claims

    cfg = _only("level")
    rows = _paired_rows("rte", "debiased", "reinit", _diffs_with_p(0.3, sign=1), seed=1) + _paired_rows(
        "sts-b", "debiased", "reinit", _diffs_with_p(0.4, sign=1), seed=2, level=0.8
    )
    c = _comparisons(rows, cfg).set_index("task")
    assert c["family_size"].tolist() == [2, 2] and c["power_alpha"].tolist() == pytest.approx([0.025, 0.025])
    sd = c.loc["rte", "paired_diff_sd"]
    assert c.loc["rte", "dec_power_for_interest"] == pytest.approx(stats.power_paired(0.02 / sd, 4, 0.025))
    assert c.loc["rte", "mde_std"] == pytest.approx(stats.power_paired_mde(4, 0.025, 0.8))
    assert c.loc["rte", "seeds_needed"] == stats.seeds_needed_paired(0.02 / sd, 0.025, 0.8)
    f = flag_runs(_runs(rows), cfg)
    table, js = table_claims(_comparisons(rows, cfg), degenerate_claim(f, cfg, load_reported()), cfg)
    assert js["level"]["rte"]["power_alpha"] == pytest.approx(0.025) and js["level"]["rte"]["family_size"] == 2
    md = table.markdown()
    assert "at alpha 0.025 = alpha/2" in md and "estimated from this study's runs" in md
    # sts-b with one pair only: no test, so the family is rte alone and its level alpha
    rows = _paired_rows("rte", "debiased", "reinit", _diffs_with_p(0.3, sign=1), seed=1) + [
        {"task": "sts-b", "condition": "debiased", "seed": 0, "test_best": 0.80},
        {"task": "sts-b", "condition": "reinit", "seed": 0, "test_best": 0.81},
    ]
    c = _comparisons(rows, cfg).set_index("task")
    assert np.isnan(c.loc["sts-b", "p_raw"]) and c.loc["rte", "family_size"] == 1
    assert c.loc["rte", "power_alpha"] == pytest.approx(0.05)


def test_runs_scored_0_are_counted_for_every_claim_that_uses_them():
    """Two constant-prediction BERTAdam runs on STS-B enter RQ 1 and both RQ 2 sub-claims at 0: claims.json
    counts them for each, and claims.md says how many per task."""
    from pipeline.claims import comparisons, degenerate_claim
    from pipeline.degenerate import flag_runs
    from pipeline.reported import load_reported
    from pipeline.tables import table_claims

    cfg = synthetic_config()
    rows = []
    for s in range(6):
        rows.append({"task": "sts-b", "condition": "debiased", "seed": s, "test_best": 0.80 + 0.01 * s})
        collapsed = s < 2
        rows.append({"task": "sts-b", "condition": "bertadam", "seed": s,
                     "test_best": np.nan if collapsed else 0.78 + 0.01 * s, "pred_std_best": 0.0 if collapsed else 1.0})
    f = flag_runs(_runs(rows), cfg)
    rep = load_reported()
    table, js = table_claims(comparisons(f, cfg, rep), degenerate_claim(f, cfg, rep), cfg)
    for claim in ("bias_correction", "bias_correction_fewer_degenerate", "bias_correction_smaller_spread"):
        assert js[claim]["sts-b"]["runs_scored_0"] == 2, claim
    d = table.display.set_index("RQ")
    col = "runs scored 0 (undefined correlation)"
    assert d.loc["1", col] == "sts-b: 2" and d.loc["2a", col] == "sts-b: 2" and d.loc["2b", col] == "sts-b: 2"
    assert table.numbers.set_index("comparison").loc["bias_correction_fewer_degenerate", "runs_scored_0"] == 2


def test_weight_pull_is_exact_with_the_warm_up():
    """lambda x lr x the sum of the engine's schedule, warm-up included: 48 steps with 4 of warm-up sum to
    24.0 (without warm-up 24.5), so prior WD 1.0 at lr 1e-4 pulls exactly 0.24%; a recorded warm-up (here
    none) wins over the configured ratio."""
    from pipeline.claims import schedule_sum, weight_pull
    from pipeline.optim import linear_schedule

    cfg = synthetic_config()
    rows = [
        {"task": "sts-b", "condition": c, "seed": s, "test_best": 0.8, "lr": 1e-4, "total_steps": 48,
         "prior_wd": 1.0 if c == "prior_wd" else 0.0, "weight_decay": 0.0}
        for c in ("debiased", "prior_wd")
        for s in range(4)
    ]
    pw = weight_pull(_runs(rows), cfg, "sts-b", "debiased", "prior_wd")
    assert pw["warmup"] == 4 and schedule_sum(48, 4) == pytest.approx(24.0, abs=1e-12)
    assert pw["pull"] == pytest.approx(1.0 * 1e-4 * sum(linear_schedule(s, 48, 4) for s in range(48)), rel=1e-12)
    assert pw["pull"] == pytest.approx(0.0024, rel=1e-12)
    recorded = weight_pull(_runs([{**r, "warmup_steps": 0} for r in rows]), cfg, "sts-b", "debiased", "prior_wd")
    assert recorded["warmup"] == 0 and recorded["pull"] == pytest.approx(1e-4 * 24.5, rel=1e-12)
