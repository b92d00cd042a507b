import numpy as np
import pytest
from scipy import stats as scipy_stats

from stn.report.pairwise import (
    BASELINE_SHARE,
    adjust,
    best_set,
    pair_weights,
    paired_tests,
    significant,
)


def test_every_pair_is_scipys_paired_t_test_on_the_seeds_both_have():
    rng = np.random.default_rng(0)
    values = rng.normal(0.8, [[0.01], [0.05], [0.2]], size=(3, 5))
    values[2, 4] = np.nan  # row 2 lost its last seed
    tests = paired_tests(values)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        both = ~np.isnan(values[i]) & ~np.isnan(values[j])
        reference = scipy_stats.ttest_rel(values[i, both], values[j, both])
        interval = reference.confidence_interval(0.95)
        assert tests.n[i, j] == both.sum()
        assert tests.p[i, j] == pytest.approx(reference.pvalue, rel=1e-9)
        assert tests.p[j, i] == tests.p[i, j]
        assert tests.mean[i, j] == pytest.approx(-tests.mean[j, i])
        assert (tests.ci_low[i, j], tests.ci_high[i, j]) == pytest.approx(
            (interval.low, interval.high), rel=1e-9
        )
    assert np.isnan(np.diag(tests.p)).all()


def test_a_batch_of_families_gives_what_each_family_gives_alone():
    rng = np.random.default_rng(1)
    batch = rng.normal(0, 1, size=(20, 4, 3))
    together = paired_tests(batch)
    for k in range(len(batch)):
        alone = paired_tests(batch[k])
        np.testing.assert_allclose(together.p[k], alone.p)
        np.testing.assert_allclose(together.ci_low[k], alone.ci_low)
        np.testing.assert_allclose(adjust(together, 0)[k], adjust(alone, 0))


def test_one_seed_in_common_gives_a_difference_but_no_test():
    values = np.array([[0.8, 0.9, np.nan], [np.nan, 0.7, 0.75]])
    tests = paired_tests(values)
    assert tests.n[0, 1] == 1 and tests.mean[0, 1] == pytest.approx(0.2)
    assert np.isnan(tests.p[0, 1]) and np.isnan(tests.ci_low[0, 1])


def test_untested_pairs_keep_their_difference_and_lose_their_p():
    values = np.array([[0.8, 0.9, 0.85], [0.7, 0.75, 0.72]])
    tests = paired_tests(values, untested=np.array([[False, True], [True, False]]))
    assert np.isnan(tests.p[0, 1]) and tests.mean[0, 1] == pytest.approx(0.38 / 3)


def test_the_baseline_pairs_share_their_part_of_alpha():
    tested = ~np.eye(4, dtype=bool)
    weights = pair_weights(tested, baseline=1)
    upper = np.triu(tested)
    with_baseline = upper & (np.arange(4)[:, None] == 1) | upper & (np.arange(4)[None, :] == 1)
    assert weights[with_baseline].sum() == pytest.approx(BASELINE_SHARE)
    assert weights[upper & ~with_baseline].sum() == pytest.approx(1 - BASELINE_SHARE)
    # No baseline, or nothing but its pairs: one group takes all.
    assert np.nansum(np.triu(pair_weights(tested, None))) == pytest.approx(1.0)
    only = np.zeros((3, 3), dtype=bool)
    only[0, 1:] = only[1:, 0] = True
    assert np.nansum(np.triu(pair_weights(only, 0))) == pytest.approx(1.0)


def test_the_best_set_ignores_what_non_contenders_beat():
    # Row 0 (an oracle) beats everyone; rows 1 and 2 tie; row 3 is clearly worse.
    values = np.array(
        [
            [0.99, 0.991, 0.989, 0.99, 0.992],
            [0.90, 0.91, 0.92, 0.90, 0.91],
            [0.905, 0.905, 0.915, 0.905, 0.91],
            [0.70, 0.71, 0.69, 0.70, 0.72],
        ]
    )
    tests = paired_tests(values)
    adjusted = adjust(tests, 3)
    assert significant(adjusted[0, 1]) and significant(adjusted[0, 2])
    kept = best_set(tests, adjusted, [False, True, True, True])
    assert kept.tolist() == [False, True, True, False]
