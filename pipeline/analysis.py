"""Statistics, claims and the paper's tables, from the runs table (summary/runs.csv) alone.

Honesty rules, in code:
- Selection is on validation only (the select stage); test metrics are only reported here.
- Tables, comparisons and claims use the runs of the report seed sets (analysis.report_seeds) only.
- Comparisons are paired by seed (conditions share seeds); every verdict comes with its test, the
  interval of the effect and the smallest effect the study could detect (stats.compare/verdict).
- Metric values are 0-1 in runs.csv; tables show x100 like the paper, with the paper's numbers beside
  ours and a plain statement of where the study departs from the paper's protocol.

Degenerate runs: stats.is_degenerate on the best-checkpoint columns (test_best, majority_test,
pred_major_share_best, pred_std_best, label_std_test) with analysis.degenerate's thresholds; a rule
under analysis.degenerate.rules applies to the dataset of exactly that name (the paper's RTE rule
"test accuracy below 55%" is meant for the full-RTE numbers it stands beside). A run the engine
marked diverged (runs.csv `diverged`: non-finite training loss) is degenerate with reason "diverged",
counted beside the NaN, below-baseline and collapsed runs, never dropped.

Claims (tables/claims.*): one row per configured comparison plus the degenerate/variance claim (RQ 2)
derived from the RQ 1 comparison. The verdict rule (documented in `CLAIM_RULE`) is applied per task
after Holm's correction across the tasks of a comparison, then aggregated over tasks.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import stats
from .analysis_cli import planned_tables, roles, selected_families
from .config import dataset_name, glue_task_of, resolve_settings, run_grid, split_settings
from .io import atomic_write_csv, atomic_write_json, atomic_write_text
from .tasks import TASKS, TRAIN_ROWS

REPORTED_PATH = Path(__file__).with_name("reported.yaml")
NAN = float("nan")
MIN_PAIRS = 3  # stats.compare/verdict default: the paired test decides from 3 shared seeds on

CLAIM_RULE = (
    "Per task: the deciding test is the one-tailed paired t-test when at least 3 seeds are shared by both "
    "conditions, else Student's t-test (the paper's); p-values are Holm-corrected across the tasks of a "
    "comparison. A claim that the treatment is better (expect: better) is reproduced on a task when the "
    "Holm-adjusted p < alpha in the paper's direction, not reproduced when it is significant in the opposite "
    "direction (Holm) or the interval excludes the paper's effect (only where the study follows the paper's "
    "protocol), otherwise inconclusive, saying whether the observed effect is below the smallest detectable "
    "effect (too few seeds) or absent (no effect). A claim that a method adds little (expect: no_gain) is "
    "not reproduced when the method is significantly better (Holm), reproduced when it is significantly "
    "worse or the upper interval bound is below the configured margin, otherwise inconclusive. Over tasks: "
    "reproduced (or not reproduced) when every task says so, otherwise inconclusive with the breakdown."
)


# ---- configuration helpers ----------------------------------------------------------------------


def load_reported(path=None) -> dict:
    return yaml.safe_load(Path(path or REPORTED_PATH).read_text())


def acfg(cfg: dict) -> dict:
    return cfg["analysis"]


def seed_union(cfg: dict, names) -> set | None:
    """Seeds of the named seed sets; None when no names are configured (then every run counts)."""
    if not names:
        return None
    out: set = set()
    for n in names:
        out |= {int(s) for s in cfg["seeds"][n]}
    return out


def report_runs(runs: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """The runs that enter tables and claims: those on a report seed set."""
    seeds = seed_union(cfg, acfg(cfg)["report_seeds"])
    if seeds is None:
        return runs
    return runs[runs["seed"].astype(int).isin(seeds)].copy()


def degenerate_rule(cfg: dict, task: str) -> dict | None:
    return acfg(cfg)["degenerate"]["rules"].get(task)  # a rule per dataset, where one is configured


def comparison_expect(comp: dict) -> str:
    """'better' (the treatment beats the baseline) or 'no_gain' (the method adds little).

    From the comparison's `expect` key; without it, a claim whose text says the method "adds little"
    (or "no gain/effect/difference") is a no_gain claim, every other claim a better claim."""
    if comp.get("expect"):  # optional per comparison
        if comp["expect"] not in ("better", "no_gain"):
            raise ValueError(
                f"analysis.comparisons.{comp['name']}.expect: must be better or no_gain, "
                f"got {comp['expect']!r}"
            )
        return comp["expect"]
    text = str(comp["claim"]).lower()
    return "no_gain" if re.search(r"adds? (little|nothing)|no (gain|effect|difference)", text) else "better"


def comparison_margin(cfg: dict, comp: dict) -> float:
    """The comparison's own `margin` (optional per comparison), else analysis.equivalence_margin."""
    m = comp.get("margin")
    return float(acfg(cfg)["equivalence_margin"] if m is None else m)


def paper_key(cfg: dict, task: str) -> tuple[str, str]:
    """('full' | 'train_1k', GLUE task) of the paper's rows a dataset stands beside."""
    glue = glue_task_of(cfg, task)
    n = split_settings(cfg, task)["train_size"]
    return ("train_1k" if (task != glue or TASKS[glue].large) and n == 1000 else "full"), glue


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


def protocol_deviations(cfg: dict, task: str, reported: dict, runs: pd.DataFrame | None = None) -> list[str]:
    """Where this study's runs of `task` depart from the paper's recipe (empty: the paper's protocol)."""
    proto = reported.get("protocol") or {}
    r = roles(cfg)
    grid_conds = [c for t, c, _ in run_grid(cfg) if t == task]
    cond = r["standard"] if r["standard"] in grid_conds else (grid_conds[0] if grid_conds else None)
    out = []
    if cond is None:
        return ["not run in this study"]
    s = resolve_settings(cfg, task, cond, 0)
    if s["model"] != proto.get("model"):
        out.append(f"model {s['model']} (paper: {proto.get('model')})")
    sp = split_settings(cfg, task)
    kind, glue = paper_key(cfg, task)
    want = 1000 if kind == "train_1k" else None
    if TASKS[glue].large and sp["train_size"] != 1000:
        out.append(
            f"training set {sp['train_size'] or 'full'} examples (the paper uses {glue} only as a "
            f"1,000-example subset)"
        )
    elif sp["train_size"] != want:
        paper_n = "1,000" if want else f"the full {TRAIN_ROWS[glue]:,}"
        out.append(f"training set {sp['train_size'] or 'full'} examples (paper: {paper_n})")
    if sp["val_size"] is not None or sp["test_size"] is not None:
        out.append(
            f"validation/test halves capped at {sp['val_size']}/{sp['test_size']} examples "
            f"(paper: whole halves)"
        )
    for key in ("lr", "batch_size", "max_seq_length"):
        if proto.get(key) is not None and s[key] != proto[key]:
            out.append(f"{key} {s[key]} (paper: {proto[key]})")
    if s["max_steps"] is None and s["epochs"] != proto.get("epochs"):
        out.append(f"{s['epochs']} epochs for Standard (paper: {proto.get('epochs')})")
    if runs is not None and len(runs) and "total_steps" in runs.columns:
        steps = runs[(runs["task"] == task) & (runs["condition"] == cond)]["total_steps"]
        paper_steps = (reported.get("splits") or {}).get("steps_3_epochs_batch32") or {}
        ps = paper_steps.get("train_1k") if kind == "train_1k" else paper_steps.get(glue)
        if len(steps) and ps is not None and int(steps.median()) != int(ps):
            out.append(f"{int(steps.median())} optimisation steps for Standard (paper: {ps})")
    return out


