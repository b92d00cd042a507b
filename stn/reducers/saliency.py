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

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn.reducers.base import Reducer, ReducerConfigError, Size
from stn.reducers.transformer import LOC_NORMS, conv_stages, standardize
from stn.sampling.grid import grid_sample
from stn.sampling.kernels import get_kernel


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


class SaliencySampler(Reducer):
    """Learned reducer ``(N, C, H, W) → (N, C, *output_size)`` that magnifies salient regions.

    Args:
        name: preset name.
        output_size: ``(h, w)``.
        in_channels: C.
        kernel, antialias, kernel_params: the sampler (``stn.sampling.grid.grid_sample``).
        loc_size: side of the low-resolution copy the saliency net sees.
        loc_channels: saliency net (conv–pool) stages; the map is ``loc_size / 2^stages``.
        loc_norm: ``none`` or ``standardize`` (per image) for the low-res copy.
        grid_size: side of the coarse grid the saliency is upsampled to.
        sigma: Gaussian width in grid cells (larger: smoother, less magnification).
        lr_multiplier: the saliency net trains at ``lr × lr_multiplier``.
    """

    kind = "saliency"
    learned = True

    def __init__(
        self,
        name: str,
        output_size: Size,
        in_channels: int,
        kernel: str = "bilinear",
        antialias: bool = False,
        loc_size: int = 64,
        loc_channels: Sequence[int] = (16, 32),
        loc_norm: str = "standardize",
        grid_size: int = 31,
        sigma: float = 4.0,
        lr_multiplier: float = 1.0,
        kernel_params: dict[str, float] | None = None,
    ) -> None:
        super().__init__(name, output_size)
        self.kernel_params = dict(kernel_params or {})
        try:
            get_kernel(kernel, **self.kernel_params)
        except (ValueError, TypeError) as err:
            raise ReducerConfigError(str(err)) from err
        if loc_norm not in LOC_NORMS:
            raise ReducerConfigError(f"loc_norm {loc_norm!r} is not one of {', '.join(LOC_NORMS)}")
        if loc_size % 2 ** len(loc_channels):
            raise ReducerConfigError(
                f"loc_size {loc_size} must be divisible by 2^{len(loc_channels)} "
                "(one halving per loc_channels stage); try 32, 64 or 96"
            )
        if grid_size < 2:
            raise ReducerConfigError(f"grid_size must be >= 2, got {grid_size}")
        if not sigma > 0:
            raise ReducerConfigError(f"sigma must be > 0, got {sigma}")
        if lr_multiplier < 0:
            raise ReducerConfigError(f"lr_multiplier must be >= 0, got {lr_multiplier}")
        self.kernel, self.antialias = kernel, bool(antialias)
        self.loc_size, self.loc_norm = int(loc_size), loc_norm
        self.grid_size, self.sigma = int(grid_size), float(sigma)
        self.lr_multiplier = float(lr_multiplier)
        width = loc_channels[-1] if loc_channels else in_channels
        self.features = conv_stages(in_channels, loc_channels, batch_norm=False)
        self.score = nn.Conv2d(width, 1, 1)
        with torch.no_grad():  # uniform saliency at the start: the identity grid
            self.score.weight.zero_()
            self.score.bias.zero_()

    def saliency(self, x: Tensor) -> Tensor:
        """``(N, grid_size, grid_size)`` saliency (softmax over cells, sums to 1)."""
        low = F.adaptive_avg_pool2d(x, self.loc_size)
        low = standardize(low) if self.loc_norm == "standardize" else low
        logits = self.score(self.features(low))
        logits = F.interpolate(
            logits, size=(self.grid_size, self.grid_size), mode="bilinear", align_corners=False
        )
        n = logits.shape[0]
        return logits.view(n, -1).softmax(1).view(n, self.grid_size, self.grid_size)

    def grid(self, x: Tensor) -> Tensor:
        """The ``(N, h, w, 2)`` sampling grid for ``x`` ``(N, C, H, W)``."""
        h, w = self.output_size
        # Coarse positions run from the first to the last output pixel centre, so an
        # align_corners=True upsampling lands exactly on the output pixel centres.
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, self.grid_size, dtype=x.dtype, device=x.device)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, self.grid_size, dtype=x.dtype, device=x.device)
        coarse = saliency_grid(self.saliency(x), (ys, xs), self.sigma)
        fine = F.interpolate(
            coarse.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True
        )
        return fine.permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return grid_sample(x, self.grid(x), self.kernel, self.antialias, **self.kernel_params)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "kernel": self.kernel,
            "antialias": self.antialias,
            "loc_size": self.loc_size,
            "loc_norm": self.loc_norm,
            "grid_size": self.grid_size,
            "sigma": self.sigma,
            "lr_multiplier": self.lr_multiplier,
        }
