"""Tests for pipeline.stats: each asserts a number or decision that a wrong implementation would change."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats as st

from pipeline import stats as S

NAN = float("nan")

# The study's settings that stats.py takes without a default (params.yaml is the one place they are set):
# the tests state the conventional values their expected numbers assume.
COLLAPSE = {"collapse_share": 0.95, "collapse_std_ratio": 0.05}
STUDY = {"alpha": 0.05, "n_boot": 10_000, "boot_seed": 0, "power": 0.8}


def _is_degenerate(*args, **kw):
    return S.is_degenerate(*args, **{**COLLAPSE, **kw})


def _compare(a, b, **kw):
    return S.compare(a, b, **{**STUDY, **kw})


def _verdict(r, **kw):
    return S.verdict(r, **{"alpha": STUDY["alpha"], "power": STUDY["power"], **kw})


def _standardized(n, seed):
    """n values with mean exactly 0 and sd (ddof=1) exactly 1, so effects are known exactly."""
    x = np.random.default_rng(seed).normal(size=n)
    return (x - x.mean()) / x.std(ddof=1)


# ---------------------------------------------------------------- describe

def test_describe_counts_nan_and_excludes_it_from_moments():
    d = S.describe([1.0, 2.0, NAN, 3.0, 10.0])
    assert d["n"] == 5 and d["n_nan"] == 1
    assert d["mean"] == pytest.approx(4.0)
    assert d["std"] == pytest.approx(np.std([1, 2, 3, 10], ddof=1))
    assert d["median"] == pytest.approx(2.5)
    assert (d["min"], d["max"]) == (1.0, 10.0)


@pytest.mark.parametrize("values", [[], [NAN, NAN]])
def test_describe_empty_or_all_nan_gives_nan_moments(values):
    d = S.describe(values)
    assert d["n"] == len(values) and d["n_nan"] == len(values)
    assert all(math.isnan(d[k]) for k in ("mean", "std", "median", "min", "max"))


def test_describe_single_value_has_no_std():
    d = S.describe([0.7])
    assert d["mean"] == 0.7 and math.isnan(d["std"])


# ---------------------------------------------------------------- degenerate runs

@pytest.mark.parametrize("metric,value,expected", [
    ("spearman", 0.0, True), ("spearman", -0.1, True), ("spearman", 0.01, False), ("spearman", NAN, True),
    ("pearson", 0.0, True), ("pearson", 0.5, False),
    ("mcc", 0.0, True), ("mcc", 0.2, False), ("mcc", NAN, True),
])
def test_degenerate_correlation_metrics(metric, value, expected):
    # majority baseline is irrelevant for correlations: 0 is chance
    share = 0.6 if metric == "mcc" else None
    pstd = None if metric == "mcc" else 0.9
    assert _is_degenerate(metric, value, 0.7, share, pstd, 1.0) is expected


@pytest.mark.parametrize("metric,value,expected", [
    ("accuracy", 0.527, True),   # exactly the majority baseline: no better than it
    ("accuracy", 0.50, True),
    ("accuracy", 0.53, False),
    ("accuracy", NAN, True),
    ("f1", 0.80, True),
    ("f1", 0.85, False),
])
def test_degenerate_majority_metrics(metric, value, expected):
    baseline = 0.527 if metric == "accuracy" else 0.81
    assert _is_degenerate(metric, value, baseline, 0.6, None, None) is expected


def test_degenerate_collapse_classification():
    # good accuracy on a skewed test set, but one class predicted for 96% of examples
    assert _is_degenerate("accuracy", 0.70, 0.68, 0.96, None, None) is True
    assert _is_degenerate("accuracy", 0.70, 0.68, 0.94, None, None) is False
    assert _is_degenerate("accuracy", 0.70, 0.68, 0.94, None, None, collapse_share=0.9) is True
    assert _is_degenerate("accuracy", 0.70, 0.68, NAN, None, None) is False


def test_degenerate_collapse_regression():
    assert _is_degenerate("spearman", 0.3, 0.0, None, 0.04, 1.0) is True     # 0.04 <= 0.05 * 1.0
    assert _is_degenerate("spearman", 0.3, 0.0, None, 0.06, 1.0) is False
    assert _is_degenerate("spearman", 0.3, 0.0, None, 0.06, 1.0, collapse_std_ratio=0.1) is True
    assert _is_degenerate("spearman", 0.3, 0.0, None, NAN, 1.0) is False     # no spread info: no collapse check


def test_degenerate_rte_rule_replaces_majority_comparison():
    rule = {"below": 0.55}
    # above the majority baseline (0.527) but below 55%: degenerate under the paper's rule only
    assert _is_degenerate("accuracy", 0.54, 0.527, 0.6, None, None) is False
    assert _is_degenerate("accuracy", 0.54, 0.527, 0.6, None, None, rule=rule) is True
    assert _is_degenerate("accuracy", 0.55, 0.527, 0.6, None, None, rule=rule) is False
    assert _is_degenerate("accuracy", NAN, 0.527, 0.6, None, None, rule=rule) is True
    # the collapse check still applies under the rule
    assert _is_degenerate("accuracy", 0.60, 0.527, 0.97, None, None, rule=rule) is True


def test_degenerate_counts_on_a_set_of_runs():
    runs = [0.70, 0.52, NAN, 0.66, 0.527, 0.71]
    shares = [0.6, 0.99, 0.5, 0.97, 0.6, 0.55]
    k = sum(_is_degenerate("accuracy", v, 0.527, s, None, None) for v, s in zip(runs, shares))
    assert k == 4  # 0.52 (below), NaN, 0.66 collapsed, 0.527 (not above)


def test_degenerate_rejects_unknown_metric_and_rule():
    with pytest.raises(ValueError, match="unknown metric"):
        _is_degenerate("auc", 0.5, 0.5, None, None, None)
    with pytest.raises(ValueError, match="rule"):
        _is_degenerate("accuracy", 0.5, 0.5, None, None, None, rule={"above": 0.5})


# ---------------------------------------------------------------- power

A, P = STUDY["alpha"], STUDY["power"]


@pytest.mark.parametrize("n,d", [(5, 1.72), (8, 1.31), (16, 0.90)])
def test_power_unpaired_mde_known_values(n, d):
    assert S.power_unpaired_mde(n, n, A, P) == pytest.approx(d, abs=0.01)


def test_power_paired_mde_known_value():
    assert S.power_paired_mde(16, A, P) == pytest.approx(0.65, abs=0.01)


def test_mde_is_exact_not_normal_approximation():
    d = S.power_unpaired_mde(5, 5, A, P)
    assert S.power_unpaired(d, 5, 5, A) == pytest.approx(0.8, abs=1e-6)
    normal_approx = (st.norm.ppf(0.95) + st.norm.ppf(0.8)) * math.sqrt(2 / 5)
    assert abs(d - normal_approx) > 0.1  # the exact value differs materially at n = 5


def test_power_two_sided_needs_larger_effect():
    assert S.power_unpaired_mde(16, 16, A, P, alternative="two-sided") > S.power_unpaired_mde(16, 16, A, P) + 0.1


def test_power_for_a_less_alternative_is_the_lower_tail():
    """A decrease tested with alternative="less" has the power of the mirrored increase (it once returned the
    upper tail: 0.0009 instead of 0.427 for d_z = -0.5 at 10 pairs)."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    assert S.power_paired(-0.5, 10, A, "less") == pytest.approx(0.4273, abs=1e-4)
    assert S.power_paired(-0.5, 10, A, "less") == pytest.approx(
        TTestPower().power(effect_size=-0.5, nobs=10, alpha=A, alternative="smaller"), abs=1e-6)
    assert S.power_paired(0.5, 10, A, "less") < A  # an increase is not what "less" detects
    assert S.power_unpaired(-0.8, 7, 9, A, "less") == pytest.approx(
        TTestIndPower().power(effect_size=-0.8, nobs1=7, ratio=9 / 7, alpha=A, alternative="smaller"), abs=1e-6)
    assert S.power_unpaired(-0.8, 7, 9, A, "less") == pytest.approx(S.power_unpaired(0.8, 7, 9, A, "greater"))
    # the smallest detectable effect is a magnitude in the tested direction, equal for both tails
    assert S.power_paired_mde(10, A, P, "less") == pytest.approx(S.power_paired_mde(10, A, P, "greater"))
    assert S.power_unpaired_mde(7, 9, A, P, "less") == pytest.approx(S.power_unpaired_mde(7, 9, A, P))
    assert S.power_paired(-S.power_paired_mde(10, A, P, "less"), 10, A, "less") == pytest.approx(P, abs=1e-6)


