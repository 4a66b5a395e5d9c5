"""Benchmark statistics against hand computations, scipy and Demsar (2006) Table 5."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from protege.benchmark.rank_tests import friedman, nemenyi_cd, nemenyi_groups, nemenyi_q, paired_test
from protege.benchmark.stats import (
    gap_closed, mean_rank_ci, mean_ranks, plasticity, plasticity_ranks, ranks_per_task,
)
from protege.scoring.metrics.paired import mcnemar

# 3 models x 4 tasks with ties: t2 ties A and B, t3 ties everyone.
TIED = {
    "A": {"t1": 0.9, "t2": 0.5, "t3": 0.7, "t4": 0.6},
    "B": {"t1": 0.8, "t2": 0.5, "t3": 0.7, "t4": 0.9},
    "C": {"t1": 0.7, "t2": 0.4, "t3": 0.7, "t4": 0.1},
}

# 4 models x 5 tasks without ties, written as ranks; score = 10 - rank.
NO_TIES_RANKS = {
    "A": [1, 1, 2, 1, 3],
    "B": [2, 3, 1, 2, 1],
    "C": [3, 2, 3, 4, 2],
    "D": [4, 4, 4, 3, 4],
}
NO_TIES = {m: {f"t{i + 1}": 10.0 - r for i, r in enumerate(rs)} for m, rs in NO_TIES_RANKS.items()}


def test_ranks_with_ties_are_averaged():
    assert ranks_per_task(TIED) == {
        "t1": {"A": 1.0, "B": 2.0, "C": 3.0},
        "t2": {"A": 1.5, "B": 1.5, "C": 3.0},  # A, B share ranks 1 and 2
        "t3": {"A": 2.0, "B": 2.0, "C": 2.0},  # all share 1, 2, 3
        "t4": {"A": 2.0, "B": 1.0, "C": 3.0},
    }
    # A: (1 + 1.5 + 2 + 2) / 4, B: (2 + 1.5 + 2 + 1) / 4, C: (3 + 3 + 2 + 3) / 4
    assert mean_ranks(ranks_per_task(TIED)) == {"A": 1.625, "B": 1.625, "C": 2.75}


def test_missing_and_bad_cells_are_named():
    with pytest.raises(ValueError, match=r"model 'B' has no score for task 't3'"):
        ranks_per_task({"A": {"t1": 1.0, "t3": 0.5}, "B": {"t1": 0.2}})
    with pytest.raises(ValueError, match=r"model 'A', task 't1': score must be finite"):
        ranks_per_task({"A": {"t1": math.nan}, "B": {"t1": 0.2}})
    with pytest.raises(ValueError) as err:  # all problems at once
        ranks_per_task({"A": {"t1": "x"}, "B": {"t2": 0.2}})
    assert "3 problem(s)" in str(err.value) and "'A' has no score for task 't2'" in str(err.value)
    with pytest.raises(ValueError, match="ranks different models"):
        mean_rank_ci({"t1": {"A": 1, "B": 2}, "t2": {"A": 1, "C": 2}})


def test_t_interval_by_hand():
    out = mean_rank_ci(ranks_per_task(TIED), level=0.95, method="t")
    t975 = sps.t.ppf(0.975, 3)  # 3.1824...
    # A's ranks 1, 1.5, 2, 2: squared deviations from 1.625 sum to .390625+.015625+.140625*2 = .6875
    half_a = t975 * math.sqrt(0.6875 / 3) / math.sqrt(4)
    # C's ranks 3, 3, 2, 3: squared deviations from 2.75 sum to .0625*3 + .5625 = .75, sd = .5
    half_c = t975 * 0.5 / 2
    assert out["A"] == pytest.approx((1.625, 1.625 - half_a, 1.625 + half_a))
    assert out["C"] == pytest.approx((2.75, 2.75 - half_c, 2.75 + half_c))
    assert half_c == pytest.approx(0.79561, abs=1e-5)
    # a 50% interval is narrower than the 95% one
    assert mean_rank_ci(ranks_per_task(TIED), level=0.5)["C"][2] < out["C"][2]


def test_single_task_has_no_interval():
    ranks = ranks_per_task({"A": {"t": 1.0}, "B": {"t": 0.0}})
    for method in ("t", "bootstrap"):
        mean, low, high = mean_rank_ci(ranks, method=method)["A"]
        assert mean == 1.0 and math.isnan(low) and math.isnan(high)


def test_bootstrap_deterministic_and_contains_mean():
    rng = np.random.default_rng(0)
    scores = {m: {f"t{i}": float(rng.normal(skill, 1.0)) for i in range(30)} for m, skill in zip("ABCDE", range(5))}
    ranks = ranks_per_task(scores)
    first = mean_rank_ci(ranks, method="bootstrap", resamples=500, seed=7)
    assert first == mean_rank_ci(ranks, method="bootstrap", resamples=500, seed=7)
    assert first != mean_rank_ci(ranks, method="bootstrap", resamples=500, seed=8)
    for model, (mean, low, high) in first.items():
        assert low <= mean <= high
        assert low < high, model  # every model's rank varies over tasks
    # Tasks are drawn jointly for all models: with two models each task's ranks sum to 3, so every
    # resample has mean_A + mean_B = 3 and A's low end mirrors B's high end.
    two = ranks_per_task({"A": {"t1": 1, "t2": 0, "t3": 1}, "B": {"t1": 0, "t2": 1, "t3": 0}})
    boot = mean_rank_ci(two, method="bootstrap", resamples=999, seed=1)
    assert boot["A"][1] + boot["B"][2] == pytest.approx(3.0)


def test_bootstrap_percentiles_of_a_known_distribution():
    # A ranks 1 and 3 on two tasks: the resampled mean is 1, 2, 3 with probability 1/4, 1/2, 1/4.
    ranks = {"t1": {"A": 1.0, "B": 3.0, "C": 2.0}, "t2": {"A": 3.0, "B": 1.0, "C": 2.0}}
    assert mean_rank_ci(ranks, level=0.95, method="bootstrap")["A"] == (2.0, 1.0, 3.0)
    # the 30% and 70% quantiles both fall in the middle half
    assert mean_rank_ci(ranks, level=0.4, method="bootstrap")["A"] == (2.0, 2.0, 2.0)


def test_constant_ranks_collapse_to_a_point():
    scores = {"A": {"t1": 3, "t2": 9, "t3": 5}, "B": {"t1": 2, "t2": 8, "t3": 4}, "C": {"t1": 1, "t2": 7, "t3": 0}}
    for method in ("t", "bootstrap"):
        out = mean_rank_ci(ranks_per_task(scores), method=method, resamples=500)
        assert out == {"A": (1.0, 1.0, 1.0), "B": (2.0, 2.0, 2.0), "C": (3.0, 3.0, 3.0)}


def test_bad_arguments():
    ranks = ranks_per_task(TIED)
    with pytest.raises(ValueError, match="method must be"):
        mean_rank_ci(ranks, method="bca")
    with pytest.raises(ValueError, match="level must be"):
        mean_rank_ci(ranks, level=95)


def test_plasticity_and_its_ranks():
    base = {"A": {"x": 0.5, "y": 0.2}, "B": {"x": 0.4, "y": 0.3}}
    tuned = {"A": {"x": 0.75, "y": 0.25}, "B": {"x": 0.4, "y": 0.5}}
    out = plasticity(tuned, base)
    assert out["A"] == pytest.approx({"x": 0.25, "y": 0.05})
    assert out["B"] == pytest.approx({"x": 0.0, "y": 0.2})
    assert plasticity_ranks(tuned, base) == {"x": {"A": 1.0, "B": 2.0}, "y": {"A": 2.0, "B": 1.0}}
    with pytest.raises(ValueError, match=r"models only in tuned \['C'\]"):
        plasticity(tuned | {"C": {"x": 0.1, "y": 0.1}}, base)
    with pytest.raises(ValueError, match=r"(?s)base: .*'B' has no score for task 'y'"):
        plasticity(tuned, {"A": {"x": 0.5, "y": 0.2}, "B": {"x": 0.4}})


def test_gap_closed():
    assert gap_closed(0.6, 0.4, 0.8) == pytest.approx(0.5)  # 0.2 of a 0.4 gap
    assert gap_closed(0.3, 0.4, 0.8) == pytest.approx(-0.25)  # lost 0.1
    assert gap_closed(0.9, 0.4, 0.8) == pytest.approx(1.25)  # passed the teacher
    assert gap_closed(0.35, 0.4, 0.3) == pytest.approx(0.5)  # teacher below base: falling is closing
    assert gap_closed(0.6, 0.4, 0.4) is None
    assert gap_closed(0.4, 0.4, 0.4) is None


def test_friedman_without_ties_by_hand_and_scipy():
    out = friedman(NO_TIES)
    # rank sums 8, 9, 14, 19 -> mean ranks 1.6, 1.8, 2.8, 3.8; sum R^2 = 28.08; k(k+1)^2/4 = 25
    # chi2 = 12*5/(4*5) * (28.08 - 25) = 3 * 3.08 = 9.24
    assert out["statistic"] == pytest.approx(9.24)
    assert (out["df"], out["n_tasks"], out["n_models"]) == (3, 5, 4)
    assert out["mean_ranks"] == pytest.approx({"A": 1.6, "B": 1.8, "C": 2.8, "D": 3.8})
    ref = sps.friedmanchisquare(*[list(NO_TIES[m].values()) for m in NO_TIES])
    assert out["statistic"] == pytest.approx(ref.statistic)
    assert out["p_value"] == pytest.approx(ref.pvalue)
    assert out["p_value"] == pytest.approx(sps.chi2.sf(9.24, 3))
    # Iman-Davenport: (5-1) * 9.24 / (5*3 - 9.24) = 36.96 / 5.76
    assert out["iman_davenport_f"] == pytest.approx(36.96 / 5.76)
    assert out["iman_davenport_df"] == (3, 12)
    assert out["iman_davenport_p"] == pytest.approx(sps.f.sf(36.96 / 5.76, 3, 12))


def test_friedman_with_ties_matches_scipy_tie_correction():
    out = friedman(TIED)
    # mean ranks 1.625, 1.625, 2.75: uncorrected chi2 = 12*4/(3*4) * (12.84375 - 12) = 3.375
    # ties: a pair on t2 (2^3-2 = 6), a triple on t3 (3^3-3 = 24): C = 1 - 30/(4*3*8) = 0.6875
    assert out["statistic"] == pytest.approx(3.375 / 0.6875)
    ref = sps.friedmanchisquare(*[list(TIED[m].values()) for m in TIED])
    assert out["statistic"] == pytest.approx(ref.statistic)
    assert out["p_value"] == pytest.approx(ref.pvalue)


def test_friedman_degenerate_cases():
    all_tied = friedman({"A": {"x": 1, "y": 2}, "B": {"x": 1, "y": 2}, "C": {"x": 1, "y": 2}})
    assert (all_tied["statistic"], all_tied["p_value"]) == (0.0, 1.0)
    same_order = friedman({"A": {"x": 3, "y": 9}, "B": {"x": 2, "y": 8}, "C": {"x": 1, "y": 7}})
    assert same_order["statistic"] == pytest.approx(4.0)  # N(k-1): the largest possible
    assert (same_order["iman_davenport_f"], same_order["iman_davenport_p"]) == (math.inf, 0.0)
    with pytest.raises(ValueError, match="at least 2 models"):
        friedman({"A": {"x": 1}})


def test_nemenyi_q_matches_demsar_table_5():
    demsar = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, q in zip(range(2, 11), demsar):
        # Demsar's table is off in the last digit for k=3 (2.3437) and k=7 (2.9483)
        assert nemenyi_q(k) == pytest.approx(q, abs=1e-3), k
    assert nemenyi_q(2) == pytest.approx(sps.norm.ppf(0.975))  # two groups: the normal quantile


def test_nemenyi_cd_by_hand():
    # Demsar sec. 3.2.2: 4 classifiers on 14 data sets, CD = 2.569 * sqrt(4*5 / (6*14)) = 1.25
    assert nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=1e-4)
    assert nemenyi_cd(4, 14) == pytest.approx(1.25, abs=0.005)
    assert nemenyi_cd(4, 5) > nemenyi_cd(4, 14)  # fewer tasks, wider
    with pytest.raises(ValueError, match="at least 2 models"):
        nemenyi_cd(1, 5)


def test_nemenyi_groups():
    means = {"D": 3.75, "A": 1.5, "C": 2.75, "B": 1.75}  # binary fractions, so differences are exact
    cd = nemenyi_cd(4, 5)  # 2.569 * sqrt(20/30) = 2.0976
    # from A: B (+.25), C (+1.25) within, D (+2.25) not; from B: C (+1.0), D (+2.0) within
    assert nemenyi_groups(means, cd) == [["A", "B", "C"], ["B", "C", "D"]]
    # a difference of exactly cd is significant; B's run [B] sits inside [A, B] and is dropped
    assert nemenyi_groups(means, 1.0) == [["A", "B"], ["C"], ["D"]]


def test_paired_binary_is_exact_mcnemar():
    # 8 items student right & teacher wrong, 1 the other way, 5 both right, 2 both wrong
    a = [1] * 8 + [0] + [1] * 5 + [0] * 2
    b = [0] * 8 + [1] + [1] * 5 + [0] * 2
    out = paired_test(a, b)
    # P(X <= 1), X ~ Bin(9, 1/2) = (1 + 9) / 512, two-sided doubles it
    assert out["p_value"] == pytest.approx(20 / 512)
    assert (out["statistic"], out["method"], out["n"], out["b"], out["c"]) == (1.0, "mcnemar-exact", 16, 8, 1)
    assert out["mean_difference"] == pytest.approx(7 / 16)
    assert out["p_value"] == pytest.approx(mcnemar([x == 1 for x in a], [x == 1 for x in b])["p_value"])
    assert paired_test([True, False], [True, False])["p_value"] == 1.0


def test_paired_binary_stays_exact_past_mcnemars_chi_square_switch():
    a, b = [1] * 30 + [0] * 10, [0] * 30 + [1] * 10
    out = paired_test(a, b)
    exact = 2 * sum(math.comb(40, i) for i in range(11)) / 2**40
    assert out["p_value"] == pytest.approx(exact)
    assert mcnemar([x == 1 for x in a], [x == 1 for x in b])["p_value"] != pytest.approx(exact)


def test_paired_continuous_is_wilcoxon():
    a = [0.5, 0.7, 0.2, 0.9, 0.4]
    b = [0.3, 0.6, 0.35, 0.5, 0.1]
    out = paired_test(a, b)
    # differences .2, .1, -.15, .4, .3 -> |d| ranks 3, 1, 2, 5, 4; W- = 2, W+ = 13
    # exact: subsets of {1..5} with sum <= 2 are {}, {1}, {2}: p = 2 * 3/32
    assert (out["statistic"], out["method"], out["n"]) == (2.0, "wilcoxon-signed-rank", 5)
    assert out["p_value"] == pytest.approx(6 / 32)
    assert paired_test([0.5, 0.2], [0.5, 0.2])["p_value"] == 1.0
    with pytest.raises(ValueError, match="same items"):
        paired_test([0.1, 0.2], [0.1])
