"""Multiple comparisons within a family of reducers: Holm's correction and the compact
letter display.

Pure NumPy functions on arrays; ``stn.report.pairwise`` computes the p-values they
adjust and ``stn.report.stats`` applies both to a runs frame.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def holm(p_values: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), same shape as ``p_values``, the
    whole array one family.

    Sorted ascending, ``p_(1) ≤ … ≤ p_(m)``, the adjusted value is
    ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``; rejecting where it is below α controls
    the family-wise error rate at α. NaN entries (tests that could not be run) stay NaN
    and do not count in ``m``. ``weights``: see ``holm_rows``.
    """
    p = np.asarray(p_values, dtype=float)
    w = None if weights is None else np.broadcast_to(weights, p.shape).reshape(1, -1)
    return holm_rows(p.reshape(1, -1), w).reshape(p.shape)


def holm_rows(p_values: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """``holm`` of each family along the last axis of ``p_values`` ``(..., m)`` at once
    (the simulations of ``stn.report.calibration`` adjust thousands of families).

    ``weights`` (broadcast to ``p_values``, > 0): Holm's weighted procedure (Holm 1979,
    section 4): hypothesis k is tested at ``α · w_k / (sum of the weights not yet
    rejected)``, so a rejected hypothesis hands its share of α on to those left; its
    adjusted value is ``max_{j ≤ i} min(1, p_(j) / w_(j) · Σ_{k ≥ j} w_(k))`` in the
    order of ``p / w``. Equal weights give the plain procedure above. It holds the
    family-wise error rate at α whatever the weights.
    """
    p = np.asarray(p_values, dtype=float)
    finite = p[~np.isnan(p)]
    if ((finite < 0) | (finite > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1]; got {finite[(finite < 0) | (finite > 1)]}")
    w = np.ones_like(p) if weights is None else np.broadcast_to(weights, p.shape).astype(float)
    if (w[~np.isnan(p)] <= 0).any():
        raise ValueError("Holm weights must be > 0 for every tested hypothesis")
    tested = ~np.isnan(p)
    w = np.where(tested, w, 0.0)
    # Untested entries sort last (as +inf) and are put back as NaN at the end.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(tested, p / w, np.inf)
    order = np.argsort(ratio, axis=-1, kind="stable")
    ranked = np.take_along_axis(np.where(tested, ratio, 0.0), order, axis=-1)
    left = np.flip(np.cumsum(np.flip(np.take_along_axis(w, order, axis=-1), -1), -1), -1)
    scaled = np.minimum(1.0, ranked * left)
    adjusted = np.empty_like(p)
    # The running maximum keeps the adjusted values in the order of the raw ones.
    np.put_along_axis(adjusted, order, np.maximum.accumulate(scaled, axis=-1), axis=-1)
    return np.where(tested, adjusted, np.nan)


def holm_pairwise(p: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """Holm over the R(R−1)/2 pairs of each symmetric ``(..., R, R)`` p matrix (with the
    pairs' ``weights``, an ``(R, R)`` matrix, where given); same layout back (NaN on the
    diagonal and where a pair was not tested)."""
    p = np.asarray(p, dtype=float)
    upper = np.triu_indices(p.shape[-1], k=1)
    w = None if weights is None else np.asarray(weights, dtype=float)[upper]
    adjusted = np.full(p.shape, np.nan)
    adjusted[..., upper[0], upper[1]] = holm_rows(p[..., upper[0], upper[1]], w)
    adjusted[..., upper[1], upper[0]] = adjusted[..., upper[0], upper[1]]
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
