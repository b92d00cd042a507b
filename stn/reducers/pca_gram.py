"""Exact PCA through the ``n × n`` Gram matrix of the centred training images.

With ``n`` images of ``d`` pixels and ``n ≪ d`` (4,000 canvases of 128² or 276²), the
principal directions are ``Vᵀ = S⁻¹ Uᵀ X`` where ``X`` is the centred ``n × d`` data and
``U S²Uᵀ = X Xᵀ`` the Gram matrix's eigendecomposition: one ``n × n`` symmetric
eigenproblem instead of an SVD of ``X``. Three passes over the images, in chunks:

1. the mean (float64 sums);
2. the Gram matrix's upper triangle, block by block (``G[a:b, p:q] = X[a:b] X[p:q]ᵀ``,
   float32 products stored in float64; half the flops of a full ``X Xᵀ``): a block of
   ``chunk_rows`` images is held while the following images stream past it, so memory
   is the ``n × n`` Gram plus a chunk whatever ``d`` is (``chunk_rows = n`` holds the
   whole split and reads it once);
3. the components, ``Vᵀ = Σ_chunks U[a:b]ᵀ X[a:b]``, then each row scaled to unit norm.

The eigenproblem runs in float32 (about twice as fast as float64 and, on the suite's
canvases, accurate to ~3e-5); the relative residual ``‖G u − λ u‖ / λ`` of the smallest
kept pairs, computed in float64, bounds how far the recovered components are from
orthonormal, and when it exceeds ``EIGH_FLOAT32_TOL`` the eigenproblem is solved again
in float64. Directions whose eigenvalue is at the rounding floor of the Gram (no variance
in the training split, e.g. ``n ≤ k``) get a zero component instead of amplified noise.

Everything is torch on the given device: the same code runs on CPU and CUDA.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

# ``read(start, stop)`` → the images ``start..stop`` as ``(C, stop − start, d)`` float32.
RowReader = Callable[[int, int], Tensor]

PIECE_ROWS = 256  # images per product against a held block, and per streamed read
EIGH_FLOAT32_TOL = 1e-4  # relative residual above which float32 eigenpairs are redone
RESIDUAL_CHECKED = 64  # how many of the smallest kept eigenpairs the residual check reads
F32, F64 = 4, 8  # bytes


@dataclass(frozen=True)
class GramFit:
    """Per-channel result: ``mean (C, d)``, ``components (C, k, d)`` float32 (unit rows,
    the largest-magnitude entry of each positive, as scikit-learn's ``svd_flip``; zero
    rows for directions without variance),
    ``explained_variance (C, k)`` and ``explained_variance_ratio (C, k)`` float64, and
    facts for the record."""

    mean: Tensor
    components: Tensor
    explained_variance: Tensor
    explained_variance_ratio: Tensor
    facts: dict[str, Any]


def gram_peak_bytes(n: int, channels: int, features: int, k: int, chunk_rows: int) -> int:
    """Estimated peak memory of :func:`fit_gram`: the largest of its three phases.

    Gram phase: the float64 Gram of every channel, the held chunk and a streamed piece.
    Eigen phase: the Gram, a float64 eigendecomposition's vectors and workspace
    (LAPACK ``syevd``: about ``2 n²``), and the kept eigenvectors. Component phase: the
    ``(C, k, d)`` output, the kept eigenvectors and a chunk. With ``chunk_rows = n`` the
    whole split stays in memory through all three.
    """
    piece = min(PIECE_ROWS, n)
    chunk = F32 * channels * chunk_rows * features
    gram = F64 * channels * n * n
    vectors = F32 * channels * n * k
    held = chunk if chunk_rows >= n else 0
    gram_phase = gram + chunk + F32 * channels * piece * features + F32 * chunk_rows * piece
    eigen_phase = gram + 3 * F64 * n * n + vectors + held
    component_phase = F32 * channels * k * features + vectors + chunk
    return max(gram_phase, eigen_phase, component_phase)


def gram_chunk_rows(
    n: int, channels: int, features: int, k: int, budget_bytes: float
) -> int | None:
    """The most images to hold at once within the budget: ``n`` (read once) when the whole
    split fits, else the largest chunk that does (at least one piece); ``None`` when not
    even that fits."""
    if gram_peak_bytes(n, channels, features, k, n) <= budget_bytes:
        return n
    low, high = min(PIECE_ROWS, n), n - 1
    if gram_peak_bytes(n, channels, features, k, low) > budget_bytes:
        return None
    while low < high:  # the peak grows with the chunk: bisect for the largest that fits
        mid = (low + high + 1) // 2
        if gram_peak_bytes(n, channels, features, k, mid) <= budget_bytes:
            low = mid
        else:
            high = mid - 1
    return low


def spans(start: int, stop: int, step: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into consecutive ``(a, b)`` of at most ``step``."""
    return [(a, min(a + step, stop)) for a in range(start, stop, step)]


def column_mean(rows: RowReader, n: int, step: int) -> Tensor:
    """``(C, d)`` float64 mean of the ``n`` images, summed chunk by chunk in float64."""
    total: Tensor | None = None
    for a, b in spans(0, n, step):
        part = rows(a, b).sum(dim=1, dtype=torch.float64)
        total = part if total is None else total.add_(part)
    assert total is not None
    return total / n