# ---- degenerate flags and summaries -------------------------------------------------------------


def is_diverged(value) -> bool:
    """runs.csv's `diverged` column: the engine stopped the run when its training loss became
    non-finite. Runs of older records have no such column (or an empty cell): not diverged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _deg(cfg, task, metric, value, majority, share, pred_std, label_std, diverged=False) -> tuple[bool, str]:
    d = acfg(cfg)["degenerate"]
    kw = dict(
        collapse_share=d["collapse_share"],
        collapse_std_ratio=d["collapse_std_ratio"],
        rule=degenerate_rule(cfg, task),
    )
    if diverged:  # a result of the study (e.g. BERTAdam blowing up), never dropped: counted as degenerate
        return True, "diverged"
    if value is None or not np.isfinite(value):
        return True, "nan"
    perf = stats.is_degenerate(metric, value, majority, NAN, NAN, NAN, **kw)
    if perf:
        rule = kw["rule"]
        return True, (
            f"below {rule['below']}"
            if rule
            else ("<= 0" if metric in stats.CORRELATION_METRICS else "<= majority")
        )
    full = stats.is_degenerate(metric, value, majority, share, pred_std, label_std, **kw)
    return (True, "collapsed") if full else (False, "")


def flag_runs(runs: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """runs.csv plus degenerate flags (best checkpoint, and last checkpoint for reference) and the seed
    role (report / selection / other). A diverged run is degenerate at both checkpoints (reason
    "diverged"); `diverged` is False for runs.csv files written before the engine recorded it."""
    out = runs.copy()
    out["diverged"] = pd.Series(
        [is_diverged(v) for v in (out["diverged"] if "diverged" in out.columns else [False] * len(out))],
        index=out.index,
        dtype=bool,
    )
    rep = seed_union(cfg, acfg(cfg)["report_seeds"])
    sel = seed_union(cfg, acfg(cfg)["selection_seeds"]) or set()
    flags, reasons, flags_last = [], [], []
    for _, r in out.iterrows():
        f, why = _deg(
            cfg,
            r["task"],
            r["metric"],
            r["test_best"],
            r["majority_test"],
            r.get("pred_major_share_best", NAN),
            r.get("pred_std_best", NAN),
            r.get("label_std_test", NAN),
            diverged=r["diverged"],
        )
        fl, _ = _deg(
            cfg,
            r["task"],
            r["metric"],
            r["test_last"],
            r["majority_test"],
            r.get("pred_major_share_last", NAN),
            r.get("pred_std_last", NAN),
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
        row["n_degenerate"] = int(g["degenerate"].sum())
        row["n_degenerate_last"] = int(g["degenerate_last"].sum())
        row["n_collapsed"] = int((g["degenerate_reason"] == "collapsed").sum())
        row["n_diverged"] = int((g["degenerate_reason"] == "diverged").sum())
        row["share_degenerate"] = float(g["degenerate"].mean()) if len(g) else NAN
        row["total_steps"] = float(g["total_steps"].median())
        rows.append(row)
    return pd.DataFrame(rows)


# ---- comparisons --------------------------------------------------------------------------------


def _values(runs, task, cond, col="test_best"):
    g = runs[(runs["task"] == task) & (runs["condition"] == cond)].sort_values("seed")
    return g[col].to_numpy(dtype=float), g["seed"].astype(int).tolist(), g


def compare_conditions(runs: pd.DataFrame, cfg: dict, task: str, baseline: str, treatment: str) -> dict:
    a = acfg(cfg)
    va, sa, _ = _values(runs, task, baseline)
    vb, sb, _ = _values(runs, task, treatment)
    return stats.compare(
        va,
        vb,
        seeds_a=sa,
        seeds_b=sb,
        alpha=a["alpha"],
        n_boot=a["n_boot"],
        boot_seed=a["boot_seed"],
        alternative="greater",
        power=a["power"],
    )


def _deciding(r: dict, decided_by: str) -> dict:
    if decided_by == "paired_t":
        return {
            "ci_low": r["boot_ci_paired_low"],
            "ci_high": r["boot_ci_paired_high"],
            "mde": r["mde_paired_metric"],
            "mde_std": r["mde_paired"],
            "n": r["n_pairs"],
            "why": f"paired t-test: both conditions share {r['n_pairs']} seeds (paired by seed)",
        }
    return {
        "ci_low": r["boot_ci_unpaired_low"],
        "ci_high": r["boot_ci_unpaired_high"],
        "mde": r["mde_unpaired_metric"],
        "mde_std": r["mde_unpaired"],
        "n": min(r["n_a"], r["n_b"]),
        "why": (
            f"Student's t-test (the paper's): only {r['n_pairs']} shared seeds, "
            f"fewer than {MIN_PAIRS} for a paired test"
        ),
    }


def _category(reason: str) -> str:
    for key in ("too few seeds", "no effect", "not computable"):
        if reason.startswith(key):
            return key
    return ""


def task_verdict(row: dict, expect: str, alpha: float, margin: float | None) -> tuple[str, str, str]:
    """(verdict, category, reason) of one task after Holm; see CLAIM_RULE."""
    p_h, p_ho = row["p_holm"], row["p_opposite_holm"]
    eff, lo, hi, mde = row["effect"], row["ci_low"], row["ci_high"], row["mde_metric"]
    base = (
        f"effect {_x(eff)} [{_x(lo)}, {_x(hi)}] (x100), one-tailed p = {_p(row['p_raw'])}, "
        f"Holm p = {_p(p_h)}, {row['decided_by']}, MDE {_x(mde)}"
    )
    if expect == "better":
        if np.isfinite(p_h) and p_h < alpha:
            return "reproduced", "", base
        if np.isfinite(p_ho) and p_ho < alpha:
            return "not reproduced", "", f"significant effect opposite to the paper's: {base}"
        if row["stats_verdict"] == "not reproduced":
            return "not reproduced", "", row["stats_reason"] + " (effects on the 0-1 scale)"
        if row["stats_verdict"] == "reproduced":
            return (
                "inconclusive",
                "too few seeds",
                f"too few seeds: significant before Holm's correction only ({base})",
            )
        cat = _category(row["stats_reason"])
        return "inconclusive", cat, row["stats_reason"] + f" (effects on the 0-1 scale); Holm p = {_p(p_h)}"
    # no_gain: the paper says the method adds little over the baseline
    if np.isfinite(p_h) and p_h < alpha:
        return "not reproduced", "", f"the method adds a significant gain: {base}"
    if np.isfinite(p_ho) and p_ho < alpha:
        return "reproduced", "", f"the method is significantly worse than the baseline: {base}"
    if margin is not None and np.isfinite(hi) and hi < margin:
        return "reproduced", "", f"a gain of {_x(margin)} or more is excluded: {base}"
    if not np.isfinite(row["p_raw"]):
        return "inconclusive", "not computable", row["stats_reason"] + " (effects on the 0-1 scale)"
    if np.isfinite(eff) and eff > 0 and np.isfinite(mde) and eff < mde:
        return (
            "inconclusive",
            "too few seeds",
            f"too few seeds: a gain of {_x(eff)} is below the smallest detectable effect {_x(mde)}; {base}",
        )
    tail = (
        "no margin configured, so 'adds little' cannot be shown"
        if margin is None
        else f"the interval does not exclude a gain of {_x(margin)}"
    )
    return "inconclusive", "no effect", f"no effect detected (consistent with the claim; {tail}): {base}"


def aggregate_verdict(task_rows: list[dict]) -> tuple[str, str]:
    if not task_rows:
        return "not run", "neither condition pair ran on a report seed set in this study"
    vs = [r["verdict"] for r in task_rows]
    desc = "; ".join(
        f"{r['task']}: {r['verdict']}" + (f" ({r['category']})" if r["category"] else "") for r in task_rows
    )
    if all(v == "reproduced" for v in vs):
        return "reproduced", f"on every task tested ({desc})"
    if all(v == "not reproduced" for v in vs):
        return "not reproduced", f"on every task tested ({desc})"
    if "reproduced" in vs and "not reproduced" in vs:
        return "inconclusive", f"mixed across tasks ({desc})"
    cats = [r["category"] for r in task_rows if r["verdict"] == "inconclusive"]
    cat = "too few seeds" if "too few seeds" in cats else ("no effect" if "no effect" in cats else cats[0])
    return "inconclusive", f"{cat} ({desc})"


def comparisons(runs: pd.DataFrame, cfg: dict, reported: dict) -> pd.DataFrame:
    """Every configured comparison on every task that ran both conditions (report seeds only)."""
    a = acfg(cfg)
    alpha = a["alpha"]
    rows = []
    for comp in a["comparisons"]:
        base, treat = comp["baseline"], comp["treatment"]
        expect = comparison_expect(comp)
        margin = comparison_margin(cfg, comp)
        tasks = sorted(
            set(runs.loc[runs["condition"] == base, "task"])
            & set(runs.loc[runs["condition"] == treat, "task"])
        )
        block = []
        for task in tasks:
            r = compare_conditions(runs, cfg, task, base, treat)
            paper_eff = _paper_effect(reported, cfg, task, base, treat)
            follows = not protocol_deviations(cfg, task, reported, runs)
            sesoi = (
                paper_eff
                if (follows and expect == "better" and paper_eff is not None and paper_eff > 0)
                else None
            )
            v = stats.verdict(
                r, alpha=alpha, direction=+1, smallest_effect_of_interest=sesoi, power=a["power"]
            )
            d = _deciding(r, v["decided_by"])
            _, _, gb = _values(runs, task, base)
            _, _, gt = _values(runs, task, treat)
            row = {
                "comparison": comp["name"],
                "rq": comp["rq"],
                "claim": comp["claim"],
                "expect": expect,
                "margin": margin,
                "task": task,
                "baseline": base,
                "treatment": treat,
                **r,
                "decided_by": v["decided_by"],
                "why_test": d["why"],
                "effect": v["effect"],
                "ci_low": d["ci_low"],
                "ci_high": d["ci_high"],
                "mde_metric": d["mde"],
                "mde_std": d["mde_std"],
                "p_raw": v["p_paper_direction"],
                "p_opposite": v["p_opposite_direction"],
                "stats_verdict": v["verdict"],
                "stats_reason": v["reason"],
                "n_deg_a": int(gb["degenerate"].sum()) if "degenerate" in gb else NAN,
                "n_deg_b": int(gt["degenerate"].sum()) if "degenerate" in gt else NAN,
                "paper_effect_x100": paper_eff * 100 if paper_eff is not None else NAN,
                "follows_paper_protocol": follows,
            }
            if "degenerate" in gb:
                row["fisher_p"] = stats.fisher_degenerate(
                    row["n_deg_a"], len(gb), row["n_deg_b"], len(gt), "greater"
                )
            block.append(row)
        for key, src in (("p_holm", "p_raw"), ("p_opposite_holm", "p_opposite")):
            adj = stats.holm([b[src] for b in block])
            for b, p in zip(block, adj):
                b[key] = p
        for b in block:
            b["verdict"], b["category"], b["reason"] = task_verdict(b, expect, alpha, margin)
        rows += block
    return pd.DataFrame(rows)


def _paper_effect(reported, cfg, task, base, treat) -> float | None:
    """The paper's treatment - baseline difference (0-1 scale) where a table holds both conditions."""
    for tname in ("table1", "table2"):
        spec = acfg(cfg)["tables"].get(tname)  # tables are named by the study: this one may be absent
        cols = spec["columns"] if spec else {}
        inv = {}
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


