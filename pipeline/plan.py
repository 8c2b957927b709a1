"""The output plan: which tables and figures a study produces, and from which runs.

Everything here is decided from the study's configuration alone, so the workflow (rules/report.smk)
lists exactly these files as rule outputs before any job runs (no checkpoints, no directory outputs),
and the analyze, figures and report commands write exactly these files (a planned figure whose data
turn out empty is still written, saying so).

`FIGURES` is the one list of figures: name, the paper's item it regenerates, when a study gets it and
why not otherwise. Planning (here), drawing (figures.py) and the paper map (report.py) all read it.

Import-light (stdlib and pipeline.config only): Snakemake imports this module while planning.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .config import expand_conditions, run_grid

TABLE_EXTS = ("md", "tex", "csv")
STATS_FILES = ("summary.csv", "comparisons.csv", "runs_flagged.csv")
CLAIMS_JSON = "claims.json"  # the claims table's verdicts, keyed by claim then task (tables.claims_json)


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
    return {m: over["family"] for m, over in expand_conditions(cfg["conditions"]).items() if "family" in over}


def _present(cfg, conds) -> bool:
    """Whether some task of the grid runs every condition in `conds` (None: a role nobody plays)."""
    return None not in conds and any(set(conds) <= cs for cs in grid_conditions(cfg).values())


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


# ---- from which runs ----------------------------------------------------------------------------


def seed_union(cfg: dict, names) -> set | None:
    """Seeds of the named seed sets; None when no names are configured (then every run counts)."""
    if not names:
        return None
    out: set = set()
    for n in names:
        out |= {int(s) for s in cfg["seeds"][n]}
    return out


def report_seeds(cfg: dict) -> set | None:
    """The seeds whose runs enter tables, claims and figures (analysis.report_seeds); None: every run."""
    return seed_union(cfg, cfg["analysis"]["report_seeds"])


def report_runs(runs, cfg: dict):
    """The runs (a runs.csv frame) that enter tables and claims: those on a report seed set."""
    seeds = report_seeds(cfg)
    if seeds is None:
        return runs
    return runs[runs["seed"].astype(int).isin(seeds)].copy()


# ---- the one list of figures ----------------------------------------------------------------------


def _opt(cfg) -> bool:
    r = roles(cfg)
    return _present(cfg, [r["bertadam"], r["debiased"]])


def _std_reinit(cfg) -> bool:
    r = roles(cfg)
    return _present(cfg, [r["standard"], r["reinit"]])


def _reinit_sweep(cfg) -> bool:
    return _family_in_grid(cfg, families_swept_on(cfg, ["reinit_layers"]))


def _standard(cfg) -> bool:
    return _present(cfg, [roles(cfg)["standard"]])


def _steps(cfg) -> bool:
    r = roles(cfg)
    return _present(cfg, [r["standard"], r["longer"]]) or _family_in_grid(
        cfg, families_swept_on(cfg, ["max_steps", "epochs"])
    )


def _always(cfg) -> bool:
    return True


EXPECTED_ROLES = ("debiased", "bertadam", "standard", "reinit", "longer", "reinit_longer")


def _expected(cfg) -> bool:
    """Figs. 4 and 12 draw the report-seed runs of the conditions that play one of the paper's roles
    (figures._expected)."""
    r = roles(cfg)
    wanted = {r[k] for k in EXPECTED_ROLES} - {None}
    seeds = report_seeds(cfg)
    return any(cond in wanted and (seeds is None or int(seed) in seeds) for _t, cond, seed in run_grid(cfg))


NO_OPT = "this study's grid has no BERTAdam/debiased pair on one task"
NO_ROLES = (
    "this study's grid runs none of the conditions named by analysis.tables.optimiser and table1 "
    "(debiased, BERTAdam, Standard, Re-init, Longer)"
)
NO_SWEEP = "this study's grid has no Re-init sweep (a condition with a list of reinit_layers)"
NO_STANDARD = (
    "this study's grid has no Standard runs (the condition of analysis.tables.table1.columns.standard_3ep, "
    "else of optimiser.columns.debiased)"
)
NO_SEED_GRID = (
    "needs runs whose initialisation and data-order seeds differ: the seed-grid overlay (`snakemake "
    "--cores 2 --configfile configs/seed-grid.yaml`, about 20 min here; its output is committed in "
    "results/seed-grid/figures/); configs/paper.yaml holds the paper's 10 x 10"
)


class Figure(NamedTuple):
    name: str  # file stem under figures/
    label: str  # the paper's item(s), as captions and figures/index.json name them
    covers: tuple  # paper items it regenerates; "item@task": only for studies with that GLUE task,
    # "item@large": only with one of the four large tasks
    applies: Callable[[dict], bool]  # whether a study's grid gets this figure
    absent: str  # why a study does not get it


FIGURES: tuple[Figure, ...] = (
    Figure("fig01_bias_ratio", "Figure 1", ("Figure 1",), _always, ""),
    Figure("fig02_optimiser_test", "Figure 2", ("Figure 2",), _opt, NO_OPT),
    Figure("fig03_train_loss_optimiser", "Figures 3, 11", ("Figure 3", "Figure 11"), _opt, NO_OPT),
    Figure("fig_test_by_condition", "(test metric per condition; Tables 1-2 as plots)", (), _always, ""),
    Figure("fig04_expected_test", "Figure 4", ("Figure 4",), _expected, NO_ROLES),
    Figure("fig12_expected_val", "Figure 12", ("Figure 12",), _expected, NO_ROLES),
    Figure("fig05_reinit_val", "Figures 5, 13", ("Figure 5", "Figure 13"), _reinit_sweep, NO_SWEEP),
    Figure(
        "fig05b_metric_vs_layers",
        "(metric vs number of re-initialised layers)",
        ("Figure 5",),
        _reinit_sweep,
        NO_SWEEP,
    ),
    Figure(
        "fig06_train_loss_reinit",
        "Figure 6",
        ("Figure 6",),
        _std_reinit,
        "this study's grid has no Standard/Re-init pair on one task",
    ),
    Figure(
        "fig07_drift_steps",
        "Figures 7, 15-18",
        ("Figure 7", "Figure 15@rte", "Figure 16@mrpc", "Figure 17@sts-b", "Figure 18@cola"),
        _standard,
        NO_STANDARD,
    ),
    Figure("fig07b_drift_depth", "(drift against depth, Sec. 5)", ("Figure 7",), _standard, NO_STANDARD),
    Figure(
        "fig08_val_curves",
        "Figures 8, 14 (curves)",
        ("Figure 8",),
        _std_reinit,
        "this study's grid has no Standard/Re-init pair on one task",
    ),
    Figure(
        "fig08b_metric_vs_steps",
        "Figures 8, 14",
        ("Figure 8", "Figure 14@large"),
        _steps,
        "this study's grid has neither Standard and Longer nor a step sweep",
    ),
    Figure("fig09_seed_grid", "Figure 9", ("Figure 9",), seed_grid_configured, NO_SEED_GRID),
    Figure("fig10_seed_std", "Figure 10", ("Figure 10",), seed_grid_configured, NO_SEED_GRID),
    Figure(
        "fig10b_spread_sources",
        "(sources of the spread incl. the training subset)",
        ("Figure 10",),
        seed_grid_configured,
        NO_SEED_GRID,
    ),
)
FIGURE_BY_NAME = {f.name: f for f in FIGURES}


# ---- the plan -----------------------------------------------------------------------------------


def planned_tables(cfg: dict) -> list[str]:
    """Table names (file stems under tables/) the study's grid allows, in report order."""
    names = ["claims", "table3_splits"]
    tables = cfg["analysis"]["tables"]
    in_grid = set().union(*grid_conditions(cfg).values()) if grid_conditions(cfg) else set()
    if "optimiser" in tables and _opt(cfg):
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
    """Figure names (file stems under figures/) the study's grid allows, in the order of FIGURES."""
    return [f.name for f in FIGURES if f.applies(cfg)]


def table_files(cfg: dict, tables_dir) -> list[str]:
    d = str(tables_dir).rstrip("/")
    return [f"{d}/{n}.{e}" for n in planned_tables(cfg) for e in TABLE_EXTS] + [
        f"{d}/{CLAIMS_JSON}",
        f"{d}/index.json",
    ]


def figure_files(cfg: dict, figures_dir) -> list[str]:
    d = str(figures_dir).rstrip("/")
    return [f"{d}/{n}.{e}" for n in planned_figures(cfg) for e in ("png", "csv")] + [f"{d}/index.json"]


def stats_files(stats_dir) -> list[str]:
    d = str(stats_dir).rstrip("/")
    return [f"{d}/{n}" for n in STATS_FILES]
