"""The paper's figures at this study's scale: seaborn/matplotlib (Agg), one PNG per figure with the CSV
of exactly the numbers it plots beside it (same stem), and figures/index.json with each caption.

Which figures a study gets, and the paper item each regenerates, is the one list plan.FIGURES, so the
workflow knows every file in advance; this module only draws them (DRAW: name -> drawing function). A
planned figure whose data turn out to be missing is still written, with a panel saying so and an empty
CSV. Output is deterministic: fixed seeds for the expected-performance draws, no timestamps or version
strings in the PNG metadata.

Values are on the metric's 0-1 scale, as the paper's figures show them.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .plan import (EXPECTED_ROLES, FIGURE_BY_NAME, family_of, families_swept_on, planned_figures, report_runs,
                   roles)
from .io import atomic_write_bytes, atomic_write_csv, atomic_write_json

DPI = 100
JITTER_SEED = 0  # strip plots' horizontal jitter (run_figures)
METRIC_LABEL = {
    "accuracy": "accuracy",
    "f1": "F1",
    "spearman": "Spearman correlation",
    "pearson": "Pearson correlation",
    "mcc": "Matthews correlation",
}
PALETTE = "colorblind"


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE)
    plt.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "svg.hashsalt": "pipeline",
        }
    )
    return plt, sns


def _ticker():
    import matplotlib.ticker

    return matplotlib.ticker


def png_bytes(fig) -> bytes:
    """PNG without a Software/creation-time entry, so the bytes depend on the data only."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    try:
        return bool(v) and not (isinstance(v, float) and np.isnan(v))
    except (TypeError, ValueError):
        return False


def block_order(name: str) -> float:
    """embeddings, block0..blockN, pooler, head: depth order."""
    if name == "embeddings":
        return -1
    m = re.fullmatch(r"block(\d+)", str(name))
    if m:
        return int(m.group(1))
    return {"pooler": 1000, "head": 1001}.get(name, 2000)


def metric_of(runs: pd.DataFrame, task: str) -> str:
    m = runs.loc[runs["task"] == task, "metric"]
    return str(m.iloc[0]) if len(m) else "metric"


def reinit_label(layers, pooler) -> str:
    layers = 0 if layers is None or (isinstance(layers, float) and np.isnan(layers)) else int(layers)
    if layers == 0 and not _truthy(pooler):
        return "Standard"
    if layers == 0:
        return "Pooler only"
    return f"Re-init L={layers}"


def _reinit_sort(label: str) -> int:
    if label == "Standard":
        return -2
    if label == "Pooler only":
        return -1
    return int(label.split("=")[1])


class Ctx:
    def __init__(self, cfg, root, runs, curves, drift):
        self.cfg, self.root, self.runs, self.curves, self.drift = cfg, Path(root), runs, curves, drift
        self.roles = roles(cfg)
        self.a = cfg["analysis"]
        self.report = report_runs(runs, cfg)
        self.tasks = sorted(runs["task"].unique()) if len(runs) else []

    def metric_label(self, task, split="test"):
        return f"{split} {METRIC_LABEL.get(metric_of(self.runs, task), metric_of(self.runs, task))}"


def _empty(plt, title, reason):
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.axis("off")
    ax.set_title(title)
    ax.text(
        0.5, 0.5, f"No data for this figure in this study:\n{reason}", ha="center", va="center", wrap=True
    )
    return fig


# The widest figure the report shows at full size (its page is 1200 px; DPI px per inch): a wider one is
# scaled down and its text becomes unreadable. Small multiples wrap onto more rows instead.
PAGE_WIDTH_IN = 12.0


