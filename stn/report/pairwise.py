"""Paired comparisons of reducers, each pair judged on its own seeds and its own spread.

A seed fixes the classifier's initial weights and the training order for every reducer,
so two reducers' runs are paired by seed, and a pair's evidence is the differences
``a − b`` on the seeds both have: a paired t-test with ``n − 1`` degrees of freedom on
that pair's own variance. No variance is pooled across reducers: a reducer whose spread
is a hundred times another's (a selector that stalls on some seeds) widens only its own
comparisons, never those of the other pairs. Why this and not a pooled model, and what
it costs in power with three seeds: docs/reports.md.

Every claim the report makes about a family (the reducers of one dataset and network)
comes from one correction, so the chance that a family shows any false claim stays at α:
Holm's weighted procedure over all R(R − 1)/2 pairs (``adjust``), in which the
comparisons with the baseline, the ones the verdict and the baseline column read, carry
``BASELINE_SHARE`` of α between them and every other pair shares the rest; a rejected
hypothesis hands its share on to those left. The letters and ``best_set`` read the same
adjusted p.

Every function takes leading batch axes, so ``stn.report.calibration`` simulates
thousands of families with the very code the report runs on one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

from stn.report.grouping import holm_pairwise

ALPHA = 0.05
CONFIDENCE = 0.95
# A spread of the differences below this fraction of the data's scale is floating-point
# noise: the pair differs by exactly the same amount on every seed and t is undefined.
ZERO_SPREAD = 1e-9
# Share of α held by the comparisons with the baseline (``pair_weights``): what the verdict
# reads first. With 3 seeds a pair has 2 degrees of freedom, and α spread evenly over the
# 15 pairs of six reducers would leave a 34-point separation found only two times in three
# (docs/reports.md, "Calibration").
BASELINE_SHARE = 0.8


@dataclass(frozen=True)
class PairedTests:
    """Every ordered pair (i, j) of R rows; arrays ``(..., R, R)``, entry ``[i, j]`` about
    row i minus row j (``mean`` and the interval antisymmetric, the rest symmetric)."""

    n: np.ndarray  # seeds both rows have
    mean: np.ndarray  # mean of the differences on those seeds
    sd: np.ndarray  # their standard deviation (ddof 1); NaN below 2 seeds
    p: np.ndarray  # two-sided paired t; NaN: < 2 seeds, diagonal, not tested
    # (the same difference on every seed: 0, or 1 when that difference is 0)
    ci_low: np.ndarray  # the mean's Student-t interval at CONFIDENCE; NaN below 2 seeds
    ci_high: np.ndarray
    no_spread: np.ndarray  # ≥ 2 seeds and the same difference on each: t infinite or 0/0


def paired_tests(
    values: ArrayLike, untested: ArrayLike | None = None, confidence: float = CONFIDENCE
) -> PairedTests:
    """Paired t-test and interval of every pair of rows of ``values`` ``(..., R, S)``:
    R rows (reducers), S seeds, NaN where a row has no run on a seed.

    ``untested`` ``(R, R)`` bool: pairs to leave without a p (a row and a subset of its
    own runs). Each pair uses the seeds both rows have, so a seed one reducer lost takes
    nothing from the other pairs.
    """
    y = np.asarray(values, dtype=float)
    d = y[..., :, None, :] - y[..., None, :, :]  # (..., R, R, S)
    present = ~np.isnan(d)
    n = present.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(present, d, 0.0).sum(axis=-1) / n
        deviation = np.where(present, d - mean[..., None], 0.0)
        sd = np.sqrt((deviation**2).sum(axis=-1) / (n - 1))
        sd = np.where(n >= 2, sd, np.nan)
        se = sd / np.sqrt(n)
        df = np.maximum(n - 1, 1)
        scale = np.maximum(1.0, np.nanmax(np.abs(y), axis=(-2, -1), initial=0.0))
        no_spread = (n >= 2) & (sd <= ZERO_SPREAD * scale[..., None, None])
        t = np.abs(mean) / se
        p = np.where(n >= 2, 2.0 * scipy_stats.t.sf(t, df), np.nan)
        # The same difference on every seed: t's limit, 0 for a difference, 1 for none.
        p = np.where(
            no_spread, np.where(np.abs(mean) > ZERO_SPREAD * scale[..., None, None], 0.0, 1.0), p
        )
        half = scipy_stats.t.ppf(0.5 + confidence / 2, df) * se
    half = np.where(n >= 2, half, np.nan)
    rows = y.shape[-2]
    skip = np.eye(rows, dtype=bool)
    if untested is not None:
        skip |= np.asarray(untested, dtype=bool)
    p = np.where(skip, np.nan, p)
    return PairedTests(
        n=n,
        mean=np.where(n > 0, mean, np.nan),
        sd=sd,
        p=p,
        ci_low=mean - half,
        ci_high=mean + half,
        no_spread=no_spread & ~skip,
    )


def pair_weights(tested: ArrayLike, baseline: int | None) -> np.ndarray:
    """``(R, R)`` Holm weights of the pairs: the tested pairs with the ``baseline`` row
    share ``BASELINE_SHARE``, the other tested pairs the rest, equally within each group
    (one group alone takes everything). ``tested``: ``(R, R)`` bool."""
    tested = np.asarray(tested, dtype=bool)
    rows = tested.shape[-1]
    with_baseline = np.zeros((rows, rows), dtype=bool)
    if baseline is not None:
        with_baseline[baseline, :] = with_baseline[:, baseline] = True
    upper = np.triu(np.ones((rows, rows), dtype=bool), k=1)
    groups = [(tested & with_baseline), (tested & ~with_baseline)]
    counts = [int((g & upper).sum()) for g in groups]
    shares = [BASELINE_SHARE, 1 - BASELINE_SHARE] if all(counts) else [1.0, 1.0]
    weights = np.full((rows, rows), np.nan)
    for group, count, share in zip(groups, counts, shares, strict=True):
        if count:
            weights[group] = share / count
    return weights


def adjust(tests: PairedTests, baseline: int | None) -> np.ndarray:
    """``(..., R, R)`` p of every pair, adjusted by Holm's weighted procedure over the
    family's tested pairs (``pair_weights``); NaN where a pair was not tested.

    The weights come from the pairs tested in every family of the batch (the report
    passes one family, the simulations families of one layout)."""
    tested = np.isfinite(tests.p).reshape(-1, *tests.p.shape[-2:]).any(axis=0)
    weights = pair_weights(tested, baseline)
    return holm_pairwise(tests.p, np.nan_to_num(weights, nan=1.0))


def best_set(
    tests: PairedTests, adjusted: ArrayLike, contenders: ArrayLike, alpha: float = ALPHA
) -> np.ndarray:
    """``(..., R)`` True for each contender that no other contender beats significantly:
    the reducers that may be the best. ``adjusted``: ``adjust``'s p.

    Taken from the all-pairs family on purpose: under no true difference every reducer
    is a best one, and a rule that tested the others only against the top mean would
    test the largest gap of the family at the level of a single comparison.
    """
    contenders = np.asarray(contenders, dtype=bool)
    beats = (np.nan_to_num(np.asarray(adjusted), nan=1.0) < alpha) & (
        np.nan_to_num(tests.mean) > 0
    )  # [..., j, i]: j significantly above i
    beaten = (beats & contenders[:, None]).any(axis=-2)
    return contenders & ~beaten


def significant(adjusted: ArrayLike, alpha: float = ALPHA) -> np.ndarray:
    """Where an adjusted p rejects at ``alpha`` (NaN: never)."""
    return np.nan_to_num(np.asarray(adjusted, dtype=float), nan=1.0) < alpha
