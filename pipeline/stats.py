"""Statistics for comparing fine-tuning conditions across seeds.

Pure functions over numbers (numpy/scipy/pandas only, no files, no torch), so every claim the study
makes about "better", "less variance" or "fewer failed runs" can be checked by a test. Every threshold
is a parameter; those the study configures (alpha, power, n_boot, boot_seed, the collapse thresholds,
the expected-performance draws and seed) have no default here: the caller passes the values from
configuration (params.yaml), the one place they are set.

Conventions:
- Metric values are on the 0-1 scale, as the pipeline records them (the paper prints x100).
- `compare(a, b)` asks whether condition b is better than condition a: effects are b - a.
- NaN marks a run whose metric could not be computed (e.g. a collapsed run's correlation). Such runs are
  counted, never silently lost, but they are excluded from moment-based tests, which cannot use them.
- Functions never raise on degenerate numbers (n < 2, zero variance, all NaN): they return NaN for
  whatever is not computable. They do raise on malformed input (unknown metric, mismatched lengths).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, special
from scipy import stats as st

CORRELATION_METRICS = ("spearman", "pearson", "mcc")
MAJORITY_METRICS = ("accuracy", "f1")
ALTERNATIVES = ("greater", "less", "two-sided")
_NAN = float("nan")


# ----------------------------------------------------------------------------------------------
# small helpers

def _finite(values) -> np.ndarray:
    x = np.asarray(values if values is not None else [], dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def _isnan(x) -> bool:
    return x is None or (isinstance(x, (float, np.floating, int, np.integer)) and not np.isfinite(x))


def _quiet(fn, *args, **kwargs) -> float:
    """Run a scipy test and return its p-value, or NaN if the input makes it undefined.

    Degenerate seed sets (all equal, tiny n) are normal here, so scipy's warnings and errors on them
    are turned into NaN rather than interrupting a whole table."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            p = float(fn(*args, **kwargs).pvalue)
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return _NAN
    return p if np.isfinite(p) else _NAN


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _var(x: np.ndarray) -> float:
    return float(np.var(x, ddof=1)) if len(x) >= 2 else _NAN


def _pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    df = len(a) + len(b) - 2
    if len(a) < 1 or len(b) < 1 or df < 1:
        return _NAN
    ss = float(np.sum((a - a.mean()) ** 2) + np.sum((b - b.mean()) ** 2))
    return math.sqrt(ss / df)


def _t_p(t: float, df: float, alternative: str) -> float:
    """p-value of a t statistic, so that NaN/inf statistics from zero variance become NaN."""
    if not (np.isfinite(t) and np.isfinite(df) and df > 0):
        return _NAN
    if alternative == "greater":
        return float(st.t.sf(t, df))
    if alternative == "less":
        return float(st.t.cdf(t, df))
    return float(min(1.0, 2 * st.t.sf(abs(t), df)))


def _student(a: np.ndarray, b: np.ndarray, alternative: str) -> tuple[float, float, float]:
    """Student's equal-variance t for b - a: (t, df, p); NaN when the pooled variance is zero or n too small.

    Written out rather than scipy's ttest_ind so that zero variance gives NaN instead of p = 0 or 1."""
    df = a.size + b.size - 2
    sp = _pooled_sd(a, b)
    if not (a.size >= 1 and b.size >= 1 and df >= 1 and sp > 0):
        return _NAN, (float(df) if df >= 1 else _NAN), _NAN
    t = (b.mean() - a.mean()) / (sp * math.sqrt(1 / a.size + 1 / b.size))
    return float(t), float(df), _t_p(float(t), df, alternative)


def _percentile_ci(stat: np.ndarray, ci_level: float) -> tuple[float, float]:
    lo, hi = np.percentile(stat, [100 * (1 - ci_level) / 2, 100 * (1 + ci_level) / 2])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------------------------
# 1. description