def degenerate_claim(runs: pd.DataFrame, cfg: dict, comps: pd.DataFrame) -> list[dict]:
    """RQ 2 from the RQ 1 comparison: the treatment (debiased Adam) has fewer degenerate runs (Fisher's
    exact test) and a smaller spread (Brown-Forsythe) than the baseline (BERTAdam)."""
    a = acfg(cfg)
    alpha = a["alpha"]
    out = []
    for comp in a["comparisons"]:
        if comp["rq"] != 1:
            continue
        base, treat = comp["baseline"], comp["treatment"]
        tasks = sorted(
            set(runs.loc[runs["condition"] == base, "task"])
            & set(runs.loc[runs["condition"] == treat, "task"])
        )
        block = []
        for task in tasks:
            _, sa, ga = _values(runs, task, base)
            _, sb, gb = _values(runs, task, treat)
            ka, kb = int(ga["degenerate"].sum()), int(gb["degenerate"].sum())
            # the share of non-degenerate runs, paired by seed: effect = reduction of the degenerate share
            ok = stats.compare(
                (~ga["degenerate"]).astype(float).to_numpy(),
                (~gb["degenerate"]).astype(float).to_numpy(),
                seeds_a=sa,
                seeds_b=sb,
                alpha=alpha,
                n_boot=a["n_boot"],
                boot_seed=a["boot_seed"],
                power=a["power"],
            )
            dec = "paired_t" if ok["n_pairs"] >= MIN_PAIRS else "student_t"
            d = _deciding(ok, dec)
            r = comps[(comps["comparison"] == comp["name"]) & (comps["task"] == task)]
            lev = float(r["levene_p"].iloc[0]) if len(r) else NAN
            vr = float(r["var_ratio"].iloc[0]) if len(r) else NAN
            block.append(
                {
                    "task": task,
                    "k_a": ka,
                    "n_a": len(ga),
                    "k_b": kb,
                    "n_b": len(gb),
                    "fisher_p": stats.fisher_degenerate(ka, len(ga), kb, len(gb), "greater"),
                    "fisher_p_opposite": stats.fisher_degenerate(ka, len(ga), kb, len(gb), "less"),
                    "levene_p": lev,
                    "var_ratio": vr,
                    "effect": ok["paired_diff_mean"] if dec == "paired_t" else ok["diff"],
                    "ci_low": d["ci_low"],
                    "ci_high": d["ci_high"],
                    "mde_metric": d["mde"],
                    "std_a": float(r["std_a"].iloc[0]) if len(r) else NAN,
                    "std_b": float(r["std_b"].iloc[0]) if len(r) else NAN,
                }
            )
        for key, src in (
            ("fisher_holm", "fisher_p"),
            ("fisher_opp_holm", "fisher_p_opposite"),
            ("levene_holm", "levene_p"),
        ):
            for b, p in zip(block, stats.holm([b[src] for b in block])):
                b[key] = p
        for b in block:
            desc = (
                f"degenerate {b['k_a']}/{b['n_a']} ({base}) vs {b['k_b']}/{b['n_b']} ({treat}), Fisher p = "
                f"{_p(b['fisher_p'])} (Holm {_p(b['fisher_holm'])}); share reduction {_x(b['effect'])} "
                f"[{_x(b['ci_low'])}, {_x(b['ci_high'])}] (x100), MDE {_x(b['mde_metric'])}; "
                f"std {_x(b['std_a'])} vs {_x(b['std_b'])}, Brown-Forsythe p = {_p(b['levene_p'])} "
                f"(Holm {_p(b['levene_holm'])})"
            )
            fewer = np.isfinite(b["fisher_holm"]) and b["fisher_holm"] < alpha
            less_var = np.isfinite(b["levene_holm"]) and b["levene_holm"] < alpha and b["var_ratio"] < 1
            more_var = np.isfinite(b["levene_holm"]) and b["levene_holm"] < alpha and b["var_ratio"] > 1
            more_deg = np.isfinite(b["fisher_opp_holm"]) and b["fisher_opp_holm"] < alpha
            if fewer or less_var:
                b.update(verdict="reproduced", category="", reason=desc)
            elif more_var or more_deg:
                b.update(verdict="not reproduced", category="", reason=f"opposite to the paper: {desc}")
            else:
                right_way = b["k_a"] > b["k_b"] or (np.isfinite(b["var_ratio"]) and b["var_ratio"] < 1)
                cat = "too few seeds" if right_way else "no effect"
                b.update(verdict="inconclusive", category=cat, reason=f"{cat}: {desc}")
        verdict, why = aggregate_verdict(block)
        out.append(
            {
                "rq": 2,
                "comparison": f"{comp['name']}_degenerate_and_spread",
                "claim": "Debiasing reduces degenerate runs and the spread across seeds",
                "baseline": base,
                "treatment": treat,
                "tasks": block,
                "verdict": verdict,
                "verdict_reason": why,
                "test": "Fisher's exact test on degenerate counts (one-tailed) and Brown-Forsythe (Levene, "
                "median-centred) on the spread; Holm across tasks",
            }
        )
    return out