class CentredRows:
    """The images minus their mean, as ``(C, b − a, d)`` float32 on ``device``.

    With ``hold`` the whole split is read once and centred in place (slices are views);
    otherwise every call reads and centres the rows again.
    """

    def __init__(self, rows: RowReader, n: int, hold: bool, device: torch.device) -> None:
        self.rows, self.device = rows, device
        self.held = self.read(0, n).contiguous() if hold else None
        if self.held is not None:
            held = self.held
            self.mean = column_mean(lambda a, b: held[:, a:b], n, PIECE_ROWS)
            held.sub_(self.mean.float().unsqueeze(1))
        else:
            self.mean = column_mean(self.read, n, PIECE_ROWS)
        self.mean32 = self.mean.float().unsqueeze(1)  # (C, 1, d)

    def read(self, a: int, b: int) -> Tensor:
        return self.rows(a, b).to(device=self.device, dtype=torch.float32)

    def __call__(self, a: int, b: int) -> Tensor:
        if self.held is not None:
            return self.held[:, a:b]
        return self.read(a, b).sub_(self.mean32)

    def release(self) -> None:
        """Drop the held split (the caller's last use)."""
        self.held = None


def accumulate_gram(
    centred: RowReader, n: int, channels: int, chunk_rows: int, device: torch.device
) -> list[Tensor]:
    """Per channel, the ``(n, n)`` float64 Gram ``X Xᵀ`` of the centred images.

    Each block of ``chunk_rows`` images is held and multiplied by the pieces of images
    from its own first row on (pieces inside the block are slices of it): only blocks on
    or above the diagonal are computed, each written with its mirror.
    """
    grams = [torch.empty(n, n, dtype=torch.float64, device=device) for _ in range(channels)]
    for a, b in spans(0, n, chunk_rows):
        block = centred(a, b)
        for p, q in spans(a, n, PIECE_ROWS):
            piece = block[:, p - a : q - a] if q <= b else centred(p, q)
            top = min(b, q)  # rows of the block on or above this piece's diagonal
            for c, gram in enumerate(grams):
                product = block[c, : top - a] @ piece[c].T  # (top − a, q − p) float32
                gram[a:top, p:q] = product
                gram[p:q, a:top] = product.T
            del piece
        del block
    return grams


def top_eigenpairs(gram: Tensor, k: int, floor_factor: float) -> tuple[Tensor, Tensor, dict]:
    """The ``k`` largest eigenpairs of a symmetric ``(n, n)`` float64 matrix.

    Returns eigenvalues ``(k,)`` float64 (descending, negatives from rounding set to 0),
    eigenvectors ``(n, k)`` float32, and facts: the precision used, float32's relative
    residual and how many eigenvalues lie at the rounding floor
    (``floor_factor · λ₁``). Solved in float32 first; redone in float64 when the
    residual of the smallest kept pairs above the floor exceeds ``EIGH_FLOAT32_TOL``.
    """
    n = gram.shape[0]
    values, vectors = _descending(torch.linalg.eigh(gram.float()), k)
    floor = floor_factor * max(float(values[0]), 0.0)
    residual = relative_residual(gram, values, vectors, floor)
    facts = {"eigh_dtype": "float32", "eigh_float32_residual": residual}
    if not residual <= EIGH_FLOAT32_TOL:
        del values, vectors
        values, vectors = _descending(torch.linalg.eigh(gram), k)
        floor = floor_factor * max(float(values[0]), 0.0)
        facts["eigh_dtype"] = "float64"
    values = values.clamp_min(0.0)
    facts["at_floor"] = int((values <= floor).sum())
    facts["floor"] = floor
    assert vectors.shape == (n, k)
    return values, vectors, facts


def _descending(pair: tuple[Tensor, Tensor], k: int) -> tuple[Tensor, Tensor]:
    """``eigh``'s ascending ``(values, vectors)`` → the top ``k``, descending: values
    float64, vectors float32 (a copy, so the full ``n × n`` result can be freed)."""
    values, vectors = pair
    n = values.shape[0]
    order = torch.arange(n - 1, n - 1 - k, -1, device=values.device)
    return values[order].double(), vectors[:, order].float()


def relative_residual(gram: Tensor, values: Tensor, vectors: Tensor, floor: float) -> float:
    """``max ‖G u − λ u‖ / λ`` (float64) over the smallest kept pairs above ``floor``.

    This bounds the departure of the recovered components from orthonormality:
    ``vᵢᵀvⱼ − δᵢⱼ = uᵢᵀrⱼ / √(λᵢλⱼ)``. 0 when no pair lies above the floor.
    """
    above = torch.nonzero(values > floor).flatten()[-RESIDUAL_CHECKED:]
    if len(above) == 0:
        return 0.0
    u = vectors[:, above].double()
    lam = values[above]
    residual = gram @ u - u * lam
    return float((torch.linalg.vector_norm(residual, dim=0) / lam).max())