def describe(values) -> dict:
    """n, n_nan and the moments of the finite values.

    NaN runs are counted (a collapsed run is a result, not missing data) but cannot enter a mean."""
    x = np.asarray(values if values is not None else [], dtype=np.float64).ravel()
    f = x[np.isfinite(x)]
    out = {"n": int(x.size), "n_nan": int(x.size - f.size)}
    if f.size == 0:
        out.update(mean=_NAN, std=_NAN, median=_NAN, min=_NAN, max=_NAN)
        return out
    out.update(mean=float(f.mean()), std=_var(f) ** 0.5 if f.size >= 2 else _NAN,
               median=float(np.median(f)), min=float(f.min()), max=float(f.max()))
    return out


# ----------------------------------------------------------------------------------------------
# 2. degenerate runs

def is_degenerate(metric_name: str, value, majority_baseline, pred_major_share, pred_std, label_std, *,
                  collapse_share: float, collapse_std_ratio: float, rule: dict | None = None) -> bool:
    """Whether a run failed: no better than the majority-class predictor of the test half, or collapsed.

    Why: the paper's instability is a count of failed runs, and a collapsed run can still score above
    chance on a skewed test set (or give a NaN correlation), so both criteria are needed.
    - performance: correlations (spearman, pearson, mcc) fail at value <= 0; accuracy/f1 fail at
      value <= majority_baseline; NaN always fails. `rule={"below": x}` (the paper's RTE rule) replaces
      this comparison with value < x.
    - collapse: classification (pred_major_share given) with one class for >= collapse_share of the
      test examples; regression (pred_std given) with pred_std <= collapse_std_ratio * label_std.
    Values are on the 0-1 scale."""
    name = str(metric_name).lower()
    if name not in CORRELATION_METRICS + MAJORITY_METRICS:
        raise ValueError(f"is_degenerate: unknown metric {metric_name!r}; "
                         f"expected one of {CORRELATION_METRICS + MAJORITY_METRICS}")
    if _isnan(value):
        return True
    value = float(value)
    if rule:
        unknown = set(rule) - {"below"}
        if unknown:
            raise ValueError(f"is_degenerate: unknown rule key(s) {sorted(unknown)}; only 'below' is known")
        if value < float(rule["below"]):
            return True
    elif name in CORRELATION_METRICS:
        if value <= 0:
            return True
    else:
        if _isnan(majority_baseline):
            raise ValueError(f"is_degenerate: metric {name!r} needs a majority_baseline, got {majority_baseline!r}")
        if value <= float(majority_baseline):
            return True
    if not _isnan(pred_major_share) and float(pred_major_share) >= collapse_share:
        return True
    if not _isnan(pred_std) and not _isnan(label_std) and float(pred_std) <= collapse_std_ratio * float(label_std):
        return True
    return False


# ----------------------------------------------------------------------------------------------
# 3. power

def _power_t(ncp: float, df: float, alpha: float, alternative: str) -> float:
    """Exact power of a t-test with noncentrality ncp (effect in the tested direction)."""
    if alternative == "two-sided":
        tc = st.t.ppf(1 - alpha / 2, df)
        return float(st.nct.sf(tc, df, ncp) + st.nct.cdf(-tc, df, ncp))
    tc = st.t.ppf(1 - alpha, df)
    return float(st.nct.sf(tc, df, ncp))


def power_unpaired(d: float, n_a: int, n_b: int, alpha: float = 0.05, alternative: str = "greater") -> float:
    """Power of Student's two-sample t-test for a true standardized effect d (in the tested direction)."""
    _check_alternative(alternative)
    df = n_a + n_b - 2
    if n_a < 1 or n_b < 1 or df < 1 or _isnan(d):
        return _NAN
    d = abs(d) if alternative == "two-sided" else d
    return _power_t(d * math.sqrt(n_a * n_b / (n_a + n_b)), df, alpha, alternative)


def power_paired(dz: float, n: int, alpha: float = 0.05, alternative: str = "greater") -> float:
    """Power of the paired t-test for a true d_z = mean difference / sd of differences."""
    _check_alternative(alternative)
    if n < 2 or _isnan(dz):
        return _NAN
    dz = abs(dz) if alternative == "two-sided" else dz
    return _power_t(dz * math.sqrt(n), n - 1, alpha, alternative)


