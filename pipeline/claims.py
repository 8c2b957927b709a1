"""The paper's claims and this study's verdicts on them.

Each configured comparison (analysis.comparisons) is a claim: "the treatment beats the baseline"
(expect: better) or "the method adds little" (expect: no_gain), tested per task on the runs of the
report seeds, paired by seed. RQ 2 ("debiasing reduces degenerate runs and the spread") is derived
from the RQ 1 comparison as two sub-claims with a written combining rule. Every number that decides
comes from stats.decide / stats.verdict (the verdict's category is a field, never parsed from text);
this module chooses the effect of interest, forms the Holm families and gathers what the tables print.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import stats
from .config import resolve_settings
from .plan import roles
from .reported import follows_protocol, paper_degenerate_share, paper_effect

NAN = float("nan")
MIN_PAIRS = 3  # the paired test decides from 3 shared seeds on (stats.decide's default)
DECAYS = {
    "prior_wd": "pre-trained weight decay (toward the start of fine-tuning)",
    "weight_decay": "weight decay (toward zero)",
}

HOLM_FAMILY = (
    "one claim (one configured comparison, or one RQ 2 sub-claim) across the tasks it is tested on; Holm is "
    "applied separately to the test that can reproduce the claim and to the test that can refute it, so the "
    "chance of any false 'reproduced' among a claim's tasks is at most alpha, and likewise of any false "
    "'not reproduced'"
)

CLAIM_RULE = (
    "Per task the deciding test is the paired t-test when at least 3 seeds are shared by both conditions, else "
    "Student's t-test (the paper's); the interval beside it is that test's own t interval at 1 - 2 alpha, so its "
    "bound in the tested direction is the one-sided 1 - alpha bound and excludes the null value exactly where the "
    "unadjusted one-tailed test rejects. Holm family: " + HOLM_FAMILY + ". "
    "'Better' claims: reproduced when 'effect > 0' is rejected after Holm ('smaller than the paper's effect' when "
    "the paper's effect is excluded as well); not reproduced when the paper's effect is excluded ('effect < "
    "paper's effect' rejected; where the study follows the paper's protocol and the paper prints both "
    "conditions) and 'effect > 0' is not, elsewhere when a significant opposite effect is. 'Adds little' claims "
    "(a non-superiority test): reproduced ('gain below margin') when 'gain >= smallest effect of interest' is "
    "rejected after Holm ('significant gain below margin' when 'gain > 0' is rejected too: a real gain, smaller "
    "than the margin), not reproduced when only 'gain > 0' is; a decay setting that moves the weights less than "
    "analysis.min_pull is 'uninformative', never reproduced. A decision that holds before Holm only is "
    "inconclusive and says so. Otherwise inconclusive: 'no effect' (or 'gain not excluded') where the study had "
    "at least analysis.power for the effect of interest (the paper's effect where it applies, else "
    "analysis.smallest_effect_of_interest) at alpha / m, the level of Holm's most demanding step for a claim "
    "tested on m tasks, else 'too few seeds' with the number needed for that effect at that level. RQ 2 is two "
    "sub-claims (fewer degenerate runs: Fisher's exact test; smaller spread: one-tailed Brown-Forsythe), "
    "combined per task: not reproduced when either sub-claim is refuted (after Holm), reproduced only when both "
    "are reproduced, inconclusive otherwise, so a significantly larger spread is never a reproduction. Over "
    "tasks: reproduced (or not reproduced) when every task says so; inconclusive otherwise: 'mixed across "
    "tasks' when some tasks reproduce the claim and others refute it, 'partly reproduced' when some reproduce "
    "it and none refutes it, 'refuted on some tasks' when some refute it and none reproduces it, else the "
    "tasks' most telling inconclusive category."
)


# ---- configuration ------------------------------------------------------------------------------


def comparison_expect(comp: dict) -> str:
    """'better' (the treatment beats the baseline) or 'no_gain' (the method adds little).

    From the comparison's `expect` key; without it, a claim whose text says the method "adds little"
    (or "no gain/effect/difference") is a no_gain claim, every other claim a better claim."""
    if comp.get("expect"):  # optional per comparison
        if comp["expect"] not in stats.EXPECTS:
            raise ValueError(
                f"analysis.comparisons.{comp['name']}.expect: must be better or no_gain, "
                f"got {comp['expect']!r}"
            )
        return comp["expect"]
    text = str(comp["claim"]).lower()
    return "no_gain" if re.search(r"adds? (little|nothing)|no (gain|effect|difference)", text) else "better"


def effect_of_interest(cfg: dict, comp: dict) -> float:
    """The comparison's own smallest_effect_of_interest (optional), else analysis.smallest_effect_of_interest.mean
    (metric units, 0-1 scale): the non-superiority margin of "adds little" claims, and the effect the power
    of a "better" claim is computed for where the paper's own effect does not apply."""
    own = comp.get("smallest_effect_of_interest")
    return float(cfg["analysis"]["smallest_effect_of_interest"]["mean"] if own is None else own)


