"""Saliency-based sampler (Recasens et al., "Learning to Zoom", ECCV 2018, arXiv 1809.03355).

A small network scores the saliency ``S`` of every cell of a coarse grid over a cheap
low-resolution copy; each output grid point is pulled towards salient cells,

    u(x) = Σ_x' S(x') k(x, x') x' / Σ_x' S(x') k(x, x')      (k: a Gaussian)

so salient regions get more samples (magnified) without regressing any coordinate. The
saliency map is padded by replicating its border (the paper's fix for the pull towards the
centre), the coarse grid is upsampled to the output size and the input is sampled there
with any kernel of ``stn.sampling.grid.grid_sample``. A uniform saliency (the start: its last
layer is zero) gives the identity grid, i.e. a plain resize.
"""

from __future__ import annotations

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
from stn.reducers.layers import conv_stages, standardize
from stn.reducers.sampler_options import LocalisationOptions, SamplingOptions
from stn.sampling.grid import grid_sample


def gaussian_taps(radius: int, sigma: float, like: Tensor) -> Tensor:
    """``(2·radius + 1,)`` Gaussian weights at integer offsets (not normalised)."""
    offsets = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    return torch.exp(-0.5 * (offsets / sigma) ** 2)


def saliency_grid(saliency: Tensor, positions: tuple[Tensor, Tensor], sigma: float) -> Tensor:
    """Sampling grid ``(N, g_h, g_w, 2)`` (x, y in [-1, 1]) pulled towards salient cells.

    Args:
        saliency: ``(N, g_h, g_w)`` non-negative weights.
        positions: ``(g_h,)`` y and ``(g_w,)`` x normalised coordinates of the cells,
            evenly spaced; the grid starts there (uniform saliency → these positions).
        sigma: Gaussian width in cells.
    """
    ys, xs = positions
    radius = max(1, int(round(3 * sigma)))
    taps = gaussian_taps(radius, sigma, saliency)
    # Replicate padding of the saliency; the padded cells' coordinates continue the even
    # spacing, so a uniform map is exactly linear-preserving (u(x) = x).
    padded = F.pad(saliency.unsqueeze(1), (radius,) * 4, mode="replicate")  # (N, 1, H+2r, W+2r)

    def extend(coords: Tensor) -> Tensor:
        step = coords[1] - coords[0] if len(coords) > 1 else coords.new_tensor(1.0)
        offsets = torch.arange(1, radius + 1, dtype=coords.dtype, device=coords.device)
        before = coords[0] - step * offsets.flip(0)
        after = coords[-1] + step * offsets
        return torch.cat([before, coords, after])

    px, py = extend(xs), extend(ys)

    def blur(field: Tensor) -> Tensor:  # separable Gaussian, valid region → (N, 1, g_h, g_w)
        field = F.conv2d(field, taps.view(1, 1, 1, -1))
        return F.conv2d(field, taps.view(1, 1, -1, 1))

    mass = blur(padded)
    grid_x = blur(padded * px.view(1, 1, 1, -1)) / mass
    grid_y = blur(padded * py.view(1, 1, -1, 1)) / mass
    return torch.cat([grid_x, grid_y], dim=1).permute(0, 2, 3, 1).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class SaliencyConfig(SamplingOptions, LocalisationOptions, LearnedReducerConfig):
    """Options of the saliency sampler; ``loc_*`` set its saliency net (the map is
    ``loc_size / 2^stages`` cells a side), the shared ones come from the option groups."""

    grid_size: int = option(31, "side of the coarse grid the saliency is upsampled to")
    sigma: float = option(
        4.0, "Gaussian pull width in grid cells (larger: smoother, less magnification)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loc_size % 2 ** len(self.loc_channels):
            raise ReducerConfigError(
                f"loc_size {self.loc_size} must be divisible by 2^{len(self.loc_channels)} "
                "(one halving per loc_channels stage); try 32, 64 or 96"
            )
        if self.grid_size < 2:
            raise ReducerConfigError(f"grid_size must be >= 2, got {self.grid_size}")
        if not self.sigma > 0:
            raise ReducerConfigError(f"sigma must be > 0, got {self.sigma}")


@register_reducer("saliency", SaliencyConfig)
class SaliencySampler(Reducer):
    """Learned reducer ``(N, C, H, W) → (N, C, *output_size)`` that magnifies salient regions
    (options: :class:`SaliencyConfig`); the saliency net trains at
    ``trainer.lr × lr_multiplier``."""

    learned = True
    config: SaliencyConfig

    def __init__(
        self, config: SaliencyConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        self.kernel = config.sampling_kernel()  # built once; every batch samples with it
        channels = config.loc_channels
        width = channels[-1] if channels else in_channels
        self.features = conv_stages(in_channels, channels, batch_norm=False)
        self.score = nn.Conv2d(width, 1, 1)
        with torch.no_grad():  # uniform saliency at the start: the identity grid
            self.score.weight.zero_()
            self.score.bias.zero_()

    def describe(self) -> dict[str, Any]:
        """Identity and size, and every option: tables and figures group by the kernel."""
        return {**super().describe(), **self.described_options()}

    def saliency(self, x: Tensor) -> Tensor:
        """``(N, grid_size, grid_size)`` saliency (softmax over cells, sums to 1)."""
        c = self.config
        low = F.adaptive_avg_pool2d(x, c.loc_size)
        low = standardize(low) if c.loc_norm == "standardize" else low
        logits = self.score(self.features(low))
        side = c.grid_size
        logits = F.interpolate(logits, size=(side, side), mode="bilinear", align_corners=False)
        n = logits.shape[0]
        return logits.view(n, -1).softmax(1).view(n, side, side)

    def grid(self, x: Tensor) -> Tensor:
        """The ``(N, h, w, 2)`` sampling grid for ``x`` ``(N, C, H, W)``."""
        h, w = self.output_size
        # Coarse positions run from the first to the last output pixel centre, so an
        # align_corners=True upsampling lands exactly on the output pixel centres.
        side = self.config.grid_size
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, side, dtype=x.dtype, device=x.device)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, side, dtype=x.dtype, device=x.device)
        coarse = saliency_grid(self.saliency(x), (ys, xs), self.config.sigma)
        fine = F.interpolate(
            coarse.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True
        )
        return fine.permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return grid_sample(x, self.grid(x), self.kernel, self.config.antialias)