# ---- formatting ---------------------------------------------------------------------------------


def _x(v, digits=1) -> str:
    """A 0-1 value as x100 text."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(v):
        return "inf" if v == math.inf else "–"
    return f"{100 * v:.{digits}f}"


def _int(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "–"
    if np.isnan(v):
        return "–"
    return "no finite number (effect absent or reversed)" if np.isinf(v) else str(int(v))


def _p(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(v):
        return "–"
    return f"{v:.3g}" if v >= 1e-3 else f"{v:.1e}"


def _ms(mean, std, n=None) -> str:
    if mean is None or not np.isfinite(mean):
        return "–" if n is None else f"– (n={n})"
    s = f"{100 * mean:.1f} ± {100 * std:.1f}" if np.isfinite(std) else f"{100 * mean:.1f}"
    return s if n is None else f"{s} (n={n})"


def _ms_d(d: dict) -> str:
    """mean ± std (x100) of a stats.describe result, with the finite n and the NaN runs."""
    n_ok = d["n"] - d["n_nan"]
    if d["n"] == 0:
        return "–"
    s = _ms(d["mean"], d["std"])
    return f"{s} (n={n_ok}" + (f", {d['n_nan']} NaN)" if d["n_nan"] else ")")


def _paper_ms(cell) -> str:
    return "–" if not cell else f"{cell[0]:.1f} ± {cell[1]:.1f}"


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "≤": r"$\leq$",
    "–": "--",
    "✓": r"$\checkmark$",
    "×": r"$\times$",
}


def _tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


class Table:
    """A display table (strings, marked cells) with its title, notes and numeric CSV."""

    def __init__(
        self, name, title, display: pd.DataFrame, numbers: pd.DataFrame, notes=(), marks=None, paper_item=""
    ):
        self.name, self.title, self.display, self.numbers = name, title, display, numbers
        self.notes = [n for n in notes if n]
        self.marks = (
            marks if marks is not None else pd.DataFrame(False, index=display.index, columns=display.columns)
        )
        self.paper_item = paper_item

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        if self.display.empty:
            lines.append("_No runs of these conditions on the report seeds._")
        else:
            cols = list(self.display.columns)
            lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
            lines.append("|" + "|".join("---" for _ in cols) + "|")
            for i in self.display.index:
                cells = []
                for c in cols:
                    v = _md_escape(self.display.at[i, c])
                    cells.append(f"**{v}**" if bool(self.marks.at[i, c]) and v not in ("", "–") else v)
                lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        cols = list(self.display.columns)
        out = [
            f"% {self.title}",
            "% generated by pipeline/analysis.py; numbers x100 unless noted",
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            r"\caption{" + _tex_escape(self.title) + "}",
            r"\begin{tabular}{" + "l" * max(1, len(cols)) + "}",
            r"\hline",
        ]
        if not self.display.empty:
            out.append(" & ".join(_tex_escape(c) for c in cols) + r" \\")
            out.append(r"\hline")
            for i in self.display.index:
                cells = []
                for c in cols:
                    v = _tex_escape(self.display.at[i, c])
                    cells.append(
                        r"\underline{\textbf{" + v + "}}"
                        if bool(self.marks.at[i, c]) and v not in ("", "--")
                        else v
                    )
                out.append(" & ".join(cells) + r" \\")
        else:
            out.append(r"\multicolumn{1}{l}{No runs of these conditions on the report seeds.} \\")
        out += [r"\hline", r"\end{tabular}"]
        if self.notes:
            out.append(r"\par\footnotesize " + " ".join(_tex_escape(n) for n in self.notes))
        out.append(r"\end{table}")
        return "\n".join(out) + "\n"

    def write(self, tables_dir) -> dict:
        d = Path(tables_dir)
        atomic_write_text(d / f"{self.name}.md", self.markdown())
        atomic_write_text(d / f"{self.name}.tex", self.latex())
        atomic_write_csv(d / f"{self.name}.csv", self.numbers)
        return {
            "name": self.name,
            "title": self.title,
            "paper_item": self.paper_item,
            "notes": self.notes,
            "files": {e: f"{self.name}.{e}" for e in ("md", "tex", "csv")},
        }


def _protocol_notes(cfg, tasks, reported, runs) -> list[str]:
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


# ---- the tables ---------------------------------------------------------------------------------


def table_claims(comps: pd.DataFrame, rq2: list[dict], cfg: dict) -> Table:
    a = acfg(cfg)
    alpha = a["alpha"]
    disp, nums = [], []
    for comp in a["comparisons"]:
        name = comp["name"]
        block = comps[comps["comparison"] == name].to_dict("records") if len(comps) else []
        verdict, why = aggregate_verdict(block)
        expect = comparison_expect(comp)
        eff = "; ".join(
            f"{b['task']}: {_x(b['effect'])} [{_x(b['ci_low'])}, {_x(b['ci_high'])}]" for b in block
        )
        ps = "; ".join(f"{b['task']}: {_p(b['p_raw'])} (Holm {_p(b['p_holm'])})" for b in block)
        tests = "; ".join(f"{b['task']}: {b['why_test']}" for b in block) or "–"
        mde = "; ".join(
            f"{b['task']}: {_x(b['mde_metric'])} (d {b['mde_std']:.2f})"
            if np.isfinite(b["mde_std"])
            else f"{b['task']}: –"
            for b in block
        )
        need = "; ".join(f"{b['task']}: {_int(b['seeds_needed'])}" for b in block)
        paper = (
            "; ".join(
                f"{b['task']}: {b['paper_effect_x100']:+.1f}"
                for b in block
                if np.isfinite(b["paper_effect_x100"])
            )
            or "–"
        )
        disp.append(
            {
                "RQ": comp["rq"],
                "claim (paper)": comp["claim"],
                "comparison": f"{comp['treatment']} vs {comp['baseline']}"
                + (" (claim: adds little)" if expect == "no_gain" else ""),
                "paper's effect (x100)": paper,
                "measured effect (x100) [95% CI]": eff or "–",
                "one-tailed p (Holm)": ps or "–",
                "deciding test and why": tests,
                "smallest detectable effect (x100, 80% power)": mde or "–",
                "seeds needed for the observed effect": need or "–",
                "verdict": verdict,
                "why": why,
            }
        )
        for b in block:
            nums.append(
                {
                    "rq": comp["rq"],
                    "comparison": name,
                    "claim": comp["claim"],
                    "expect": expect,
                    "task": b["task"],
                    "baseline": comp["baseline"],
                    "treatment": comp["treatment"],
                    "effect": b["effect"],
                    "ci_low": b["ci_low"],
                    "ci_high": b["ci_high"],
                    "p_raw": b["p_raw"],
                    "p_holm": b["p_holm"],
                    "decided_by": b["decided_by"],
                    "mde_metric": b["mde_metric"],
                    "mde_std": b["mde_std"],
                    "seeds_needed": b["seeds_needed"],
                    "paper_effect_x100": b["paper_effect_x100"],
                    "task_verdict": b["verdict"],
                    "task_reason": b["reason"],
                    "claim_verdict": verdict,
                }
            )
        if not block:
            nums.append(
                {
                    "rq": comp["rq"],
                    "comparison": name,
                    "claim": comp["claim"],
                    "expect": expect,
                    "task": "",
                    "baseline": comp["baseline"],
                    "treatment": comp["treatment"],
                    "claim_verdict": verdict,
                    "task_reason": why,
                }
            )
    for c in rq2:
        b = c["tasks"]
        disp.append(
            {
                "RQ": 2,
                "claim (paper)": c["claim"],
                "comparison": f"{c['treatment']} vs {c['baseline']}",
                "paper's effect (x100)": "RTE: 48% of BERTAdam runs below 55% accuracy; 0 with debiasing",
                "measured effect (x100) [95% CI]": "; ".join(
                    f"{x['task']}: degenerate {x['k_a']}/{x['n_a']} vs {x['k_b']}/{x['n_b']}, share reduction "
                    f"{_x(x['effect'])} [{_x(x['ci_low'])}, {_x(x['ci_high'])}], std {_x(x['std_a'])} vs "
                    f"{_x(x['std_b'])}"
                    for x in b
                )
                or "–",
                "one-tailed p (Holm)": "; ".join(
                    f"{x['task']}: Fisher {_p(x['fisher_p'])} (Holm {_p(x['fisher_holm'])}), Brown-Forsythe "
                    f"{_p(x['levene_p'])} (Holm {_p(x['levene_holm'])})"
                    for x in b
                )
                or "–",
                "deciding test and why": c["test"] + " (counts need an exact test; spread needs a robust "
                "variance test)",
                "smallest detectable effect (x100, 80% power)": "; ".join(
                    f"{x['task']}: share {_x(x['mde_metric'])} (t-test on 0/1 flags, approximate)" for x in b
                )
                or "–",
                "seeds needed for the observed effect": "–",
                "verdict": c["verdict"],
                "why": c["verdict_reason"],
            }
        )
        for x in b:
            nums.append(
                {
                    "rq": 2,
                    "comparison": c["comparison"],
                    "claim": c["claim"],
                    "expect": "better",
                    "task": x["task"],
                    "baseline": c["baseline"],
                    "treatment": c["treatment"],
                    "effect": x["effect"],
                    "ci_low": x["ci_low"],
                    "ci_high": x["ci_high"],
                    "p_raw": x["fisher_p"],
                    "p_holm": x["fisher_holm"],
                    "decided_by": "fisher+brown_forsythe",
                    "mde_metric": x["mde_metric"],
                    "levene_p": x["levene_p"],
                    "levene_holm": x["levene_holm"],
                    "k_a": x["k_a"],
                    "n_a": x["n_a"],
                    "k_b": x["k_b"],
                    "n_b": x["n_b"],
                    "task_verdict": x["verdict"],
                    "task_reason": x["reason"],
                    "claim_verdict": c["verdict"],
                }
            )
    disp_df = pd.DataFrame(disp)
    if len(disp_df):
        disp_df = disp_df.sort_values("RQ", kind="stable").reset_index(drop=True)
    notes = [
        f"Verdict rule: {CLAIM_RULE}",
        f"alpha = {alpha} (one-tailed, the paper's level); power "
        f"{a['power']:.0%}; intervals are paired (or unpaired) bootstrap percentile intervals, "
        f"{a['n_boot']} draws, seed {a['boot_seed']}.",
        "Effects are treatment minus baseline on the test metric of the best-validation checkpoint (x100); "
        "only runs on the report seed sets enter (" + ", ".join(a["report_seeds"] or ["all"]) + ").",
        "'too few seeds' means the observed effect points the paper's way but is below what this many seeds "
        "can detect; 'no effect' means the observed effect is absent or reversed although the study could "
        "have detected an effect of the stated size.",
    ]
    return Table(
        "claims",
        "Claims of the paper: verdicts of this study",
        disp_df,
        pd.DataFrame(nums),
        notes,
        paper_item="Sections 4-7 (research questions 1-5)",
    )


def table3_splits(cfg: dict, root, reported: dict) -> Table:
    disp, nums = [], []
    t3 = reported.get("table3") or {}
    sp_rep = reported.get("splits") or {}
    for task in cfg["study"]["tasks"]:
        ds = dataset_name(cfg, task)
        glue = glue_task_of(cfg, ds)
        metric = cfg["evaluation"]["report_metric"].get(glue, TASKS[glue].report_metric)
        meta_path = Path(root) / "splits" / ds / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        sizes = meta.get("sizes", {})
        maj = meta.get("majority_baseline", {})
        sp = split_settings(cfg, ds)
        p = t3.get(glue) or {}
        capped = sp["val_size"] is not None or sp["test_size"] is not None
        implied = sp_rep.get(glue) or {}
        if capped or sp["val_source"] == "train":
            check = "not comparable: halves capped/resampled by this study's splits settings"
        elif implied.get("val") is not None:
            ok = sizes.get("val") == implied.get("val") and sizes.get("test") == implied.get("test")
            check = (
                f"matches the paper's implied {implied['val']}/{implied['test']}"
                if ok
                else f"differs from the paper's implied {implied['val']}/{implied['test']}"
            )
        else:
            check = "no implied sizes to check"
        row = {
            "task": ds,
            "metric": metric,
            "train (ours)": sizes.get("train", "–"),
            "train (paper)": p.get("train", "–"),
            "val (ours)": sizes.get("val", "–"),
            "val (paper)": p.get("val", "–"),
            "test (ours)": sizes.get("test", "–"),
            "test (paper)": p.get("test", "–"),
            "majority val (ours)": _x((maj.get("val") or {}).get(metric)),
            "majority val (paper)": f"{p['majority_val']:.1f}" if "majority_val" in p else "–",
            "majority test (ours)": _x((maj.get("test") or {}).get(metric)),
            "majority test (paper)": f"{p['majority_test']:.1f}" if "majority_test" in p else "–",
            "size check": check,
        }
        disp.append(row)
        nums.append(
            {
                "task": ds,
                "glue_task": glue,
                "metric": metric,
                "train": sizes.get("train"),
                "val": sizes.get("val"),
                "test": sizes.get("test"),
                "majority_val": (maj.get("val") or {}).get(metric),
                "majority_test": (maj.get("test") or {}).get(metric),
                "paper_train": p.get("train"),
                "paper_val": p.get("val"),
                "paper_test": p.get("test"),
                "paper_majority_val_x100": p.get("majority_val"),
                "paper_majority_test_x100": p.get("majority_test"),
                "val_source": sp["val_source"],
                "val_cap": sp["val_size"],
                "test_cap": sp["test_size"],
                "train_size_setting": sp["train_size"],
                "size_check": check,
            }
        )
    notes = [
        "Majority baselines: the metric of the always-majority predictor on each half (x100; 0 for "
        "correlations). Paper column as printed in its Table 3: " + str(t3.get("note", "")),
        "Our sizes follow this study's splits settings (train_size, val_size, test_size caps); the paper uses "
        "the whole dev halves and full training sets (1,000 examples for the 1k datasets).",
    ]
    return Table(
        "table3_splits",
        "Datasets and splits (paper Table 3)",
        pd.DataFrame(disp),
        pd.DataFrame(nums),
        notes,
        paper_item="Table 3",
    )


def _cell_stats(runs, task, cond):
    v, _, g = _values(runs, task, cond)
    d = stats.describe(v)
    return d, int(g["degenerate"].sum()) if "degenerate" in g else 0


def ordered_columns(name: str, cols: dict, reported: dict) -> dict:
    """A table's {column: condition} in the paper's column order (study.json sorts keys, so the
    configured order cannot be relied on); columns the paper does not have follow, alphabetically."""
    t = reported.get(name) or {}
    if name == "table1":
        t = t.get("full") or {}
    first = next((v for v in t.values() if isinstance(v, dict)), {})
    order = [c for c in first if c in cols] + sorted(c for c in cols if c not in first)
    return {c: cols[c] for c in order}


def baseline_column(cols: dict, cfg: dict) -> str:
    """The column the others are tested against in Table 2's layout: 'standard', else the Standard condition."""
    if "standard" in cols:
        return "standard"
    std = roles(cfg)["standard"]
    return next((c for c, cond in cols.items() if cond == std), next(iter(cols)))


