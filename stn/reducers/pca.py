"""PCA as a reducer: a linear map fitted on the training split only.

Each channel gets its own PCA over its ``H·W`` pixels. The ``k`` coefficients per
channel are laid out row-major in an ``(h, w)`` plane (zero-padded when ``k < h·w``),
so the output ``(N, C, h, w)`` fits every downstream network; they are not a spatial
image, which is why the sweep also pairs PCA with the MLP classifier.

Fitting reads the training canvases as rendered at placement epoch 0. Solvers:
``gram`` (exact, through the ``n × n`` Gram matrix of the images, in chunks, on the
run's device: see ``stn.reducers.pca_gram``), ``randomized`` (scikit-learn's randomised SVD),
``full`` (exact LAPACK SVD), ``incremental`` (``IncrementalPCA`` over chunks of the
stream) and ``auto``: of ``gram`` and ``randomized``, those whose estimated memory fits
``memory_budget_mb``, the one with fewer estimated flops; ``incremental`` when neither
fits. The record says which ran and why. The fitted map is cached on disk (see
``stn.reducers.pca_cache``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stn.options import option
from stn.reducers.base import (
    Reducer,
    ReducerConfig,
    ReducerConfigError,
    Size,
    register_reducer,
    require_choice,
)
from stn.reducers.pca_cache import FittedPCA, cache_key, cache_path, load_fitted, save_fitted
from stn.reducers.pca_gram import RowReader, fit_gram, gram_chunk_rows, gram_peak_bytes

if TYPE_CHECKING:
    from stn.data.stream import BatchStream

log = logging.getLogger(__name__)

SOLVERS = ("auto", "gram", "randomized", "full", "incremental")
BYTES = 4  # float32 throughout
# A float32 eigh of an n × n matrix takes as long as about this many n³ flops of float32
# matrix products (measured on the 2-core CPU, one thread: 1.4-1.8x the time of the
# 2·n²·d-flop X·Xᵀ at n = 4,000, d = 16,384).
EIGH_FLOPS_PER_N3 = 14.0


@dataclass(frozen=True)
class PCAConfig(ReducerConfig):
    """What a ``pca`` preset sets; :class:`PCAReducer` resolves ``n_components``."""

    n_components: int | None = option(None, "per channel; null = output h·w, at most that")
    whiten: bool = option(False, "divide each coefficient by sqrt(its explained variance)")
    solver: str = option(
        "auto",
        "auto | gram | randomized | full | incremental. gram: exact, via the n×n Gram of the "
        "images; auto: of gram and randomized, those within memory_budget_mb, the one with "
        "fewer estimated flops; IncrementalPCA when neither fits",
    )
    memory_budget_mb: float = option(
        2048.0, "peak memory the fit may plan for (gram streams the split in chunks beyond it)"
    )
    # Any: an integer or "auto" (OmegaConf has no union of int and str).
    iterated_power: Any = option("auto", "randomized SVD power iterations (auto: scikit-learn's)")
    random_state: int = option(0, "seeds the randomised SVD (one fit serves every run seed)")
    cache_dir: str | None = option(
        ".cache/pca", "fitted maps keyed by data and options; null disables (relative: launch dir)"
    )

    def __post_init__(self) -> None:
        require_choice("pca solver", self.solver, SOLVERS)
        if self.n_components is not None and self.n_components < 1:
            raise ReducerConfigError(f"pca n_components must be >= 1, got {self.n_components}")
        if not self.memory_budget_mb > 0:
            raise ReducerConfigError(
                f"pca memory_budget_mb must be > 0, got {self.memory_budget_mb}"
            )
        power = self.iterated_power
        if power != "auto" and (isinstance(power, bool) or not isinstance(power, int) or power < 0):
            raise ReducerConfigError(
                f"pca iterated_power must be auto or an integer >= 0, got {power!r}"
            )
        if self.cache_dir == "":
            object.__setattr__(self, "cache_dir", None)

    def fit_options(self, solver: str, chunk_rows: int | None) -> dict[str, Any]:
        """The options that change the fitted map (whitening is applied afterwards)."""
        fields = asdict(self)
        for transform_only in ("name", "kind", "whiten", "memory_budget_mb", "cache_dir", "solver"):
            fields.pop(transform_only)
        return {**fields, "solver": solver, "chunk_rows": chunk_rows}


def randomized_bytes(n: int, channels: int, features: int, k: int) -> int:
    """Rough peak memory of the in-memory fit: the data plus the range finder's blocks."""
    return BYTES * (channels * n * features + 3 * features * (k + 10) + 3 * n * (k + 10))


