"""sqeval.stats on cases computed by hand: the Student-t CI, percentiles, the paired
difference, and the exact Wilcoxon signed-rank p-value."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sqeval.stats import (describe, describe_difference, paired_difference, statistic,
                          wilcoxon_p)

# compares numbers with a reference: repeated under every CPU profile (scripts/cpu_profiles.py)
pytestmark = pytest.mark.numeric

# The Student-t quantile t(0.975) with 2 degrees of freedom. With 2 degrees of freedom the
# t distribution's quantile has the closed form t_p = (2p − 1)/√(2p(1 − p)): 0.95/√0.04875.
T_975_2 = 4.302652729749464


def test_describe_three_values_by_hand():
    assert T_975_2 == pytest.approx(0.95 / math.sqrt(0.04875), rel=1e-15)
    # x = 1, 2, 4: mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9, over n − 1 = 2
    # gives the variance 7/3; the CI half-width is t(0.975, 2)·√(7/3)/√3 = t·√(7/9).
    s = describe([4.0, float("nan"), 1.0, 2.0, float("inf")])
    assert s.n == 3 and s.median == 2.0
    assert s.mean == pytest.approx(7 / 3, rel=1e-15)
    assert s.std == pytest.approx(math.sqrt(7 / 3), rel=1e-15)
    half_width = T_975_2 * math.sqrt(7 / 9)
    # scipy's Student-t quantile (stdtrit) is exact to float precision in recent versions;
    # scipy 1.9 (the oldest allowed) gives t(0.975, 2) = 4.302652729911275, 3.8e-11 off,
    # which moves the CI bounds by 1.5e-10 here: 1e-9 leaves a margin above that.
    assert s.ci_low == pytest.approx(7 / 3 - half_width, rel=1e-9)
    assert s.ci_high == pytest.approx(7 / 3 + half_width, rel=1e-9)
    assert statistic([4.0, 1.0, 2.0], "ci_high") == s.ci_high


def test_describe_too_few_values():
    one = describe([5.0])
    assert (one.n, one.mean, one.median) == (1, 5.0, 5.0)
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    none = describe([float("nan")])
    assert none.n == 0 and all(math.isnan(v) for v in (none.mean, none.std, none.median))
    assert math.isnan(statistic([], "p50")) and math.isnan(statistic([], "max"))


def test_percentiles_by_hand():
    # Sorted 1, 2, 3, 10; the p-th percentile sits at position p/100 · (n − 1) = 0.03·p,
    # linearly interpolated between the neighbouring sorted values.
    values = [3.0, 1.0, 2.0, 10.0, float("nan")]
    assert statistic(values, "p0") == 1.0 and statistic(values, "p100") == 10.0
    assert statistic(values, "p25") == 1.75       # position 0.75: 1 + 0.75·(2 − 1)
    assert statistic(values, "p50") == 2.5        # position 1.5: 2 + 0.5·(3 − 2)
    assert statistic(values, "p90") == pytest.approx(7.9, rel=1e-15)  # 2.7: 3 + 0.7·7
    assert statistic(values, "median") == 2.5 and statistic(values, "mean") == 4.0
    assert statistic(values, "min") == 1.0 and statistic(values, "max") == 10.0


@pytest.mark.parametrize("stat", ["p101", "p-1", "pmax", "mode"])
def test_unknown_statistic_says_what_is_expected(stat):
    with pytest.raises(ValueError, match="expected"):
        statistic([1.0], stat)


def test_paired_difference_pairs_by_key_in_the_baseline_order():
    pairs = paired_difference({"c": 3.0, "a": 1.0, "b": float("nan"), "x": 0.0},
                              {"a": 1.5, "b": 2.0, "c": 2.0, "y": 9.0})
    assert pairs.keys == ["c", "a", "b"]
    assert pairs.only_baseline == ["x"] and pairs.only_candidate == ["y"]
    assert pairs.differences[:2].tolist() == [-1.0, 0.5] and math.isnan(pairs.differences[2])
    scored = pairs.scored()
    assert scored.keys == ["c", "a"] and scored.differences.tolist() == [-1.0, 0.5]
    assert scored.only_baseline == ["x"]


def test_paired_difference_of_rows_of_several_values():
    base = {("f1", "s"): [1.0, 2.0], ("f2", "s"): [3.0, float("nan")], ("f1", "t"): [0.0, 0.0]}
    cand = {("f2", "s"): [4.0, 1.0], ("f1", "s"): [1.0, 5.0], ("f1", "t"): [1.0, 1.0]}
    pairs = paired_difference(base, cand)
    own = pairs.subset([system == "s" for _, system in pairs.keys])
    assert own.keys == [("f1", "s"), ("f2", "s")]
    assert own.scored(0).differences.tolist() == [0.0, 1.0]
    assert own.scored(1).keys == [("f1", "s")] and own.scored(1).differences.tolist() == [3.0]


def exact_wilcoxon_p(differences) -> float:
    """Two-sided exact p-value: under the null each |d| rank carries either sign with
    probability 1/2, so enumerate all 2^n sign patterns (no ties, no zeros)."""
    ranks = np.argsort(np.argsort(np.abs(differences))) + 1
    observed = ranks[np.asarray(differences) > 0].sum()
    smaller = min(observed, ranks.sum() - observed)
    patterns = list(itertools.product((0, 1), repeat=len(ranks)))
    at_most = sum(1 for signs in patterns if np.dot(signs, ranks) <= smaller)
    return min(1.0, 2 * at_most / len(patterns))


def test_wilcoxon_p_is_the_exact_signed_rank_p_value():
    # Ranks of |d|: 0.5→1, 1→2, 1.5→3, 2→4, 3→5, 4→6. The negative ones sum to W− = 3;
    # subsets of {1…6} summing to ≤ 3: {}, {1}, {2}, {3}, {1,2}, so p = 2·5/64.
    d = np.array([1.5, -0.5, 2.0, 3.0, -1.0, 4.0])
    assert exact_wilcoxon_p(d) == 10 / 64
    assert wilcoxon_p(d) == pytest.approx(0.15625, rel=1e-12)
    # All positive, n = 5: only the empty subset reaches W− = 0, so p = 2/32.
    assert wilcoxon_p(np.array([0.3, 1.2, 0.7, 2.5, 0.1])) == pytest.approx(0.0625, rel=1e-12)
    assert math.isnan(wilcoxon_p(np.zeros(4)))


def test_describe_difference_is_the_student_t_ci_of_the_paired_differences():
    # Differences (candidate − baseline) on the keys scored on both sides: 1, 2, 4 (key
    # "n" is NaN in the candidate, "x" is in the baseline only). As in
    # test_describe_three_values_by_hand: mean 7/3, CI half-width t(0.975, 2)·√(7/9).
    pairs = paired_difference({"a": 0.0, "b": 1.0, "c": 1.0, "n": 5.0, "x": 2.0},
                              {"c": 5.0, "b": 3.0, "a": 1.0, "n": float("nan")})
    s = describe_difference(pairs)
    assert s.n == 3 and s.mean == pytest.approx(7 / 3, rel=1e-15)
    half_width = T_975_2 * math.sqrt(7 / 9)
    assert s.ci_low == pytest.approx(7 / 3 - half_width, abs=1e-9)
    assert s.ci_high == pytest.approx(7 / 3 + half_width, abs=1e-9)
    assert describe_difference(paired_difference({"a": 1.0}, {"b": 1.0})).n == 0