@pytest.mark.parametrize("n", [5, 8, 16])
def test_seeds_needed_inverts_mde(n):
    d = S.power_unpaired_mde(n, n, A, P)
    assert S.seeds_needed_unpaired(d * 1.001, A, P) == n
    assert S.seeds_needed_unpaired(d * 0.98, A, P) == n + 1
    dz = S.power_paired_mde(n, A, P)
    assert S.seeds_needed_paired(dz * 1.001, A, P) == n


def test_seeds_needed_edge_cases():
    assert S.seeds_needed_unpaired(0.0, A, P) == math.inf
    assert S.seeds_needed_unpaired(-0.5, A, P) == math.inf
    assert math.isnan(S.seeds_needed_unpaired(NAN, A, P))
    assert S.seeds_needed_paired(1e-4, A, P) == math.inf            # beyond the 10,000 cap
    assert S.seeds_needed_unpaired(-1.0, A, P, alternative="less") == S.seeds_needed_unpaired(1.0, A, P)


def test_power_functions_take_alpha_and_power_from_the_caller():
    """params.yaml's analysis.alpha/power are the only defaults: the power functions have none of their own."""
    import inspect

    for fn, names in ((S.power_unpaired, ("alpha",)), (S.power_paired, ("alpha",)),
                      (S.power_unpaired_mde, ("alpha", "power")), (S.power_paired_mde, ("alpha", "power")),
                      (S.seeds_needed_unpaired, ("alpha", "power")), (S.seeds_needed_paired, ("alpha", "power"))):
        params = inspect.signature(fn).parameters
        for name in names:
            assert params[name].default is inspect.Parameter.empty, f"{fn.__name__}({name}=...)"


# ---------------------------------------------------------------- compare

def test_compare_identical_groups_not_significant():
    a = 0.7 + 0.02 * _standardized(20, 1)
    r = _compare(a, a.copy())
    assert r["diff"] == pytest.approx(0.0)
    assert r["student_p"] == pytest.approx(0.5)
    for k in ("student_p", "welch_p", "mannwhitney_p", "levene_p"):
        assert r[k] > 0.05, k
    assert r["var_ratio"] == pytest.approx(1.0)


def test_compare_student_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 12), rng.normal(0.4, 1.5, 9)
    r = _compare(a, b)
    for alt in ("greater", "less", "two-sided"):
        ra = _compare(a, b, alternative=alt, n_boot=0)
        assert ra["student_p"] == pytest.approx(st.ttest_ind(b, a, alternative=alt).pvalue, rel=1e-9)
        assert ra["welch_p"] == pytest.approx(st.ttest_ind(b, a, equal_var=False, alternative=alt).pvalue, rel=1e-9)
    sp = math.sqrt((11 * a.var(ddof=1) + 8 * b.var(ddof=1)) / 19)
    assert r["cohen_d"] == pytest.approx((b.mean() - a.mean()) / sp)
    assert r["hedges_g"] == pytest.approx(r["cohen_d"] * (1 - 3 / (4 * 19 - 1)), rel=1e-3)
    assert r["mde_unpaired"] == pytest.approx(S.power_unpaired_mde(12, 9, A, P))
    assert r["mde_unpaired_metric"] == pytest.approx(r["mde_unpaired"] * sp)


def test_compare_clear_shift_is_significant_in_right_direction_only():
    a = _standardized(30, 2)
    b = _standardized(30, 5) + 1.0   # +1 sd
    up = _compare(a, b)
    assert up["diff"] == pytest.approx(1.0)
    assert up["cohen_d"] == pytest.approx(1.0)
    for k in ("student_p", "welch_p", "mannwhitney_p"):
        assert up[k] < 0.001, k
    assert up["boot_ci_unpaired_low"] > 0.4 and up["boot_ci_unpaired_high"] < 1.6
    down = _compare(a, b, alternative="less")
    for k in ("student_p", "welch_p", "mannwhitney_p"):
        assert down[k] > 0.99, k
    # swapping the conditions turns the claim around
    assert _compare(b, a)["student_p"] > 0.99