def randomized_flops(n: int, features: int, k: int, iterated_power: int | str) -> float:
    """Rough flops of scikit-learn's randomised SVD of ``n × features`` to ``k``: two
    products with the data per power iteration and two more around them (range and
    projection), the iterations' LU normalisations, and the final SVD of ``(k+10) × d``."""
    rank = k + 10  # scikit-learn's n_oversamples
    if iterated_power == "auto":
        iterations = 7 if k < 0.1 * min(n, features) else 4  # scikit-learn's rule
    else:
        iterations = int(iterated_power)
    products = (4 * iterations + 4) * n * features * rank
    normalise = 2 * iterations * (n + features) * rank**2
    return float(products + normalise + 4 * features * rank**2 + 22 * rank**3)


def gram_flops(n: int, features: int, k: int) -> float:
    """Rough flops of :func:`stn.reducers.pca_gram.fit_gram`: the Gram's upper triangle
    (``n²·d``), the eigenproblem and the components (``2·k·n·d``)."""
    return float(n * n * features + EIGH_FLOPS_PER_N3 * n**3 + 2 * k * n * features)


class SolverChoice(NamedTuple):
    """Which solver fits, its chunk size (images held at once; ``None``: not chunked) and
    why it was chosen (a sentence for the record)."""

    solver: str
    chunk_rows: int | None
    reason: str