# ---- the runs of one cell -------------------------------------------------------------------------


def values(runs: pd.DataFrame, task: str, cond: str, col: str = "test_best"):
    g = runs[(runs["task"] == task) & (runs["condition"] == cond)].sort_values("seed")
    return g[col].to_numpy(dtype=float), g["seed"].astype(int).tolist(), g


def tasks_with(runs: pd.DataFrame, *conds) -> list[str]:
    sets = [set(runs.loc[runs["condition"] == c, "task"]) for c in conds]
    return sorted(set.intersection(*sets)) if sets else []


def compare_conditions(
    runs: pd.DataFrame, cfg: dict, task: str, baseline: str, treatment: str, alternative: str = "greater"
) -> dict:
    a = cfg["analysis"]
    va, sa, _ = values(runs, task, baseline)
    vb, sb, _ = values(runs, task, treatment)
    return stats.compare(
        va,
        vb,
        seeds_a=sa,
        seeds_b=sb,
        alpha=a["alpha"],
        n_boot=a["n_boot"],
        boot_seed=a["boot_seed"],
        alternative=alternative,
        power=a["power"],
    )


# ---- how far a decay setting moves the weights ------------------------------------------------------


def schedule_sum(total: int, warmup: int) -> float:
    """Sum over a run's steps of the learning-rate multiplier (the engine's linear warm-up then linear
    decay, pipeline/optim.linear_schedule at steps 0 .. total-1)."""
    s = np.arange(total, dtype=np.float64)
    f = np.where(s < warmup, s / max(1, warmup), np.maximum(0.0, (total - s) / max(1, total - warmup)))
    return float(f.sum())


def weight_pull(runs: pd.DataFrame, cfg: dict, task: str, baseline: str, treatment: str) -> dict | None:
    """How far the treatment's decay moves the weights over a run, beyond the baseline's: for weight decay
    (toward 0) and pre-trained weight decay (toward the start of fine-tuning) each step shrinks w (or
    w - w0) by lr_t x lambda, so over the run the pull is lambda x the sum of lr_t (a fraction; 0.01 is 1%
    of the way). From the resolved settings of the runs: lr, lambda and the steps recorded in runs.csv
    (the chosen candidate's, for a selected condition), warm-up as recorded (else as configured). None when
    the treatment is not a decay."""
    _, seeds, g = values(runs, task, treatment)
    _, _, gb = values(runs, task, baseline)
    if g.empty:
        return None
    s = resolve_settings(cfg, task, treatment, seeds[0])
    sb = resolve_settings(cfg, task, baseline, seeds[0])

    def setting(frame, resolved, key):
        col = frame[key] if key in frame.columns else pd.Series(dtype=float)
        col = pd.to_numeric(col, errors="coerce").dropna()
        return float(col.median()) if len(col) else float(resolved[key] or 0.0)

    lams = {k: setting(g, s, k) - setting(gb, sb, k) for k in DECAYS}
    kind = max(lams, key=lambda k: lams[k])
    if lams[kind] <= 0:
        return None
    lr = setting(g, s, "lr")
    total = int(pd.to_numeric(g["total_steps"], errors="coerce").median())
    recorded = pd.to_numeric(g["warmup_steps"], errors="coerce").dropna() if "warmup_steps" in g else []
    if len(recorded):  # the warm-up the engine used (record.json, runs.csv)
        warmup = int(recorded.median())
    elif s.get("warmup_steps") is not None:  # a fixed warm-up (the Table 6 recipes)
        warmup = int(s["warmup_steps"])
    else:  # the engine's rule (pipeline/train.py)
        warmup = int(s["warmup_ratio"] * total)
    effective, what = lams[kind], DECAYS[kind]
    if kind == "weight_decay" and s.get("weight_decay_impl") == "official_noop":
        # the released code's prior-WD wrapper zeroes plain weight decay: no pull at all
        effective, what = 0.0, f"{what}, zeroed by weight_decay_impl official_noop"
    pull = effective * lr * schedule_sum(total, warmup)
    return {
        "kind": kind,
        "what": what,
        "lambda": lams[kind],
        "lr": lr,
        "steps": total,
        "warmup": warmup,
        "pull": pull,
    }


