"""Statistics for comparing fine-tuning conditions across seeds.

Pure functions over numbers (numpy/scipy/pandas only, no files, no torch), so every claim the study
makes about "better", "adds little", "less variance" or "fewer failed runs" can be checked by a test.
Every threshold is a parameter; those the study configures (alpha, power, n_boot, boot_seed, the
collapse thresholds, the smallest effects of interest, the expected-performance draws and seed) have
no default here: the caller passes the values from configuration (params.yaml), the one place they
are set.

Conventions:
- Metric values are on the 0-1 scale, as the pipeline records them (the paper prints x100).
- `compare(a, b)` asks whether condition b is better than condition a: effects are b - a.
- NaN marks a run whose metric could not be computed. The analysis scores a correlation that is
  undefined because the predictions are constant as no skill (0) before it gets here, so such runs
  enter every test; a NaN that still arrives is counted (n_nan) and left out of moment-based tests.
- An interval always belongs to the test that decides: the paired t interval for a paired comparison,
  Student's (the paper's) for an unpaired one, at level 1 - 2 alpha for a one-tailed test at alpha, so
  its bound in the tested direction excludes the null value exactly when the test rejects. The
  percentile bootstrap is kept as a secondary, labelled interval (it undercovers at 4-16 seeds).
- Power is prospective and belongs to the decision: for the effect of interest (never the observed one),
  at alpha / m for a claim decided with Holm over m tasks (holm_first_level), with the sd of the design
  estimated from the runs. Power functions take the effect signed like the data ("less": negative).
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
EXPECTS = ("better", "no_gain")
_NAN = float("nan")

# Verdicts, and the categories `verdict` returns beside them (callers read these fields, never the text).
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "uninformative")
CATEGORIES = {
    "reproduced": ("effect in the paper's direction", "smaller than the paper's effect", "gain below margin",
                   "significant gain below margin", "both sub-claims"),
    "not reproduced": ("opposite effect", "paper's effect excluded", "significant gain", "a sub-claim refuted"),
    "inconclusive": ("significant before Holm only", "too few seeds", "no effect", "gain not excluded",
                     "not computable", "partly reproduced", "refuted on some tasks", "mixed across tasks"),
    "uninformative": ("setting too weak",),
}


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
# 0. t intervals (vectorised: the coverage simulations call these on thousands of samples at once)

def interval_level(alpha: float, tails: int) -> float:
    """The two-sided interval level that matches a test at alpha: 1 - 2 alpha for a one-tailed test (its
    bound in the tested direction is the one-sided 1 - alpha bound), 1 - alpha for a two-tailed one."""
    if tails not in (1, 2):
        raise ValueError(f"tails must be 1 or 2, got {tails!r}")
    return 1 - 2 * alpha if tails == 1 else 1 - alpha


def t_interval(estimate, se, df, level: float):
    """estimate -/+ t_{(1+level)/2, df} * se: the two-sided `level` t interval (arrays broadcast)."""
    with np.errstate(all="ignore"):
        q = st.t.ppf((1 + level) / 2, df)
        est, se = np.asarray(estimate, np.float64), np.asarray(se, np.float64)
        lo, hi = est - q * se, est + q * se
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi


def paired_t_interval(d, level: float, axis: int = -1):
    """The paired t interval of the mean of the differences d along `axis` (vectorised)."""
    d = np.asarray(d, np.float64)
    n = d.shape[axis]
    with np.errstate(all="ignore"):
        se = d.std(axis=axis, ddof=1) / math.sqrt(n)
    return t_interval(d.mean(axis=axis), se, n - 1, level)


def non_superiority_p(estimate, se, df, margin):
    """One-sided p of H0 "the gain is at least `margin`" against H1 "the gain is below it": the test
    behind "the method adds little". It rejects at alpha exactly when the upper bound of the 1 - 2 alpha
    t interval lies below the margin (arrays broadcast)."""
    with np.errstate(all="ignore"):
        p = st.t.cdf((np.asarray(estimate, np.float64) - margin) / np.asarray(se, np.float64), df)
    return float(p) if np.ndim(p) == 0 else p


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
    """Exact power of a t-test whose statistic has noncentrality ncp (signed like the data: positive
    favours "greater", negative "less")."""
    if alternative == "two-sided":
        tc = st.t.ppf(1 - alpha / 2, df)
        return float(st.nct.sf(tc, df, ncp) + st.nct.cdf(-tc, df, ncp))
    tc = st.t.ppf(1 - alpha, df)
    if alternative == "less":
        return float(st.nct.cdf(-tc, df, ncp))
    return float(st.nct.sf(tc, df, ncp))


def power_unpaired(d: float, n_a: int, n_b: int, alpha: float, alternative: str = "greater") -> float:
    """Power of Student's two-sample t-test at level alpha for a true standardized effect d (b - a, signed:
    for alternative="less" the tested direction is a negative d)."""
    _check_alternative(alternative)
    df = n_a + n_b - 2
    if n_a < 1 or n_b < 1 or df < 1 or _isnan(d):
        return _NAN
    return _power_t(d * math.sqrt(n_a * n_b / (n_a + n_b)), df, alpha, alternative)


def power_paired(dz: float, n: int, alpha: float, alternative: str = "greater") -> float:
    """Power of the paired t-test at level alpha for a true d_z = mean difference / sd of differences
    (signed: for alternative="less" the tested direction is a negative d_z)."""
    _check_alternative(alternative)
    if n < 2 or _isnan(dz):
        return _NAN
    return _power_t(dz * math.sqrt(n), n - 1, alpha, alternative)


def _mde(power_of, power: float) -> float:
    # power is increasing in the effect; bracket the root, then solve exactly (no normal approximation)
    hi = 1.0
    while power_of(hi) < power:
        hi *= 2
        if hi > 1e6:
            return _NAN
    return float(optimize.brentq(lambda e: power_of(e) - power, 0.0, hi, xtol=1e-10))


def power_unpaired_mde(n_a: int, n_b: int, alpha: float, power: float, alternative: str = "greater") -> float:
    """Smallest Cohen's d (a magnitude, in the tested direction) that Student's t-test at level alpha
    detects with this power at n_a, n_b seeds.

    Why: a non-significant result only means "not reproduced" if the study could have seen the
    effect; this is the effect it could see. Exact, via the noncentral t distribution."""
    _check_alternative(alternative)
    if n_a < 1 or n_b < 1 or n_a + n_b - 2 < 1:
        return _NAN
    sign = -1.0 if alternative == "less" else 1.0
    return _mde(lambda d: power_unpaired(sign * d, n_a, n_b, alpha, alternative), power)


def power_paired_mde(n: int, alpha: float, power: float, alternative: str = "greater") -> float:
    """Smallest d_z (a magnitude, in the tested direction) the paired t-test at level alpha detects at n
    pairs with this power."""
    _check_alternative(alternative)
    if n < 2:
        return _NAN
    sign = -1.0 if alternative == "less" else 1.0
    return _mde(lambda dz: power_paired(sign * dz, n, alpha, alternative), power)


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


def seeds_needed_unpaired(d: float, alpha: float, power: float, alternative: str = "greater", max_n: int = 10_000):
    """Smallest n per group at which Student's t-test has this power for a true effect d.

    Returns an int; math.inf when d is not in the tested direction or needs more than max_n; NaN for NaN d.
    The effect is signed like the test: for alternative="less" a negative d is the tested direction."""
    _check_alternative(alternative)
    tail = "two-sided" if alternative == "two-sided" else "greater"  # the effect is already oriented
    return _seeds_needed(lambda e, n: power_unpaired(e, n, n, alpha, tail), d, 2, power, max_n, alternative)


def seeds_needed_paired(dz: float, alpha: float, power: float, alternative: str = "greater", max_n: int = 10_000):
    """Smallest number of pairs at which the paired t-test has this power for a true d_z (see the unpaired
    version for the return convention)."""
    _check_alternative(alternative)
    tail = "two-sided" if alternative == "two-sided" else "greater"  # the effect is already oriented
    return _seeds_needed(lambda e, n: power_paired(e, n, alpha, tail), dz, 2, power, max_n, alternative)


def fisher_power(share_a: float, share_b: float, n_a: int, n_b: int, alpha: float) -> float:
    """Exact power of Fisher's one-tailed test "a has more degenerate runs than b" when runs of a and b
    degenerate independently with probabilities share_a and share_b: every outcome (k_a, k_b) is
    enumerated, weighted by its binomial probability."""
    if n_a < 1 or n_b < 1 or _isnan(share_a) or _isnan(share_b):
        return _NAN
    ka = np.arange(n_a + 1)[:, None]
    kb = np.arange(n_b + 1 if share_b > 0 else 1)[None, :]  # share_b = 0: only k_b = 0 can occur
    # one-tailed Fisher p = P(X >= k_a), X hypergeometric with k_a + k_b degenerate among n_a + n_b runs
    p = st.hypergeom.sf(ka - 1, n_a + n_b, ka + kb, n_a)
    w = st.binom.pmf(ka, n_a, share_a) * st.binom.pmf(kb, n_b, share_b)
    return float(np.sum(w * (p < alpha)))


def fisher_mde_share(n_a: int, n_b: int, alpha: float, power: float) -> float:
    """Smallest share of degenerate baseline runs (against none under the treatment, as the paper
    reports for debiased Adam) that Fisher's test detects with this power: NaN when even 100% is not."""
    if n_a < 1 or n_b < 1 or fisher_power(1.0, 0.0, n_a, n_b, alpha) < power:
        return _NAN
    return float(optimize.brentq(lambda s: fisher_power(s, 0.0, n_a, n_b, alpha) - power, 1e-9, 1.0,
                                 xtol=1e-6))