def _mde(power_of, power: float) -> float:
    # power is increasing in the effect; bracket the root, then solve exactly (no normal approximation)
    hi = 1.0
    while power_of(hi) < power:
        hi *= 2
        if hi > 1e6:
            return _NAN
    return float(optimize.brentq(lambda e: power_of(e) - power, 0.0, hi, xtol=1e-10))


def power_unpaired_mde(n_a: int, n_b: int, alpha: float = 0.05, power: float = 0.8,
                       alternative: str = "greater") -> float:
    """Smallest Cohen's d that Student's t-test detects with this power at n_a, n_b seeds.

    Why: a non-significant result only means "not reproduced" if the study could have seen the
    effect; this is the effect it could see. Exact, via the noncentral t distribution."""
    _check_alternative(alternative)
    if n_a < 1 or n_b < 1 or n_a + n_b - 2 < 1:
        return _NAN
    return _mde(lambda d: power_unpaired(d, n_a, n_b, alpha, alternative), power)


def power_paired_mde(n: int, alpha: float = 0.05, power: float = 0.8, alternative: str = "greater") -> float:
    """Smallest d_z (mean paired difference / sd of differences) the paired t-test detects at n pairs."""
    _check_alternative(alternative)
    if n < 2:
        return _NAN
    return _mde(lambda dz: power_paired(dz, n, alpha, alternative), power)


