"""Analysis commands of `python -m pipeline` (analyze, figures, report) and the output plan.

The plan says, from the study's configuration alone, which tables and figures its grid allows. The
workflow (rules/report.smk) lists exactly these files as rule outputs, and the commands write exactly
these files (a planned figure whose data turn out empty is still written, saying so), so Snakemake
knows every output before any job runs: no checkpoints, no directory outputs.

This module is import-light (stdlib and pipeline.config only): Snakemake imports it while planning.

Wiring: in pipeline/cli.py, next to `commands_analysis.register(sub)`:
    from . import analysis_cli
    analysis_cli.register(sub)
Standalone (without the wiring): `python -m pipeline.analysis_cli analyze ...`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .config import expand_conditions, run_grid

TABLE_EXTS = ("md", "tex", "csv")
STATS_FILES = ("summary.csv", "comparisons.csv", "runs_flagged.csv")


# ---- roles: which configured condition plays which part of the paper ---------------------------


def roles(cfg: dict) -> dict:
    """Condition names for the paper's roles, read from the columns of analysis.tables.optimiser
    (bertadam, debiased) and analysis.tables.table1 (standard_3ep, reinit_3ep, standard_longer,
    reinit_longer). Tables and their columns are named by the study, so a role whose column is not
    configured is None (no condition plays it); Standard falls back to the debiased column."""
    tables = cfg["analysis"]["tables"]
    opt = tables["optimiser"]["columns"] if "optimiser" in tables else {}
    t1 = tables["table1"]["columns"] if "table1" in tables else {}
    return {
        "bertadam": opt.get("bertadam"),
        "debiased": opt.get("debiased"),
        "standard": t1.get("standard_3ep", opt.get("debiased")),
        "reinit": t1.get("reinit_3ep"),
        "longer": t1.get("standard_longer"),
        "reinit_longer": t1.get("reinit_longer"),
    }


def grid_conditions(cfg: dict) -> dict:
    """{task: set of conditions (expanded member names)} of the study's grid."""
    out: dict = {}
    for task, cond, _seed in run_grid(cfg):
        out.setdefault(task, set()).add(cond)
    return out


def families_swept_on(cfg: dict, keys) -> list[str]:
    """Sweep families (condition names with a list value) that sweep one of `keys`."""
    return [
        name
        for name, over in cfg["conditions"].items()
        if any(isinstance(over.get(k), list) for k in keys)  # a condition overrides only some keys
    ]


def family_of(cfg: dict) -> dict:
    """{expanded member name: family name} for sweep members."""
    return {
        m: over["family"]
        for m, over in expand_conditions(cfg["conditions"]).items()
        if "family" in over
    }


def _present(cfg, conds) -> bool:
    """Whether some task of the grid runs every condition in `conds`."""
    return any(set(conds) <= cs for cs in grid_conditions(cfg).values())


def _family_in_grid(cfg, families) -> bool:
    fam = family_of(cfg)
    return any(fam.get(c) in families for cs in grid_conditions(cfg).values() for c in cs)


def seed_grid_configured(cfg: dict) -> bool:
    """Fig. 9/10 need runs whose init seed and data seed differ (configs/seed-grid.yaml)."""
    blocks = [cfg["train"], *cfg["tasks"].values(), *cfg["conditions"].values()]
    # train sets both keys; a task's or a condition's overrides may leave them out
    return any(b.get("init_seed") is not None or b.get("data_seed") is not None for b in blocks)


def selected_families(cfg: dict) -> list[tuple[str, str]]:
    """[(task, family)] of every selection file the grid reads (conditions with select:)."""
    conds = expand_conditions(cfg["conditions"])
    out = []
    for task, cs in sorted(grid_conditions(cfg).items()):
        for c in sorted(cs):
            fam = conds[c].get("select")  # optional per condition
            if fam and (task, fam) not in out:
                out.append((task, fam))
    return out


# ---- the plan -----------------------------------------------------------------------------------


def planned_tables(cfg: dict) -> list[str]:
    """Table names (file stems under tables/) the study's grid allows, in report order."""
    names = ["claims", "table3_splits"]
    tables = cfg["analysis"]["tables"]
    in_grid = set().union(*grid_conditions(cfg).values()) if grid_conditions(cfg) else set()
    if "optimiser" in tables:
        r = roles(cfg)
        if _present(cfg, [r["bertadam"], r["debiased"]]):
            names.append("optimiser")
    for name, t in tables.items():
        if name == "optimiser":
            continue
        cols = list(t["columns"].values())
        if sum(c in in_grid for c in cols) >= 2:
            names.append(name)
    names.append("degenerate")
    if selected_families(cfg):
        names.append("selection")
    return names