# ---- how far the baseline sits above chance ---------------------------------------------------------


def above_chance(runs: pd.DataFrame, cfg: dict, task: str, cond: str) -> dict:
    """The condition's test metric minus the test half's majority-class (chance) score, with the t interval
    at 1 - 2 alpha. Test scores never pick a checkpoint, so this says whether the model learns the task at
    all; comparisons and degenerate counts on a task whose baseline sits at chance are mostly noise."""
    a = cfg["analysis"]
    v, _, g = values(runs, task, cond)
    d = v - g["majority_test"].to_numpy(dtype=float)
    d = d[np.isfinite(d)]
    level = stats.interval_level(a["alpha"], 1)
    lo, hi = stats.paired_t_interval(d, level) if d.size >= 2 else (NAN, NAN)
    return {
        "condition": cond,
        "n": int(d.size),
        "estimate": float(d.mean()) if d.size else NAN,
        "ci_low": lo,
        "ci_high": hi,
        "ci_level": level,
    }


def _baseline_for_chance(runs, cfg, task, baseline) -> str:
    std = roles(cfg)["standard"]
    return std if std and ((runs["task"] == task) & (runs["condition"] == std)).any() else baseline


# ---- the comparisons ------------------------------------------------------------------------------


def scored_0(g: pd.DataFrame) -> int:
    """How many of these runs entered the tests with an undefined test correlation scored 0 (no skill)."""
    return int(g["test_best_undefined"].sum()) if "test_best_undefined" in g else 0


def at_family_level(tasks: list[str], test_of) -> dict:
    """{task: test_of(task, m)} where m is the size of the claim's Holm family: the tasks whose deciding
    test has a p-value (Holm leaves the others out of m). Power, smallest detectable effects and seeds
    needed are computed at alpha / m, the level of Holm's most demanding step (stats.holm_first_level)."""
    m = max(1, len(tasks))
    out = {t: test_of(t, m) for t in tasks}
    computable = max(1, sum(bool(np.isfinite(d["p_support"])) for d in out.values()))
    if computable != m:  # a task without a p-value leaves the family: recompute at its real level
        out = {t: test_of(t, computable) for t in tasks}
    return out