def table_layout1(name: str, spec: dict, runs: pd.DataFrame, cfg: dict, reported: dict, mode: str) -> Table:
    """Table 1 layout (mode 'best': best mean and every mean not significantly worse are marked) or Table 2
    layout (mode 'vs_first': means significantly better than the first column are marked)."""
    a = acfg(cfg)
    alpha = a["alpha"]
    cols = ordered_columns(name, spec["columns"], reported)
    tasks = sorted(
        {
            t
            for t in runs["task"].unique()
            if any(((runs["task"] == t) & (runs["condition"] == c)).any() for c in cols.values())
        }
    )
    disp, nums, marks = [], [], []
    for task in tasks:
        drow, mrow = {"task": task}, {"task": False}
        groups = {col: _values(runs, task, cond)[0] for col, cond in cols.items()}
        present = {col: v for col, v in groups.items() if len(v)}
        if mode == "best":
            mk = stats.mark_best_and_equivalent(present, alpha=alpha) if present else {}
        else:
            first = baseline_column(cols, cfg)
            mk = {}
            for col in present:
                if col == first or first not in present:
                    mk[col] = {"best": False, "equivalent": False, "p_vs_best": NAN}
                    continue
                r = compare_conditions(runs, cfg, task, cols[first], cols[col])
                v = stats.verdict(r, alpha=alpha, power=a["power"], direction=+1)
                mk[col] = {
                    "better_than_first": bool(
                        np.isfinite(v["p_paper_direction"]) and v["p_paper_direction"] < alpha
                    ),
                    "p_vs_first": v["p_paper_direction"],
                    "test": v["decided_by"],
                }
        for col, cond in cols.items():
            d, k = _cell_stats(runs, task, cond)
            paper = paper_cell(reported, name, cfg, task, col)
            m = mk.get(col, {})
            marked = bool(m.get("best") or m.get("equivalent") or m.get("better_than_first"))
            drow[f"{col} (ours)"] = _ms_d(d)
            drow[f"{col} (paper)"] = _paper_ms(paper)
            mrow[f"{col} (ours)"], mrow[f"{col} (paper)"] = marked, False
            nums.append(
                {
                    "task": task,
                    "column": col,
                    "condition": cond,
                    "n": d["n"],
                    "n_nan": d["n_nan"],
                    "mean": d["mean"],
                    "std": d["std"],
                    "median": d["median"],
                    "min": d["min"],
                    "max": d["max"],
                    "n_degenerate": k,
                    "best": m.get("best", False),
                    "equivalent": m.get("equivalent", False),
                    "p_vs_best": m.get("p_vs_best", NAN),
                    "better_than_first": m.get("better_than_first", False),
                    "p_vs_first": m.get("p_vs_first", NAN),
                    "paper_mean_x100": paper[0] if paper else NAN,
                    "paper_std_x100": paper[1] if paper else NAN,
                }
            )
        disp.append(drow)
        marks.append(mrow)
    display = pd.DataFrame(disp)
    markdf = pd.DataFrame(marks) if marks else None
    if mode == "best":
        how = (
            f"Bold (underlined in LaTeX): the best mean of each row and every mean not significantly worse than "
            f"it (one-tailed Student's t-test, p >= {alpha}), as the paper marks Table 1."
        )
    else:
        how = (
            f"Bold (underlined in LaTeX): significantly better than {baseline_column(cols, cfg)} (one-tailed; paired t-test "
            f"when >= {MIN_PAIRS} seeds are shared, else Student's t; p < {alpha}, no multiplicity correction, "
            f"as the paper marks Table 2)."
        )
    notes = [
        how,
        "Cells: mean ± std over seeds of the test metric at the best-validation checkpoint, x100 (n = runs "
        "with a finite metric; NaN runs are counted in the degenerate table).",
        "Column -> condition: " + ", ".join(f"{c} = {cond}" for c, cond in cols.items()) + ".",
    ]
    notes += _protocol_notes(cfg, tasks, reported, runs)
    item = {"table1": "Table 1", "table2": "Table 2", "table4": "Table 4", "table7": "Table 7"}.get(name, "")
    return Table(
        name,
        spec["title"],
        display,
        pd.DataFrame(nums),
        notes,
        marks=markdf,
        paper_item=item,
    )