def test_compare_paired_design_detected_only_by_paired_tests():
    rng = np.random.default_rng(7)
    shared = rng.normal(0, 1.0, 10)              # large per-seed component (init, data order)
    a = 0.7 + 0.05 * shared + rng.normal(0, 0.002, 10)
    b = 0.7 + 0.05 * shared + 0.01 + rng.normal(0, 0.002, 10)   # small, consistent +0.01
    seeds = list(range(10))
    r = _compare(a, b, seeds_a=seeds, seeds_b=seeds)
    assert r["n_pairs"] == 10 and r["paired"]
    assert r["paired_t_p"] < 1e-5
    assert r["wilcoxon_p"] < 0.01
    assert r["student_p"] > 0.2                  # the unpaired test is swamped by seed variance
    assert r["paired_diff_mean"] == pytest.approx(np.mean(b - a))
    assert r["d_z"] == pytest.approx(np.mean(b - a) / np.std(b - a, ddof=1))
    assert r["boot_ci_paired_low"] > 0 and r["boot_ci_paired_low"] < 0.01 < r["boot_ci_paired_high"]
    assert r["mde_paired_metric"] == pytest.approx(r["mde_paired"] * np.std(b - a, ddof=1))
    assert (r["paired_ci_low"], r["paired_ci_high"]) == pytest.approx(
        st.ttest_rel(b, a).confidence_interval(0.90))  # the level that matches a one-tailed test at 0.05
    # bootstrap is reproducible from boot_seed and changes with it
    assert _compare(a, b, seeds_a=seeds, seeds_b=seeds)["boot_ci_paired_low"] == r["boot_ci_paired_low"]
    assert _compare(a, b, seeds_a=seeds, seeds_b=seeds, boot_seed=1)["boot_ci_paired_low"] != r["boot_ci_paired_low"]


def test_compare_pairs_by_seed_inner_join_on_finite_values():
    a = [0.60, 0.70, NAN, 0.50, 0.40]
    seeds_a = [1, 2, 3, 4, 5]
    b = [0.75, 0.62, 0.90, 0.55, 0.80]
    seeds_b = [2, 1, 3, 4, 9]     # different order; seed 3 is NaN in a; 5 and 9 unmatched
    r = _compare(a, b, seeds_a=seeds_a, seeds_b=seeds_b)
    assert r["n_pairs"] == 3
    assert r["paired_diff_mean"] == pytest.approx(np.mean([0.62 - 0.60, 0.75 - 0.70, 0.55 - 0.50]))
    assert (r["n_a"], r["n_nan_a"], r["n_b"], r["n_nan_b"]) == (4, 1, 5, 0)
    with pytest.raises(ValueError, match="duplicate"):
        _compare(a, b, seeds_a=[1, 1, 2, 3, 4], seeds_b=seeds_b)


def test_compare_levene_detects_variance_change():
    a = _standardized(40, 11)
    b = 3.0 * _standardized(40, 12)
    r = _compare(a, b)
    assert r["levene_p"] < 0.001
    assert r["levene_p"] == pytest.approx(st.levene(a, b, center="median").pvalue)
    assert r["var_ratio"] == pytest.approx(9.0)
    assert _compare(a, _standardized(40, 12))["levene_p"] > 0.05
    # var_ratio is var_b / var_a: reduced variance gives a ratio below 1
    assert _compare(b, a)["var_ratio"] == pytest.approx(1 / 9)


@pytest.mark.parametrize("a,b,seeds", [
    ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], True),   # all equal
    ([0.6], [0.7], True),                        # n = 1
    ([], [0.7, 0.8], False),                     # empty
    ([NAN, NAN], [NAN, 0.7], True),              # almost all NaN
    ([0.5, NAN, 0.6, 0.55], [NAN, 0.7, 0.71, NAN], True),
    ([0.5, 0.6, 0.7], [0.6, 0.7, 0.8], True),    # constant paired difference
    ([0.5, 0.5, 0.5], [0.6, 0.6, 0.6], False),   # zero variance, different means
])
def test_compare_never_raises_and_keeps_all_keys(a, b, seeds):
    full = _compare([0.1, 0.2, 0.3], [0.2, 0.3, 0.5], seeds_a=[1, 2, 3], seeds_b=[1, 2, 3])
    kw = dict(seeds_a=list(range(len(a))), seeds_b=list(range(len(b)))) if seeds else {}
    r = _compare(a, b, **kw)
    assert set(r) == set(full)
    for v in r.values():
        assert v is None or isinstance(v, (bool, int, float, str, np.floating, np.integer))


def test_compare_degenerate_inputs_give_nan_not_fake_significance():
    r = _compare([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], seeds_a=[1, 2, 3], seeds_b=[1, 2, 3])
    for k in ("student_p", "welch_p", "mannwhitney_p", "levene_p", "paired_t_p", "wilcoxon_p", "cohen_d", "d_z"):
        assert math.isnan(r[k]), k
    r = _compare([0.6], [0.7])
    assert r["diff"] == pytest.approx(0.1) and math.isnan(r["student_p"]) and math.isnan(r["std_a"])
    r = _compare([0.5, 0.5, 0.5], [0.6, 0.6, 0.6])
    assert math.isnan(r["student_p"]) and math.isnan(r["cohen_d"])
    # a constant paired shift has no sd for the t-test, but the sign test information is real
    r = _compare([0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.8, 0.9], seeds_a=[1, 2, 3, 4], seeds_b=[1, 2, 3, 4])
    assert math.isnan(r["paired_t_p"]) or r["paired_t_p"] < 1e-6   # float rounding may leave a tiny sd
    assert r["wilcoxon_p"] == pytest.approx(1 / 16)


def test_compare_counts_nan_runs():
    r = _compare([0.5, NAN, 0.6, NAN], [0.7, 0.71, NAN])
    assert (r["n_a"], r["n_nan_a"], r["n_b"], r["n_nan_b"]) == (2, 2, 2, 1)
    assert r["mean_a"] == pytest.approx(0.55)


# ---------------------------------------------------------------- Fisher and Holm

def test_fisher_degenerate_direction_and_value():
    p = S.fisher_degenerate(8, 20, 1, 20)
    # one-sided hypergeometric tail: P(X >= 8) with 9 degenerate among 40 runs, 20 of them in a
    assert p == pytest.approx(st.hypergeom.sf(7, 40, 9, 20))
    assert p < 0.05
    assert S.fisher_degenerate(1, 20, 8, 20) > 0.99
    assert S.fisher_degenerate(3, 20, 3, 20) > 0.5
    with pytest.raises(ValueError):
        S.fisher_degenerate(21, 20, 0, 20)