def _seeds_needed(power_at_n, effect, n_min: int, power: float, max_n: int, alternative: str):
    if _isnan(effect):
        return _NAN
    effect = float(effect)
    if alternative == "less":
        effect = -effect  # an effect "in the tested direction" is then negative
    elif alternative == "two-sided":
        effect = abs(effect)
    if effect <= 0:
        return math.inf  # no number of seeds makes a null or reversed effect significant
    if power_at_n(effect, max_n) < power:
        return math.inf
    lo, hi = n_min, n_min  # exponential search then bisection: power is increasing in n
    while power_at_n(effect, hi) < power:
        lo, hi = hi + 1, min(max_n, hi * 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if power_at_n(effect, mid) >= power:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


def seeds_needed_unpaired(d: float, alpha: float = 0.05, power: float = 0.8, alternative: str = "greater",
                          max_n: int = 10_000):
    """Smallest n per group at which Student's t-test has this power for a true effect d.

    Returns an int; math.inf when d is not in the tested direction or needs more than max_n; NaN for NaN d.
    The effect is signed like the test: for alternative="less" a negative d is the tested direction."""
    _check_alternative(alternative)
    tail = "two-sided" if alternative == "two-sided" else "greater"  # the effect is already oriented
    return _seeds_needed(lambda e, n: power_unpaired(e, n, n, alpha, tail), d, 2, power, max_n, alternative)


def seeds_needed_paired(dz: float, alpha: float = 0.05, power: float = 0.8, alternative: str = "greater",
                        max_n: int = 10_000):
    """Smallest number of pairs at which the paired t-test has this power for a true d_z (see the unpaired
    version for the return convention)."""
    _check_alternative(alternative)
    tail = "two-sided" if alternative == "two-sided" else "greater"  # the effect is already oriented
    return _seeds_needed(lambda e, n: power_paired(e, n, alpha, tail), dz, 2, power, max_n, alternative)


# ----------------------------------------------------------------------------------------------
# 4. comparing two conditions

def _pair_by_seed(a, b, seeds_a, seeds_b) -> tuple[np.ndarray, np.ndarray]:
    fa = pd.DataFrame({"seed": list(seeds_a), "a": np.asarray(a, np.float64)})
    fb = pd.DataFrame({"seed": list(seeds_b), "b": np.asarray(b, np.float64)})
    for name, f in (("seeds_a", fa), ("seeds_b", fb)):
        if f["seed"].duplicated().any():
            dup = sorted(f.loc[f["seed"].duplicated(), "seed"].unique().tolist())
            raise ValueError(f"compare: {name} has duplicate seeds {dup}; pairing by seed needs unique seeds")
    m = fa.merge(fb, on="seed", how="inner").sort_values("seed", kind="stable")
    m = m[np.isfinite(m["a"]) & np.isfinite(m["b"])]
    return m["a"].to_numpy(), m["b"].to_numpy()


def _boot_paired(d: np.ndarray, n_boot: int, rng: np.random.Generator, ci_level: float):
    if d.size < 2 or n_boot < 1:
        return _NAN, _NAN
    means = np.empty(n_boot)
    step = max(1, 2_000_000 // d.size)  # bounded memory for large n
    for s in range(0, n_boot, step):
        idx = rng.integers(0, d.size, size=(min(step, n_boot - s), d.size))
        means[s:s + idx.shape[0]] = d[idx].mean(axis=1)
    return _percentile_ci(means, ci_level)


def _boot_unpaired(a: np.ndarray, b: np.ndarray, n_boot: int, rng: np.random.Generator, ci_level: float):
    if a.size < 2 or b.size < 2 or n_boot < 1:
        return _NAN, _NAN
    diffs = np.empty(n_boot)
    step = max(1, 2_000_000 // (a.size + b.size))
    for s in range(0, n_boot, step):
        m = min(step, n_boot - s)
        ma = a[rng.integers(0, a.size, size=(m, a.size))].mean(axis=1)
        mb = b[rng.integers(0, b.size, size=(m, b.size))].mean(axis=1)
        diffs[s:s + m] = mb - ma
    return _percentile_ci(diffs, ci_level)


def brown_forsythe_p(a, b) -> float:
    """Brown-Forsythe test of equal spread (Levene's test centred on the median), two-sided p-value.
    NaN where it says nothing: fewer than 3 values in a group (with 2, both absolute deviations from
    the median are equal, so the within-group variance is 0 and the statistic infinite by
    construction) or no variation of the deviations within either group."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 3 or b.size < 3:
        return _NAN
    da, db = np.abs(a - np.median(a)), np.abs(b - np.median(b))
    if np.var(da) + np.var(db) == 0:
        return _NAN
    return float(st.levene(a, b, center="median").pvalue)


def compare(a, b, *, alpha: float, n_boot: int, boot_seed: int, power: float, seeds_a=None, seeds_b=None,
            alternative: str = "greater", ci_level: float = 0.95, min_pairs: int = 3,
            max_seeds: int = 10_000) -> dict:
    """Every test of "condition b is better than condition a" (effect = b - a) that the study reports.

    Why several tests: the paper used Student's one-tailed t-test over independent seeds; seeds shared by
    both conditions make a paired test the more powerful honest choice; Welch, Mann-Whitney and Wilcoxon
    check that a verdict does not hinge on normality or equal variances; Brown-Forsythe tests the
    variance claims; the minimum detectable effect says what a non-significant result can rule out.

    One-tailed p-values follow `alternative` (scipy's convention for test(b, a)); Levene is two-sided.
    n_a/n_b count the finite runs used, n_nan_a/n_nan_b the NaN runs dropped. With seeds_a and seeds_b
    the runs are paired by an inner join on seed (finite in both). The bootstrap CIs are percentile
    intervals (level ci_level) from numpy's PCG64(boot_seed): the paired one resamples pairs, the
    unpaired one resamples each condition. `paired` is True when n_pairs >= min_pairs; seeds_needed then
    refers to pairs, else to seeds per group. All keys are always present; NaN where not computable."""
    _check_alternative(alternative)
    a_all = np.asarray(a if a is not None else [], np.float64).ravel()
    b_all = np.asarray(b if b is not None else [], np.float64).ravel()
    fa, fb = a_all[np.isfinite(a_all)], b_all[np.isfinite(b_all)]
    na, nb = fa.size, fb.size
    r: dict = {"alternative": alternative, "alpha": alpha, "ci_level": ci_level,
               "n_a": int(na), "n_b": int(nb),
               "n_nan_a": int(a_all.size - na), "n_nan_b": int(b_all.size - nb)}
    mean_a = float(fa.mean()) if na else _NAN
    mean_b = float(fb.mean()) if nb else _NAN
    var_a, var_b = _var(fa), _var(fb)
    r.update(mean_a=mean_a, mean_b=mean_b, diff=mean_b - mean_a, std_a=math.sqrt(var_a) if na >= 2 else _NAN,
             std_b=math.sqrt(var_b) if nb >= 2 else _NAN)

    # --- unpaired tests (the paper's design) ---
    sp = _pooled_sd(fa, fb)
    t_student, df_student, r["student_p"] = _student(fa, fb, alternative)
    r["student_t"], r["student_df"] = t_student, df_student
    r["welch_p"] = (_quiet(st.ttest_ind, fb, fa, equal_var=False, alternative=alternative)
                    if na >= 2 and nb >= 2 and (var_a > 0 or var_b > 0) else _NAN)
    r["mannwhitney_p"] = (_quiet(st.mannwhitneyu, fb, fa, alternative=alternative)
                          if na >= 1 and nb >= 1 and np.ptp(np.concatenate([fa, fb])) > 0 else _NAN)

    # --- effect sizes ---
    cohen_d = (mean_b - mean_a) / sp if sp > 0 else _NAN
    r["pooled_sd"] = sp
    r["cohen_d"] = cohen_d
    df_g = na + nb - 2
    if df_g >= 2 and np.isfinite(cohen_d):  # exact small-sample correction (Hedges 1981)
        j = math.exp(special.gammaln(df_g / 2) - special.gammaln((df_g - 1) / 2)) / math.sqrt(df_g / 2)
        r["hedges_g"] = cohen_d * j
    else:
        r["hedges_g"] = _NAN

    # --- variance ---
    r["levene_p"] = brown_forsythe_p(fa, fb)
    if na >= 2 and nb >= 2:
        r["var_ratio"] = var_b / var_a if var_a > 0 else (math.inf if var_b > 0 else _NAN)
    else:
        r["var_ratio"] = _NAN

    # --- paired tests ---
    if seeds_a is not None and seeds_b is not None:
        if len(seeds_a) != a_all.size or len(seeds_b) != b_all.size:
            raise ValueError(f"compare: seeds must match values in length (a: {a_all.size} values, "
                             f"{len(seeds_a)} seeds; b: {b_all.size} values, {len(seeds_b)} seeds)")
        pa, pb = _pair_by_seed(a_all, b_all, seeds_a, seeds_b)
    else:
        pa = pb = np.empty(0)
    d = pb - pa
    n_pairs = int(d.size)
    sd_d = math.sqrt(_var(d)) if n_pairs >= 2 else _NAN
    r["n_pairs"] = n_pairs
    r["paired"] = bool(n_pairs >= min_pairs)
    r["paired_diff_mean"] = float(d.mean()) if n_pairs else _NAN
    r["paired_diff_sd"] = sd_d
    t_paired = r["paired_diff_mean"] / (sd_d / math.sqrt(n_pairs)) if n_pairs >= 2 and sd_d > 0 else _NAN
    r["paired_t"], r["paired_df"] = t_paired, float(n_pairs - 1) if n_pairs >= 2 else _NAN
    r["paired_t_p"] = _t_p(t_paired, n_pairs - 1, alternative)
    # all-zero differences carry no sign information: NaN rather than scipy's arbitrary p = 1
    r["wilcoxon_p"] = (_quiet(st.wilcoxon, d, zero_method="wilcox", alternative=alternative)
                       if n_pairs >= 1 and np.any(d != 0) else _NAN)
    r["d_z"] = r["paired_diff_mean"] / sd_d if n_pairs >= 2 and sd_d > 0 else _NAN

    # each interval gets its own stream from boot_seed, so one does not depend on whether the other ran
    r["boot_ci_paired_low"], r["boot_ci_paired_high"] = _boot_paired(
        d, n_boot, np.random.Generator(np.random.PCG64(boot_seed)), ci_level)
    r["boot_ci_unpaired_low"], r["boot_ci_unpaired_high"] = _boot_unpaired(
        fa, fb, n_boot, np.random.Generator(np.random.PCG64(boot_seed)), ci_level)

    # --- what this study could detect ---
    mde_u = power_unpaired_mde(na, nb, alpha, power, alternative) if na >= 2 and nb >= 2 else _NAN
    r["mde_unpaired"] = mde_u
    r["mde_unpaired_metric"] = mde_u * sp if np.isfinite(sp) else _NAN
    mde_p = power_paired_mde(n_pairs, alpha, power, alternative) if n_pairs >= 2 else _NAN
    r["mde_paired"] = mde_p
    r["mde_paired_metric"] = mde_p * sd_d if np.isfinite(sd_d) else _NAN
    if r["paired"]:
        r["seeds_needed"] = seeds_needed_paired(r["d_z"], alpha, power, alternative, max_seeds)
    else:
        r["seeds_needed"] = seeds_needed_unpaired(cohen_d, alpha, power, alternative, max_seeds)
    return r


# ----------------------------------------------------------------------------------------------
# 5-6. counts and multiplicity

def fisher_degenerate(k_a: int, n_a: int, k_b: int, n_b: int, alternative: str = "greater") -> float:
    """Fisher's exact p for "condition a has more degenerate runs than b" (k of n runs degenerate).

    Why: the paper's stability claims are about how often runs fail; with 5-50 seeds only an exact test
    is valid for such counts."""
    _check_alternative(alternative)
    for k, n, name in ((k_a, n_a, "a"), (k_b, n_b, "b")):
        if not (0 <= k <= n):
            raise ValueError(f"fisher_degenerate: need 0 <= k_{name} <= n_{name}, got {k} of {n}")
    if n_a == 0 or n_b == 0:
        return _NAN
    return float(st.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]], alternative=alternative)[1])


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order.

    Why: the study tests one claim per task and model; Holm controls the family-wise error without
    assuming independence. NaN entries stay NaN and do not count towards m."""
    p = np.asarray(list(pvalues), dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out.tolist()


# ----------------------------------------------------------------------------------------------
# 7. verdict

def verdict(result: dict, *, alpha: float, power: float, direction: int = +1,
            mde_metric_units: float | None = None, smallest_effect_of_interest: float | None = None,
            min_pairs: int = 3, max_seeds: int = 10_000) -> dict:
    """Turn a `compare` result into "reproduced" / "not reproduced" / "inconclusive", with the reason.

    Rule. The deciding test is the paired t-test when result["n_pairs"] >= min_pairs, else Student's t
    (the paper's test); its one-tailed p is recomputed from the t statistic in the paper's direction
    (direction=+1: the paper says b > a; -1: b < a), and the matching bootstrap CI of the difference
    (paired or unpaired) is oriented the same way.
    - reproduced: p < alpha in the paper's direction.
    - not reproduced: p < alpha in the opposite direction, or (smallest_effect_of_interest given, in
      metric units, positive) the upper CI bound of the oriented difference is below it, i.e. the study
      could have seen the paper's effect and excludes it.
    - inconclusive otherwise, with the reason: "too few seeds" when the observed effect is in the paper's
      direction but below the minimum detectable effect at this n (mde_metric_units, default the result's
      MDE in metric units; the number of seeds needed for the observed effect is given), "no effect
      detected" when the observed effect is zero or reversed (or at least the MDE yet not significant),
      "not computable" when the test has no p-value (too few runs, zero variance)."""
    if direction not in (1, -1):
        raise ValueError(f"verdict: direction must be +1 or -1, got {direction!r}")
    use_paired = result.get("n_pairs", 0) >= min_pairs
    if use_paired:
        test, t, df = "paired_t", result["paired_t"], result["paired_df"]
        effect, lo, hi = result["paired_diff_mean"], result["boot_ci_paired_low"], result["boot_ci_paired_high"]
        std_effect, n = result["d_z"], result["n_pairs"]
        mde = result["mde_paired_metric"] if mde_metric_units is None else mde_metric_units
        unit = "pairs"
    else:
        test, t, df = "student_t", result["student_t"], result["student_df"]
        effect, lo, hi = result["diff"], result["boot_ci_unpaired_low"], result["boot_ci_unpaired_high"]
        std_effect, n = result["cohen_d"], min(result["n_a"], result["n_b"])
        mde = result["mde_unpaired_metric"] if mde_metric_units is None else mde_metric_units
        unit = "seeds per group"
    eff = direction * effect if np.isfinite(effect) else _NAN
    ci_hi = (hi if direction == 1 else -lo) if np.isfinite(lo) and np.isfinite(hi) else _NAN
    ci_lo = (lo if direction == 1 else -hi) if np.isfinite(lo) and np.isfinite(hi) else _NAN
    p_dir = _t_p(direction * t, df, "greater") if np.isfinite(t) else _NAN
    p_opp = _t_p(-direction * t, df, "greater") if np.isfinite(t) else _NAN
    ci_txt = f"{100 * result.get('ci_level', 0.95):.0f}% CI [{ci_lo:.4g}, {ci_hi:.4g}]"

    def out(v, reason):
        return {"verdict": v, "reason": reason, "decided_by": test, "p_paper_direction": p_dir,
                "p_opposite_direction": p_opp, "effect": eff}

    if np.isfinite(p_dir) and p_dir < alpha:
        return out("reproduced", f"effect {eff:.4g} in the paper's direction, one-tailed p = {p_dir:.3g} < {alpha}; "
                                 f"{ci_txt}")
    if np.isfinite(p_opp) and p_opp < alpha:
        return out("not reproduced", f"significant effect opposite to the paper's: {eff:.4g}, "
                                     f"one-tailed p = {p_opp:.3g} < {alpha}")
    if (smallest_effect_of_interest is not None and np.isfinite(ci_hi)
            and ci_hi < smallest_effect_of_interest):
        return out("not reproduced", f"{ci_txt} excludes the paper's effect {smallest_effect_of_interest:.4g}; "
                                     f"the study could have seen it (p = {p_dir:.3g})")
    if not np.isfinite(p_dir):
        return out("inconclusive", f"not computable: {test} has no p-value (n = {n}, zero variance or too few runs)")
    if np.isfinite(eff) and eff > 0 and np.isfinite(mde) and eff < mde:
        need = (seeds_needed_paired if use_paired else seeds_needed_unpaired)(
            direction * std_effect, alpha, power, "greater", max_seeds)
        return out("inconclusive", f"too few seeds: observed effect {eff:.4g} is below the minimum detectable "
                                   f"effect {mde:.4g} at n = {n}; about {need} {unit} needed for {power:.0%} "
                                   f"power (p = {p_dir:.3g})")
    return out("inconclusive", f"no effect detected: observed effect {eff:.4g} (p = {p_dir:.3g}), "
                               f"minimum detectable effect {mde:.4g} at n = {n}; {ci_txt}")


# ----------------------------------------------------------------------------------------------
# 8. Adam's bias correction

def bias_ratio(t, beta1: float = 0.9, beta2: float = 0.999):
    """(1 - beta1^t) / sqrt(1 - beta2^t): how much larger the first Adam steps are with bias correction
    than without (the paper's Fig. 1). Vectorised over t."""
    t = np.asarray(t, dtype=np.float64)
    return (1 - beta1 ** t) / np.sqrt(1 - beta2 ** t)


# ----------------------------------------------------------------------------------------------
# 9. expected maximum performance (Dodge et al., 2020)

def _selection_keys(val) -> np.ndarray:
    # a run whose validation metric is NaN can never be preferred by model selection
    v = np.asarray(val, dtype=np.float64).ravel()
    return np.where(np.isnan(v), -np.inf, v)


def expected_max_performance(val, test, ks, *, n_draws: int, seed: int) -> pd.DataFrame:
    """Expected test score of the run chosen by validation among k random runs, for each k.

    Why: the paper's Fig. 4 asks how many random trials a method needs; "best of k by validation" is
    what a practitioner gets. For each k (in the order given, one PCG64(seed) stream), n_draws times:
    draw k runs with replacement, keep the best validation score (NaN validation counts as worst; ties go
    to the first drawn of the tied runs, which picks uniformly among them), record its test and
    validation scores. Returns columns k, mean_test, std_test, mean_val, std_val (std over draws).
    A NaN score of a chosen run propagates into that k's means: a failed run is never skipped silently
    (with a NaN validation score it is chosen only when every drawn run has one)."""
    v = _selection_keys(val)
    t_all = np.asarray(test, dtype=np.float64).ravel()
    v_raw = np.asarray(val, dtype=np.float64).ravel()
    if v.size != t_all.size or v.size == 0:
        raise ValueError(f"expected_max_performance: need equal, non-zero numbers of val and test scores "
                         f"(got {v.size} and {t_all.size})")
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = []
    for k in ks:
        k = int(k)
        if k < 1:
            raise ValueError(f"expected_max_performance: k must be >= 1, got {k}")
        idx = rng.integers(0, v.size, size=(n_draws, k))
        chosen = idx[np.arange(n_draws), np.argmax(v[idx], axis=1)]  # argmax returns the first drawn of ties
        ts, vs = t_all[chosen], v_raw[chosen]
        sd = (lambda x: float(np.std(x, ddof=1)) if n_draws >= 2 else _NAN)
        rows.append({"k": k, "mean_test": float(ts.mean()), "std_test": sd(ts),
                     "mean_val": float(vs.mean()), "std_val": sd(vs)})
    return pd.DataFrame(rows, columns=["k", "mean_test", "std_test", "mean_val", "std_val"])


def expected_max_closed_form(val, test, k: int) -> float:
    """Exact expectation of what `expected_max_performance` estimates (same tie and NaN rules).

    Runs are sorted by validation score (ascending, stable); the best of k draws is at rank i (1-indexed)
    with probability (i/n)^k - ((i-1)/n)^k. Tied validation scores form one group whose probability is
    the sum of its ranks' probabilities; within it the Monte Carlo rule (first drawn of the tied runs)
    picks each tied run equally often, so the group contributes the mean test score of its runs."""
    v = _selection_keys(val)
    t_all = np.asarray(test, dtype=np.float64).ravel()
    if v.size != t_all.size or v.size == 0:
        raise ValueError(f"expected_max_closed_form: need equal, non-zero numbers of val and test scores "
                         f"(got {v.size} and {t_all.size})")
    n = v.size
    order = np.argsort(v, kind="stable")
    vs, ts = v[order], t_all[order]
    i = np.arange(1, n + 1, dtype=np.float64)
    p = (i / n) ** k - ((i - 1) / n) ** k
    # replace each test score by the mean over its tie group of validation scores
    _, group, counts = np.unique(vs, return_inverse=True, return_counts=True)
    ts_group = np.bincount(group, weights=ts) / counts
    return float(np.sum(p * ts_group[group]))


# ----------------------------------------------------------------------------------------------
# 10. Table 1 marking

def mark_best_and_equivalent(groups: dict, *, alpha: float) -> dict:
    """The paper's Table 1 marking within a group of cells (e.g. one dataset's four settings).

    The cell with the highest mean of its finite values is best (first in order on a tie). Every other
    cell is "equivalent" when the one-tailed Student t-test "best > cell" gives p >= alpha, i.e. it is
    not significantly worse. The best cell itself gets best=True, equivalent=False, p_vs_best=NaN; a
    cell whose p cannot be computed (n < 2, zero pooled variance) is not marked equivalent."""
    finite = {name: _finite(v) for name, v in groups.items()}
    means = {name: (float(x.mean()) if x.size else -math.inf) for name, x in finite.items()}
    out = {name: {"best": False, "equivalent": False, "p_vs_best": _NAN} for name in groups}
    if not groups or all(x.size == 0 for x in finite.values()):
        return out
    best = max(means, key=lambda name: means[name])  # max() keeps the first of equal means
    out[best]["best"] = True
    for name, x in finite.items():
        if name == best:
            continue
        p = _student(x, finite[best], "greater")[2]
        out[name]["p_vs_best"] = p
        out[name]["equivalent"] = bool(np.isfinite(p) and p >= alpha)
    return out
