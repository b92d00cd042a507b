import itertools

import numpy as np
import pytest

from stn.report.grouping import (
    compact_letter_display,
    holm,
    holm_pairwise,
    holm_rows,
    letter_names,
)


def test_holm_matches_a_hand_computed_case():
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → raised to 0.06
    # (adjusted values keep the order of the raw ones). The NaN is no test: m = 4.
    p = [0.01, np.nan, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm(p), [0.03, np.nan, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(holm([0.2]), [0.2])  # one test: nothing to correct
    assert holm([]).shape == (0,) and np.isnan(holm([np.nan, np.nan])).all()


def _holm_rejections(p, alpha):
    """Holm's procedure as he stated it: walk up the sorted p, reject while
    p_(k) ≤ α / (m − k + 1), stop at the first that is not."""
    order = np.argsort(p)
    rejected = np.zeros(len(p), dtype=bool)
    for k, index in enumerate(order):
        if p[index] > alpha / (len(p) - k):
            break
        rejected[index] = True
    return rejected


def test_holm_adjusted_p_rejects_exactly_what_the_sequential_procedure_does():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12)) ** rng.uniform(1, 3)
        for alpha in (0.01, 0.05, 0.1):
            np.testing.assert_array_equal(holm(p) <= alpha, _holm_rejections(p, alpha))


def test_holm_rejects_values_that_are_not_probabilities():
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        holm([0.2, 1.5])


def _weighted_holm_rejections(p, w, alpha):
    """Holm's weighted procedure as stated (Holm 1979, section 4): while some hypothesis
    left has p_k ≤ α · w_k / (sum of the weights left), reject the one with the smallest
    p_k / w_k; stop when none has."""
    left = list(range(len(p)))
    rejected = np.zeros(len(p), dtype=bool)
    while left:
        k = min(left, key=lambda i: p[i] / w[i])
        if p[k] > alpha * w[k] / sum(w[i] for i in left):
            break
        rejected[k] = True
        left.remove(k)
    return rejected


def test_weighted_holm_rejects_exactly_what_the_weighted_procedure_does():
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = int(rng.integers(1, 10))
        p = rng.uniform(0, 0.1, size=m) ** rng.uniform(1, 3)
        w = rng.uniform(0.05, 1.0, size=m)
        for alpha in (0.01, 0.05, 0.1):
            np.testing.assert_array_equal(
                holm(p, w) <= alpha, _weighted_holm_rejections(p, w, alpha)
            )
    # Equal weights, whatever their size, are the plain procedure.
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm(p, [3.0] * 4), holm(p))


def test_holm_rows_adjusts_each_row_as_its_own_family():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 0.2, size=(50, 6))
    p[rng.random(p.shape) < 0.2] = np.nan
    w = rng.uniform(0.1, 1.0, size=6)
    expected = np.array([holm(row, w) for row in p])
    np.testing.assert_allclose(holm_rows(p, w), expected)


def test_holm_pairwise_corrects_over_the_pairs_and_stays_symmetric():
    p = np.array([[np.nan, 0.01, 0.04], [0.01, np.nan, 0.02], [0.04, 0.02, np.nan]])
    adjusted = holm_pairwise(p)
    # pairs (0,1) 0.01·3, (1,2) 0.02·2, (0,2) 0.04·1 → 0.03, 0.04, 0.04
    assert (adjusted[0, 1], adjusted[1, 2], adjusted[0, 2]) == pytest.approx((0.03, 0.04, 0.04))
    np.testing.assert_array_equal(adjusted, adjusted.T)
    assert np.isnan(np.diag(adjusted)).all()


def _different(n, pairs):
    matrix = np.zeros((n, n), dtype=bool)
    for i, j in pairs:
        matrix[i, j] = matrix[j, i] = True
    return matrix


def _letter_set(cell):
    return set(cell.split(",")) if any(c.isdigit() for c in cell) else set(cell)


def _assert_exact(letters, different):
    for i, j in itertools.combinations(range(len(letters)), 2):
        share = bool(_letter_set(letters[i]) & _letter_set(letters[j]))
        assert share == (not different[i, j]), (i, j, letters)


def test_letters_of_a_textbook_staircase():
    # Means best first; 0–2, 0–3 and 1–3 differ: the classic a / ab / bc / c.
    different = _different(4, [(0, 2), (0, 3), (1, 3)])
    assert compact_letter_display(different) == ["a", "ab", "bc", "c"]
    assert compact_letter_display(np.zeros((3, 3), bool)) == ["a", "a", "a"]
    assert compact_letter_display(~np.eye(3, dtype=bool)) == ["a", "b", "c"]


def test_letter_a_goes_to_the_best_and_letters_follow_the_order():
    different = _different(3, [(0, 1), (1, 2)])  # 1 stands apart from 0 and 2
    assert compact_letter_display(different, order=[1, 0, 2]) == ["b", "a", "b"]


def test_letters_share_iff_not_different_on_random_patterns():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 9))
        upper = np.triu(rng.random((n, n)) < rng.uniform(0.1, 0.9), k=1)
        different = upper | upper.T
        order = list(rng.permutation(n))
        letters = compact_letter_display(different, order)
        assert all(letters)  # every treatment has a letter
        assert "a" in letters[order[0]]
        _assert_exact(letters, different)


def test_more_than_52_letters_are_numbered_and_separated():
    assert letter_names(52)[-1] == "Z" and letter_names(53)[:2] == ["a1", "b1"]
    assert letter_names(53)[-1] == "a3"
    # 53 pairs that no one else matches, one letter each, and a last treatment that
    # differs from no one: it carries all 53 letters, joined by commas.
    n = 107
    different = ~np.eye(n, dtype=bool)
    for k in range(0, n - 1, 2):
        different[k, k + 1] = different[k + 1, k] = False
    different[-1, :] = different[:, -1] = False
    letters = compact_letter_display(different)
    assert letters[:4] == ["a1", "a1", "b1", "b1"] and letters[-2] == "a3"
    assert letters[-1] == ",".join(letter_names(53))
    _assert_exact(letters, different)


def test_cld_rejects_a_malformed_matrix():
    with pytest.raises(ValueError, match="symmetric square"):
        compact_letter_display(_different(3, [(0, 1)])[:, :2])
    with pytest.raises(ValueError, match="permutation"):
        compact_letter_display(np.zeros((2, 2), bool), order=[0, 0])