def _grid(plt, n, ncols=None, w=4.6, h=3.6, sharey=False):
    w = min(w, PAGE_WIDTH_IN)
    ncols = max(1, min(ncols or min(n, 4), int(PAGE_WIDTH_IN // w)))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, sharey=sharey)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _points(ax, sns, df, x, y, order, hue=None, hue_order=None, palette=None):
    """Box (no fliers) plus every run as a point; degenerate runs as red crosses."""
    kw = dict(x=x, y=y, order=order, ax=ax)
    if hue:
        kw.update(hue=hue, hue_order=hue_order, palette=palette, dodge=True)
    d = df[np.isfinite(df[y])]
    with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert`
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.boxplot(data=d, showfliers=False, boxprops={"alpha": 0.35}, legend=False if hue else "auto", **kw)
    ok, bad = d[~d["degenerate"].astype(bool)], d[d["degenerate"].astype(bool)]
    if len(ok):
        sns.stripplot(data=ok, size=5, jitter=0.15, legend=False, **kw)
    if len(bad):
        kb = dict(kw)
        if hue:
            kb["palette"] = {h: "red" for h in hue_order}
        else:
            kb["color"] = "red"
        sns.stripplot(data=bad, size=8, marker="X", jitter=0.15, legend=False, linewidth=0.5, **kb)


# ---- Fig. 1 -------------------------------------------------------------------------------------


def fig01_bias_ratio(ctx, plt, sns):
    b1 = float(ctx.cfg["train"]["adam_beta1"])
    b2 = float(ctx.cfg["train"]["adam_beta2"])
    t = np.unique(np.round(np.logspace(0, 6, 400)))
    rows = [
        {
            "kind": "theory",
            "task": "",
            "block": "",
            "step": float(s),
            "value": float(v),
            "min": np.nan,
            "max": np.nan,
            "n": np.nan,
        }
        for s, v in zip(t, stats.bias_ratio(t, b1, b2))
    ]
    std = ctx.roles["standard"]
    for task in ctx.tasks:
        g = ctx.runs[(ctx.runs["task"] == task) & (ctx.runs["condition"] == std)]
        g = g if len(g) else ctx.runs[ctx.runs["task"] == task]
        steps = float(g["total_steps"].median())
        rows.append(
            {
                "kind": "task_steps",
                "task": task,
                "block": "",
                "step": steps,
                "value": float(stats.bias_ratio(steps, b1, b2)),
                "min": np.nan,
                "max": np.nan,
                "n": len(g),
            }
        )
    # measured: BERTAdam / debiased update norm per block, paired by task and seed
    ba, de = ctx.roles["bertadam"], ctx.roles["debiased"]
    meas = []
    rep = ctx.report
    for task in ctx.tasks:
        sa = set(rep.loc[(rep["task"] == task) & (rep["condition"] == ba), "seed"].astype(int))
        sb = set(rep.loc[(rep["task"] == task) & (rep["condition"] == de), "seed"].astype(int))
        for seed in sorted(sa & sb):
            pa = ctx.root / "runs" / task / ba / f"seed{seed}" / "updates.csv"
            pb = ctx.root / "runs" / task / de / f"seed{seed}" / "updates.csv"
            if not (pa.exists() and pb.exists()):
                continue
            ua, ub = pd.read_csv(pa), pd.read_csv(pb)
            if ua.empty or ub.empty:
                continue
            m = ua.merge(ub, on=["step", "name"], suffixes=("_ba", "_de"))
            m = m[m["update_l2_de"] > 0]
            m["ratio"] = m["update_l2_ba"] / m["update_l2_de"]
            meas.append(m.assign(task=task, seed=seed))
    if meas:
        mm = pd.concat(meas, ignore_index=True)
        agg = mm.groupby(["task", "name", "step"])["ratio"].agg(["mean", "min", "max", "count"]).reset_index()
        for _, r in agg.iterrows():
            rows.append(
                {
                    "kind": "measured",
                    "task": r["task"],
                    "block": r["name"],
                    "step": float(r["step"]),
                    "value": r["mean"],
                    "min": r["min"],
                    "max": r["max"],
                    "n": int(r["count"]),
                }
            )
    data = pd.DataFrame(rows, columns=["kind", "task", "block", "step", "value", "min", "max", "n"])
    mtasks = sorted(data.loc[data["kind"] == "measured", "task"].unique())
    fig, axes = _grid(plt, 1 + max(1, len(mtasks)), ncols=min(3, 1 + max(1, len(mtasks))), w=5.2, h=4.0)
    ax = axes[0]
    th = data[data["kind"] == "theory"]
    ax.plot(th["step"], th["value"], color="black", lw=2, label=f"(1-{b1}^t)/sqrt(1-{b2}^t)")
    colors = sns.color_palette(PALETTE, max(1, len(ctx.tasks)))
    for i, (_, r) in enumerate(data[data["kind"] == "task_steps"].iterrows()):
        ax.axvline(
            r["step"],
            color=colors[i % len(colors)],
            ls="--",
            lw=1.2,
            label=f"{r['task']}: {int(r['step'])} steps (ratio {r['value']:.2f})",
        )
    ax.set_xscale("log")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_xlabel("optimisation step t (log scale)")
    ax.set_ylabel("BERTAdam / debiased update size")
    ax.set_title("Bias of BERTAdam's update (analytic)")
    ax.legend(fontsize=8, loc="upper right")
    if not mtasks:
        axes[1].axis("off")
        axes[1].text(
            0.5,
            0.5,
            "No paired BERTAdam/debiased runs\nwith update logs in this study",
            ha="center",
            va="center",
        )
    for ax, task in zip(axes[1:], mtasks):
        d = data[(data["kind"] == "measured") & (data["task"] == task)]
        for blk in sorted(d["block"].unique(), key=block_order):
            b = d[d["block"] == blk].sort_values("step")
            ax.plot(b["step"], b["value"], marker="o", ms=3, lw=1.2, label=blk)
        s = np.arange(1, int(d["step"].max()) + 1)
        ax.plot(s, stats.bias_ratio(s, b1, b2), color="black", lw=2, ls="--", label="analytic")
        ax.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True))
        ax.set_xlabel("optimisation step")
        ax.set_ylabel("update L2 norm ratio (BERTAdam / debiased)")
        n = int(d["n"].max())
        ax.set_title(f"{task}: measured, mean of {n} seed pair(s)")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    cap = (
        "Fig. 1. First panel: the ratio (1-b1^t)/sqrt(1-b2^t) by which BERTAdam's update exceeds "
        "bias-corrected Adam's, against the step (log axis), with a dashed line at each task's Standard step count in this study. "
        "Other panels: measured ratio of the update L2 norm of BERTAdam to debiased Adam per block (embeddings, "
        "transformer blocks, pooler, head) over the first logged steps of runs paired by seed, with the analytic "
        "curve dashed. Both runs share the learning-rate schedule, so the ratio isolates the bias correction "
        "(the trajectories diverge after step 1)."
    )
    return fig, data, cap


# ---- Fig. 2 and test metric per condition -----------------------------------------------------------


def fig02_optimiser_test(ctx, plt, sns):
    ba, de = ctx.roles["bertadam"], ctx.roles["debiased"]
    d = ctx.report[ctx.report["condition"].isin([ba, de])]
    cols = ["task", "condition", "seed", "metric", "test_best", "degenerate", "degenerate_reason"]
    data = d[cols].sort_values(["task", "condition", "seed"]).reset_index(drop=True)
    if data.empty:
        return _empty(plt, "Fig. 2", "no BERTAdam/debiased runs on report seeds"), data, "Fig. 2: no data."
    tasks = sorted(data["task"].unique())
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH_IN, max(5.5, 2.4 * len(tasks))), 4.4))
    pal = dict(zip([de, ba], sns.color_palette(PALETTE, 2)))
    _points(ax, sns, data, "task", "test_best", tasks, hue="condition", hue_order=[de, ba], palette=pal)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(color=pal[de], alpha=0.6, label=f"{de} (bias correction)"),
        Patch(color=pal[ba], alpha=0.6, label=f"{ba} (no correction)"),
        Line2D([], [], marker="X", color="red", ls="", label="degenerate run"),
    ]
    ax.legend(handles=handles, fontsize=8)
    ax.set_xticks(range(len(tasks)))
    nan = data[~np.isfinite(data["test_best"])].groupby("task").size()
    ax.set_xticklabels(
        [
            f"{t}\n({METRIC_LABEL.get(metric_of(ctx.runs, t), '')})"
            + (f"\n{int(nan[t])} NaN run(s) not drawn" if t in nan else "")
            for t in tasks
        ]
    )
    ax.set_xlabel("task (test metric)")
    ax.set_ylabel("test performance (0-1, best-validation checkpoint)")
    ax.set_title("Test performance with and without bias correction")
    fig.tight_layout()
    n = data.groupby(["task", "condition"]).size()
    cap = (
        "Fig. 2. Test metric of every run (points; red crosses are degenerate runs) and its distribution (box: "
        f"quartiles and median) per task, debiased Adam vs BERTAdam, report seeds only (runs per box: "
        f"{', '.join(f'{t}/{c} {k}' for (t, c), k in n.items())})."
    )
    return fig, data, cap


def fig_test_by_condition(ctx, plt, sns):
    cols = ["task", "condition", "seed", "metric", "test_best", "degenerate", "degenerate_reason"]
    data = ctx.report[cols].sort_values(["task", "condition", "seed"]).reset_index(drop=True)
    if data.empty:
        return _empty(plt, "Test metric per condition", "no runs on report seeds"), data, "No data."
    order_all = list(ctx.cfg["conditions"])
    tasks = sorted(data["task"].unique())
    fig, axes = _grid(
        plt, len(tasks), ncols=min(2, len(tasks)), w=max(5.0, 0.75 * data["condition"].nunique() + 2), h=4.2
    )
    for ax, task in zip(axes, tasks):
        d = data[data["task"] == task]
        conds = sorted(
            d["condition"].unique(), key=lambda c: (order_all.index(c) if c in order_all else 99, c)
        )
        _points(ax, sns, d, "condition", "test_best", conds)
        ax.set_xticks(range(len(conds)))
        ax.set_xticklabels(conds, rotation=35, ha="right")
        ax.set_xlabel("condition")
        ax.set_ylabel(f"{ctx.metric_label(task)} (0-1)")
        ax.set_title(f"{task}: test metric per condition")
    fig.tight_layout()
    cap = (
        "Test metric (best-validation checkpoint) of every run per condition and task: box of quartiles and "
        "median, every run as a point, degenerate runs as red crosses (an undefined correlation of a collapsed run "
        "is drawn at 0, no skill, as the tests score it; a metric missing for another reason cannot be drawn and "
        "is listed in the CSV and the degenerate table). Report seeds only."
    )
    return fig, data, cap


# ---- curves -------------------------------------------------------------------------------------


def _curve_fig(ctx, plt, sns, conds, col, title, ylabel_of, caption):
    c = ctx.curves
    keep = ["task", "condition", "step", f"{col}_mean", f"{col}_min", f"{col}_max", "n_runs"]
    frames = []
    for task in ctx.tasks:
        colname = col.format(metric=metric_of(ctx.runs, task))
        k = [kk.format(metric=metric_of(ctx.runs, task)) for kk in keep]
        if c is None or c.empty or k[3] not in c.columns:
            continue
        d = c[(c["task"] == task) & c["condition"].isin(conds)][k].dropna(subset=[k[3]])
        d.columns = ["task", "condition", "step", "mean", "min", "max", "n_runs"]
        frames.append(d.assign(quantity=colname))
    data = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["task", "condition", "step", "mean", "min", "max", "n_runs", "quantity"])
    )
    if data.empty:
        return _empty(plt, title, f"no curves for {', '.join(conds)}"), data, caption
    tasks = sorted(data["task"].unique())
    fig, axes = _grid(plt, len(tasks), ncols=min(4, len(tasks)))
    pal = dict(zip(conds, sns.color_palette(PALETTE, len(conds))))
    for ax, task in zip(axes, tasks):
        for cond in conds:
            d = data[(data["task"] == task) & (data["condition"] == cond)].sort_values("step")
            if d.empty:
                continue
            n = int(d["n_runs"].max())
            ax.plot(
                d["step"],
                d["mean"],
                color=pal[cond],
                lw=1.8,
                marker="o" if len(d) < 15 else None,
                ms=3,
                label=f"{cond} (mean of {n} runs)",
            )
            ax.fill_between(
                d["step"].to_numpy(float),
                d["min"].to_numpy(float),
                d["max"].to_numpy(float),
                color=pal[cond],
                alpha=0.2,
                lw=0,
            )
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel_of(task))
        ax.set_title(f"{task}: {title}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, data, caption


def fig03_train_loss_optimiser(ctx, plt, sns):
    conds = [ctx.roles["debiased"], ctx.roles["bertadam"]]
    return _curve_fig(
        ctx,
        plt,
        sns,
        conds,
        "train_loss",
        "training loss",
        lambda t: "training loss (cross-entropy / MSE)",
        "Fig. 3 / 11. Training loss per step: mean across seeds (line) and min-max range (band), "
        "debiased Adam vs BERTAdam, every task of the study.",
    )


def fig06_train_loss_reinit(ctx, plt, sns):
    conds = [ctx.roles["standard"], ctx.roles["reinit"]]
    return _curve_fig(
        ctx,
        plt,
        sns,
        conds,
        "train_loss",
        "training loss",
        lambda t: "training loss (cross-entropy / MSE)",
        "Fig. 6. Training loss per step: mean across seeds (line) and min-max range (band), Standard vs "
        "Re-init with the L chosen on validation.",
    )


def fig08_val_curves(ctx, plt, sns):
    conds = [ctx.roles["standard"], ctx.roles["reinit"]]
    return _curve_fig(
        ctx,
        plt,
        sns,
        conds,
        "val_{metric}",
        "validation metric",
        lambda t: f"{ctx.metric_label(t, 'validation')} (0-1)",
        "Fig. 8 / 14. Validation metric at each evaluation step: mean across seeds (line) and min-max "
        "range (band), Standard vs Re-init (L chosen on validation).",
    )


# ---- Fig. 4 / 12 ------------------------------------------------------------------------------------


def _expected(ctx):
    if hasattr(ctx, "_expected_cache"):
        return ctx._expected_cache
    r = ctx.roles
    conds = []
    for c in (r[k] for k in EXPECTED_ROLES):
        if c not in conds:
            conds.append(c)
    draws = int(ctx.a["expected_draws"])
    seed = int(ctx.a["expected_seed"])
    frames = []
    for task in ctx.tasks:
        for cond in conds:
            g = ctx.report[(ctx.report["task"] == task) & (ctx.report["condition"] == cond)].sort_values(
                "seed"
            )
            if g.empty:
                continue
            e = stats.expected_max_performance(
                g["val_best"].to_numpy(float),
                g["test_best"].to_numpy(float),
                ks=range(1, len(g) + 1),
                n_draws=draws,
                seed=seed,
            )
            frames.append(e.assign(task=task, condition=cond, n_runs=len(g)))
    cols = ["task", "condition", "n_runs", "k", "mean_test", "std_test", "mean_val", "std_val"]
    ctx._expected_cache = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
    return ctx._expected_cache


def _expected_fig(ctx, plt, sns, split, title, caption):
    data = _expected(ctx)
    if data.empty:
        return _empty(plt, title, "no runs on report seeds"), data, caption
    tasks = sorted(data["task"].unique())
    fig, axes = _grid(plt, len(tasks), ncols=min(4, len(tasks)))
    conds = list(dict.fromkeys(data["condition"]))
    pal = dict(zip(conds, sns.color_palette(PALETTE, len(conds))))
    for ax, task in zip(axes, tasks):
        for cond in conds:
            d = data[(data["task"] == task) & (data["condition"] == cond)]
            if d.empty:
                continue
            m, s = d[f"mean_{split}"].to_numpy(float), d[f"std_{split}"].to_numpy(float)
            ax.plot(
                d["k"],
                m,
                color=pal[cond],
                marker="o",
                ms=3,
                label=f"{cond} ({int(d['n_runs'].iloc[0])} runs)",
            )
            ax.fill_between(d["k"].to_numpy(float), m - s, m + s, color=pal[cond], alpha=0.15, lw=0)
        ax.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True))
        ax.set_xlabel("number of random trials k")
        ax.set_ylabel(f"expected {ctx.metric_label(task, 'test' if split == 'test' else 'validation')} (0-1)")
        ax.set_title(f"{task}: {title}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, data, caption


def fig04_expected_test(ctx, plt, sns):
    d = int(ctx.a["expected_draws"])
    return _expected_fig(
        ctx,
        plt,
        sns,
        "test",
        "expected test performance",
        f"Fig. 4. Expected test performance of the run chosen by validation among k random trials "
        f"(Dodge et al. 2020): k runs drawn with replacement, the best on validation kept, its test "
        f"score recorded; {d} draws per k (seed {ctx.a['expected_seed']}); line = mean, band = "
        f"± 1 std over draws. Report seeds only. A run with a NaN test metric that gets chosen makes "
        f"that k's mean NaN (not drawn) rather than being skipped.",
    )


def fig12_expected_val(ctx, plt, sns):
    d = int(ctx.a["expected_draws"])
    return _expected_fig(
        ctx,
        plt,
        sns,
        "val",
        "expected validation performance",
        f"Fig. 12. Expected validation performance of the best of k random trials (same draws as "
        f"Fig. 4, {d} per k): rises monotonically with k, unlike the test curve.",
    )


# ---- Fig. 5 / 13 and metric vs L ---------------------------------------------------------------------


def _reinit_runs(ctx):
    fams = set(families_swept_on(ctx.cfg, ["reinit_layers"]))
    fam = family_of(ctx.cfg)
    members = [c for c in ctx.runs["condition"].unique() if fam.get(c) in fams]
    std = ctx.roles["standard"]
    d = ctx.runs[ctx.runs["condition"].isin(members + [std])].copy()
    d["setting"] = [
        ("Standard" if c == std else reinit_label(lay, p))
        for c, lay, p in zip(d["condition"], d["reinit_layers"], d["reinit_pooler"])
    ]
    d["reinit_layers"] = [(-1 if s == "Standard" else _reinit_sort(s)) for s in d["setting"]]
    return d


def fig05_reinit_val(ctx, plt, sns):
    d = _reinit_runs(ctx)
    cols = [
        "task",
        "condition",
        "setting",
        "reinit_layers",
        "seed",
        "seed_role",
        "metric",
        "val_best",
        "degenerate",
    ]
    data = d[cols].sort_values(["task", "reinit_layers", "seed"]).reset_index(drop=True)
    if data.empty:
        return _empty(plt, "Fig. 5", "no Re-init sweep runs"), data, "Fig. 5: no data."
    tasks = sorted(data["task"].unique())
    fig, axes = _grid(plt, len(tasks), ncols=min(3, len(tasks)), w=5.0)
    for ax, task in zip(axes, tasks):
        t = data[data["task"] == task]
        order = sorted(t["setting"].unique(), key=_reinit_sort)
        _points(ax, sns, t, "setting", "val_best", order)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(
            [f"{o}\n(n={int((t['setting'] == o).sum())})" for o in order], rotation=30, ha="right"
        )
        ax.set_xlabel("re-initialised layers")
        ax.set_ylabel(f"{ctx.metric_label(task, 'validation')} (0-1)")
        ax.set_title(f"{task}: validation metric vs Re-init")
    fig.tight_layout()
    cap = (
        "Fig. 5 / 13. Validation metric (best checkpoint) for Standard, pooler-only and each Re-init L in the "
        "sweep: box and every run (red crosses: degenerate on test). Sweep members run on the selection seeds, "
        "Standard on its own seeds (column seed_role of the CSV)."
    )
    return fig, data, cap


def fig05b_metric_vs_layers(ctx, plt, sns):
    d = _reinit_runs(ctx)
    rows = []
    for (task, setting), g in d.groupby(["task", "setting"]):
        rows.append(
            {
                "task": task,
                "setting": setting,
                "reinit_layers": _reinit_sort(setting) if setting != "Standard" else -1,
                "n": len(g),
                "val_mean": g["val_best"].mean(),
                "val_min": g["val_best"].min(),
                "val_max": g["val_best"].max(),
                "test_mean": g["test_best"].mean(),
                "test_min": g["test_best"].min(),
                "test_max": g["test_best"].max(),
            }
        )
    data = pd.DataFrame(
        rows,
        columns=[
            "task",
            "setting",
            "reinit_layers",
            "n",
            "val_mean",
            "val_min",
            "val_max",
            "test_mean",
            "test_min",
            "test_max",
        ],
    )
    if data.empty:
        return _empty(plt, "Metric vs re-initialised layers", "no Re-init sweep runs"), data, "No data."
    data = data.sort_values(["task", "reinit_layers"]).reset_index(drop=True)
    tasks = sorted(data["task"].unique())
    fig, axes = _grid(plt, len(tasks), ncols=min(3, len(tasks)), w=5.0)
    pal = sns.color_palette(PALETTE, 2)
    for ax, task in zip(axes, tasks):
        t = data[data["task"] == task]
        x = np.arange(len(t))
        for i, split in enumerate(("val", "test")):
            ax.plot(
                x,
                t[f"{split}_mean"],
                marker="o",
                color=pal[i],
                label="validation (selection basis)" if split == "val" else "test (reported only)",
            )
            ax.fill_between(
                x,
                t[f"{split}_min"].to_numpy(float),
                t[f"{split}_max"].to_numpy(float),
                color=pal[i],
                alpha=0.15,
                lw=0,
            )
        ax.set_xticks(x)
        ax.set_xticklabels(t["setting"], rotation=30, ha="right")
        ax.set_xlabel("re-initialised layers (pooler + top L blocks)")
        ax.set_ylabel(f"{METRIC_LABEL.get(metric_of(ctx.runs, task), 'metric')} (0-1)")
        ax.set_title(f"{task}: metric vs number of re-initialised layers")
        ax.legend(fontsize=8)
    fig.tight_layout()
    cap = (
        "Metric against the number of re-initialised layers: mean over runs (line) and min-max (band) of the "
        "validation metric (on which L is chosen) and of the test metric (reported only, never used to choose)."
    )
    return fig, data, cap


# ---- Fig. 7 / 15-18: drift ----------------------------------------------------------------------------


def _drift_conds(ctx):
    fams = set(families_swept_on(ctx.cfg, ["reinit_layers"]))
    fam = family_of(ctx.cfg)
    r = ctx.roles
    present = set(ctx.drift["condition"].unique()) if ctx.drift is not None and not ctx.drift.empty else set()
    conds = [c for c in (r["standard"], r["reinit"]) if c in present]
    conds += sorted((c for c in present if fam.get(c) in fams), key=lambda c: (len(c), c))
    return conds


def fig07_drift_steps(ctx, plt, sns):
    conds = _drift_conds(ctx)
    cols = ["task", "condition", "name", "step", "l2_mean", "l2_min", "l2_max"]
    data = ctx.drift[ctx.drift["condition"].isin(conds)][cols].copy() if conds else pd.DataFrame(columns=cols)
    if data.empty:
        return _empty(plt, "Fig. 7", "no drift logs for Standard/Re-init"), data, "Fig. 7: no data."
    data = data.sort_values(
        ["task", "condition", "name", "step"], key=lambda s: s.map(block_order) if s.name == "name" else s
    ).reset_index(drop=True)
    tasks = sorted(data["task"].unique())
    blocks = sorted(data["name"].unique(), key=block_order)
    # each task's blocks in rows of at most 4 panels (BERT-large has 26 blocks: 7 rows), so the figure fits
    # the report's page at a readable size
    ncols = min(4, len(blocks))
    rows_per_task = int(np.ceil(len(blocks) / ncols))
    fig, axes = plt.subplots(
        len(tasks) * rows_per_task,
        ncols,
        figsize=(2.9 * ncols, 2.4 * len(tasks) * rows_per_task + 0.6),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.set_visible(False)
    pal = dict(zip(conds, sns.color_palette(PALETTE, len(conds))))
    for i, task in enumerate(tasks):
        for j, blk in enumerate(blocks):
            row, col = i * rows_per_task + j // ncols, j % ncols
            ax = axes[row, col]
            ax.set_visible(True)
            for cond in conds:
                d = data[
                    (data["task"] == task) & (data["condition"] == cond) & (data["name"] == blk)
                ].sort_values("step")
                if d.empty:
                    continue
                ax.plot(d["step"], d["l2_mean"], color=pal[cond], lw=1.5, label=cond)
                ax.fill_between(
                    d["step"].to_numpy(float),
                    d["l2_min"].to_numpy(float),
                    d["l2_max"].to_numpy(float),
                    color=pal[cond],
                    alpha=0.15,
                    lw=0,
                )
            ax.set_title(f"{task}: {blk}", fontsize=9)
            if row == axes.shape[0] - 1 or j + ncols >= len(blocks):
                ax.set_xlabel("training step")
            if col == 0:
                ax.set_ylabel("L2 distance to start")
    # one entry per condition drawn in any panel (tasks may run different conditions: the first panel's
    # handles would leave the others' colours unnamed)
    drawn = [c for c in conds if c in set(data["condition"])]
    handles = [plt.Line2D([0], [0], color=pal[c], lw=1.5) for c in drawn]
    fig.legend(
        handles, drawn, loc="upper center", ncol=min(6, len(drawn)), fontsize=8, bbox_to_anchor=(0.5, 1.0)
    )
    fig.suptitle("Weight drift per block against training steps", y=1.04)
    fig.tight_layout()
    cap = (
        "Fig. 7 / 15-18. L2 distance between each block's parameters (all tensors of the block concatenated) and "
        "their values at the start of fine-tuning (pre-trained, or freshly re-initialised), against the training "
        "step: mean across seeds (line), min-max (band), Standard vs Re-init conditions."
    )
    return fig, data, cap


def fig07b_drift_depth(ctx, plt, sns):
    cols = ["task", "condition", "name", "depth", "step", "l2_mean", "l2_min", "l2_max"]
    if ctx.drift is None or ctx.drift.empty:
        return _empty(plt, "Drift vs depth", "no drift logs"), pd.DataFrame(columns=cols), "No data."
    last = ctx.drift.groupby(["task", "condition"])["step"].transform("max")
    data = ctx.drift[ctx.drift["step"] == last].copy()
    data["depth"] = data["name"].map(block_order)
    data = data[cols].sort_values(["task", "condition", "depth"]).reset_index(drop=True)
    tasks = sorted(data["task"].unique())
    fig, axes = _grid(plt, len(tasks), ncols=min(2, len(tasks)), w=6.0, h=4.2)
    conds = sorted(data["condition"].unique())
    pal = dict(zip(conds, sns.color_palette("tab20", len(conds))))
    for ax, task in zip(axes, tasks):
        t = data[data["task"] == task]
        names = sorted(t["name"].unique(), key=block_order)
        pos = {n: i for i, n in enumerate(names)}
        for cond in conds:
            d = t[t["condition"] == cond]
            if d.empty:
                continue
            ax.plot(
                [pos[n] for n in d["name"]],
                d["l2_mean"],
                marker="o",
                ms=3,
                color=pal[cond],
                label=f"{cond} (step {int(d['step'].iloc[0])})",
            )
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right")
        ax.set_xlabel("block (input to output)")
        ax.set_ylabel("L2 distance to start at the final step")
        ax.set_title(f"{task}: drift against depth")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    cap = (
        "Weight drift against depth: each block's L2 distance to its start-of-fine-tuning values at the last "
        "logged step of each condition (mean across seeds)."
    )
    return fig, data, cap


# ---- Fig. 8 / 14: metric vs training steps ------------------------------------------------------------


def plain_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with debiased Adam and no stabiliser (only Re-init and the step count may differ)."""

    def col(name, default):
        return runs[name] if name in runs.columns else pd.Series(default, index=runs.index)

    keep = (
        col("bias_correction", True).map(_truthy)
        & (col("mixout_p", 0.0).fillna(0).astype(float) == 0)
        & (col("prior_wd", 0.0).fillna(0).astype(float) == 0)
        & (col("weight_decay", 0.0).fillna(0).astype(float) == 0)
        & (col("llrd_eta", 1.0).fillna(1).astype(float) == 1)
        & col("intermediate_task", None).isna()
    )
    return runs[keep]


def fig08b_metric_vs_steps(ctx, plt, sns):
    d = plain_runs(ctx.runs).copy()
    d["setting"] = [reinit_label(lay, p) for lay, p in zip(d["reinit_layers"], d["reinit_pooler"])]
    rows = []
    for (task, setting, steps), g in d.groupby(["task", "setting", "total_steps"]):
        rows.append(
            {
                "task": task,
                "setting": setting,
                "total_steps": int(steps),
                "n": len(g),
                "conditions": " ".join(sorted(g["condition"].unique())),
                "val_mean": g["val_best"].mean(),
                "val_min": g["val_best"].min(),
                "val_max": g["val_best"].max(),
                "test_mean": g["test_best"].mean(),
                "test_std": g["test_best"].std(ddof=1),
            }
        )
    data = pd.DataFrame(
        rows,
        columns=[
            "task",
            "setting",
            "total_steps",
            "n",
            "conditions",
            "val_mean",
            "val_min",
            "val_max",
            "test_mean",
            "test_std",
        ],
    )
    if data.empty:
        return _empty(plt, "Metric vs training steps", "no plain runs"), data, "No data."
    tasks = sorted(data["task"].unique())
    fig, axes = _grid(plt, len(tasks), ncols=min(3, len(tasks)), w=5.0)
    settings = sorted(data["setting"].unique(), key=_reinit_sort)
    pal = dict(zip(settings, sns.color_palette(PALETTE, len(settings))))
    for ax, task in zip(axes, tasks):
        for s in settings:
            t = data[(data["task"] == task) & (data["setting"] == s)].sort_values("total_steps")
            if t.empty:
                continue
            ax.plot(t["total_steps"], t["val_mean"], marker="o", color=pal[s], label=f"{s}")
            ax.fill_between(
                t["total_steps"].to_numpy(float),
                t["val_min"].to_numpy(float),
                t["val_max"].to_numpy(float),
                color=pal[s],
                alpha=0.15,
                lw=0,
            )
        ax.set_xscale("log")
        ticks = sorted(data.loc[data["task"] == task, "total_steps"].unique())
        ax.xaxis.set_minor_locator(_ticker().NullLocator())
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(int(t)) for t in ticks])
        ax.set_xlabel("training steps of the run (log scale)")
        ax.set_ylabel(f"{ctx.metric_label(task, 'validation')} (0-1)")
        ax.set_title(f"{task}: validation metric vs training length")
        ax.legend(fontsize=7)
    fig.tight_layout()
    cap = (
        "Fig. 8 / 14. Validation metric (best checkpoint) against the number of training steps of the run, "
        "Standard vs Re-init (by L): mean (line) and min-max (band) over all debiased runs without a stabiliser "
        "at that length (the CSV lists the conditions pooled at each point)."
    )
    return fig, data, cap


# ---- Fig. 9 / 10: two-seed grid -------------------------------------------------------------------


def _seed_grid(ctx):
    d = plain_runs(ctx.runs).copy()
    d["setting"] = [reinit_label(lay, p) for lay, p in zip(d["reinit_layers"], d["reinit_pooler"])]
    keep = []
    for _key, g in d.groupby(["task", "setting"]):
        if (
            g["init_seed"].nunique() >= 2
            and g["data_seed"].nunique() >= 2
            and (g["init_seed"] != g["data_seed"]).any()
        ):
            keep.append(g)
    return pd.concat(keep, ignore_index=True) if keep else pd.DataFrame(columns=list(d.columns))


def fig09_seed_grid(ctx, plt, sns):
    d = _seed_grid(ctx)
    cols = ["task", "setting", "init_seed", "data_seed", "n", "val_mean"]
    if d.empty:
        return (
            _empty(plt, "Fig. 9", "no runs with separate init and data seeds (configs/seed-grid.yaml)"),
            pd.DataFrame(columns=cols),
            "Fig. 9: no data.",
        )
    data = (
        d.groupby(["task", "setting", "init_seed", "data_seed"])["val_best"]
        .agg(["size", "mean"])
        .reset_index()
        .rename(columns={"size": "n", "mean": "val_mean"})
    )
    groups = list(data.groupby(["task", "setting"]))
    fig, axes = _grid(plt, len(groups), ncols=min(2, len(groups)), w=6.0, h=5.0)
    for ax, ((task, s), g) in zip(axes, groups):
        piv = g.pivot(index="init_seed", columns="data_seed", values="val_mean")
        sns.heatmap(
            piv * 100,
            annot=piv.shape[0] <= 12,
            fmt=".1f",
            cmap="viridis",
            ax=ax,
            cbar_kws={"label": f"{ctx.metric_label(task, 'validation')} (x100)"},
        )
        ax.set_xlabel("data-order / dropout seed")
        ax.set_ylabel("initialisation seed")
        ax.set_title(f"{task}: {s}")
    fig.tight_layout()
    return (
        fig,
        data[cols],
        (
            "Fig. 9. Validation metric (x100) of every run of the seed grid: initialisation seed "
            "(rows) x data-order/dropout seed (columns), Standard and Re-init."
        ),
    )


def fig10_seed_std(ctx, plt, sns):
    d = _seed_grid(ctx)
    cols = ["task", "setting", "fixed", "seed", "n", "val_std"]
    if d.empty:
        return (
            _empty(plt, "Fig. 10", "no runs with separate init and data seeds (configs/seed-grid.yaml)"),
            pd.DataFrame(columns=cols),
            "Fig. 10: no data.",
        )
    rows = []
    for (task, s), g in d.groupby(["task", "setting"]):
        for fixed, by in (("init seed fixed", "init_seed"), ("data seed fixed", "data_seed")):
            for seed, h in g.groupby(by):
                rows.append(
                    {
                        "task": task,
                        "setting": s,
                        "fixed": fixed,
                        "seed": int(seed),
                        "n": len(h),
                        "val_std": h["val_best"].std(ddof=1),
                    }
                )
    data = pd.DataFrame(rows, columns=cols)
    groups = list(data.groupby("task"))
    fig, axes = _grid(plt, len(groups), ncols=min(2, len(groups)), w=6.0, h=4.0)
    for ax, (task, g) in zip(axes, groups):
        sns.barplot(
            data=g.assign(val_std=g["val_std"] * 100),
            x="seed",
            y="val_std",
            hue=g["setting"] + ", " + g["fixed"],
            ax=ax,
        )
        ax.set_xlabel("the fixed seed")
        ax.set_ylabel("std of the validation metric (x100)")
        ax.set_title(f"{task}: spread with one seed fixed")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return (
        fig,
        data,
        (
            "Fig. 10. Standard deviation of the validation metric across the other seed when one seed "
            "(initialisation, or data order and dropout) is fixed, Standard and Re-init."
        ),
    )


SPREAD_FACTORS = {"init_seed": "initialisation", "data_seed": "data order + dropout", "subset_seed": "training subset"}


def spread_sources(runs: pd.DataFrame, metric: str = "val_best") -> pd.DataFrame:
    """How much of the spread each source of randomness causes, per GLUE task and Re-init setting:
    for each factor (initialisation seed, data-order/dropout seed, training-subset seed), the runs are
    grouped by the other two factors; the std of `metric` inside each group where this factor takes at
    least two values is averaged over those groups (n_groups of them). Plain runs only."""
    cols = ["task", "setting", "factor", "source", "n_groups", "runs_per_group", "std_mean"]
    d = plain_runs(runs).copy()
    if d.empty:
        return pd.DataFrame(columns=cols)
    d["setting"] = [reinit_label(lay, p) for lay, p in zip(d["reinit_layers"], d["reinit_pooler"])]
    d["glue"] = d["glue_task"] if "glue_task" in d.columns else d["task"]
    if "subset_seed" not in d.columns:
        d["subset_seed"] = 0
    d = d.dropna(subset=[metric])
    rows = []
    for (task, setting), g in d.groupby(["glue", "setting"], sort=True):
        for factor, source in SPREAD_FACTORS.items():
            others = [f for f in SPREAD_FACTORS if f != factor]
            groups = [h for _, h in g.groupby(others, sort=True) if h[factor].nunique() >= 2]
            if groups:
                rows.append({"task": task, "setting": setting, "factor": factor, "source": source,
                             "n_groups": len(groups),
                             "runs_per_group": float(np.mean([len(h) for h in groups])),
                             "std_mean": float(np.mean([h[metric].std(ddof=1) for h in groups]))})
    return pd.DataFrame(rows, columns=cols)


def fig10b_spread_sources(ctx, plt, sns):
    data = spread_sources(ctx.runs)
    if data.empty:
        return (
            _empty(plt, "Fig. 10b", "no factor varies with the others fixed (configs/seed-grid.yaml)"),
            data,
            "Fig. 10b: no data.",
        )
    groups = list(data.groupby("task"))
    fig, axes = _grid(plt, len(groups), ncols=min(2, len(groups)), w=6.0, h=4.0)
    for ax, (task, g) in zip(axes, groups):
        sns.barplot(data=g.assign(std_mean=g["std_mean"] * 100), x="source", y="std_mean", hue="setting", ax=ax)
        ax.set_xlabel("the only source that varies")
        ax.set_ylabel(f"std of the {ctx.metric_label(task, 'validation')} (x100)")
        ax.set_title(f"{task}: sources of the spread")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return (
        fig,
        data,
        (
            "Fig. 10b. Sources of the spread (beyond the paper, which fixes the training subset): the "
            "standard deviation of the validation metric when only the initialisation seed, only the "
            "data-order/dropout seed, or only the training subset's seed varies, averaged over the groups "
            "in which the other two are fixed."
        ),
    )


# name -> drawing function; which figures exist, and what each shows of the paper, is plan.FIGURES
DRAW = {
    "fig01_bias_ratio": fig01_bias_ratio,
    "fig02_optimiser_test": fig02_optimiser_test,
    "fig03_train_loss_optimiser": fig03_train_loss_optimiser,
    "fig_test_by_condition": fig_test_by_condition,
    "fig04_expected_test": fig04_expected_test,
    "fig12_expected_val": fig12_expected_val,
    "fig05_reinit_val": fig05_reinit_val,
    "fig05b_metric_vs_layers": fig05b_metric_vs_layers,
    "fig06_train_loss_reinit": fig06_train_loss_reinit,
    "fig07_drift_steps": fig07_drift_steps,
    "fig07b_drift_depth": fig07b_drift_depth,
    "fig08_val_curves": fig08_val_curves,
    "fig08b_metric_vs_steps": fig08b_metric_vs_steps,
    "fig09_seed_grid": fig09_seed_grid,
    "fig10_seed_std": fig10_seed_std,
    "fig10b_spread_sources": fig10b_spread_sources,
}


def _read(path):
    if path is None or not Path(path).exists() or Path(path).stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def run_figures(cfg: dict, root, runs_flagged, curves_csv, drift_csv, out_dir, names=None) -> list[dict]:
    """Write every planned figure (PNG + CSV) and figures/index.json; returns the index."""
    plt, sns = _mpl()
    runs = pd.read_csv(runs_flagged)
    ctx = Ctx(cfg, root, runs, _read(curves_csv), _read(drift_csv))
    out = Path(out_dir)
    index = []
    for name in names or planned_figures(cfg):
        item = FIGURE_BY_NAME[name].label
        # seaborn's strip plots jitter points with numpy's global generator: the same state before every
        # figure gives the same picture, whichever figures were drawn before it (positions only: no number
        # in a CSV, table or claim comes from it)
        np.random.seed(JITTER_SEED)
        fig, data, caption = DRAW[name](ctx, plt, sns)
        atomic_write_bytes(out / f"{name}.png", png_bytes(fig))
        plt.close(fig)
        atomic_write_csv(out / f"{name}.csv", data)
        index.append(
            {"name": name, "png": f"{name}.png", "csv": f"{name}.csv", "paper_item": item, "caption": caption}
        )
    atomic_write_json(out / "index.json", {"figures": index, "config_hash": cfg.get("_config_hash")})
    return index


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG file")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


__all__ = ["run_figures", "DRAW", "png_size", "png_bytes", "plain_runs", "block_order"]
