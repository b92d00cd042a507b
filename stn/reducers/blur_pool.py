"""Anti-aliased pooling in the manner of Zhang, "Making Convolutional Networks
Shift-Invariant Again" (ICML 2019): low-pass with a binomial filter, then subsample.

Zhang blurs and then strides by an integer factor. To reach 48×48 from any size
(276 → 48 is 5.75× per axis) this reducer:

1. blurs at full resolution with a separable binomial filter whose width follows the
   factor f = H / h per axis: ``taps = 2·⌈f⌉ − 1`` (f = 2 → [1, 2, 1]; f = 5.75 → 11 taps),
   i.e. about the footprint of two output pixels, like Pillow's bilinear filter
   (a triangle of half-width f); reflect padding, as in Zhang's BlurPool;
2. subsamples bilinearly at the exact output-pixel centres (``align_corners=False``), so
   non-integer factors do not drift. At f = 2 this adds a [1, 1] average, and the whole
   is Zhang's 4-tap [1, 3, 3, 1] BlurPool.

``taps`` can be set per preset to override the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from scipy.special import comb
from torch import Tensor

from stn.options import option
from stn.reducers.base import Reducer, ReducerConfig, ReducerConfigError, Size, register_reducer


def binomial_taps(factor: float) -> int:
    """Filter width for a downscale ``factor``: ``2·⌈factor⌉ − 1`` (odd, >= 1)."""
    return max(1, 2 * math.ceil(factor - 1e-9) - 1)


def binomial_filter(taps: int) -> Tensor:
    """Row ``taps − 1`` of Pascal's triangle, normalised to sum 1: ``(taps,)`` float32."""
    if taps < 1:
        raise ReducerConfigError(f"a binomial filter needs taps >= 1, got {taps}")
    weights = torch.tensor(
        [comb(taps - 1, i, exact=True) for i in range(taps)], dtype=torch.float64
    )
    return (weights / weights.sum()).float()


@dataclass(frozen=True)
class BlurPoolConfig(ReducerConfig):
    # Any: an integer or an [h, w] pair or null (OmegaConf has no union of int and list).
    taps: Any = option(None, "binomial filter width, one or [h, w]; null = 2·ceil(H/h) − 1")

    def __post_init__(self) -> None:
        taps = self.taps
        if isinstance(taps, int) and not isinstance(taps, bool):
            taps = (taps, taps)
        if taps is not None:
            pair = tuple(taps) if isinstance(taps, (list, tuple)) else ()
            if len(pair) != 2 or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in pair
            ):
                raise ReducerConfigError(
                    f"pool_blur taps must be an integer, [h, w] integers or null, got {self.taps!r}"
                )
            taps = pair
        object.__setattr__(self, "taps", taps)


@register_reducer("pool_blur", BlurPoolConfig)
class BlurPool(Reducer):
    """``(N, C, H, W) → (N, C, h, w)``: separable binomial blur, then bilinear subsample."""

    config: BlurPoolConfig

    def __init__(
        self, config: BlurPoolConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        taps = config.taps
        if taps is None:
            taps = tuple(
                binomial_taps(size_in / size_out)
                for size_in, size_out in zip(self.input_size, self.output_size, strict=True)
            )
        for axis, (t, size_in) in enumerate(zip(taps, self.input_size, strict=True)):
            if t < 1 or t // 2 >= size_in:
                raise ReducerConfigError(
                    f"pool_blur taps={t} on axis {axis} must lie in [1, {2 * size_in - 1}] "
                    f"for a {size_in}-pixel input"
                )
        self.taps = (int(taps[0]), int(taps[1]))
        # Depthwise kernels (C, 1, t, 1) and (C, 1, 1, t); buffers so .to(device) moves them.
        rows = binomial_filter(self.taps[0]).view(1, 1, -1, 1).repeat(in_channels, 1, 1, 1)
        cols = binomial_filter(self.taps[1]).view(1, 1, 1, -1).repeat(in_channels, 1, 1, 1)
        self.register_buffer("row_filter", rows, persistent=False)
        self.register_buffer("col_filter", cols, persistent=False)

    def blur(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) → (N, C, H, W)``: the binomial low-pass, reflect-padded."""
        ph, pw = self.taps[0] // 2, self.taps[1] // 2
        if ph:
            x = F.conv2d(
                F.pad(x, (0, 0, ph, ph), mode="reflect"), self.row_filter, groups=self.in_channels
            )
        if pw:
            x = F.conv2d(
                F.pad(x, (pw, pw, 0, 0), mode="reflect"), self.col_filter, groups=self.in_channels
            )
        return x

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(
            self.blur(x), size=self.output_size, mode="bilinear", align_corners=False
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "taps": list(self.taps)}
