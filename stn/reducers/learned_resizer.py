"""The learned resizer of Talebi & Milanfar, "Learning to Resize Images for Computer
Vision Tasks" (ICCV 2021, arXiv 2103.09950), trained jointly with the downstream network.

    f = BN(LeakyReLU(conv1×1(LeakyReLU(conv7×7(x)))))      n filters, input resolution
    f = bilinear_resize(f)                                 to the output size
    g = BN(conv3×3(ResBlock^r(f))) + f                     r residual blocks, skip
    y = conv7×7(g) + bilinear_resize(x)                    back to C channels, image skip

ResBlock: conv3×3 ─ BN ─ LeakyReLU ─ conv3×3 ─ BN, plus its input. The paper uses n = 16
filters, r = 1 or 2 blocks and LeakyReLU slope 0.2; n = 16, r = 1 keeps it CPU-sized.
"""

from __future__ import annotations

from dataclasses import dataclass

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


class ResBlock(nn.Module):
    """``(N, n, h, w) → (N, n, h, w)``: conv3×3-BN-LeakyReLU-conv3×3-BN plus the input."""

    def __init__(self, filters: int, slope: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(filters, filters, 3, padding=1),
            nn.BatchNorm2d(filters),
            nn.LeakyReLU(slope),
            nn.Conv2d(filters, filters, 3, padding=1),
            nn.BatchNorm2d(filters),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@dataclass(frozen=True)
class LearnedResizerConfig(LearnedReducerConfig):
    filters: int = option(16, "n, width of every inner convolution (paper: 16)")
    res_blocks: int = option(1, "r, residual blocks at the output resolution (paper: 1 or 2)")
    slope: float = option(0.2, "LeakyReLU negative slope (paper: 0.2)")
    antialias: bool = option(False, "widen the bilinear resizes on downscale (paper: false)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.filters < 1 or self.res_blocks < 0:
            raise ReducerConfigError(
                f"learned_resizer needs filters >= 1 and res_blocks >= 0, "
                f"got filters={self.filters}, res_blocks={self.res_blocks}"
            )
        if not self.lr_multiplier > 0:
            raise ReducerConfigError(f"lr_multiplier must be > 0, got {self.lr_multiplier}")


@register_reducer("learned_resizer", LearnedResizerConfig)
class LearnedResizer(Reducer):
    """``(N, C, H, W) → (N, C, h, w)``: bilinear resize plus a learned residual
    (options: :class:`LearnedResizerConfig`)."""

    learned = True
    config: LearnedResizerConfig

    def __init__(
        self, config: LearnedResizerConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        filters, slope = config.filters, config.slope
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, filters, 7, padding=3),
            nn.LeakyReLU(slope),
            nn.Conv2d(filters, filters, 1),
            nn.LeakyReLU(slope),
            nn.BatchNorm2d(filters),
        )
        self.blocks = nn.Sequential(*(ResBlock(filters, slope) for _ in range(config.res_blocks)))
        self.merge = nn.Sequential(
            nn.Conv2d(filters, filters, 3, padding=1), nn.BatchNorm2d(filters)
        )
        self.to_image = nn.Conv2d(filters, in_channels, 7, padding=3)
        # Weights in channels-last order: the CPU's convolutions then run the layers at the
        # input's full resolution about 1.9× faster (one thread, 276², a step of 32: 2.5 s
        # → 1.3 s); the same maths in another memory order (tested), kept by .to(device).
        self.to(memory_format=torch.channels_last)

    def resize(self, x: Tensor) -> Tensor:
        return F.interpolate(
            x,
            size=self.output_size,
            mode="bilinear",
            align_corners=False,
            antialias=self.config.antialias,
        )

    def forward(self, x: Tensor) -> Tensor:
        resized = self.resize(self.features(x))
        merged = self.merge(self.blocks(resized)) + resized
        return self.to_image(merged) + self.resize(x)