def table_optimiser(spec: dict, runs: pd.DataFrame, cfg: dict, reported: dict, comps: pd.DataFrame) -> Table:
    a = acfg(cfg)
    r = roles(cfg)
    base, treat = r["bertadam"], r["debiased"]
    tasks = sorted(
        set(runs.loc[runs["condition"] == base, "task"]) & set(runs.loc[runs["condition"] == treat, "task"])
    )
    bc = reported.get("bias_correction") or {}
    disp, nums = [], []
    for task in tasks:
        res = compare_conditions(runs, cfg, task, base, treat)
        v = stats.verdict(res, alpha=a["alpha"], power=a["power"], direction=+1)
        dd = _deciding(res, v["decided_by"])
        (da, ka), (db, kb) = _cell_stats(runs, task, base), _cell_stats(runs, task, treat)
        na, nb = da["n"], db["n"]  # describe's n counts every run, NaN included
        fisher = stats.fisher_degenerate(ka, na, kb, nb, "greater") if na and nb else NAN
        kind, glue = paper_key(cfg, task)
        paper = "–"
        if glue == "rte" and kind == "full":
            paper = (
                f"BERTAdam degenerate {100 * bc.get('rte_bertadam_degenerate_share', NAN):.0f}% (test acc < 55); "
                f"third-party rerun {100 * (reported.get('third_party_replication') or {}).get('rte_bertadam_degenerate_share', NAN):.0f}%"
            )
        if glue == "mnli" and kind == "full":
            t5 = (reported.get("table5") or {}).get("mnli") or {}
            paper = (
                f"full MNLI dev: BERTAdam {_paper_ms(t5.get('bertadam_dev'))}, debiased "
                f"{_paper_ms(t5.get('debiased_dev'))} (Table 5)"
            )
        disp.append(
            {
                "task": task,
                f"{base}": _ms_d(da),
                f"{base} degenerate": f"{ka}/{na}",
                f"{treat}": _ms_d(db),
                f"{treat} degenerate": f"{kb}/{nb}",
                "difference [95% CI]": f"{_x(v['effect'])} [{_x(dd['ci_low'])}, {_x(dd['ci_high'])}]",
                "p (test)": f"{_p(v['p_paper_direction'])} ({v['decided_by']})",
                "MDE": _x(dd["mde"]),
                "Fisher p (degenerate)": _p(fisher),
                "Brown-Forsythe p (spread)": _p(res["levene_p"]),
                "paper": paper,
            }
        )
        nums.append(
            {
                "task": task,
                "baseline": base,
                "treatment": treat,
                "mean_a": da["mean"],
                "std_a": da["std"],
                "n_a": da["n"],
                "n_nan_a": da["n_nan"],
                "n_degenerate_a": ka,
                "mean_b": db["mean"],
                "std_b": db["std"],
                "n_b": db["n"],
                "n_nan_b": db["n_nan"],
                "n_degenerate_b": kb,
                "effect": v["effect"],
                "ci_low": dd["ci_low"],
                "ci_high": dd["ci_high"],
                "p": v["p_paper_direction"],
                "test": v["decided_by"],
                "mde_metric": dd["mde"],
                "fisher_p": fisher,
                "levene_p": res["levene_p"],
                "var_ratio": res["var_ratio"],
                "welch_p": res["welch_p"],
                "mannwhitney_p": res["mannwhitney_p"],
                "wilcoxon_p": res["wilcoxon_p"],
                "paper": paper,
            }
        )
    notes = [
        "Means ± std x100 of the test metric at the best-validation checkpoint; degenerate = no better than the "
        "majority class of the test half (correlation <= 0 or NaN for STS-B/CoLA) or collapsed predictions; "
        "the paper's RTE rule (accuracy below 55%) where configured.",
        "Difference = debiased minus BERTAdam (x100), one-tailed p of the deciding test, MDE = smallest "
        "difference detectable with 80% power at this number of seeds.",
        "The paper prints no per-task means for this experiment (Fig. 2 only); its one number is the RTE "
        "degenerate share.",
    ]
    notes += _protocol_notes(cfg, tasks, reported, runs)
    return Table(
        "optimiser",
        spec["title"],
        pd.DataFrame(disp),
        pd.DataFrame(nums),
        notes,
        paper_item="Section 4 / Fig. 2 / Table 5",
    )