def fisher_seeds_needed(share: float, alpha: float, power: float, max_n: int):
    """The smallest number of runs per condition at which Fisher's test detects `share` degenerate baseline
    runs (none under the treatment) with this power; math.inf beyond max_n or for a share <= 0.

    An exact test's power is not monotone in n (at share 0.35 it is 83% at 15 runs, 71% at 16), so a
    doubling search alone can step over the answer: it only brackets it (the first doubling point with
    enough power), then every n up to that point is scanned and the first that reaches the power wins."""
    if _isnan(share):
        return _NAN
    if share <= 0:
        return math.inf
    share = min(1.0, float(share))
    hi = 1
    while fisher_power(share, 0.0, hi, hi, alpha) < power:
        if hi >= max_n:
            return math.inf
        hi = min(max_n, hi * 2)
    return next(n for n in range(1, hi + 1) if fisher_power(share, 0.0, n, n, alpha) >= power)


def _bf_t(za: np.ndarray, zb: np.ndarray):
    """Pooled t of the mean absolute deviations from the group medians, a minus b, along the last axis:
    with two groups Brown-Forsythe's F is this t squared, so its sign gives the one-tailed test."""
    na, nb = za.shape[-1], zb.shape[-1]
    with np.errstate(all="ignore"):
        ss = ((za - za.mean(-1, keepdims=True)) ** 2).sum(-1) + ((zb - zb.mean(-1, keepdims=True)) ** 2).sum(-1)
        se = np.sqrt(ss / (na + nb - 2) * (1 / na + 1 / nb))
        return (za.mean(-1) - zb.mean(-1)) / se, se


