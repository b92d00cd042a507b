"""Spatial transformer: localisation net → θ → output grid → sampler with any kernel.

Jaderberg et al. 2015 (arXiv 1506.02025). The localisation net looks at a cheap
low-resolution copy of the input (so its cost does not grow with the canvas), predicts
the parameters of a transform family initialised at the identity, and the input is
sampled on the transformed ``output_size`` grid with any registered kernel, optionally
anti-aliased (``stn.sampling``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn.kernels import get_kernel
from stn.reducers import Reducer, ReducerConfigError, Size
from stn.sampling import affine_grid, grid_sample, sample_axis_aligned

# family → number of parameters the localisation net predicts
TRANSFORMS = {"affine": 6, "attention": 3}
HEAD_INITS = ("zeros", "small")


class NonFiniteTransformError(RuntimeError):
    """The localisation net produced a non-finite θ: training diverged."""


class LocalisationNet(nn.Module):
    """``(N, C, s, s) → (N, n_params)``: (conv–pool) stages, a hidden layer, a linear head.

    The head starts at the identity transform: its bias holds the identity parameters and
    its weights are zero (``head_init="zeros"``, the STN paper) or small random values
    (``"small"``), so every image starts with the same (identity) transform.
    """

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        identity: Sequence[float],
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        head_init: str = "zeros",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if head_init not in HEAD_INITS:
            raise ReducerConfigError(
                f"loc_head_init {head_init!r} is not one of {', '.join(HEAD_INITS)}"
            )
        shrink = 2 ** len(channels)
        if input_size % shrink:
            raise ReducerConfigError(
                f"loc_size {input_size} must be divisible by {shrink} "
                f"({len(channels)} conv–pool stages); try 32, 64 or 96"
            )
        layers: list[nn.Module] = []
        width = in_channels
        for out in channels:
            layers.append(nn.Conv2d(width, out, 5, padding=2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            width = out
        side = input_size // shrink
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(width * side * side, hidden), nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, len(identity))
        with torch.no_grad():
            if head_init == "zeros":
                self.head.weight.zero_()
            else:
                self.head.weight.normal_(0.0, 1e-3)
            self.head.bias.copy_(torch.tensor(identity, dtype=self.head.bias.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.hidden(self.features(x)))


def theta_from_params(params: Tensor, transform: str) -> Tensor:
    """``(N, k)`` transform parameters → affine ``θ`` ``(N, 2, 3)``.

    ``affine``: the six entries row by row. ``attention``: ``(s, t_x, t_y)`` →
    ``[[s, 0, t_x], [0, s, t_y]]`` (isotropic zoom and shift, as in the STN paper).
    """
    if transform == "affine":
        return params.view(-1, 2, 3)
    s, tx, ty = params.unbind(1)
    zero = torch.zeros_like(s)
    return torch.stack([s, zero, tx, zero, s, ty], dim=1).view(-1, 2, 3)


IDENTITY = {"affine": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), "attention": (1.0, 0.0, 0.0)}


class SpatialTransformer(Reducer):
    """Learned reducer ``(N, C, H, W) → (N, C, *output_size)``.

    Args:
        name: preset name.
        output_size: ``(h, w)`` of the sampled grid.
        in_channels: C.
        transform: ``affine`` (6 parameters) or ``attention`` (zoom + shift, 3).
        kernel: sampling kernel name (``stn.kernels.kernel_names()``).
        antialias: widen the kernel by the local sampling step (``stn.sampling``).
        loc_size: side of the low-resolution copy the localisation net sees.
        loc_channels, loc_hidden, loc_batch_norm, loc_head_init: localisation net.
        lr_multiplier: the localisation net trains at ``lr × lr_multiplier`` (the STN
            paper used 0.1).
        kernel_params: e.g. ``{"sigma": 0.5}`` for the gaussian kernel.
    """

    kind = "stn"
    learned = True

    def __init__(
        self,
        name: str,
        output_size: Size,
        in_channels: int,
        transform: str = "attention",
        kernel: str = "bilinear",
        antialias: bool = False,
        loc_size: int = 32,
        loc_channels: Sequence[int] = (16, 32),
        loc_hidden: int = 64,
        loc_batch_norm: bool = False,
        loc_head_init: str = "zeros",
        lr_multiplier: float = 0.1,
        kernel_params: dict[str, float] | None = None,
    ) -> None:
        super().__init__(name, output_size)
        if transform not in TRANSFORMS:
            raise ReducerConfigError(
                f"transform {transform!r} is not one of {', '.join(TRANSFORMS)}"
            )
        self.kernel_params = dict(kernel_params or {})
        try:
            get_kernel(kernel, **self.kernel_params)
        except (ValueError, TypeError) as err:
            raise ReducerConfigError(str(err)) from err
        if lr_multiplier < 0:
            raise ReducerConfigError(f"lr_multiplier must be >= 0, got {lr_multiplier}")
        self.transform = transform
        self.kernel = kernel
        self.antialias = antialias
        self.loc_size = int(loc_size)
        self.lr_multiplier = float(lr_multiplier)
        self.localisation = LocalisationNet(
            in_channels,
            self.loc_size,
            IDENTITY[transform],
            loc_channels,
            loc_hidden,
            loc_head_init,
            loc_batch_norm,
        )

    def low_resolution(self, x: Tensor) -> Tensor:
        """The ``(N, C, loc_size, loc_size)`` copy the localisation net sees."""
        if x.shape[-2:] == (self.loc_size, self.loc_size):
            return x
        return F.adaptive_avg_pool2d(x, self.loc_size)

    def params(self, x: Tensor) -> Tensor:
        params = self.localisation(self.low_resolution(x))
        if self.training and not torch.isfinite(params).all():
            raise NonFiniteTransformError(
                f"{self.name}: the localisation net produced a non-finite transform; "
                "lower trainer.lr or reducer.lr_multiplier"
            )
        return params

    def sample(self, x: Tensor, params: Tensor) -> Tensor:
        """Sample ``x`` ``(N, C, H, W)`` on the grid of ``params`` ``(N, k)``."""
        if self.transform == "attention" and (self.antialias or self.kernel != "bilinear"):
            # Axis-aligned: separable, two small matrix products per image, any support.
            scale, translation = params[:, :1].expand(-1, 2), params[:, 1:]
            return sample_axis_aligned(
                x,
                scale,
                translation,
                self.output_size,
                self.kernel,
                self.antialias,
                **self.kernel_params,
            )
        grid = affine_grid(theta_from_params(params, self.transform), self.output_size)
        return grid_sample(x, grid, self.kernel, self.antialias, **self.kernel_params)

    def forward_with_theta(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, C, h, w)`` output and the affine ``θ`` ``(N, 2, 3)`` it sampled with."""
        params = self.params(x)
        return self.sample(x, params), theta_from_params(params, self.transform)

    def forward(self, x: Tensor) -> Tensor:
        return self.sample(x, self.params(x))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "transform": self.transform,
            "kernel": self.kernel,
            "antialias": self.antialias,
            "loc_size": self.loc_size,
            "lr_multiplier": self.lr_multiplier,
        }
