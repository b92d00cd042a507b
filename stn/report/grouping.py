"""Multiple comparisons within a family of reducers: Holm's correction, the randomised
complete block model (reducers × seeds) and the compact letter display.

Pure NumPy/SciPy functions on arrays; ``stn.report.stats`` applies them to a runs frame.

The block model: ``accuracy[r, s] = μ + reducer_r + seed_s + ε``, ε ~ N(0, σ²). A seed
fixes the classifier's initial weights and the training order for every reducer, so runs
are paired by seed (a block). σ² is pooled over all reducers, with ``(R−1)(S−1)``
degrees of freedom, instead of the ``S−1`` of a separate paired test per pair: with
three seeds that is the difference between 2 df and, for ten reducers, 18.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

# A residual standard deviation below this fraction of the data's scale is floating-point
# noise: the reducers differ by exactly the same amount on every seed and t is undefined.
ZERO_SPREAD = 1e-9


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), same shape as ``p_values``.

    Sorted ascending, ``p_(1) ≤ … ≤ p_(m)``, the adjusted value is
    ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``; rejecting where it is below α controls
    the family-wise error rate at α. NaN entries (tests that could not be run) stay NaN
    and do not count in ``m``.
    """
    p = np.asarray(p_values, dtype=float)
    finite = p[~np.isnan(p)]
    if ((finite < 0) | (finite > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1]; got {finite[(finite < 0) | (finite > 1)]}")
    flat = p.reshape(-1)
    valid = np.flatnonzero(~np.isnan(flat))
    adjusted = np.full(flat.shape, np.nan)
    m = len(valid)
    if m == 0:
        return adjusted.reshape(p.shape)
    order = valid[np.argsort(flat[valid], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * flat[order])
    # The running maximum keeps the adjusted values in the order of the raw ones.
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.reshape(p.shape)


@dataclass(frozen=True)
class BlockFit:
    """The randomised complete block model fitted to a complete (R, S) table."""

    means: np.ndarray  # (R,) each treatment's mean over the S blocks
    residual_variance: float  # σ², NaN when df is 0
    df: int  # (R − 1)(S − 1)
    n_blocks: int  # S
    no_spread: bool  # σ is zero up to rounding: t undefined

    @property
    def sigma(self) -> float:
        return math.sqrt(self.residual_variance) if self.df > 0 else math.nan


def fit_block_model(values: ArrayLike) -> BlockFit:
    """Fit treatment + block effects to ``values`` (R treatments × S blocks, no NaN).

    In a complete two-way layout without replication the least-squares residual is
    ``y − row mean − column mean + grand mean``; σ² is its sum of squares over
    ``(R−1)(S−1)``.
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"expected a (treatments, blocks) table; got shape {y.shape}")
    if np.isnan(y).any():
        raise ValueError("the block model needs every treatment on every block; found NaN")
    n_treatments, n_blocks = y.shape
    if n_treatments < 1 or n_blocks < 2:
        raise ValueError(
            f"the block model needs ≥ 1 treatment and ≥ 2 blocks; got {n_treatments}×{n_blocks}"
        )
    residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    df = (n_treatments - 1) * (n_blocks - 1)
    variance = float((residual**2).sum() / df) if df > 0 else math.nan
    scale = max(1.0, float(np.abs(y).max()))
    return BlockFit(
        means=y.mean(axis=1),
        residual_variance=variance,
        df=df,
        n_blocks=n_blocks,
        no_spread=df > 0 and math.sqrt(variance) <= ZERO_SPREAD * scale,
    )


def pairwise_p_values(fit: BlockFit) -> np.ndarray:
    """(R, R) two-sided p of every difference of means, symmetric, NaN on the diagonal.

    ``t = (mean_i − mean_j) / (σ · sqrt(2 / S))`` on the model's ``(R−1)(S−1)`` df.
    All NaN when t is undefined (no residual df, or no residual spread).
    """
    n = len(fit.means)
    p = np.full((n, n), np.nan)
    if fit.df == 0 or fit.no_spread:
        return p
    standard_error = fit.sigma * math.sqrt(2.0 / fit.n_blocks)
    t = (fit.means[:, None] - fit.means[None, :]) / standard_error
    p = 2.0 * scipy_stats.t.sf(np.abs(t), df=fit.df)
    np.fill_diagonal(p, np.nan)
    return p


def holm_pairwise(p: np.ndarray) -> np.ndarray:
    """Holm over the R(R−1)/2 pairs of a symmetric (R, R) p matrix; same layout back."""
    upper = np.triu_indices(len(p), k=1)
    adjusted = np.full(p.shape, np.nan)
    adjusted[upper] = holm(p[upper])
    adjusted.T[upper] = adjusted[upper]
    return adjusted


def compact_letter_display(different: ArrayLike, order: Sequence[int] | None = None) -> list[str]:
    """Letters per treatment such that two treatments share a letter iff not ``different``.

    ``different``: (R, R) symmetric boolean, True where a pair differs significantly.
    ``order``: treatment indices best first (default 0..R−1); letter ``a`` goes to the
    group of ``order[0]`` and letters are named in the order they first appear walking
    down ``order``.

    Insert-and-absorb (Piepho 2004, J. Comput. Graph. Stat. 13:456–466; it enumerates
    the maximal sets of mutually not-different treatments), then a sweep that
    removes every letter entry not needed to show some not-different pair. Each letter is
    a set of treatments none of which differ from each other, and every not-different
    pair shares at least one letter, so the display is exact, not an approximation.
    Above 52 letters (a–z, A–Z) letters are named ``a1 … z1, a2 …`` and joined by commas.
    """
    matrix = np.asarray(different, dtype=bool)
    n = len(matrix)
    if matrix.shape != (n, n) or not (matrix == matrix.T).all():
        raise ValueError(f"`different` must be a symmetric square matrix; got {matrix.shape}")
    rank = list(range(n)) if order is None else list(order)
    if sorted(rank) != list(range(n)):
        raise ValueError(f"`order` must be a permutation of 0..{n - 1}; got {rank}")
    columns = [frozenset(range(n))] if n else []
    for i, j in zip(*np.nonzero(np.triu(matrix, k=1)), strict=True):
        split: list[frozenset[int]] = []
        for column in columns:
            split += [column - {i}, column - {j}] if i in column and j in column else [column]
        columns = _absorb(split)
    columns = _absorb(_sweep(columns))
    return _name_letters(columns, rank, n)


def largest_separated_set(different: ArrayLike) -> list[int]:
    """The largest set of treatments that all differ pairwise (a maximum clique of the
    ``different`` graph; Bron–Kerbosch with pivoting). One such set when several exist."""
    matrix = np.asarray(different, dtype=bool)
    neighbours = [set(np.flatnonzero(row)) - {i} for i, row in enumerate(matrix)]
    best: list[int] = []

    def extend(clique: list[int], candidates: set[int], excluded: set[int]) -> None:
        nonlocal best
        if not candidates and not excluded:
            if len(clique) > len(best):
                best = clique
            return
        if len(clique) + len(candidates) <= len(best):
            return  # cannot beat the best found
        pivot = max(candidates | excluded, key=lambda v: len(neighbours[v] & candidates))
        for v in sorted(candidates - neighbours[pivot]):
            extend(clique + [v], candidates & neighbours[v], excluded & neighbours[v])
            candidates = candidates - {v}
            excluded = excluded | {v}

    extend([], set(range(len(matrix))), set())
    return sorted(best)


def _absorb(columns: list[frozenset[int]]) -> list[frozenset[int]]:
    """Drop empty and duplicate columns and any column contained in another."""
    kept: list[frozenset[int]] = []
    for column in sorted({c for c in columns if c}, key=lambda c: (-len(c), sorted(c))):
        if not any(column <= other for other in kept):
            kept.append(column)
    return kept


def _sweep(columns: list[frozenset[int]]) -> list[frozenset[int]]:
    """Remove letter entries that no not-different pair needs (Piepho's sweeping step).

    Treatment i may leave column c when it keeps another letter and every other member
    of c still shares some other letter with it. Removing entries never puts two
    different treatments under one letter, so the display stays exact.
    """
    columns = [set(c) for c in columns]
    for c, column in enumerate(columns):
        for i in sorted(column):
            others = [other for k, other in enumerate(columns) if k != c and i in other]
            covered = all(any(j in other for other in others) for j in column - {i})
            if others and covered:
                column.discard(i)
    return [frozenset(c) for c in columns]


def _name_letters(columns: list[frozenset[int]], rank: list[int], n: int) -> list[str]:
    position = {treatment: k for k, treatment in enumerate(rank)}
    # A letter's place: its members' positions best first, so `a` holds the best treatment.
    ordered = sorted(columns, key=lambda c: sorted(position[t] for t in c))
    names = letter_names(len(ordered))
    separator = "" if len(ordered) <= 52 else ","
    return [
        separator.join(name for name, column in zip(names, ordered, strict=True) if t in column)
        for t in range(n)
    ]


def letter_names(count: int) -> list[str]:
    """The names of ``count`` letters: a–z, A–Z, or above 52 ``a1 … z1, a2 …``."""
    if count <= 52:
        return list((string.ascii_lowercase + string.ascii_uppercase)[:count])
    return [f"{string.ascii_lowercase[k % 26]}{k // 26 + 1}" for k in range(count)]