def test_holm_hand_calculation():
    assert S.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_nan_cap_and_monotone():
    out = S.holm([0.5, NAN, 0.6, 0.01])
    assert math.isnan(out[1])
    assert out[3] == pytest.approx(0.03)      # m = 3, NaN not counted
    assert out[0] == pytest.approx(1.0) and out[2] == pytest.approx(1.0)
    assert math.isnan(S.holm([NAN])[0])
    assert S.holm([]) == []


# ---------------------------------------------------------------- deciding test and verdict

SOI = 0.02  # the smallest effect of interest the tests assume (params.yaml's analysis.smallest_effect_of_interest.mean)


def _unpaired(shift, n=5, sd=1.0):
    a = sd * _standardized(n, 21)
    b = sd * _standardized(n, 22) + shift
    return _compare(a, b)


def _decide(r, **kw):
    return S.decide(r, **{"expect": "better", "alpha": STUDY["alpha"], "power": STUDY["power"],
                          "effect_of_interest": SOI, "family_size": 1, **kw})


def _verdict(t, **kw):
    return S.verdict(t, **{"alpha": STUDY["alpha"], "power": STUDY["power"], **kw})


def _paired_data(mean_diff, sd_diff, n, seed=7):
    """Paired runs (a, b) whose differences b - a have exactly this mean and sd."""
    a = 0.7 + 0.05 * np.random.default_rng(seed).normal(size=n)
    return a, a + mean_diff + sd_diff * _standardized(n, seed + 1)


def _paired(mean_diff, sd_diff, n, seed=7):
    a, b = _paired_data(mean_diff, sd_diff, n, seed)
    return _compare(a, b, seeds_a=range(n), seeds_b=range(n), n_boot=0)  # the t tests only


def test_decide_interval_is_the_paired_t_interval_at_1_minus_2_alpha():
    r = _paired(0.01, 0.01, 10)
    t = _decide(r)
    assert t["test"] == "paired_t" and t["ci_level"] == pytest.approx(0.90)
    d = np.full(10, 0.01) + 0.01 * _standardized(10, 8)
    lo, hi = st.ttest_rel(d, np.zeros(10)).confidence_interval(0.90)
    assert (t["ci_low"], t["ci_high"]) == pytest.approx((lo, hi))
    assert t["p_support"] == pytest.approx(st.ttest_rel(d, np.zeros(10), alternative="greater").pvalue)


@pytest.mark.parametrize("expect", ["better", "no_gain"])
def test_interval_excludes_the_null_exactly_where_the_test_rejects(expect):
    """The interval printed beside a verdict agrees with the unadjusted deciding test, case by case, and
    the cases exercise both outcomes (some near the boundary, where a 95% interval would disagree)."""
    rng = np.random.default_rng(5)
    rejected = near = 0
    for i in range(120):
        n = int(rng.integers(3, 17))
        r = _paired(rng.normal(0.01, 0.02), abs(rng.normal(0.03, 0.01)) + 1e-3, n, seed=i)
        t = _decide(r, expect=expect)
        bound = t["ci_low"] > 0 if expect == "better" else t["ci_high"] < SOI
        assert bound == (t["p_support"] < 0.05), (i, t)
        rejected += bool(bound)
        near += bool(0.025 < t["p_support"] < 0.05)
    assert 10 <= rejected <= 110 and near >= 2, (rejected, near)


def test_verdict_reproduced_paired_and_its_category():
    rng = np.random.default_rng(7)
    shared = rng.normal(0, 1.0, 10)
    a, b = 0.7 + 0.05 * shared, 0.71 + 0.05 * shared + rng.normal(0, 0.002, 10)
    r = _compare(a, b, seeds_a=range(10), seeds_b=range(10))
    v = _verdict(_decide(r))
    assert (v["verdict"], v["category"]) == ("reproduced", "effect in the paper's direction")
    # the same data against a paper that claimed the opposite
    v = _verdict(_decide(r, direction=-1))
    assert (v["verdict"], v["category"]) == ("not reproduced", "opposite effect")


def test_verdict_student_when_unpaired():
    r = _unpaired(2.0, n=10)
    t = _decide(r)
    assert t["test"] == "student_t" and t["p_support"] == pytest.approx(r["student_p"])
    assert _verdict(t)["verdict"] == "reproduced"


def test_verdict_direction_minus_one_reproduces_a_decrease():
    t = _decide(_unpaired(-2.0, n=10), direction=-1)
    assert _verdict(t)["verdict"] == "reproduced" and t["effect"] == pytest.approx(2.0)


def test_verdict_not_reproduced_when_the_paper_effect_is_excluded():
    # many precise seeds, no effect: the paper's +0.03 is outside the interval
    r = _unpaired(0.0, n=30, sd=0.01)
    v = _verdict(_decide(r, paper_effect=0.03))
    assert (v["verdict"], v["category"]) == ("not reproduced", "paper's effect excluded")
    # a paper effect inside the interval does not allow that conclusion; the study had power for it or not
    v = _verdict(_decide(r, paper_effect=0.001))
    assert v["verdict"] == "inconclusive" and v["category"] == "too few seeds"
    # without the paper's effect the configured effect of interest sets the power: 2 points at sd 1 point
    v = _verdict(_decide(r))
    assert (v["verdict"], v["category"]) == ("inconclusive", "no effect")


def test_a_reproduced_effect_smaller_than_the_papers_says_so():
    """+1 point, precisely measured, against the paper's +3: the direction holds, the size does not."""
    t = _decide(_paired(0.01, 0.002, 8), paper_effect=0.03)
    assert t["p_support"] < 1e-4 and t["p_against"] < 1e-4
    v = _verdict(t)
    assert (v["verdict"], v["category"]) == ("reproduced", "smaller than the paper's effect")
    assert "paper's effect excluded" in v["reason"]
    # with the paper's effect inside the interval it is the plain category
    v = _verdict(_decide(_paired(0.03, 0.002, 8), paper_effect=0.03))
    assert (v["verdict"], v["category"]) == ("reproduced", "effect in the paper's direction")


def test_verdict_too_few_seeds_is_prospective():
    """Power and seeds needed come from the effect of interest, never from the observed effect."""
    t = _decide(_unpaired(0.5, n=5))             # d = 0.5 observed; effect of interest 0.02 at sd 1
    v = _verdict(t)
    assert (v["verdict"], v["category"]) == ("inconclusive", "too few seeds")
    assert t["seeds_needed"] == S.seeds_needed_unpaired(SOI / 1.0, A, P)
    assert t["power_for_interest"] == pytest.approx(S.power_unpaired(SOI, 5, 5, A))
    # a large effect of interest: the same data now say "no effect"
    assert _verdict(_decide(_unpaired(0.5, n=5), effect_of_interest=3.0))["category"] == "no effect"


