"""``F.interpolate`` straight to the output size (the naive baselines)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from stn.options import option
from stn.reducers.base import (
    Reducer,
    ReducerConfig,
    ReducerConfigError,
    register_reducer,
    require_choice,
)

RESIZE_MODES = ("nearest", "bilinear", "bicubic", "area")
ANTIALIAS_MODES = ("bilinear", "bicubic")


@dataclass(frozen=True)
class ResizeConfig(ReducerConfig):
    mode: str = option("bilinear", f"interpolation: {', '.join(RESIZE_MODES)}")
    antialias: bool = option(False, "widen the filter by the downscale factor (bilinear, bicubic)")

    def __post_init__(self) -> None:
        require_choice("resize mode", self.mode, RESIZE_MODES)
        if self.antialias and self.mode not in ANTIALIAS_MODES:
            raise ReducerConfigError(
                f"antialias=true needs mode bilinear or bicubic, not {self.mode!r} "
                "(area already averages every input pixel)"
            )


@register_reducer("resize", ResizeConfig)
class Resize(Reducer):
    """``F.interpolate`` to the output size; ``antialias`` widens the filter on downscale."""

    config: ResizeConfig

    def forward(self, x: Tensor) -> Tensor:
        mode, antialias = self.config.mode, self.config.antialias
        align = False if mode in ANTIALIAS_MODES else None
        return F.interpolate(
            x, size=self.output_size, mode=mode, align_corners=align, antialias=antialias
        )
