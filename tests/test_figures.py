"""Figures: each CSV holds exactly the numbers taken from the runs it came from (checked against the
per-run files, not pixels), each PNG is a real image of sensible size, and the output is deterministic.
Runs on the synthetic study of test_analysis (no torch, no finished study needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from test_analysis import synthetic, synthetic_config  # noqa: F401  (synthetic: the shared study fixture)


@pytest.fixture(scope="module")
def figs(synthetic):  # noqa: F811
    from pipeline import figures

    root, cfg = synthetic["root"], synthetic["cfg"]
    index = figures.run_figures(
        cfg,
        root,
        root / "stats" / "runs_flagged.csv",
        root / "summary" / "curves.csv",
        root / "summary" / "drift.csv",
        root / "figures",
    )
    flagged = pd.read_csv(root / "stats" / "runs_flagged.csv")
    return {
        "root": root,
        "cfg": cfg,
        "index": index,
        "runs": flagged,
        "dir": root / "figures",
        "report": flagged[flagged["seed_role"] == "report"],
    }


def _csv(figs, name):
    return pd.read_csv(figs["dir"] / f"{name}.csv")


def _run_file(figs, task, cond, seed, name):
    return pd.read_csv(figs["root"] / "runs" / task / cond / f"seed{seed}" / name)


def test_every_planned_figure_is_a_png_of_sensible_size_with_its_csv(figs):
    from pipeline.analysis_cli import planned_figures
    from pipeline.figures import png_size

    names = planned_figures(figs["cfg"])
    assert [f["name"] for f in figs["index"]] == names
    assert json.loads((figs["dir"] / "index.json").read_text())["figures"] == figs["index"]
    for name in names:
        w, h = png_size(figs["dir"] / f"{name}.png")
        assert 400 <= w <= 4000 and 250 <= h <= 3000, (name, w, h)
        assert (figs["dir"] / f"{name}.csv").exists()
        data = (figs["dir"] / f"{name}.png").read_bytes()
        assert b"matplotlib" not in data.lower()  # no Software/version entry in the PNG metadata
    for f in figs["index"]:
        assert len(f["caption"]) > 60


def test_png_size_rejects_non_png(tmp_path):
    from pipeline.figures import png_size

    (tmp_path / "x.png").write_bytes(b"not a png at all, really not")
    with pytest.raises(ValueError):
        png_size(tmp_path / "x.png")


def test_fig01_theory_and_measured_ratio(figs):
    from pipeline.stats import bias_ratio

    d = _csv(figs, "fig01_bias_ratio")
    th = d[d["kind"] == "theory"]
    assert np.allclose(th["value"], bias_ratio(th["step"]))
    assert th["value"].max() == pytest.approx(6.57, abs=0.01)
    steps = d[d["kind"] == "task_steps"].set_index("task")["step"]
    rep = figs["runs"]
    for task in ("rte", "sts-b"):
        assert (
            steps[task]
            == rep[(rep["task"] == task) & (rep["condition"] == "debiased")]["total_steps"].median()
        )
    m = d[d["kind"] == "measured"]
    # the synthetic BERTAdam updates are the debiased ones times the bias ratio: measured == analytic
    assert len(m) == 2 * 9 * 4 and np.allclose(m["value"], bias_ratio(m["step"]))
    assert (m["n"] == 8).all()
    # a ratio computed by hand from two update logs of the same seed
    a = _run_file(figs, "rte", "bertadam", 3, "updates.csv")
    b = _run_file(figs, "rte", "debiased", 3, "updates.csv")
    r = a.merge(b, on=["step", "name"])
    assert np.allclose(r["update_l2_x"] / r["update_l2_y"], bias_ratio(r["step"]))


def test_fig02_points_are_the_runs(figs):
    d = _csv(figs, "fig02_optimiser_test")
    rep = figs["report"]
    want = rep[rep["condition"].isin(["bertadam", "debiased"])].sort_values(["task", "condition", "seed"])
    assert len(d) == len(want) == 32
    assert np.allclose(d["test_best"], want["test_best"], equal_nan=True)
    assert d["degenerate"].tolist() == want["degenerate"].tolist()
    assert d["degenerate"].sum() == 6  # 4 RTE below 55%, one NaN and one collapsed STS-B run
    t = _csv(figs, "fig_test_by_condition")
    assert len(t) == len(rep)
    assert (
        t.groupby(["task", "condition"]).size().to_dict()
        == rep.groupby(["task", "condition"]).size().to_dict()
    )


def test_fig03_training_loss_band_from_run_curves(figs):
    d = _csv(figs, "fig03_train_loss_optimiser")
    for task, cond in (("rte", "bertadam"), ("sts-b", "debiased")):
        seeds = figs["runs"].query("task == @task and condition == @cond")["seed"]
        per = pd.concat([_run_file(figs, task, cond, s, "curve.csv") for s in seeds])
        g = per.groupby("step")["train_loss"]
        got = d[(d["task"] == task) & (d["condition"] == cond)].set_index("step").sort_index()
        assert (
            np.allclose(got["mean"], g.mean())
            and np.allclose(got["min"], g.min())
            and np.allclose(got["max"], g.max())
        )
        assert (got["n_runs"] == len(seeds)).all()


def test_fig04_expected_performance_matches_closed_form(figs):
    from pipeline.stats import expected_max_closed_form

    d = _csv(figs, "fig04_expected_test")
    rep = figs["report"]
    g = rep[(rep["task"] == "rte") & (rep["condition"] == "reinit")].sort_values("seed")
    e = d[(d["task"] == "rte") & (d["condition"] == "reinit")].set_index("k")
    assert list(e.index) == list(range(1, len(g) + 1))
    for k in (1, 3, 8):
        exact = expected_max_closed_form(g["val_best"], g["test_best"], k)
        se = e.loc[k, "std_test"] / np.sqrt(figs["cfg"]["analysis"]["expected_draws"])
        assert abs(e.loc[k, "mean_test"] - exact) <= 4 * se + 1e-9, k
    v = _csv(figs, "fig12_expected_val")
    pd.testing.assert_frame_equal(d, v)  # one set of draws, both panels
    assert (np.diff(e["mean_val"].to_numpy()) >= -0.002).all()  # validation rises with k


def test_fig05_validation_of_sweep_and_standard(figs):
    d = _csv(figs, "fig05_reinit_val")
    runs = figs["runs"]
    members = runs[runs["condition"].str.startswith("reinit_sweep-") | (runs["condition"] == "debiased")]
    assert len(d) == len(members)
    m = d.merge(runs, on=["task", "condition", "seed"], suffixes=("", "_run"))
    assert np.allclose(m["val_best"], m["val_best_run"])
    assert set(d["setting"]) == {"Standard", "Re-init L=1", "Re-init L=2", "Re-init L=3"}
    lay = _csv(figs, "fig05b_metric_vs_layers").set_index(["task", "setting"])
    g = runs[(runs["task"] == "sts-b") & (runs["condition"] == "reinit_sweep-L2")]
    assert lay.loc[("sts-b", "Re-init L=2"), "val_mean"] == pytest.approx(g["val_best"].mean())
    assert lay.loc[("sts-b", "Re-init L=2"), "n"] == len(g)


def test_fig07_drift_from_run_logs(figs):
    d = _csv(figs, "fig07_drift_steps")
    assert {"debiased", "reinit"} <= set(d["condition"])
    got = d[(d["task"] == "rte") & (d["condition"] == "debiased") & (d["name"] == "block3")].set_index("step")
    per = pd.concat([_run_file(figs, "rte", "debiased", s, "drift.csv") for s in range(8)])
    per = per[(per["level"] == "block") & (per["name"] == "block3")].groupby("step")["l2"]
    assert np.allclose(got["l2_mean"], per.mean()) and np.allclose(got["l2_max"], per.max())
    dd = _csv(figs, "fig07b_drift_depth")
    last = dd[(dd["task"] == "rte") & (dd["condition"] == "longer")]
    assert (last["step"] == 8).all() and len(last) == 9
    assert last["depth"].is_monotonic_increasing


def test_fig08_curves_and_steps(figs):
    d = _csv(figs, "fig08_val_curves")
    got = d[(d["task"] == "rte") & (d["condition"] == "debiased")].set_index("step")
    per = pd.concat([_run_file(figs, "rte", "debiased", s, "curve.csv") for s in range(8)]).dropna(
        subset=["val_accuracy"]
    )
    assert np.allclose(got["mean"], per.groupby("step")["val_accuracy"].mean())
    s = _csv(figs, "fig08b_metric_vs_steps").set_index(["task", "setting", "total_steps"])
    runs = figs["runs"]
    longer = runs[(runs["task"] == "sts-b") & (runs["condition"] == "longer")]
    assert s.loc[("sts-b", "Standard", 8), "val_mean"] == pytest.approx(longer["val_best"].mean())
    std = runs[(runs["task"] == "sts-b") & (runs["condition"] == "debiased")]
    assert s.loc[("sts-b", "Standard", 4), "n"] == len(std)
    # stabilisers (mixout, llrd, ...) are not pooled into Standard
    assert "mixout" not in " ".join(s["conditions"])


def test_figures_are_deterministic(figs, tmp_path):
    from pipeline import figures

    root = figs["root"]
    names = ["fig01_bias_ratio", "fig04_expected_test"]
    figures.run_figures(
        figs["cfg"],
        root,
        root / "stats" / "runs_flagged.csv",
        root / "summary" / "curves.csv",
        root / "summary" / "drift.csv",
        tmp_path,
        names=names,
    )
    for n in names:
        assert (tmp_path / f"{n}.png").read_bytes() == (figs["dir"] / f"{n}.png").read_bytes(), n
        assert (tmp_path / f"{n}.csv").read_bytes() == (figs["dir"] / f"{n}.csv").read_bytes(), n


def test_seed_grid_figures(tmp_path):
    """Fig. 9/10 on a constructed 3 x 3 grid of init x data seeds with a known value per cell."""
    from pipeline import figures

    cfg = synthetic_config()
    rows = []
    for i in range(3):
        for j in range(3):
            for layers in (0, 2):
                rows.append(
                    {
                        "task": "rte",
                        "condition": f"grid-i{i}-L{layers}",
                        "seed": j,
                        "init_seed": i,
                        "data_seed": j,
                        "metric": "accuracy",
                        "val_best": 0.6 + 0.01 * i + 0.001 * j + 0.05 * (layers > 0),
                        "test_best": 0.6,
                        "total_steps": 4,
                        "degenerate": False,
                        "reinit_layers": layers,
                        "reinit_pooler": layers > 0,
                        "bias_correction": True,
                        "mixout_p": 0.0,
                        "prior_wd": 0.0,
                        "weight_decay": 0.0,
                        "llrd_eta": 1.0,
                        "intermediate_task": np.nan,
                    }
                )
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    figures.run_figures(
        cfg,
        tmp_path,
        tmp_path / "runs.csv",
        None,
        None,
        tmp_path / "f",
        names=["fig09_seed_grid", "fig10_seed_std"],
    )
    g = pd.read_csv(tmp_path / "f" / "fig09_seed_grid.csv").set_index(["setting", "init_seed", "data_seed"])
    assert g.loc[("Standard", 2, 1), "val_mean"] == pytest.approx(0.621)
    assert g.loc[("Re-init L=2", 0, 0), "val_mean"] == pytest.approx(0.65)
    s = pd.read_csv(tmp_path / "f" / "fig10_seed_std.csv")
    init_fixed = s[(s["setting"] == "Standard") & (s["fixed"] == "init seed fixed")]
    assert np.allclose(init_fixed["val_std"], np.std([0, 0.001, 0.002], ddof=1))
    data_fixed = s[(s["setting"] == "Standard") & (s["fixed"] == "data seed fixed")]
    assert np.allclose(data_fixed["val_std"], np.std([0, 0.01, 0.02], ddof=1))


def test_missing_data_still_writes_the_planned_files(tmp_path):
    from pipeline import figures

    cfg = synthetic_config()
    runs = pd.DataFrame(
        columns=[
            "task",
            "condition",
            "seed",
            "metric",
            "test_best",
            "val_best",
            "degenerate",
            "degenerate_reason",
            "total_steps",
            "reinit_layers",
            "reinit_pooler",
            "seed_role",
        ]
    )
    runs.to_csv(tmp_path / "runs.csv", index=False)
    idx = figures.run_figures(
        cfg,
        tmp_path,
        tmp_path / "runs.csv",
        None,
        None,
        tmp_path / "f",
        names=["fig02_optimiser_test", "fig03_train_loss_optimiser", "fig07_drift_steps"],
    )
    for f in idx:
        assert figures.png_size(tmp_path / "f" / f["png"])[0] > 300
        assert (tmp_path / "f" / f["csv"]).exists()


def test_spread_sources_separates_init_data_and_subset():
    """val = a[init] + b[data] + c[subset]: the std with only one factor varying is that factor's std,
    whatever the other two are fixed at; a factor that never varies alone is absent."""
    from pipeline.figures import spread_sources

    a, b, c = [0.0, 0.04, 0.01], [0.0, 0.002, 0.001], [0.0, 0.02]
    rows = []
    for i, ai in enumerate(a):
        for j, bj in enumerate(b):
            for k, ck in enumerate(c):
                rows.append({"task": f"sts-b_sub{k}", "glue_task": "sts-b", "subset_seed": k, "condition": f"g-init{i}",
                             "seed": j, "init_seed": i, "data_seed": j, "val_best": 0.5 + ai + bj + ck,
                             "reinit_layers": 0, "reinit_pooler": False, "bias_correction": True, "mixout_p": 0.0,
                             "prior_wd": 0.0, "weight_decay": 0.0, "llrd_eta": 1.0, "intermediate_task": np.nan})
    runs = pd.DataFrame(rows)
    got = spread_sources(runs).set_index("factor")
    assert got.loc["init_seed", "std_mean"] == pytest.approx(np.std(a, ddof=1))
    assert got.loc["data_seed", "std_mean"] == pytest.approx(np.std(b, ddof=1))
    assert got.loc["subset_seed", "std_mean"] == pytest.approx(np.std(c, ddof=1))
    assert got.loc["init_seed", "n_groups"] == len(b) * len(c)
    assert set(got["task"]) == {"sts-b"} and set(got["setting"]) == {"Standard"}
    one_subset = spread_sources(runs[runs["subset_seed"] == 0])
    assert "subset_seed" not in set(one_subset["factor"])
    bertadam = runs.assign(bias_correction=False)  # not a plain run: excluded
    assert spread_sources(bertadam).empty