def test_no_effect_needs_the_configured_power():
    """'No effect' only where power for the effect of interest reaches analysis.power (0.8 here)."""
    t = _decide(_paired(0.0, 0.03, 8))
    assert t["p_support"] >= 0.05 and t["p_against"] >= 0.05
    for pw, cat in ((0.3, "too few seeds"), (0.55, "too few seeds"), (0.79, "too few seeds"),
                    (0.8, "no effect"), (0.95, "no effect")):
        assert _verdict({**t, "power_for_interest": pw})["category"] == cat, pw
    assert _verdict({**t, "power_for_interest": 0.6}, power=0.5)["category"] == "no effect"


def test_power_is_computed_at_holms_most_demanding_level():
    """A claim tested on m tasks decides after Holm, whose first step asks p < alpha/m: power, the smallest
    detectable effect and seeds needed are computed at that level, so a power that suffices unadjusted but
    not at alpha/m gives "too few seeds", not "no effect"."""
    from statsmodels.stats.power import TTestPower

    tp = TTestPower()
    r = _paired(0.0, 0.03, 8)
    one, three = _decide(r, family_size=1), _decide(r, family_size=3)
    assert (one["power_alpha"], three["power_alpha"]) == pytest.approx((0.05, 0.05 / 3))
    assert three["family_size"] == 3
    dz = SOI / 0.03
    assert three["power_for_interest"] == pytest.approx(
        tp.power(effect_size=dz, nobs=8, alpha=0.05 / 3, alternative="larger"), abs=1e-6)
    assert three["mde_std"] == pytest.approx(
        tp.solve_power(nobs=8, alpha=0.05 / 3, power=0.8, alternative="larger"), rel=1e-4)
    assert three["mde_metric"] == pytest.approx(three["mde_std"] * 0.03)
    assert three["seeds_needed"] == math.ceil(
        tp.solve_power(effect_size=dz, alpha=0.05 / 3, power=0.8, alternative="larger"))
    # an effect of interest between the two smallest detectable effects
    eoi = 0.03 * (one["mde_std"] + three["mde_std"]) / 2
    one, three = _decide(r, family_size=1, effect_of_interest=eoi), _decide(r, family_size=3, effect_of_interest=eoi)
    assert one["power_for_interest"] > 0.8 > three["power_for_interest"]
    assert _verdict(one)["category"] == "no effect"
    v = _verdict(three, p_support_holm=1.0, p_against_holm=1.0, family_size=3)
    assert (v["verdict"], v["category"]) == ("inconclusive", "too few seeds")
    assert "alpha 0.0167" in v["reason"] and "Holm's most demanding step over 3 tasks" in v["reason"]
    with pytest.raises(ValueError, match="family_size"):
        _decide(r, family_size=0)


def test_a_reversed_estimate_at_4_pairs_is_too_few_seeds():
    t = _decide(_paired(-0.01, 0.03, 4))
    v = _verdict(t)
    assert t["effect"] < 0 and (v["verdict"], v["category"]) == ("inconclusive", "too few seeds")
    assert 4 < t["seeds_needed"] < math.inf


def test_verdict_holm_changes_the_decision_and_says_so():
    t = _decide(_paired(-0.015, 0.01, 4))
    assert t["p_against"] < 0.05
    v = _verdict(t, p_support_holm=1.0, p_against_holm=min(1.0, 2 * t["p_against"]), family_size=2)
    assert v["verdict"] == "inconclusive" and v["category"] == "significant before Holm only"
    assert "Holm" in v["reason"] and "not reproduced" in v["reason"]


def test_reproduced_needs_the_holm_adjusted_p():
    """The supporting direction too: raw p 0.029, Holm 0.058 over two tasks is not a reproduction."""
    t = _decide(_paired(0.015, 0.01, 4))
    assert 0.025 < t["p_support"] < 0.05
    v = _verdict(t, p_support_holm=2 * t["p_support"], p_against_holm=1.0, family_size=2)
    assert (v["verdict"], v["category"]) == ("inconclusive", "significant before Holm only")
    assert "would read 'reproduced'" in v["reason"] and "Holm over the claim's 2 task(s)" in v["reason"]
    assert _verdict(t, p_support_holm=t["p_support"], p_against_holm=1.0)["verdict"] == "reproduced"


def test_no_gain_is_a_non_superiority_test():
    """p_support is the one-sample t-test of the paired differences against the margin, lower tail."""
    for mean, sd, n in ((0.001, 0.002, 8), (0.015, 0.01, 6), (0.03, 0.02, 5)):
        a, b = _paired_data(mean, sd, n)
        t = _decide(_compare(a, b, seeds_a=range(n), seeds_b=range(n), n_boot=0), expect="no_gain")
        assert t["p_support"] == pytest.approx(st.ttest_1samp(b - a, SOI, alternative="less").pvalue, rel=1e-9)
        assert t["p_against"] == pytest.approx(st.ttest_1samp(b - a, 0.0, alternative="greater").pvalue, rel=1e-9)
        assert (t["ci_high"] < SOI) == (t["p_support"] < 0.05)
    t = _decide(_paired(0.001, 0.002, 8), expect="no_gain")
    assert t["ci_high"] < SOI
    assert (_verdict(t)["verdict"], _verdict(t)["category"]) == ("reproduced", "gain below margin")
    # a clear gain refutes it
    v = _verdict(_decide(_paired(0.05, 0.01, 8), expect="no_gain"))
    assert (v["verdict"], v["category"]) == ("not reproduced", "significant gain")
    # a setting too weak to move the weights is uninformative, whatever the data
    v = _verdict(t, too_weak="pull 0.2% of the way")
    assert (v["verdict"], v["category"]) == ("uninformative", "setting too weak")


def test_a_significant_gain_below_the_margin_is_not_called_excluded():
    """+1 point, precisely measured, with a 2-point margin: the gain is below the margin, but it is a gain."""
    t = _decide(_paired(0.01, 0.002, 8), expect="no_gain")
    assert t["p_support"] < 1e-4 and t["p_against"] < 1e-4
    v = _verdict(t)
    assert (v["verdict"], v["category"]) == ("reproduced", "significant gain below margin")
    assert "significant gain" in v["reason"]
    # the gain is significant only before Holm: the plain category
    v = _verdict(t, p_support_holm=t["p_support"], p_against_holm=0.2, family_size=2)
    assert (v["verdict"], v["category"]) == ("reproduced", "gain below margin")