def recover_components(
    centred: RowReader, n: int, vectors: list[Tensor], chunk_rows: int, features: int
) -> Tensor:
    """``(C, k, d)`` float32 ``Uᵀ X`` per channel: one product when the split is held,
    else accumulated chunk by chunk in place (no temporary of the output's size); rows
    not yet normalised."""
    channels, k = len(vectors), vectors[0].shape[1]
    out = torch.empty(channels, k, features, dtype=torch.float32, device=vectors[0].device)
    for a, b in spans(0, n, chunk_rows):
        block = centred(a, b)
        for c in range(channels):
            if a == 0:
                torch.mm(vectors[c][a:b].T, block[c], out=out[c])
            else:
                out[c].addmm_(vectors[c][a:b].T, block[c])
        del block
    return out


def normalise_and_flip(components: Tensor, keep: Tensor) -> None:
    """In place, per ``(C, k, d)`` row: unit norm where ``keep`` ``(C, k)``, zero elsewhere;
    the largest-magnitude entry made positive (scikit-learn's ``svd_flip`` on rows of Vᵀ,
    so the basis does not depend on the solver's arbitrary signs). A few rows at a time:
    a temporary of the whole output would double its memory."""
    tiny = torch.finfo(components.dtype).tiny
    for c in range(components.shape[0]):
        for a, b in spans(0, components.shape[1], PIECE_ROWS):
            rows = components[c, a:b]
            norms = torch.linalg.vector_norm(rows, dim=-1)
            largest = rows.abs().argmax(dim=-1, keepdim=True)
            signs = torch.sign(torch.gather(rows, -1, largest)).squeeze(-1)
            scale = torch.where(keep[c, a:b], 1.0 / norms.clamp_min(tiny), 0.0)
            rows.mul_((scale * torch.where(signs == 0, 1.0, signs)).unsqueeze(-1))


def solve_channels(grams: list[Tensor], k: int, floor_factor: float) -> tuple[list, list, list]:
    """Per channel: eigenvalues ``(k,)``, eigenvectors ``(n, k)``, facts (and the trace,
    the total variance × (n − 1), in the facts). Each Gram is freed once solved."""
    values, vectors, facts = [], [], []
    for c in range(len(grams)):
        trace = float(torch.trace(grams[c]))
        lam, u, found = top_eigenpairs(grams[c], k, floor_factor)
        grams[c] = torch.empty(0)
        values.append(lam)
        vectors.append(u)
        facts.append({**found, "trace": trace})
    return values, vectors, facts


def fit_gram(
    rows: RowReader,
    n: int,
    channels: int,
    features: int,
    k: int,
    chunk_rows: int,
    device: torch.device | str = "cpu",
) -> GramFit:
    """Per-channel PCA of ``n`` images (``rows`` yields them uncentred) to ``k`` components.

    Args:
        rows: ``(start, stop) → (C, stop − start, d)`` float32, any device.
        chunk_rows: images held at once (``n``: the whole split, read once).
        device: where the products and the eigenproblem run (``cpu`` or ``cuda``).
    """
    if not 1 <= k <= n:
        raise ValueError(f"the Gram solver needs 1 <= k <= n images; got k={k}, n={n}")
    device = torch.device(device)
    chunk_rows = max(1, min(int(chunk_rows), n))
    clock = PhaseClock(device)
    centred = CentredRows(rows, n, chunk_rows >= n, device)
    clock.lap("read_and_mean")
    grams = accumulate_gram(centred, n, channels, chunk_rows, device)
    clock.lap("gram")
    # Eigenvalues below √n·ε₃₂·λ₁ are rounding noise of the float32 products.
    floor_factor = math.sqrt(n) * float(np.finfo(np.float32).eps)
    values, vectors, eigen = solve_channels(grams, k, floor_factor)
    clock.lap("eigh")
    components = recover_components(centred, n, vectors, chunk_rows, features)
    centred.release()
    lam = torch.stack(values)  # (C, k) float64, descending
    floors = torch.tensor([f["floor"] for f in eigen], dtype=torch.float64, device=device)
    normalise_and_flip(components, lam > floors[:, None])
    clock.lap("components")
    traces = torch.tensor([f["trace"] for f in eigen], dtype=torch.float64, device=device)
    facts = {
        "chunk_rows": chunk_rows,
        "held_split": chunk_rows >= n,
        "device": str(device),
        "eigh_dtype": [f["eigh_dtype"] for f in eigen],
        "eigh_float32_residual": [float(f"{f['eigh_float32_residual']:.3g}") for f in eigen],
        "zero_variance_components": [f["at_floor"] for f in eigen],
        "seconds_by_phase": clock.seconds,
    }
    return GramFit(
        mean=centred.mean.float(),
        components=components,
        explained_variance=lam / max(n - 1, 1),
        explained_variance_ratio=lam / traces.clamp_min(torch.finfo(torch.float64).tiny)[:, None],
        facts=facts,
    )


class PhaseClock:
    """Wall seconds per named phase (synchronising the device so its work is counted)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self.mark = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[name] = round(now - self.mark, 3)
        self.mark = now