def comparisons(runs: pd.DataFrame, cfg: dict, reported: dict) -> pd.DataFrame:
    """Every configured comparison on every task that ran both conditions (report seeds only): one row per
    claim and task with the compare() numbers, the deciding test, Holm p-values and the verdict."""
    a = cfg["analysis"]
    alpha, power = a["alpha"], a["power"]
    rows = []
    for comp in a["comparisons"]:
        base, treat = comp["baseline"], comp["treatment"]
        expect = comparison_expect(comp)
        soi = effect_of_interest(cfg, comp)
        block = []
        tasks = tasks_with(runs, base, treat)
        inputs = {}
        for task in tasks:
            follows = follows_protocol(cfg, task, reported, runs)
            peff = paper_effect(reported, cfg, task, base, treat)
            inputs[task] = (compare_conditions(runs, cfg, task, base, treat), follows, peff)

        def decide_at(task, m):
            r, follows, peff = inputs[task]
            return stats.decide(
                r,
                expect=expect,
                alpha=alpha,
                power=power,
                effect_of_interest=soi,
                family_size=m,
                paper_effect=peff if follows else None,
                min_pairs=MIN_PAIRS,
            )

        decisions = at_family_level(tasks, decide_at)
        for task in tasks:
            r, follows, peff = inputs[task]
            dec = decisions[task]
            pull = weight_pull(runs, cfg, task, base, treat) if expect == "no_gain" else None
            too_weak = None
            if pull is not None and pull["pull"] < a["min_pull"]:
                too_weak = (
                    f"the {pull['what']} setting moves the weights by {100 * pull['pull']:.3g}% over the run "
                    f"(lambda {pull['lambda']:g} x lr {pull['lr']:g} summed over {pull['steps']} steps), "
                    f"below analysis.min_pull {100 * a['min_pull']:g}%"
                )
            _, _, gb = values(runs, task, base)
            _, _, gt = values(runs, task, treat)
            chance = above_chance(runs, cfg, task, _baseline_for_chance(runs, cfg, task, base))
            block.append(
                {
                    "comparison": comp["name"],
                    "rq": comp["rq"],
                    "claim": comp["claim"],
                    "expect": expect,
                    "smallest_effect_of_interest": soi,
                    "task": task,
                    "baseline": base,
                    "treatment": treat,
                    **{k: v for k, v in r.items() if k not in ("alpha",)},
                    **{f"dec_{k}": v for k, v in dec.items()},
                    "decided_by": dec["test"],
                    "effect": dec["effect"],
                    "ci_low": dec["ci_low"],
                    "ci_high": dec["ci_high"],
                    "ci_level": dec["ci_level"],
                    "mde_metric": dec["mde_metric"],
                    "mde_std": dec["mde_std"],
                    "seeds_needed": dec["seeds_needed"],
                    "power_alpha": dec["power_alpha"],
                    "family_size": dec["family_size"],
                    "p_raw": dec["p_support"],
                    "p_against": dec["p_against"],
                    "paper_effect_x100": 100 * peff if peff is not None else NAN,
                    "follows_paper_protocol": follows,
                    "too_weak": too_weak or "",
                    "pull": pull["pull"] if pull else NAN,
                    "pull_kind": pull["kind"] if pull else "",
                    "pull_steps": pull["steps"] if pull else NAN,
                    "pull_lr": pull["lr"] if pull else NAN,
                    "pull_lambda": pull["lambda"] if pull else NAN,
                    "n_deg_a": int(gb["degenerate"].sum()) if "degenerate" in gb else NAN,
                    "n_deg_b": int(gt["degenerate"].sum()) if "degenerate" in gt else NAN,
                    "n_scored_0_a": scored_0(gb),
                    "n_scored_0_b": scored_0(gt),
                    "chance_condition": chance["condition"],
                    "above_chance": chance["estimate"],
                    "above_chance_low": chance["ci_low"],
                    "above_chance_high": chance["ci_high"],
                    "above_chance_n": chance["n"],
                }
            )
        _holm_and_verdicts(
            block,
            "p_raw",
            "p_against",
            alpha,
            power,
            lambda b: {k[4:]: v for k, v in b.items() if k.startswith("dec_")},
        )
        rows += block
    return pd.DataFrame(rows)


def _holm_and_verdicts(
    block: list[dict], p_support: str, p_against: str, alpha: float, power: float, test_of, prefix: str = ""
) -> None:
    """Holm across the block's tasks (one family per test), then each task's verdict, in place."""
    for key, src in ((f"{prefix}p_holm", p_support), (f"{prefix}p_against_holm", p_against)):
        for b, p in zip(block, stats.holm([b[src] for b in block])):
            b[key] = p
    for b in block:
        v = stats.verdict(
            test_of(b),
            alpha=alpha,
            power=power,
            p_support_holm=b[f"{prefix}p_holm"],
            p_against_holm=b[f"{prefix}p_against_holm"],
            family_size=len(block),
            too_weak=b.get("too_weak") or None,
        )
        b[f"{prefix}verdict"], b[f"{prefix}category"], b[f"{prefix}reason"] = (
            v["verdict"],
            v["category"],
            v["reason"],
        )


def claim_verdict(block: list[dict], prefix: str = "") -> dict:
    """The claim's verdict over its tasks (stats.aggregate), with the per-task breakdown as its reason."""
    if not block:
        return {
            "verdict": "not run",
            "category": "",
            "reason": "neither condition pair ran on a report seed set in this study",
        }
    tv = [{"verdict": b[f"{prefix}verdict"], "category": b[f"{prefix}category"]} for b in block]
    agg = stats.aggregate(tv)
    desc = "; ".join(f"{b['task']}: {b[f'{prefix}verdict']} ({b[f'{prefix}category']})" for b in block)
    return {**agg, "reason": f"{agg['reason']} ({desc})"}