def test_verdict_not_computable():
    v = _verdict(_decide(_compare([0.5, 0.5], [0.5, 0.5])))
    assert (v["verdict"], v["category"]) == ("inconclusive", "not computable")


def _verdict_grid():
    """Every branch of `verdict`: p-values (raw and Holm) on both sides of alpha, power on both sides of
    the configured power, a setting too weak or not, for each kind of deciding test."""
    kinds = [_decide(_paired(0.01, 0.01, 6)),                                   # better, no paper effect
             _decide(_paired(0.01, 0.01, 6), paper_effect=0.03),                # better, the paper's effect
             _decide(_paired(0.01, 0.01, 6), expect="no_gain"),                 # adds little
             S.fewer_degenerate(4, 8, 0, 8, alpha=A, power=P, share_of_interest=0.5, family_size=1)]
    ps = (0.001, 0.03, 0.2, 0.97, NAN)
    for base in kinds:
        for p_s, p_a, mult_s, mult_a, pw, weak in itertools.product(ps, ps, (1, 3), (1, 3), (0.3, 0.6, 0.8, 0.95, NAN),
                                                                    (None, "too weak")):
            t = {**base, "p_support": p_s, "p_against": p_a, "power_for_interest": pw}
            hs, ha = min(1.0, mult_s * p_s), min(1.0, mult_a * p_a)
            v = S.verdict(t, alpha=A, power=P, p_support_holm=hs, p_against_holm=ha, family_size=3, too_weak=weak)
            yield t, hs, ha, pw, weak, v


def test_every_category_is_returned_with_its_verdict_and_every_rule_holds():
    """Every (verdict, category) that verdict, aggregate and combine_rq2 return is listed in CATEGORIES,
    every listed category is reachable (none is stale), and the rules hold on every branch."""
    seen = set()
    task_level = set()
    for t, hs, ha, pw, weak, v in _verdict_grid():
        assert v["category"] in S.CATEGORIES[v["verdict"]], v
        if v["verdict"] == "reproduced":
            assert hs < A and not (weak and t["expect"] == "no_gain"), (t, v)
        if v["verdict"] == "not reproduced":
            assert ha < A and not hs < A, (t, v)
        if v["category"] in ("no effect", "gain not excluded"):
            assert pw >= P and t["p_support"] >= A and t["p_against"] >= A, (t, v)
        if v["category"] == "too few seeds":
            assert not pw >= P, (t, v)
        if v["category"] == "significant before Holm only":
            assert min(t["p_support"], t["p_against"]) < A <= min(hs, ha), (t, v)
        seen.add((v["verdict"], v["category"]))
        task_level.add((v["verdict"], v["category"]))
    tv = [{"verdict": v, "category": c} for v, c in sorted(task_level)]
    for x, y in itertools.product(tv, tv):
        agg = S.aggregate([x, y])
        assert agg["category"] in S.CATEGORIES[agg["verdict"]], (x, y, agg)
        seen.add((agg["verdict"], agg["category"]))
        for pa_x, pa_y in itertools.product((0.01, 0.5), (0.01, 0.5)):
            c = S.combine_rq2(x, y, {"p_against": pa_x}, {"p_against": pa_y}, A)
            assert c["category"] in S.CATEGORIES[c["verdict"]], (x, y, c)
            seen.add((c["verdict"], c["category"]))
    listed = {(v, c) for v, cats in S.CATEGORIES.items() for c in cats}
    assert seen == listed, (listed - seen, seen - listed)
    assert set(S.CATEGORIES) == set(S.VERDICTS)


def test_aggregate_over_tasks():
    rep = {"verdict": "reproduced", "category": "effect in the paper's direction"}
    few = {"verdict": "inconclusive", "category": "too few seeds"}
    nr = {"verdict": "not reproduced", "category": "opposite effect"}
    assert S.aggregate([rep, rep])["verdict"] == "reproduced"
    assert S.aggregate([rep, few])["category"] == "partly reproduced"
    assert S.aggregate([rep, nr])["category"] == "mixed across tasks"
    assert S.aggregate([few, few])["category"] == "too few seeds"


@pytest.mark.parametrize("other", [
    {"verdict": "inconclusive", "category": "too few seeds"},
    {"verdict": "inconclusive", "category": "no effect"},
    {"verdict": "inconclusive", "category": "significant before Holm only"},
    {"verdict": "inconclusive", "category": "not computable"},
    {"verdict": "uninformative", "category": "setting too weak"},
])
def test_a_refutation_on_some_tasks_is_never_hidden(other):
    """A Holm-significant refutation on one task, the others undecided: the claim's verdict says it."""
    nr = {"verdict": "not reproduced", "category": "opposite effect"}
    for tasks in ([nr, other], [other, nr], [other, nr, other]):
        agg = S.aggregate(tasks)
        assert (agg["verdict"], agg["category"]) == ("inconclusive", "refuted on some tasks"), tasks
        assert "not reproduced" in agg["reason"]


def test_aggregate_is_not_computable_only_when_a_task_was_not():
    few = {"verdict": "inconclusive", "category": "too few seeds"}
    weak = {"verdict": "uninformative", "category": "setting too weak"}
    nc = {"verdict": "inconclusive", "category": "not computable"}
    assert S.aggregate([weak, few])["category"] == "too few seeds"
    assert S.aggregate([weak, weak])["verdict"] == "uninformative"
    assert S.aggregate([nc, weak])["category"] == "not computable"
    assert S.aggregate([nc, few])["category"] == "too few seeds"
    # all reproduced, one of them smaller than the paper's effect: the qualified category speaks
    rep = {"verdict": "reproduced", "category": "effect in the paper's direction"}
    small = {"verdict": "reproduced", "category": "smaller than the paper's effect"}
    assert S.aggregate([rep, small])["category"] == "smaller than the paper's effect"


# ---------------------------------------------------------------- RQ 2 sub-claims

