"""Iterative patch selection over multi-scale windows: the reducer kind ``ips``.

After Bergner et al., "Iterative Patch Selection for High-Resolution Image Recognition"
(ICLR 2023). The candidates are every window of a :class:`stn.reducers.windows.WindowGrid`
(each side of ``window_sizes`` at each cell of a ``cells × cells`` grid: 432 by default).
A small scorer rates each window from a low-resolution view of it (:class:`ScoringViews`:
``score_size`` px a side), and the classifier reads only the M best (``windows``), each
cut from the full-resolution canvas and reduced to the output size by ``stn.sampling``:

1. **Scoring pass, no gradient.** The scorer rates the windows ``score_chunk`` at a time;
   a memory of the M best so far is merged with each chunk and cut back to M (IPS's
   iteration), so memory holds ``N × (M + score_chunk)`` scores and one chunk of views,
   whatever the number of windows, and no autograd graph is built.
2. **Re-encoding, with gradient.** Only the M chosen windows are rated again, now with a
   graph, giving scores ``s_1..s_M``; their softmax ``a = softmax(s)`` weighs them.
3. **Attention-weighted aggregation.** The classifier reads the M windows (logits
   ``f_m``) and the reading is ``Σ_m a_m f_m`` (:meth:`IteratedPatchSelection.pool_candidates`).
   The scorer learns only through this aggregation: ``∂L/∂s_m = a_m (f_m − Σ a f) · ∂L/∂f̄``,
   so a window whose logits favour the label gains weight, and, because the same scorer
   ranks every window in step 1, the next selection prefers windows that look like it.

IPS aggregates patch *embeddings* with a cross-attention whose query is learned and
reads the class from the pooled embedding; here the suite's classifier is a separate
network that reads 48×48 images, so the attention pools its *logits* instead (the
reading of ``attention_windows``' sampling estimator, with the attention from a scorer
that reads the windows themselves). The selection scores and the aggregation scores are
the same function (the scorer has no batch norm or dropout), so the M windows read are
exactly the M best scored. Evaluation does the same: it scores every window without a
graph and cuts and classifies only the M selected.

Nothing is set from the objects: window sides are generic, the scorer starts from
PyTorch's random initialisation and learns from the class labels alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn.options import option
from stn.reducers.base import (
    LearnedReducerConfig,
    Reducer,
    ReducerConfigError,
    Size,
    register_reducer,
)
from stn.reducers.sampler_options import SamplingOptions
from stn.reducers.selection import (
    TrainingProgress,
    WindowChoiceOptions,
    attention_pool,
    uniform_choice,
)
from stn.reducers.windows import WindowGrid, WindowSampler

# --------------------------------------------------------------------------- views


class ScoringViews:
    """Every window of ``grid`` seen at ``size × size`` px, cheaply: the canvas is
    resized once per window side ``s`` (anti-aliased bilinear, to ``canvas · size / s``:
    a *level*; see :meth:`pyramid`), and a window's view is the ``size × size`` crop of
    its level at its origin scaled to the level, rounded to a whole pixel and kept inside
    the level.
    Cutting a view is then an index, not a resampling: scoring 432 windows costs three
    resizes of the canvas plus the scorer."""

    def __init__(self, grid: WindowGrid, size: int) -> None:
        if size < 1:
            raise ReducerConfigError(f"score_size must be >= 1 pixel, got {size}")
        self.grid = grid
        self.size = int(size)
        height, width = grid.canvas
        self.levels = [
            (max(size, round(height * size / side)), max(size, round(width * size / side)))
            for side in grid.sizes
        ]
        windows = torch.arange(grid.count)
        self.scale = grid.scale_of(windows)  # (P,)
        origin = grid.origins().double()  # (P, 2): x0, y0 in canvas pixels
        level_h = torch.tensor([h for h, _ in self.levels], dtype=torch.float64)[self.scale]
        level_w = torch.tensor([w for _, w in self.levels], dtype=torch.float64)[self.scale]
        x0 = (origin[:, 0] * level_w / width).round().clamp(min=0)
        y0 = (origin[:, 1] * level_h / height).round().clamp(min=0)
        self.origin = torch.stack(
            [x0.minimum(level_w - size), y0.minimum(level_h - size)], 1
        ).long()  # (P, 2): x0, y0 in level pixels

    def pyramid(self, x: Tensor) -> list[Tensor]:
        """One level ``(N, C, h_s, w_s)`` per window side (no parameters: no graph). Each
        level is resized from the smallest one already made that is at least as large
        (the canvas for the first): the canvas is filtered once at full size, the
        coarser levels from a level a few times smaller."""
        made: dict[tuple[int, int], Tensor] = {tuple(x.shape[-2:]): x}  # type: ignore[dict-item]
        with torch.no_grad():
            for level in sorted(set(self.levels), key=lambda hw: -hw[0] * hw[1]):
                source = min(
                    (t for hw, t in made.items() if hw[0] >= level[0] and hw[1] >= level[1]),
                    key=lambda t: t.shape[-1] * t.shape[-2],
                    default=x,
                )
                if tuple(source.shape[-2:]) != level:
                    made[level] = F.interpolate(source, size=level, mode="bilinear", antialias=True)
        return [made[level] for level in self.levels]

    def window_range(self, levels: list[Tensor], start: int, stop: int) -> Tensor:
        """``(N, stop − start, C, size, size)``: the views of windows ``start..stop − 1``
        (index order) of every image. Windows of one side sit on a separable grid, so the
        rows of cells a range spans are cut with two ``index_select``s, not one index per
        pixel; memory follows the range, not the grid."""
        rows, cols = self.grid.cells
        positions = rows * cols
        parts = []
        for s in range(start // positions, (stop - 1) // positions + 1):
            first, last = max(start, s * positions), min(stop, (s + 1) * positions)
            row0, row1 = (first - s * positions) // cols, (last - 1 - s * positions) // cols + 1
            base = s * positions
            ys = self.origin[base + row0 * cols : base + row1 * cols : cols, 1]  # (rows,)
            xs = self.origin[base : base + cols, 0]  # (cols,)
            steps = torch.arange(self.size)
            level = levels[s]
            block = level.index_select(2, (ys.view(-1, 1) + steps).flatten().to(level.device))
            block = block.index_select(3, (xs.view(-1, 1) + steps).flatten().to(level.device))
            n, c = block.shape[:2]
            block = block.view(n, c, row1 - row0, self.size, cols, self.size)
            block = block.permute(0, 2, 4, 1, 3, 5).reshape(n, -1, c, self.size, self.size)
            offset = base + row0 * cols
            parts.append(block[:, first - offset : last - offset])
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    def gather(self, levels: list[Tensor], image: Tensor, window: Tensor) -> Tensor:
        """``(J, C, size, size)``: the view of window ``window[j]`` of image ``image[j]``
        (both ``(J,)`` long)."""
        first = levels[0]
        out = first.new_empty(len(window), first.shape[1], self.size, self.size)
        steps = torch.arange(self.size, device=first.device)
        scale = self.scale.to(window.device)[window]
        origin = self.origin.to(window.device)[window]
        for s, level in enumerate(levels):
            chosen = (scale == s).nonzero().squeeze(1)
            if len(chosen) == 0:
                continue
            rows = (origin[chosen, 1:] + steps).view(-1, self.size, 1)
            cols = (origin[chosen, :1] + steps).view(-1, 1, self.size)
            views = level[image[chosen].view(-1, 1, 1), :, rows, cols]  # (J, size, size, C)
            out[chosen] = views.permute(0, 3, 1, 2)
        return out


# --------------------------------------------------------------------------- scorer


class WindowScorer(nn.Module):
    """``(J, C, r, r) → (J,)`` scores: stride-2 conv3×3–ReLU stages, then a hidden layer
    and one output. No batch norm or dropout, so a window scores the same in the
    no-gradient pass and in the re-encoding (the selection is the aggregation's top M)."""

    def __init__(self, in_channels: int, size: int, channels: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous, side = in_channels, size
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            previous, side = width, (side + 1) // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(previous * side * side, hidden),
            nn.ReLU(inplace=True),
            # No bias: a shift shared by every window changes neither the top M nor the
            # softmax over them, so it would never learn.
            nn.Linear(hidden, 1, bias=False),
        )

    def forward(self, views: Tensor) -> Tensor:
        return self.head(self.features(views)).squeeze(1)


def streamed_top_m(
    score_chunk: Callable[[Tensor], Tensor], count: int, m: int, chunk: int
) -> tuple[Tensor, Tensor]:
    """IPS's selection: the ``m`` best of ``count`` windows, scored ``chunk`` at a time.

    Args:
        score_chunk: window indices ``(J,)`` → their scores ``(N, J)`` for every image.
        count: windows in all; m: how many to keep; chunk: windows scored at once.

    Returns ``(N, m)`` scores and ``(N, m)`` window indices, best first. A memory of the
    best ``m`` so far is merged with each chunk and cut back to ``m``, so nothing grows
    with ``count``. Call it under ``torch.no_grad()``.
    """
    best_scores: Tensor | None = None
    best: Tensor | None = None
    for start in range(0, count, chunk):
        ids = torch.arange(start, min(start + chunk, count))
        scores = score_chunk(ids)  # (N, J)
        ids = ids.to(scores.device).expand_as(scores)
        if best_scores is not None and best is not None:
            scores, ids = torch.cat([best_scores, scores], 1), torch.cat([best, ids], 1)
        keep = scores.topk(min(m, scores.shape[1]), dim=1)
        best_scores, best = keep.values, ids.gather(1, keep.indices)
    if best_scores is None or best is None or best.shape[1] < m:
        raise ValueError(f"cannot keep {m} of {count} windows")
    return best_scores, best


# --------------------------------------------------------------------------- the reducer


@dataclass(frozen=True)
class IpsConfig(SamplingOptions, WindowChoiceOptions, LearnedReducerConfig):
    """Options of ``ips``; ``windows`` is M, the windows the classifier reads; the
    sampling kernel (``kernel``, ``antialias``, ``kernel_params``) reduces each to the
    output size."""

    cells: int = option(12, "window positions per side, for every window size")
    score_size: int = option(12, "side of the low-resolution view of a window the scorer reads")
    score_channels: tuple[int, ...] = option(
        [8, 16], "scorer: channels of each stride-2 conv3×3–ReLU stage"
    )
    score_hidden: int = option(32, "scorer: units of its hidden layer")
    score_chunk: int = option(
        144, "windows scored at once in the no-gradient pass (memory: one chunk of views)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.windows < 2:
            raise ReducerConfigError(
                f"ips needs windows >= 2: the scorer learns from the attention over the M "
                f"windows read, and a softmax over one window is 1 whatever it scores "
                f"(got windows={self.windows})"
            )
        for name in ("cells", "score_size", "score_hidden", "score_chunk"):
            if getattr(self, name) < 1:
                raise ReducerConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.score_channels or min(self.score_channels) < 1:
            raise ReducerConfigError(
                f"score_channels needs >= 1 stage of >= 1 channel, got {list(self.score_channels)}"
            )


@register_reducer("ips", IpsConfig)
class IteratedPatchSelection(Reducer):
    """``(N, C, H, W) → (N·M, C, h, w)``: the M best-scored windows per image (module
    docstring); :meth:`pool_candidates` weighs the classifier's logits on them by the
    softmax of their scores."""

    learned = True
    config: IpsConfig

    def __init__(
        self, config: IpsConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        self.grid = WindowGrid(self.input_size, tuple(config.window_sizes), (config.cells,) * 2)
        self.grid.check_selectable(config.windows)
        self.candidates = config.windows
        self.sampler = WindowSampler(
            self.grid, self.output_size, config.sampling_kernel(), config.antialias
        )
        self.views = ScoringViews(self.grid, config.score_size)
        self.scorer = WindowScorer(
            in_channels, config.score_size, tuple(config.score_channels), config.score_hidden
        )
        self.progress = TrainingProgress()
        self._weights: Tensor | None = None  # a = softmax(s) of the last forward (N, M)

    def on_step_start(self, step: int, total_steps: int) -> None:
        self.progress.update(step, total_steps)

    # ---- scoring

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"{self.name}: built for (N, C, {self.input_size[0]}, {self.input_size[1]}) "
                f"inputs, got {tuple(x.shape)}"
            )

    def _score_range(self, levels: list[Tensor], start: int, stop: int) -> Tensor:
        """``(N, stop − start)`` scores of windows ``start..stop − 1`` of every image."""
        views = self.views.window_range(levels, start, stop)
        return self.scorer(views.flatten(0, 1)).view(views.shape[0], -1)

    @torch.no_grad()
    def window_scores(self, x: Tensor) -> Tensor:
        """``(N, P)`` every window's score (index order of the grid), chunk by chunk."""
        self._check(x)
        levels = self.views.pyramid(x)
        chunk = self.config.score_chunk
        parts = [
            self._score_range(levels, s, min(s + chunk, self.grid.count))
            for s in range(0, self.grid.count, chunk)
        ]
        return torch.cat(parts, 1)

    def _select(self, levels: list[Tensor]) -> Tensor:
        """``(N, M)`` the M best-scored windows, best first (no graph)."""
        with torch.no_grad():
            _, best = streamed_top_m(
                lambda ids: self._score_range(levels, int(ids[0]), int(ids[-1]) + 1),
                self.grid.count,
                self.candidates,
                self.config.score_chunk,
            )
        return best

    @torch.no_grad()
    def select(self, x: Tensor) -> Tensor:
        """``(N, M)`` window indices an evaluation of ``x`` reads, best scored first."""
        self._check(x)
        return self._select(self.views.pyramid(x))

    # ---- the step

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        n = len(x)
        levels = self.views.pyramid(x)
        if self.training and self.progress.in_warmup(self.config.selection_warmup):
            indices = uniform_choice(n, self.grid.count, self.candidates, x.device)
        else:
            indices = self._select(levels)
        image = torch.arange(n, device=x.device).repeat_interleave(self.candidates)
        # Re-encode only the M chosen windows, with a graph: the aggregation's attention.
        scores = self.scorer(self.views.gather(levels, image, indices.flatten()))
        self._weights = torch.softmax(scores.view(n, self.candidates), dim=1)
        with torch.no_grad():  # window positions are discrete: no gradient flows to them
            return self.sampler.extract_selected(x, indices).flatten(0, 1)

    def pool_candidates(self, logits: Tensor) -> Tensor:
        """``(N, M, classes) → (N, classes)``: ``Σ_m a_m f_m`` with the attention of the
        last forward (the scorer's only path to the loss)."""
        weights, self._weights = self._weights, None
        return attention_pool(self.name, weights, logits)

    # ---- what was chosen (reports, figures)

    @torch.no_grad()
    def chosen_windows(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """What an evaluation reads for ``x``: ``(N, M)`` window indices (best scored
        first), ``(N, M, 4)`` their boxes ``(x0, y0, x1, y1)`` in input pixels and
        ``(N, M)`` their attention weights (softmax of their scores)."""
        self._check(x)
        levels = self.views.pyramid(x)
        indices = self._select(levels)
        image = torch.arange(len(x), device=x.device).repeat_interleave(self.candidates)
        scores = self.scorer(self.views.gather(levels, image, indices.flatten()))
        weights = torch.softmax(scores.view(len(x), -1), dim=1)
        return indices, self.grid.boxes(indices), weights

    @torch.no_grad()
    def forward_with_theta(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, C, h, w)`` the best-scored window of each image, and ``θ`` ``(N, M, 2, 3)``
        of all M windows an evaluation reads, best first (the region figure draws each)."""
        indices, _, _ = self.chosen_windows(x)
        first = self.sampler.extract_selected(x, indices[:, :1]).flatten(0, 1)
        return first, self.grid.theta(indices, x.dtype)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.described_options()}