def table_degenerate(flagged: pd.DataFrame, cfg: dict, reported: dict) -> Table:
    bc = reported.get("bias_correction") or {}
    r = roles(cfg)
    disp, nums = [], []
    for (task, cond), g in flagged.groupby(["task", "condition"], sort=True):
        n = len(g)
        k = int(g["degenerate"].sum())
        reasons = g.loc[g["degenerate"], "degenerate_reason"].value_counts().to_dict()
        kind, glue = paper_key(cfg, task)
        paper = "–"
        if glue == "rte" and kind == "full" and cond == r["bertadam"]:
            paper = (
                f"{100 * bc.get('rte_bertadam_degenerate_share', NAN):.0f}% (paper, 50 seeds); "
                f"{100 * (reported.get('third_party_replication') or {}).get('rte_bertadam_degenerate_share', NAN):.0f}% "
                "(third-party rerun)"
            )
        elif cond == r["debiased"] and kind == "full" and glue in ("rte", "mrpc", "sts-b", "cola"):
            paper = "0 (third-party rerun, 50 seeds)"
        disp.append(
            {
                "task": task,
                "condition": cond,
                "seeds": ",".join(sorted(set(g["seed_role"]))),
                "runs": n,
                "degenerate": f"{k} ({100 * k / n:.0f}%)" if n else "0",
                "NaN": reasons.get("nan", 0),
                "diverged": reasons.get("diverged", 0),
                "no better than baseline": sum(
                    v for kk, v in reasons.items() if kk.startswith(("<=", "below"))
                ),
                "collapsed": reasons.get("collapsed", 0),
                "at last checkpoint": int(g["degenerate_last"].sum()),
                "rule": g["degenerate_rule"].iloc[0],
                "paper": paper,
            }
        )
        nums.append(
            {
                "task": task,
                "condition": cond,
                "seed_role": ",".join(sorted(set(g["seed_role"]))),
                "n": n,
                "n_degenerate": k,
                "share": k / n if n else NAN,
                "n_nan": reasons.get("nan", 0),
                "n_diverged": reasons.get("diverged", 0),
                "n_below_baseline": sum(v for kk, v in reasons.items() if kk.startswith(("<=", "below"))),
                "n_collapsed": reasons.get("collapsed", 0),
                "n_degenerate_last": int(g["degenerate_last"].sum()),
                "rule": g["degenerate_rule"].iloc[0],
                "paper": paper,
            }
        )
    d = acfg(cfg)["degenerate"]
    notes = [
        f"A run is degenerate when its test metric (best-validation checkpoint) is NaN, no better than the "
        f"majority-class predictor of the test half (accuracy/F1), <= 0 (correlations), or below a configured "
        f"per-dataset rule, or when it collapsed: one class for >= {d['collapse_share']} of test "
        f"predictions, or a regression output std <= {d['collapse_std_ratio']} x the labels' std.",
        "A diverged run (its training loss became non-finite and the engine stopped it) is degenerate with "
        "its own reason 'diverged', whatever its metric; it stays in every count and table.",
        "Counts are per condition over all of its runs; 'seeds' says whether these are report or selection seeds.",
    ]
    return Table(
        "degenerate",
        "Degenerate runs per condition",
        pd.DataFrame(disp),
        pd.DataFrame(nums),
        notes,
        paper_item="Section 4 (48% of BERTAdam RTE runs)",
    )