def test_fewer_degenerate_interval_inverts_fisher():
    """Every table of 8 + 8 runs: the 90% exact odds-ratio interval excludes 1 exactly where Fisher's
    one-tailed test rejects at 0.05, in both directions (a 95% interval would miss the tables with
    0.025 < p < 0.05)."""
    from scipy.stats.contingency import odds_ratio

    near = 0
    for ka, kb in itertools.product(range(9), range(9)):
        t = S.fewer_degenerate(ka, 8, kb, 8, alpha=0.05, power=0.8, share_of_interest=0.48, family_size=1,
                               max_seeds=50)
        assert t["ci_level"] == pytest.approx(0.90)
        assert t["p_support"] == pytest.approx(S.fisher_degenerate(ka, 8, kb, 8))
        assert (t["ci_low"] > 1) == (t["p_support"] < 0.05), (ka, kb, t)
        assert (t["ci_high"] < 1) == (t["p_against"] < 0.05), (ka, kb, t)
        near += bool(0.025 < t["p_support"] < 0.05)
        if (ka, kb) == (5, 1):
            ci = odds_ratio([[5, 3], [1, 7]], kind="conditional").confidence_interval(0.90)
            assert (t["ci_low"], t["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert near >= 2


def test_fisher_power_by_enumeration_matches_simulation():
    rng = np.random.default_rng(0)
    ka, kb = rng.binomial(10, 0.5, 20000), rng.binomial(10, 0.1, 20000)
    p = st.hypergeom.sf(ka - 1, 20, ka + kb, 10)
    assert S.fisher_power(0.5, 0.1, 10, 10, 0.05) == pytest.approx(np.mean(p < 0.05), abs=0.01)
    share = S.fisher_mde_share(16, 16, 0.05, 0.8)
    assert S.fisher_power(share, 0.0, 16, 16, 0.05) == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize("share", [0.35, 0.342, 0.3666])
def test_fisher_seeds_needed_is_the_first_n_with_the_power(share):
    """Fisher's power is not monotone in n (at 0.35: 83% at 15 runs, 71% at 16), so a doubling search can
    step over the answer; the answer is the first n that reaches the power."""
    first = next(n for n in range(1, 200) if S.fisher_power(share, 0.0, n, n, 0.05) >= 0.8)
    assert S.fisher_seeds_needed(share, 0.05, 0.8, 200) == first
    assert first == (14 if share > 0.36 else 15)
    assert S.fisher_power(share, 0.0, 16, 16, 0.05) < 0.8  # the non-monotone step that a search can miss
    assert S.fisher_seeds_needed(0.0, 0.05, 0.8, 200) == math.inf
    assert S.fisher_seeds_needed(0.01, 0.05, 0.8, 20) == math.inf


def test_rq2_power_is_at_holms_most_demanding_level():
    one = S.fewer_degenerate(4, 8, 0, 8, alpha=A, power=P, share_of_interest=0.5, family_size=1)
    four = S.fewer_degenerate(4, 8, 0, 8, alpha=A, power=P, share_of_interest=0.5, family_size=4)
    assert four["power_alpha"] == pytest.approx(A / 4) and four["p_support"] == one["p_support"]
    assert four["power_for_interest"] == pytest.approx(S.fisher_power(0.5, 0.0, 8, 8, A / 4))
    assert four["power_for_interest"] < one["power_for_interest"]
    assert four["seeds_needed"] == S.fisher_seeds_needed(0.5, A / 4, P, 10_000) > one["seeds_needed"]
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 3, 8), rng.normal(0, 1, 8)
    kw = dict(alpha=A, power=P, ratio_of_interest=2.0, reps=500, seed=0)
    s1, s2 = S.smaller_spread(a, b, family_size=1, **kw), S.smaller_spread(a, b, family_size=2, **kw)
    assert s2["power_alpha"] == pytest.approx(A / 2) and s2["ci_low"] == s1["ci_low"]
    assert s2["power_for_interest"] == S.spread_power(2.0, 8, 8, A / 2, reps=500, seed=0)


def test_one_tailed_brown_forsythe_is_levene_halved():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 3, 12), rng.normal(0, 1, 12)
    t = S.smaller_spread(a, b, alpha=0.05, power=0.8, ratio_of_interest=2.0, reps=2000, seed=0, family_size=1)
    assert t["p_support"] == pytest.approx(st.levene(a, b, center="median").pvalue / 2)
    assert (t["ci_low"] > 0) == (t["p_support"] < 0.05)
    assert t["sd_ratio"] == pytest.approx(np.std(a, ddof=1) / np.std(b, ddof=1))


def test_smaller_spread_interval_is_the_brown_forsythe_t_interval_at_1_minus_2_alpha():
    """The interval of the difference of mean absolute deviations is the pooled t interval at 90%: it
    excludes 0 exactly where the one-tailed test rejects, including samples with 0.025 < p < 0.05."""
    rng = np.random.default_rng(11)
    near = 0
    for i in range(150):
        na, nb = (int(x) for x in rng.integers(4, 13, 2))
        a, b = rng.normal(0, rng.uniform(0.8, 3.0), na), rng.normal(0, 1, nb)
        t = S.smaller_spread(a, b, alpha=0.05, power=0.8, ratio_of_interest=2.0, reps=1, seed=0, family_size=1,
                             max_seeds=8)
        za, zb = np.abs(a - np.median(a)), np.abs(b - np.median(b))
        ref = st.ttest_ind(za, zb).confidence_interval(0.90)
        assert t["ci_level"] == pytest.approx(0.90)
        assert (t["ci_low"], t["ci_high"]) == pytest.approx((ref.low, ref.high), rel=1e-9), i
        assert (t["ci_low"] > 0) == (t["p_support"] < 0.05) and (t["ci_high"] < 0) == (t["p_against"] < 0.05), i
        near += bool(0.025 < t["p_support"] < 0.05)
    assert near >= 2


def test_rq2_combining_rule_never_calls_a_larger_spread_a_reproduction():
    rep = {"verdict": "reproduced", "category": "effect in the paper's direction"}
    nr = {"verdict": "not reproduced", "category": "opposite effect"}
    few = {"verdict": "inconclusive", "category": "too few seeds"}
    quiet = {"p_against": 0.5}
    assert S.combine_rq2(rep, rep, quiet, quiet, 0.05)["verdict"] == "reproduced"
    assert S.combine_rq2(rep, nr, quiet, {"p_against": 1e-4}, 0.05)["verdict"] == "not reproduced"
    raw_only = S.combine_rq2(rep, few, quiet, {"p_against": 0.03}, 0.05)
    assert (raw_only["verdict"], raw_only["category"]) == ("inconclusive", "significant before Holm only")
    assert S.combine_rq2(rep, few, quiet, quiet, 0.05)["category"] == "partly reproduced"


# ---------------------------------------------------------------- bias ratio