def planned_figures(cfg: dict) -> list[str]:
    """Figure names (file stems under figures/) the study's grid allows, in paper order."""
    r = roles(cfg)
    opt = _present(cfg, [r["bertadam"], r["debiased"]])
    std_reinit = _present(cfg, [r["standard"], r["reinit"]])
    reinit_fams = families_swept_on(cfg, ["reinit_layers"])
    step_fams = families_swept_on(cfg, ["max_steps", "epochs"])
    names = ["fig01_bias_ratio"]
    if opt:
        names += ["fig02_optimiser_test", "fig03_train_loss_optimiser"]
    names.append("fig_test_by_condition")
    names += ["fig04_expected_test", "fig12_expected_val"]
    if _family_in_grid(cfg, reinit_fams):
        names += ["fig05_reinit_val", "fig05b_metric_vs_layers"]
    if std_reinit:
        names += ["fig06_train_loss_reinit"]
    if _present(cfg, [r["standard"]]):
        names += ["fig07_drift_steps", "fig07b_drift_depth"]
    if std_reinit:
        names.append("fig08_val_curves")
    if _present(cfg, [r["standard"], r["longer"]]) or _family_in_grid(cfg, step_fams):
        names.append("fig08b_metric_vs_steps")
    if seed_grid_configured(cfg):
        names += ["fig09_seed_grid", "fig10_seed_std", "fig10b_spread_sources"]
    return names


def table_files(cfg: dict, tables_dir) -> list[str]:
    d = str(tables_dir).rstrip("/")
    return [f"{d}/{n}.{e}" for n in planned_tables(cfg) for e in TABLE_EXTS] + [f"{d}/index.json"]


def figure_files(cfg: dict, figures_dir) -> list[str]:
    d = str(figures_dir).rstrip("/")
    return [f"{d}/{n}.{e}" for n in planned_figures(cfg) for e in ("png", "csv")] + [f"{d}/index.json"]


def stats_files(stats_dir) -> list[str]:
    d = str(stats_dir).rstrip("/")
    return [f"{d}/{n}" for n in STATS_FILES]


# ---- commands -----------------------------------------------------------------------------------


def _study(path) -> dict:
    return json.loads(Path(path).read_text())


def cmd_analyze(a):
    from . import analysis

    cfg = _study(a.study)
    analysis.run_analysis(cfg, a.root, runs_csv=a.runs, stats_dir=a.stats, tables_dir=a.tables)


def cmd_figures(a):
    from . import figures

    cfg = _study(a.study)
    figures.run_figures(
        cfg, a.root, runs_flagged=a.runs_flagged, curves_csv=a.curves, drift_csv=a.drift, out_dir=a.out
    )


def cmd_report(a):
    from . import report

    cfg = _study(a.study)
    report.run_report(
        cfg, a.root, tables_dir=a.tables, figures_dir=a.figures, out_html=a.out, paper_map=a.paper_map
    )


def register(sub):
    q = sub.add_parser("analyze", help="statistics, claims and the paper's tables from runs.csv")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True, help="the study's results folder (splits/, selection/)")
    q.add_argument("--runs", required=True, help="the runs table (summary/runs.csv, from `aggregate`)")
    q.add_argument("--stats", required=True, help="output folder of the statistics CSVs")
    q.add_argument("--tables", required=True, help="output folder of the tables (md, tex, csv)")
    q.set_defaults(fn=cmd_analyze)

    q = sub.add_parser("figures", help="every figure the study's grid allows (PNG + CSV of its numbers)")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True, help="the study's results folder (runs/ for updates.csv)")
    q.add_argument(
        "--runs-flagged", required=True, help="stats/runs_flagged.csv (runs with degenerate flags)"
    )
    q.add_argument("--curves", required=True, help="learning curves across seeds (summary/curves.csv)")
    q.add_argument("--drift", required=True, help="weight drift per block across seeds (summary/drift.csv)")
    q.add_argument("--out", required=True, help="output folder of the figures")
    q.set_defaults(fn=cmd_figures)

    q = sub.add_parser("report", help="one self-contained HTML report and the paper map")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True,
                   help="the study's results folder (unused: the report reads only --tables and --figures)")
    q.add_argument("--tables", required=True, help="tables folder (with index.json)")
    q.add_argument("--figures", required=True, help="figures folder (with index.json)")
    q.add_argument("--out", required=True, help="the HTML report to write (report.html)")
    q.add_argument("--paper-map", required=True,
                   help="the paper map to write (paper_map.md: each of the paper's tables and figures "
                        "-> our files)")
    q.set_defaults(fn=cmd_report)
    return sub


def main(argv=None):
    import logging
    import sys

    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    p = argparse.ArgumentParser(prog="python -m pipeline.analysis_cli")
    register(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