def spread_power(ratio: float, n_a: int, n_b: int, alpha: float, *, reps: int, seed: int) -> float:
    """Power of the one-tailed Brown-Forsythe test "a spreads more than b" when a's standard deviation
    is `ratio` times b's (normal runs), from `reps` seeded simulated studies (no closed form exists)."""
    if n_a < 3 or n_b < 3 or _isnan(ratio) or reps < 1:
        return _NAN
    rng = np.random.Generator(np.random.PCG64(seed))
    hits, step = 0, max(1, 2_000_000 // (n_a + n_b))  # bounded memory at large n
    for s in range(0, reps, step):
        m = min(step, reps - s)
        a = ratio * rng.standard_normal((m, n_a))
        b = rng.standard_normal((m, n_b))
        t, _ = _bf_t(np.abs(a - np.median(a, -1, keepdims=True)), np.abs(b - np.median(b, -1, keepdims=True)))
        hits += int(np.sum(np.nan_to_num(st.t.sf(t, n_a + n_b - 2), nan=1.0) < alpha))
    return hits / reps


def spread_mde_ratio(n_a: int, n_b: int, alpha: float, power: float, *, reps: int, seed: int) -> float:
    """Smallest sd ratio (a over b) the one-tailed Brown-Forsythe test detects with this power."""
    f = lambda r: spread_power(r, n_a, n_b, alpha, reps=reps, seed=seed) - power  # noqa: E731
    if n_a < 3 or n_b < 3 or f(1e3) < 0:
        return _NAN
    lo, hi = 1.0, 2.0
    while f(hi) < 0:
        lo, hi = hi, hi * 2
    for _ in range(40):  # bisection on common random numbers (brentq needs a continuous function)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
        if hi - lo < 1e-3:
            break
    return float(hi)


def spread_seeds_needed(ratio: float, alpha: float, power: float, *, reps: int, seed: int, max_n: int):
    """Runs per condition at which the one-tailed Brown-Forsythe test detects an sd ratio `ratio`."""
    if _isnan(ratio):
        return _NAN
    if ratio <= 1:
        return math.inf
    lo, hi = 3, 3
    while spread_power(ratio, hi, hi, alpha, reps=reps, seed=seed) < power:
        if hi >= max_n:
            return math.inf
        lo, hi = hi + 1, min(max_n, hi * 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if spread_power(ratio, mid, mid, alpha, reps=reps, seed=seed) >= power:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


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
            alternative: str = "greater", ci_level: float | None = None, min_pairs: int = 3) -> dict:
    """Every test of "condition b is better than condition a" (effect = b - a) that the study reports.

    Why several tests: the paper used Student's one-tailed t-test over independent seeds; seeds shared by
    both conditions make a paired test the more powerful honest choice; Welch, Mann-Whitney and Wilcoxon
    check that a verdict does not hinge on normality or equal variances; Brown-Forsythe tests the
    variance claims; the minimum detectable effect says what a non-significant result can rule out.

    One-tailed p-values follow `alternative` (scipy's convention for test(b, a)); Levene is two-sided.
    n_a/n_b count the finite runs used, n_nan_a/n_nan_b the NaN runs left out. With seeds_a and seeds_b
    the runs are paired by an inner join on seed (finite in both). Each t-test comes with its own t
    interval (paired_ci_*, student_ci_*, welch_ci_*) at `ci_level`, by default the level that matches the
    test (interval_level: 1 - 2 alpha one-tailed, 1 - alpha two-sided). The bootstrap intervals
    (boot_ci_*; secondary) are percentile intervals at the same level from numpy's PCG64(boot_seed): the
    paired one resamples pairs, the unpaired one each condition. `paired` is True when n_pairs >=
    min_pairs. All keys are always present; NaN where not computable."""
    _check_alternative(alternative)
    if ci_level is None:
        ci_level = interval_level(alpha, 2 if alternative == "two-sided" else 1)
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
    r["student_se"] = sp * math.sqrt(1 / na + 1 / nb) if na and nb and np.isfinite(sp) and sp > 0 else _NAN
    r["student_ci_low"], r["student_ci_high"] = (t_interval(r["diff"], r["student_se"], df_student, ci_level)
                                                 if np.isfinite(r["student_se"]) else (_NAN, _NAN))
    se_w = math.sqrt(var_a / na + var_b / nb) if na >= 2 and nb >= 2 else _NAN
    if np.isfinite(se_w) and se_w > 0:
        df_w = se_w ** 4 / ((var_a / na) ** 2 / (na - 1) + (var_b / nb) ** 2 / (nb - 1))
        r["welch_t"], r["welch_df"], r["welch_se"] = r["diff"] / se_w, float(df_w), se_w
        r["welch_p"] = _t_p(r["welch_t"], df_w, alternative)
        r["welch_ci_low"], r["welch_ci_high"] = t_interval(r["diff"], se_w, df_w, ci_level)
    else:
        r.update(welch_t=_NAN, welch_df=_NAN, welch_se=_NAN, welch_p=_NAN, welch_ci_low=_NAN, welch_ci_high=_NAN)
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
    r["paired_se"] = sd_d / math.sqrt(n_pairs) if n_pairs >= 2 and sd_d > 0 else _NAN
    t_paired = r["paired_diff_mean"] / r["paired_se"] if np.isfinite(r["paired_se"]) else _NAN
    r["paired_t"], r["paired_df"] = t_paired, float(n_pairs - 1) if n_pairs >= 2 else _NAN
    r["paired_t_p"] = _t_p(t_paired, n_pairs - 1, alternative)
    r["paired_ci_low"], r["paired_ci_high"] = (t_interval(r["paired_diff_mean"], r["paired_se"], n_pairs - 1,
                                                          ci_level)
                                               if np.isfinite(r["paired_se"]) else (_NAN, _NAN))
    # all-zero differences carry no sign information: NaN rather than scipy's arbitrary p = 1
    r["wilcoxon_p"] = (_quiet(st.wilcoxon, d, zero_method="wilcox", alternative=alternative)
                       if n_pairs >= 1 and np.any(d != 0) else _NAN)
    r["d_z"] = r["paired_diff_mean"] / sd_d if n_pairs >= 2 and sd_d > 0 else _NAN

    # secondary: each interval gets its own stream from boot_seed, so one does not depend on the other
    r["boot_ci_paired_low"], r["boot_ci_paired_high"] = _boot_paired(
        d, n_boot, np.random.Generator(np.random.PCG64(boot_seed)), ci_level)
    r["boot_ci_unpaired_low"], r["boot_ci_unpaired_high"] = _boot_unpaired(
        fa, fb, n_boot, np.random.Generator(np.random.PCG64(boot_seed)), ci_level)

    # --- what this study could detect (one-tailed in `alternative`'s direction) ---
    mde_u = power_unpaired_mde(na, nb, alpha, power, alternative) if na >= 2 and nb >= 2 else _NAN
    r["mde_unpaired"] = mde_u
    r["mde_unpaired_metric"] = mde_u * sp if np.isfinite(sp) else _NAN
    mde_p = power_paired_mde(n_pairs, alpha, power, alternative) if n_pairs >= 2 else _NAN
    r["mde_paired"] = mde_p
    r["mde_paired_metric"] = mde_p * sd_d if np.isfinite(sd_d) else _NAN
    return r


# ----------------------------------------------------------------------------------------------
# 5-6. counts, spread and multiplicity

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


def degenerate_odds_ratio(k_a: int, n_a: int, k_b: int, n_b: int, level: float) -> tuple[float, float, float]:
    """Conditional maximum-likelihood odds ratio of degenerating (a against b) and its exact interval at
    `level`. The interval inverts Fisher's test: at level 1 - 2 alpha its lower bound is above 1 exactly
    when the one-tailed Fisher p ("a has more") is below alpha."""
    from scipy.stats.contingency import odds_ratio

    if n_a == 0 or n_b == 0:
        return _NAN, _NAN, _NAN
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        r = odds_ratio([[k_a, n_a - k_a], [k_b, n_b - k_b]], kind="conditional")
        ci = r.confidence_interval(confidence_level=level, alternative="two-sided")
    return float(r.statistic), float(ci.low), float(ci.high)


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order.

    Why: the study tests one claim on several tasks; Holm controls the family-wise error without
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
# 7. deciding tests and verdicts
#
# A claim on one task is decided by two one-tailed tests on the same data: the one whose rejection
# reproduces the claim (`p_support`) and the one whose rejection refutes it (`p_against`). Each returns
# the interval of its test at 1 - 2 alpha. The caller adjusts both p-values with Holm across the tasks
# of the claim (one family per claim and per test) and passes them to `verdict`, which alone turns
# numbers into a verdict and a category. The caller also passes the family's size m, so that power,
# smallest detectable effects and seeds needed are those of Holm's most demanding step, alpha / m.

def _sd_and_n(result: dict, paired: bool):
    if paired:
        return result["paired_diff_sd"], result["n_pairs"], result["n_pairs"]
    return result["pooled_sd"], result["n_a"], result["n_b"]


def holm_first_level(alpha: float, family_size: int) -> float:
    """alpha / m: the level Holm's most demanding step asks of a family of m tests (the smallest p-value
    must be below it). Power, smallest detectable effects and seeds needed are computed at this level,
    so "the study could have detected it" holds for the decision actually taken after Holm."""
    if int(family_size) != family_size or family_size < 1:
        raise ValueError(f"family_size must be a positive integer, got {family_size!r}")
    return alpha / int(family_size)


def decide(result: dict, *, expect: str, alpha: float, power: float, effect_of_interest: float,
           family_size: int, paper_effect: float | None = None, direction: int = 1, min_pairs: int = 3,
           max_seeds: int = 10_000) -> dict:
    """The deciding test of one claim on one task (unadjusted; Holm is the caller's, across tasks).

    Test: the paired t-test when result["n_pairs"] >= min_pairs, else Student's t (the paper's). The
    effect is oriented so that positive is the paper's direction (direction=-1: the paper says b < a).
    - expect "better": p_support tests "effect > 0"; p_against tests "effect < paper_effect" where the
      paper's effect applies (given and > 0: "the paper's effect is excluded"), else "effect < 0".
    - expect "no_gain" ("adds little"): p_support is the non-superiority test "gain < effect_of_interest"
      (H0: the gain is at least the smallest effect of interest); p_against tests "gain > 0".
    The interval is the test's own t interval at 1 - 2 alpha (ci_low, ci_high): its lower bound is above
    0 exactly when "effect > 0" is rejected at alpha, its upper bound below a margin exactly when
    "effect < margin" is. Power is prospective: `interest` is the paper's effect where it applies (better
    claims), else effect_of_interest (metric units), standardised by the sd of the design estimated from
    these runs; power_for_interest, seeds_needed and the smallest detectable effect (mde_metric) refer to
    it, at power_alpha = alpha / family_size (holm_first_level: the claim is tested on family_size tasks).
    both_category is the category when both one-tailed tests reject (a significant effect that is smaller
    than the paper's; a significant gain that is below the margin)."""
    if expect not in EXPECTS:
        raise ValueError(f"decide: expect must be one of {EXPECTS}, got {expect!r}")
    if direction not in (1, -1):
        raise ValueError(f"decide: direction must be +1 or -1, got {direction!r}")
    power_alpha = holm_first_level(alpha, family_size)
    paired = result.get("n_pairs", 0) >= min_pairs
    sd, n_a, n_b = _sd_and_n(result, paired)
    if paired:
        test, est, se, df = "paired_t", result["paired_diff_mean"], result["paired_se"], result["paired_df"]
        blo, bhi = result["boot_ci_paired_low"], result["boot_ci_paired_high"]
        unit, n = "pairs", n_a
    else:
        test, est, se, df = "student_t", result["diff"], result["student_se"], result["student_df"]
        blo, bhi = result["boot_ci_unpaired_low"], result["boot_ci_unpaired_high"]
        unit, n = "seeds per group", min(n_a, n_b)
    level = interval_level(alpha, 1)
    eff = direction * est if np.isfinite(est) else _NAN
    ok = np.isfinite(eff) and np.isfinite(se) and se > 0 and np.isfinite(df) and df > 0
    lo, hi = t_interval(eff, se, df, level) if ok else (_NAN, _NAN)
    if np.isfinite(blo) and np.isfinite(bhi):
        blo, bhi = (blo, bhi) if direction == 1 else (-bhi, -blo)
    p_gt0 = _t_p(eff / se, df, "greater") if ok else _NAN
    paper = paper_effect if (expect == "better" and paper_effect is not None and np.isfinite(paper_effect)
                             and paper_effect > 0) else None
    if expect == "better":
        interest, source = (paper, "the paper's effect") if paper is not None else (
            effect_of_interest, "the configured smallest effect of interest")
        p_support, support = p_gt0, "effect in the paper's direction"
        if paper is not None:
            p_against = _t_p((eff - paper) / se, df, "less") if ok else _NAN
            against, both = "paper's effect excluded", "smaller than the paper's effect"
        else:
            p_against = _t_p(eff / se, df, "less") if ok else _NAN
            against, both = "opposite effect", support  # "effect > 0" and "effect < 0" cannot both reject
    else:
        interest, source = effect_of_interest, "the configured smallest effect of interest"
        p_support = non_superiority_p(eff, se, df, effect_of_interest) if ok else _NAN
        support, p_against, against = "gain below margin", p_gt0, "significant gain"
        both = "significant gain below margin"
    std_interest = interest / sd if np.isfinite(sd) and sd > 0 else _NAN
    if paired:
        mde_std = power_paired_mde(n, power_alpha, power, "greater") if n >= 2 else _NAN
        pw = power_paired(std_interest, n, power_alpha, "greater") if n >= 2 else _NAN
        need = seeds_needed_paired(std_interest, power_alpha, power, "greater", max_seeds)
    else:
        ok_u = n_a >= 2 and n_b >= 2
        mde_std = power_unpaired_mde(n_a, n_b, power_alpha, power, "greater") if ok_u else _NAN
        pw = power_unpaired(std_interest, n_a, n_b, power_alpha, "greater") if ok_u else _NAN
        need = seeds_needed_unpaired(std_interest, power_alpha, power, "greater", max_seeds)
    return {
        "expect": expect, "test": test, "n": int(n), "unit": unit, "df": df, "effect": eff, "se": se, "sd": sd,
        "ci_low": lo, "ci_high": hi, "ci_level": level, "boot_ci_low": blo, "boot_ci_high": bhi,
        "p_support": p_support, "p_against": p_against, "support_category": support,
        "against_category": against, "both_category": both, "interest": interest, "interest_source": source,
        "paper_effect": paper if paper is not None else _NAN,
        "family_size": int(family_size), "power_alpha": power_alpha,
        "power_for_interest": pw, "mde_std": mde_std,
        "mde_metric": mde_std * sd if np.isfinite(mde_std) and np.isfinite(sd) else _NAN,
        "seeds_needed": need,
    }


def _x100(v) -> str:
    if v is None or np.isnan(v):
        return "–"
    return f"{100 * v:.1f}" if np.isfinite(v) else ("inf" if v > 0 else "-inf")


def _pf(v) -> str:
    if v is None or np.isnan(v):
        return "–"
    if not np.isfinite(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.3g}" if v >= 1e-3 else f"{v:.1e}"


def power_level_text(test: dict, alpha: float) -> str:
    """Where power, the smallest detectable effect and seeds needed were computed: "one-tailed alpha 0.025
    (0.05/2: Holm's most demanding step over 2 tasks)"."""
    m = int(test.get("family_size", 1))
    lvl = test.get("power_alpha", alpha)
    return f"one-tailed alpha {_pf(lvl)}" + (
        f" ({alpha:g}/{m}: Holm's most demanding step over {m} tasks)" if m > 1 else "")


def verdict(test: dict, *, alpha: float, power: float, p_support_holm: float | None = None,
            p_against_holm: float | None = None, family_size: int = 1, too_weak: str | None = None) -> dict:
    """{verdict, category, reason} of one claim on one task, from `decide` (or a sub-claim test) and the
    Holm-adjusted p-values of its family (None: a family of one, raw = adjusted). Rule, in this order:
    - uninformative ("setting too weak"): a no_gain claim whose setting barely moves the weights
      (too_weak: why); never reproduced, whatever the data.
    - inconclusive ("not computable"): a test has no p-value (too few runs, zero variance).
    - reproduced: Holm-adjusted p_support < alpha (support_category; both_category when the test against
      the claim rejects too after Holm: an effect significantly smaller than the paper's, or a significant
      gain that is still below the margin).
    - not reproduced: Holm-adjusted p_against < alpha (against_category).
    - inconclusive ("significant before Holm only"): an unadjusted p < alpha that Holm does not keep.
    - inconclusive ("no effect" for better claims, "gain not excluded" for no_gain): the study had the
      power (>= `power`, at the test's power_alpha: Holm's most demanding level) to detect the effect of
      interest and saw no significant one.
    - inconclusive ("too few seeds"): it did not; seeds_needed says how many would do."""
    ps, pa = test["p_support"], test["p_against"]
    ps_h = ps if p_support_holm is None else p_support_holm
    pa_h = pa if p_against_holm is None else p_against_holm
    level = f"{100 * test['ci_level']:.0f}%"
    ci = ((_x100(test["ci_low"]), _x100(test["ci_high"])) if test.get("ci_scale", 100) == 100 else
          (_pf(test["ci_low"]), _pf(test["ci_high"])))
    nums = (f"{test.get('effect_label', 'effect')} {_x100(test['effect'])} (x100) "
            f"[{ci[0]}, {ci[1]}] ({level} {test['test']} interval"
            f"{', ' + test['interval_label'] if test.get('interval_label') else ''}), "
            f"one-tailed p = {_pf(ps)} (Holm {_pf(ps_h)}), against: p = {_pf(pa)} (Holm {_pf(pa_h)})")
    holm_txt = f"Holm over the claim's {family_size} task(s)" if family_size > 1 else "Holm"

    def out(v, cat, reason):
        assert cat in CATEGORIES[v], (v, cat)
        return {"verdict": v, "category": cat, "reason": reason}

    if too_weak and test["expect"] == "no_gain":
        return out("uninformative", "setting too weak", f"{too_weak}; the comparison cannot test the claim ({nums})")
    if _isnan(ps) or _isnan(pa):
        return out("inconclusive", "not computable",
                   f"{test['test']} has no p-value (n = {test['n']} {test['unit']}, zero variance or too few runs)")
    if ps_h < alpha:
        both = test.get("both_category") or test["support_category"]
        if pa_h < alpha and both != test["support_category"]:
            return out("reproduced", both, f"the claim holds after {holm_txt}, and so does the test against it "
                                           f"({test['against_category']}): {nums}")
        return out("reproduced", test["support_category"], nums)
    if pa_h < alpha:
        return out("not reproduced", test["against_category"], nums)
    if ps < alpha or pa < alpha:
        which = ("reproduced" if ps < alpha else "not reproduced")
        return out("inconclusive", "significant before Holm only",
                   f"unadjusted p < {alpha} would read '{which}', {holm_txt} does not: {nums}")
    interest = (f"{test['interest_label']}" if test.get("interest_label") else
                f"{_x100(test['interest'])} x100 ({test['interest_source']})")
    at = power_level_text(test, alpha)
    pw = test["power_for_interest"]
    if np.isfinite(pw) and pw >= power:
        cat = "no effect" if test["expect"] == "better" else "gain not excluded"
        return out("inconclusive", cat, f"the study had {pw:.0%} power ({at}) for an effect of {interest} and "
                                        f"found no significant one: {nums}")
    need = test["seeds_needed"]
    need_txt = (f"about {need} {test['unit']} would give {power:.0%}" if np.isfinite(need) else
                f"no feasible number of {test['unit']} gives {power:.0%}")
    return out("inconclusive", "too few seeds",
               f"power {('–' if _isnan(pw) else f'{pw:.0%}')} ({at}) at n = {test['n']} {test['unit']} for an "
               f"effect of {interest}; {need_txt}: {nums}")


# which category speaks for a claim whose tasks all share one verdict but not one category: the qualified
# reading first (an effect smaller than the paper's, a real gain below the margin)
_CATEGORY_PREFERENCE = ("smaller than the paper's effect", "significant gain below margin", "opposite effect")


def aggregate(task_verdicts: list[dict]) -> dict:
    """A claim's verdict over its tasks ({verdict, category, reason}): reproduced / not reproduced /
    uninformative when every task says so; reproduced on some tasks and not reproduced on others is
    "mixed across tasks"; otherwise inconclusive: "partly reproduced" when some task reproduces it (or
    partly does), "refuted on some tasks" when some task refutes it (after Holm) and none reproduces it,
    else the most telling inconclusive category among the tasks ("not computable" only when a task's test
    was not computable)."""
    if not task_verdicts:
        return {"verdict": "inconclusive", "category": "not computable", "reason": "no task to decide on"}
    vs = [t["verdict"] for t in task_verdicts]
    for v in ("reproduced", "not reproduced", "uninformative"):
        if all(x == v for x in vs):
            cats = [t["category"] for t in task_verdicts]
            cat = next((c for c in _CATEGORY_PREFERENCE if c in cats), cats[0])
            return {"verdict": v, "category": cat, "reason": "on every task"}
    if "reproduced" in vs and "not reproduced" in vs:
        return {"verdict": "inconclusive", "category": "mixed across tasks", "reason": "mixed across tasks"}
    if "reproduced" in vs:
        return {"verdict": "inconclusive", "category": "partly reproduced",
                "reason": "reproduced on some tasks only, not decided on the others"}
    if "not reproduced" in vs:
        return {"verdict": "inconclusive", "category": "refuted on some tasks",
                "reason": "not reproduced (refuted after Holm) on some tasks, not decided on the others"}
    order = ("partly reproduced", "refuted on some tasks", "significant before Holm only", "too few seeds",
             "no effect", "gain not excluded", "not computable")
    cats = [t["category"] for t in task_verdicts if t["verdict"] == "inconclusive"]
    cat = next((c for c in order if c in cats), cats[0])  # some task is inconclusive (the rest uninformative)
    return {"verdict": "inconclusive", "category": cat, "reason": "not decided on every task"}


# ---- RQ 2: fewer degenerate runs and a smaller spread, as two sub-claims ---------------------------

def fewer_degenerate(k_a: int, n_a: int, k_b: int, n_b: int, *, alpha: float, power: float,
                     share_of_interest: float, family_size: int, max_seeds: int = 10_000) -> dict:
    """Sub-claim "the treatment (b) has fewer degenerate runs than the baseline (a)", in `decide`'s shape:
    Fisher's exact test one-tailed each way, the odds ratio of degenerating (a against b) with its exact
    interval at 1 - 2 alpha (it excludes 1 exactly when Fisher's test rejects), and power, smallest
    detectable share and runs needed for `share_of_interest` degenerate baseline runs against none, at
    alpha / family_size (Holm's most demanding step over the sub-claim's tasks)."""
    level = interval_level(alpha, 1)
    pa = holm_first_level(alpha, family_size)
    ratio, lo, hi = degenerate_odds_ratio(k_a, n_a, k_b, n_b, level)
    n = min(n_a, n_b)
    return {
        "expect": "better", "test": "fisher_exact", "n": int(n), "unit": "runs per condition", "df": _NAN,
        "effect": (k_a / n_a - k_b / n_b) if n_a and n_b else _NAN, "effect_label": "share reduction",
        "odds_ratio": ratio, "ci_low": lo, "ci_high": hi, "ci_level": level,
        "interval_label": "exact conditional interval of the odds ratio of degenerating", "ci_scale": 1,
        "boot_ci_low": _NAN, "boot_ci_high": _NAN,
        "p_support": fisher_degenerate(k_a, n_a, k_b, n_b, "greater") if n_a and n_b else _NAN,
        "p_against": fisher_degenerate(k_a, n_a, k_b, n_b, "less") if n_a and n_b else _NAN,
        "support_category": "effect in the paper's direction", "against_category": "opposite effect",
        "both_category": "effect in the paper's direction",
        "interest": share_of_interest, "interest_source": "degenerate share",
        "interest_label": f"{100 * share_of_interest:.0f}% degenerate baseline runs against none",
        "paper_effect": _NAN, "family_size": int(family_size), "power_alpha": pa,
        "power_for_interest": fisher_power(share_of_interest, 0.0, n_a, n_b, pa) if n_a and n_b else _NAN,
        "mde_std": _NAN, "mde_metric": fisher_mde_share(n_a, n_b, pa, power) if n_a and n_b else _NAN,
        "seeds_needed": fisher_seeds_needed(share_of_interest, pa, power, max_seeds),
    }


def smaller_spread(a, b, *, alpha: float, power: float, ratio_of_interest: float, reps: int, seed: int,
                   family_size: int, max_seeds: int = 1_000) -> dict:
    """Sub-claim "the treatment (b) spreads less than the baseline (a)", in `decide`'s shape: the
    one-tailed Brown-Forsythe test (with two groups, the pooled t-test of the absolute deviations from
    each group's median), the t interval of the difference of those mean deviations (a minus b) at
    1 - 2 alpha, which excludes 0 exactly when the test rejects, the sd ratio a/b as the effect, and
    power, smallest detectable ratio and runs needed for `ratio_of_interest` (simulated, `reps` studies),
    at alpha / family_size (Holm's most demanding step over the sub-claim's tasks)."""
    fa, fb = _finite(a), _finite(b)
    level = interval_level(alpha, 1)
    pa = holm_first_level(alpha, family_size)
    sd_a, sd_b = math.sqrt(_var(fa)) if fa.size >= 2 else _NAN, math.sqrt(_var(fb)) if fb.size >= 2 else _NAN
    ok = fa.size >= 3 and fb.size >= 3
    if ok:
        za, zb = np.abs(fa - np.median(fa)), np.abs(fb - np.median(fb))
        t, se = _bf_t(za[None, :], zb[None, :])
        t, se, df = float(t[0]), float(se[0]), fa.size + fb.size - 2
        diff = float(za.mean() - zb.mean())
        ok = np.isfinite(t) and se > 0
    lo, hi = t_interval(diff, se, df, level) if ok else (_NAN, _NAN)
    n = min(fa.size, fb.size)
    return {
        "expect": "better", "test": "brown_forsythe", "n": int(n), "unit": "runs per condition",
        "df": df if ok else _NAN, "effect": diff if ok else _NAN,
        "effect_label": "mean |deviation from median| reduction",
        "sd_ratio": sd_a / sd_b if np.isfinite(sd_a) and np.isfinite(sd_b) and sd_b > 0 else _NAN,
        "ci_low": lo, "ci_high": hi, "ci_level": level, "interval_label": "",
        "boot_ci_low": _NAN, "boot_ci_high": _NAN,
        "p_support": _t_p(t, df, "greater") if ok else _NAN, "p_against": _t_p(t, df, "less") if ok else _NAN,
        "support_category": "effect in the paper's direction", "against_category": "opposite effect",
        "both_category": "effect in the paper's direction",
        "interest": ratio_of_interest, "interest_source": "sd ratio",
        "interest_label": f"an sd ratio of {ratio_of_interest:g} (baseline over treatment)",
        "paper_effect": _NAN, "family_size": int(family_size), "power_alpha": pa,
        "power_for_interest": spread_power(ratio_of_interest, fa.size, fb.size, pa, reps=reps, seed=seed),
        "mde_std": _NAN, "mde_metric": spread_mde_ratio(fa.size, fb.size, pa, power, reps=reps, seed=seed),
        "seeds_needed": spread_seeds_needed(ratio_of_interest, pa, power, reps=reps, seed=seed,
                                            max_n=max_seeds),
    }


def combine_rq2(fewer: dict, spread: dict, fewer_test: dict, spread_test: dict, alpha: float) -> dict:
    """RQ 2 on one task from its two sub-claim verdicts (fewer degenerate runs; smaller spread). Rule:
    not reproduced when either sub-claim is refuted (significantly more degenerate runs or a
    significantly larger spread, after Holm); reproduced only when both are reproduced; a refutation
    significant before Holm only makes it inconclusive ("significant before Holm only"), whatever the
    other sub-claim says; one reproduced sub-claim alone is "partly reproduced"; otherwise the more
    telling inconclusive category. So a significantly larger spread is never a reproduction."""
    both = (fewer, spread)
    if any(v["verdict"] == "not reproduced" for v in both):
        return {"verdict": "not reproduced", "category": "a sub-claim refuted", "reason": "a sub-claim refuted"}
    if all(v["verdict"] == "reproduced" for v in both):
        return {"verdict": "reproduced", "category": "both sub-claims", "reason": "both sub-claims reproduced"}
    if any(np.isfinite(t["p_against"]) and t["p_against"] < alpha for t in (fewer_test, spread_test)):
        return {"verdict": "inconclusive", "category": "significant before Holm only",
                "reason": "a sub-claim is refuted before Holm's correction"}
    if any(v["verdict"] == "reproduced" for v in both):
        return {"verdict": "inconclusive", "category": "partly reproduced", "reason": "one sub-claim reproduced"}
    return {**aggregate(list(both)), "reason": "neither sub-claim decided"}


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