def test_bias_ratio_known_values():
    assert S.bias_ratio(1) == pytest.approx(3.16, abs=0.005)
    assert S.bias_ratio(12) == pytest.approx(6.57, abs=0.005)
    assert S.bias_ratio(234) == pytest.approx(2.19, abs=0.005)
    assert S.bias_ratio(96) == pytest.approx(3.30, abs=0.005)
    t = np.arange(1, 2000)
    r = S.bias_ratio(t)
    assert r.shape == t.shape and t[np.argmax(r)] == 12
    assert S.bias_ratio(1e6) == pytest.approx(1.0, abs=1e-6)   # correction vanishes late in training


# ---------------------------------------------------------------- expected max performance

VAL = [0.60, 0.70, 0.70, 0.55, 0.80, 0.80, NAN]
TEST = [0.58, 0.72, 0.64, 0.50, 0.75, 0.81, 0.99]   # the NaN-val run must never win


def test_expected_max_k1_is_mean_test():
    assert S.expected_max_closed_form(VAL, TEST, 1) == pytest.approx(np.mean(TEST))
    df = S.expected_max_performance(VAL, TEST, [1], n_draws=20000, seed=0)
    se = df["std_test"].iloc[0] / math.sqrt(20000)
    assert abs(df["mean_test"].iloc[0] - np.mean(TEST)) < 4 * se


def test_expected_max_closed_form_ties_and_large_k():
    # best val is tied at 0.80: the chosen run is either with equal probability
    assert S.expected_max_closed_form(VAL, TEST, 200) == pytest.approx((0.75 + 0.81) / 2, abs=1e-6)
    # hand calculation for k = 2 on three runs without ties: P = 1/9, 3/9, 5/9
    assert S.expected_max_closed_form([0.1, 0.3, 0.2], [1.0, 3.0, 2.0], 2) == pytest.approx((1 + 2 * 3 + 3 * 5) / 9)


def test_expected_max_monte_carlo_agrees_with_closed_form():
    ks = [1, 2, 3, 5, 10]
    df = S.expected_max_performance(VAL, TEST, ks, n_draws=20000, seed=0)
    assert list(df.columns) == ["k", "mean_test", "std_test", "mean_val", "std_val"]
    assert df["k"].tolist() == ks
    for _, row in df.iterrows():
        exact = S.expected_max_closed_form(VAL, TEST, int(row["k"]))
        se = row["std_test"] / math.sqrt(20000)
        assert abs(row["mean_test"] - exact) < 4 * se + 1e-12, row["k"]
    # best-of-k validation can only improve with k (finite validation scores only)
    finite = S.expected_max_performance(VAL[:-1], TEST[:-1], ks, n_draws=2000, seed=0)
    assert finite["mean_val"].is_monotonic_increasing
    # a run with NaN validation is chosen only if all k draws are that run: NaN propagates at small k
    assert math.isnan(df["mean_val"].iloc[0]) and not math.isnan(df["mean_val"].iloc[-1])
    # reproducible
    again = S.expected_max_performance(VAL, TEST, ks, n_draws=20000, seed=0)
    assert again.equals(df)


# ---------------------------------------------------------------- Table 1 marking

def test_mark_best_and_equivalent_known_answer():
    z1, z2 = _standardized(20, 31), _standardized(20, 32)
    groups = {"std_3ep": 0.60 + 0.02 * z1,       # 5 sd below: significantly worse
              "std_longer": 0.695 + 0.02 * z2,   # 0.25 sd below at n = 20: not significant
              "reinit_3ep": 0.70 + 0.02 * z1,    # best
              "reinit_longer": np.append(0.68 + 0.02 * z2, NAN)}   # 1 sd below: significant
    m = S.mark_best_and_equivalent(groups, alpha=0.05)
    assert [k for k, v in m.items() if v["best"]] == ["reinit_3ep"]
    assert m["std_longer"]["equivalent"] and not m["std_3ep"]["equivalent"]
    assert not m["reinit_longer"]["equivalent"]
    assert not m["reinit_3ep"]["equivalent"] and math.isnan(m["reinit_3ep"]["p_vs_best"])
    expected = st.ttest_ind_from_stats(0.70, 0.02, 20, 0.695, 0.02, 20, alternative="greater").pvalue
    assert m["std_longer"]["p_vs_best"] == pytest.approx(expected)
    assert m["reinit_longer"]["p_vs_best"] < 0.05


def test_mark_best_alpha_is_a_parameter():
    z1, z2 = _standardized(20, 31), _standardized(20, 32)
    groups = {"a": 0.70 + 0.02 * z1, "b": 0.68 + 0.02 * z2}
    assert not S.mark_best_and_equivalent(groups, alpha=0.05)["b"]["equivalent"]
    assert S.mark_best_and_equivalent(groups, alpha=0.001)["b"]["equivalent"]


def test_brown_forsythe_matches_scipy_and_is_nan_where_uninformative():
    from scipy import stats as st

    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 30), rng.normal(0, 4, 30)
    assert S.brown_forsythe_p(a, b) == pytest.approx(st.levene(a, b, center="median").pvalue)
    assert S.brown_forsythe_p(a, b) < 0.05
    # two values per group: both deviations from the median are equal, the statistic is infinite
    assert math.isnan(S.brown_forsythe_p([0.1, 0.5], [0.2, 0.9]))
    assert math.isnan(S.brown_forsythe_p([0.5, 0.5, 0.5], [0.1, 0.1, 0.1]))  # no spread anywhere
    assert math.isnan(_compare([0.1, 0.5], [0.2, 0.9])["levene_p"])


def test_configured_settings_have_no_default_here():
    """alpha, power, n_boot, boot_seed, the collapse thresholds and the expected-performance draws come
    from params.yaml only: a second default in code could contradict it (collapse_std_ratio once did)."""
    import inspect

    need = {S.is_degenerate: ("collapse_share", "collapse_std_ratio"),
            S.compare: ("alpha", "n_boot", "boot_seed", "power"),
            S.verdict: ("alpha", "power"),
            S.decide: ("expect", "alpha", "power", "effect_of_interest", "family_size"),
            S.fewer_degenerate: ("alpha", "power", "share_of_interest", "family_size"),
            S.smaller_spread: ("alpha", "power", "ratio_of_interest", "reps", "seed", "family_size"),
            S.mark_best_and_equivalent: ("alpha",),
            S.expected_max_performance: ("n_draws", "seed")}
    for fn, names in need.items():
        params = inspect.signature(fn).parameters
        for name in names:
            assert params[name].default is inspect.Parameter.empty, f"{fn.__name__}({name}=...)"