def incremental_chunk_rows(n: int, features: int, k: int, budget_bytes: float) -> int:
    """Rows per ``partial_fit``: as many as the budget allows, at least ``k``.

    Each step takes the SVD of a ``(k + rows) × features`` stack (about three copies).
    """
    rows = int(budget_bytes // (3 * BYTES * features)) - k
    return min(n, max(k, rows))


def chunk_sizes(n: int, rows: int, k: int) -> list[int]:
    """Split ``n`` into chunks of ``rows``; a tail shorter than ``k`` joins the last chunk
    (``IncrementalPCA`` needs at least ``k`` samples per step)."""
    sizes = [rows] * (n // rows)
    tail = n - sum(sizes)
    if tail >= k or not sizes:
        sizes.append(tail)
    elif tail:
        sizes[-1] += tail
    return [s for s in sizes if s]


def stream_rows(train: BatchStream) -> Iterator[np.ndarray]:
    """The split's images at placement epoch 0 as ``(B, C, H·W)`` float32 arrays."""
    for batch in train.batches(epoch=0, shuffle=False):
        yield batch.x.reshape(batch.x.shape[0], batch.x.shape[1], -1).numpy()


def collect(train: BatchStream, channels: int, features: int) -> np.ndarray:
    """Every training image as ``(C, N, H·W)`` float32 (one contiguous block per channel)."""
    out = np.empty((channels, len(train.images), features), dtype=np.float32)
    start = 0
    for rows in stream_rows(train):
        out[:, start : start + len(rows)] = rows.transpose(1, 0, 2)
        start += len(rows)
    return out


def chunks(train: BatchStream, sizes: list[int]) -> Iterator[np.ndarray]:
    """The stream regrouped into ``(C, size, H·W)`` chunks of the given sizes."""
    pending: list[np.ndarray] = []
    held = 0
    targets = iter(sizes)
    target = next(targets)
    for rows in stream_rows(train):
        pending.append(rows)
        held += len(rows)
        while held >= target:
            block = np.concatenate(pending)
            yield np.ascontiguousarray(block[:target].transpose(1, 0, 2))
            rest = block[target:]
            pending, held = ([rest] if len(rest) else []), len(rest)
            target = next(targets, math.inf)


def fit_in_memory(
    train: BatchStream, channels: int, features: int, options: PCAConfig, solver: str
) -> FittedPCA:
    from sklearn.decomposition import PCA

    data = collect(train, channels, features)
    fitted = []
    for c in range(channels):
        pca = PCA(
            n_components=options.n_components,
            svd_solver=solver,
            iterated_power=options.iterated_power,
            random_state=options.random_state,
            copy=False,  # centre in place: the block is ours and can be large
        )
        pca.fit(data[c])
        fitted.append(pca)
    return FittedPCA.stack(fitted)


def fit_incremental(
    train: BatchStream, channels: int, options: PCAConfig, chunk_rows: int
) -> FittedPCA:
    from sklearn.decomposition import IncrementalPCA

    k = options.n_components
    models = [IncrementalPCA(n_components=k) for _ in range(channels)]
    for block in chunks(train, chunk_sizes(len(train.images), chunk_rows, k)):
        for c, model in enumerate(models):
            model.partial_fit(block[c])
    return FittedPCA.stack(models)


def stream_reader(train: BatchStream, channels: int, features: int) -> RowReader:
    """``(start, stop) → (C, stop − start, H·W)`` float32: the split's images ``start..stop``
    at placement epoch 0, rendered in batches of the stream's size."""

    def read(start: int, stop: int) -> Tensor:
        out = torch.empty(channels, stop - start, features)
        for a in range(start, stop, train.batch_size):
            b = min(a + train.batch_size, stop)
            x = train.batch_of(np.arange(a, b), placement_epoch=0).x
            out[:, a - start : b - start] = x.reshape(b - a, channels, features).transpose(0, 1)
        return out

    return read


def fit_gram_stream(
    train: BatchStream,
    channels: int,
    features: int,
    k: int,
    chunk_rows: int,
    device: torch.device | str | None,
) -> tuple[FittedPCA, dict[str, Any]]:
    """The ``gram`` solver on the training stream; returns the fit and its details."""
    n = len(train.images)
    result = fit_gram(
        stream_reader(train, channels, features),
        n,
        channels,
        features,
        k,
        chunk_rows,
        torch.device("cpu") if device is None else device,
    )
    fitted = FittedPCA(
        mean=result.mean.cpu().numpy(),
        components=result.components.cpu().numpy(),
        explained_variance=result.explained_variance.float().cpu().numpy(),
        explained_variance_ratio=result.explained_variance_ratio.float().cpu().numpy(),
    )
    return fitted, result.facts


@register_reducer("pca", PCAConfig)
class PCAReducer(Reducer):
    """``(N, C, H, W) → (N, C, h, w)``: per-channel PCA coefficients, zero-padded.

    With ``whiten`` each coefficient is divided by the square root of its explained
    variance (as scikit-learn's ``PCA(whiten=True)`` does).
    """

    needs_fit = True
    config: PCAConfig

    def __init__(
        self, config: PCAConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        slots = self.output_size[0] * self.output_size[1]
        # ``options``: the config with n_components resolved (null: every output slot).
        options = replace(config, n_components=config.n_components or slots)
        if options.n_components > slots:
            raise ReducerConfigError(
                f"pca n_components={options.n_components} does not fit the {slots} slots of "
                f"the {self.output_size[0]}×{self.output_size[1]} output; use at most {slots}"
            )
        self.options = options
        self.features = self.input_size[0] * self.input_size[1]
        # Empty until fit; filled by assignment so a large projection is allocated once.
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("components", torch.empty(0))
        self.register_buffer("scale", torch.empty(0))

    @property
    def fitted(self) -> bool:
        return self.components.numel() > 0

    def choose_solver(self, n: int) -> SolverChoice:
        """The solver for ``n`` training images, its chunk size and the reason."""
        budget = self.options.memory_budget_mb * 2**20
        k, c, f = self.options.n_components, self.in_channels, self.features
        solver = self.options.solver
        gram_rows = gram_chunk_rows(n, c, f, k, budget)
        costs = {
            "gram": gram_flops(n, f, k),
            "randomized": randomized_flops(n, f, k, self.options.iterated_power),
        }
        fits = {"gram": gram_rows is not None, "randomized": randomized_bytes(n, c, f, k) <= budget}
        if solver != "auto":
            reason = f"solver: {solver} in the preset"
        elif fits["gram"] or fits["randomized"]:
            solver = min((s for s in costs if fits[s]), key=costs.__getitem__)
            other = "randomized" if solver == "gram" else "gram"
            reason = (
                f"auto: {solver} fits the {self.options.memory_budget_mb:g} MB budget and "
                f"needs ~{costs[solver]:.2g} flops; {other} "
                + (f"~{costs[other]:.2g}" if fits[other] else "does not fit the budget")
            )
        else:
            solver = "incremental"
            reason = (
                f"auto: neither gram nor randomized fits the "
                f"{self.options.memory_budget_mb:g} MB budget"
            )
        if solver == "gram":
            rows = gram_rows if gram_rows is not None else min(n, 256)
            held = "the whole split held" if rows >= n else f"{rows} images held at a time"
            peak = gram_peak_bytes(n, c, f, k, rows) / 2**20
            reason += f" ({held}, est. peak {peak:,.0f} MB)"
            return SolverChoice(solver, rows, reason)
        if solver == "incremental":
            return SolverChoice(solver, incremental_chunk_rows(n, f, k, budget), reason)
        return SolverChoice(solver, None, reason)

    def fit(self, train: BatchStream, device: torch.device | str | None = None) -> dict[str, Any]:
        """Fit on the training stream (placement epoch 0) or load the cached fit.

        ``device`` is where the ``gram`` solver computes (the run's device; the
        scikit-learn solvers run on the CPU). Returns the facts for the record: solver
        and why, cache use, fit seconds, the solver's own details (``fit_details``, ``None``
        on a cache hit) and the explained-variance ratios per channel.
        """
        n, k = len(train.images), self.options.n_components
        if n < k:
            raise ReducerConfigError(
                f"PCA with {k} components per channel needs at least {k} training images "
                f"(scikit-learn keeps at most min(n_samples, n_features) = "
                f"min({n}, {self.features}) = {min(n, self.features)}); the training split "
                f"has {n}. Lower reducer.n_components or use more training images."
            )
        shape = train.input_shape
        if (shape[0], shape[1], shape[2]) != (self.in_channels, *self.input_size):
            raise ReducerConfigError(
                f"the reducer was built for {(self.in_channels, *self.input_size)} inputs "
                f"but the training stream yields {shape}"
            )
        solver, chunk_rows, reason = self.choose_solver(n)
        # The Gram's chunking changes only rounding, so it stays out of the cache key.
        options = self.options.fit_options(solver, None if solver == "gram" else chunk_rows)
        key = cache_key(train, options)
        path = cache_path(self.options.cache_dir, train, k, key)
        cache_state = "off"
        fitted = None
        started = time.perf_counter()
        if path is not None:
            fitted, problem = load_fitted(path, key, (self.in_channels, k, self.features))
            cache_state = "hit" if fitted is not None else ("miss" if problem is None else "refit")
            if problem is not None:
                log.warning("PCA cache %s not used (%s); refitting", path, problem)
        details = None
        if fitted is None:
            details = {}
            if solver == "gram":
                fitted, details = fit_gram_stream(
                    train, self.in_channels, self.features, k, int(chunk_rows), device
                )
            elif solver == "incremental":
                fitted = fit_incremental(train, self.in_channels, self.options, int(chunk_rows))
            else:
                fitted = fit_in_memory(train, self.in_channels, self.features, self.options, solver)
            if path is not None:
                save_fitted(path, key, fitted)
        seconds = time.perf_counter() - started
        self.load_fitted(fitted)
        ratios = fitted.explained_variance_ratio
        return {
            "solver": solver,
            "solver_reason": reason,
            "chunk_rows": chunk_rows,
            "fit_details": details,
            "n_components": k,
            "n_train": n,
            "whiten": self.options.whiten,
            "cache": cache_state,
            "cache_file": None if path is None else str(path),
            "seconds": seconds,
            "explained_variance_ratio_total": [float(r.sum()) for r in ratios],
            "explained_variance_ratio": [[float(f"{v:.6g}") for v in r] for r in ratios],
        }

    def load_fitted(self, fitted: FittedPCA) -> None:
        """Install a fitted map as the reducer's buffers (float32, on the current device)."""
        device = self.mean.device
        variance = np.maximum(fitted.explained_variance, np.finfo(np.float32).tiny)
        scale = 1.0 / np.sqrt(variance) if self.options.whiten else np.ones_like(variance)
        self.mean = torch.from_numpy(fitted.mean).float().to(device)
        self.components = torch.from_numpy(fitted.components).float().to(device)
        self.scale = torch.from_numpy(scale).float().to(device)

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"reducer {self.name!r} must be fitted (call fit) before use")

    def coefficients(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) → (N, C, k)`` PCA coefficients (whitened when configured)."""
        self._check_fitted()
        n, c = x.shape[:2]
        centred = x.reshape(n, c, -1) - self.mean  # (N, C, F)
        coeff = torch.bmm(centred.transpose(0, 1), self.components.transpose(1, 2))  # (C, N, k)
        return coeff.transpose(0, 1) * self.scale

    def forward(self, x: Tensor) -> Tensor:
        coeff = self.coefficients(x)
        h, w = self.output_size
        return F.pad(coeff, (0, h * w - coeff.shape[-1])).reshape(x.shape[0], -1, h, w)

    def reconstruct(self, z: Tensor) -> Tensor:
        """Back from the output ``(N, C, h, w)`` to images ``(N, C, H, W)``."""
        self._check_fitted()
        n, c = z.shape[:2]
        k = self.components.shape[1]
        coeff = z.reshape(n, c, -1)[..., :k] / self.scale  # (N, C, k)
        flat = torch.bmm(coeff.transpose(0, 1), self.components).transpose(0, 1) + self.mean
        return flat.reshape(n, c, *self.input_size)

    def describe(self) -> dict[str, Any]:
        facts = super().describe()
        facts["fitted_values"] = sum(b.numel() for b in (self.mean, self.components, self.scale))
        facts["n_components"] = self.options.n_components
        facts["whiten"] = self.options.whiten
        return facts