# ---- RQ 2 ---------------------------------------------------------------------------------------------


def degenerate_claim(runs: pd.DataFrame, cfg: dict, reported: dict) -> list[dict]:
    """RQ 2 from each RQ 1 comparison: sub-claim (a) the treatment (debiased Adam) has fewer degenerate
    runs than the baseline (BERTAdam), Fisher's exact test; (b) a smaller spread across seeds, one-tailed
    Brown-Forsythe. Each has its own Holm family and verdict; stats.combine_rq2 combines them per task."""
    a = cfg["analysis"]
    alpha, power, soi = a["alpha"], a["power"], a["smallest_effect_of_interest"]
    out = []
    for comp in a["comparisons"]:
        if comp["rq"] != 1:
            continue
        base, treat = comp["baseline"], comp["treatment"]
        block = []
        tasks = tasks_with(runs, base, treat)
        cells = {task: (values(runs, task, base), values(runs, task, treat)) for task in tasks}

        def fewer_of(task, m):
            (_, _, ga), (_, _, gb) = cells[task]
            share = (
                paper_degenerate_share(reported, cfg, task)
                if follows_protocol(cfg, task, reported, runs)
                else None
            )
            return stats.fewer_degenerate(
                int(ga["degenerate"].sum()),
                len(ga),
                int(gb["degenerate"].sum()),
                len(gb),
                alpha=alpha,
                power=power,
                share_of_interest=share if share is not None else soi["degenerate_share"],
                family_size=m,
            )

        def spread_of(task, m):
            (va, _, _), (vb, _, _) = cells[task]
            return stats.smaller_spread(
                va,
                vb,
                alpha=alpha,
                power=power,
                ratio_of_interest=soi["spread_ratio"],
                reps=a["n_boot"],
                seed=a["boot_seed"],
                family_size=m,
            )

        fewer_tests, spread_tests = at_family_level(tasks, fewer_of), at_family_level(tasks, spread_of)
        for task in tasks:
            (va, _, ga), (vb, _, gb) = cells[task]
            ka, kb = int(ga["degenerate"].sum()), int(gb["degenerate"].sum())
            fewer, spread = fewer_tests[task], spread_tests[task]
            chance = above_chance(runs, cfg, task, _baseline_for_chance(runs, cfg, task, treat))
            block.append(
                {
                    "task": task,
                    "k_a": ka,
                    "n_a": len(ga),
                    "k_b": kb,
                    "n_b": len(gb),
                    "std_a": float(np.nanstd(va, ddof=1)) if len(va) > 1 else NAN,
                    "std_b": float(np.nanstd(vb, ddof=1)) if len(vb) > 1 else NAN,
                    "n_scored_0_a": scored_0(ga),
                    "n_scored_0_b": scored_0(gb),
                    "fewer": fewer,
                    "spread": spread,
                    "chance": chance,
                    "fewer_p": fewer["p_support"],
                    "fewer_p_against": fewer["p_against"],
                    "spread_p": spread["p_support"],
                    "spread_p_against": spread["p_against"],
                }
            )
        for sub in ("fewer", "spread"):
            _holm_and_verdicts(
                block, f"{sub}_p", f"{sub}_p_against", alpha, power, lambda b, s=sub: b[s], prefix=f"{sub}_"
            )
        for b in block:
            sub_v = {
                s: {"verdict": b[f"{s}_verdict"], "category": b[f"{s}_category"]} for s in ("fewer", "spread")
            }
            c = stats.combine_rq2(sub_v["fewer"], sub_v["spread"], b["fewer"], b["spread"], alpha)
            b["verdict"], b["category"], b["reason"] = c["verdict"], c["category"], c["reason"]
        out.append(
            {
                "rq": 2,
                "comparison": f"{comp['name']}_degenerate_and_spread",
                "source": comp["name"],
                "claim": "Debiasing reduces degenerate runs and the spread across seeds",
                "baseline": base,
                "treatment": treat,
                "tasks": block,
                "fewer": claim_verdict(block, "fewer_"),
                "spread": claim_verdict(block, "spread_"),
                **claim_verdict(block),
            }
        )
    return out