def table_selection(cfg: dict, root, reported: dict) -> Table:
    chosen_1k = (reported.get("table1") or {}).get("reinit_layers_chosen_1k") or {}
    disp, nums = [], []
    for task, fam in selected_families(cfg):
        path = Path(root) / "selection" / task / f"{fam}.json"
        if not path.exists():
            disp.append(
                {
                    "task": task,
                    "family": fam,
                    "candidate": "(selection file missing)",
                    "settings": "",
                    "n": "",
                    "validation (ours)": "",
                    "chosen": "",
                    "paper's choice": "",
                }
            )
            continue
        sel = json.loads(path.read_text())
        kind, glue = paper_key(cfg, task)
        for c in sel["candidates"]:
            over = c.get("overrides") or {}
            is_chosen = c["name"] == sel["chosen"]
            paper = ""
            if "reinit_layers" in over and kind == "train_1k" and glue in chosen_1k:
                paper = f"L = {chosen_1k[glue]}"
            mean, std = c.get("val_mean"), c.get("val_std")
            disp.append(
                {
                    "task": task,
                    "family": fam,
                    "candidate": c["name"],
                    "settings": ", ".join(f"{k}={v}" for k, v in over.items()),
                    "n": c.get("n"),
                    "validation (ours)": _ms(NAN if mean is None else mean, NAN if std is None else std),
                    "chosen": "✓" if is_chosen else "",
                    "paper's choice": paper,
                }
            )
            nums.append(
                {
                    "task": task,
                    "family": fam,
                    "candidate": c["name"],
                    "overrides": json.dumps(over, sort_keys=True),
                    "n": c.get("n"),
                    "n_nan": c.get("n_nan"),
                    "val_mean": mean,
                    "val_std": std,
                    "chosen": is_chosen,
                    "seeds": " ".join(map(str, sel.get("seeds", []))),
                    "rule": sel.get("rule"),
                    "paper_choice": paper,
                }
            )
    sel_sets = acfg(cfg)["selection_seeds"]
    notes = [
        "Each candidate's mean ± std validation score (x100) over the selection seeds ("
        + ", ".join(f"{n}: {cfg['seeds'][n]}" for n in sel_sets)
        + "); test metrics are never read for "
        "selection. Rule: highest mean validation score; ties go to the candidate listed first.",
        "Selection and report seeds are "
        + (
            "disjoint"
            if acfg(cfg)["disjoint_selection"]
            else "allowed to overlap (the paper's choice)"
        )
        + " in this study.",
        "The paper reports its chosen L only for the 1k datasets (RTE 6, MRPC 5, STS-B 4, CoLA 1, SST 2, QNLI 4, "
        "QQP 3, MNLI 5).",
    ]
    return Table(
        "selection",
        "Settings chosen on validation (selection stage)",
        pd.DataFrame(disp),
        pd.DataFrame(nums),
        notes,
        paper_item="Sections 5-7 (selection of L, steps, stabiliser settings)",
    )


# ---- the command ----------------------------------------------------------------------------------


def run_analysis(cfg: dict, root, runs_csv, stats_dir, tables_dir, reported: dict | None = None) -> dict:
    """Write stats/*.csv and every planned table (md, tex, csv) plus tables/index.json."""
    reported = reported or load_reported()
    runs = pd.read_csv(runs_csv)
    flagged = flag_runs(runs, cfg)
    rep = report_runs(flagged, cfg)
    summ = summaries(flagged)
    comps = comparisons(rep, cfg, reported)
    rq2 = degenerate_claim(rep, cfg, comps) if len(comps) else []
    sd = Path(stats_dir)
    atomic_write_csv(sd / "runs_flagged.csv", flagged)
    atomic_write_csv(sd / "summary.csv", summ)
    atomic_write_csv(
        sd / "comparisons.csv", comps if len(comps) else pd.DataFrame(columns=["comparison", "task"])
    )
    tables_cfg = acfg(cfg)["tables"]
    index = []
    for name in planned_tables(cfg):
        if name == "claims":
            t = table_claims(comps, rq2, cfg)
        elif name == "table3_splits":
            t = table3_splits(cfg, root, reported)
        elif name == "optimiser":
            t = table_optimiser(tables_cfg["optimiser"], rep, cfg, reported, comps)
        elif name == "degenerate":
            t = table_degenerate(flagged, cfg, reported)
        elif name == "selection":
            t = table_selection(cfg, root, reported)
        else:
            t = table_layout1(
                name,
                tables_cfg[name],
                rep,
                cfg,
                reported,
                mode="vs_first" if name == "table2" else "best",
            )
        index.append(t.write(tables_dir))
    atomic_write_json(
        Path(tables_dir) / "index.json", {"tables": index, "config_hash": cfg.get("_config_hash")}
    )
    return {"flagged": flagged, "summary": summ, "comparisons": comps, "rq2": rq2, "index": index}
