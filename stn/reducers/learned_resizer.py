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

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from stn.reducers.base import Reducer, ReducerConfigError, Size


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


class LearnedResizer(Reducer):
    """``(N, C, H, W) → (N, C, h, w)``: bilinear resize plus a learned residual.

    Args:
        filters: n, the width of every inner convolution.
        res_blocks: r, residual blocks at the output resolution.
        slope: LeakyReLU negative slope.
        antialias: widen the two bilinear resizes' filters on downscale (the paper's
            resize does not; ``false`` follows it).
        lr_multiplier: the resizer trains at ``trainer.lr × lr_multiplier``.
    """

    kind = "learned_resizer"
    learned = True

    def __init__(
        self,
        name: str,
        output_size: Size,
        in_channels: int,
        filters: int = 16,
        res_blocks: int = 1,
        slope: float = 0.2,
        antialias: bool = False,
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__(name, output_size)
        if filters < 1 or res_blocks < 0:
            raise ReducerConfigError(
                f"learned_resizer needs filters >= 1 and res_blocks >= 0, "
                f"got filters={filters}, res_blocks={res_blocks}"
            )
        if not lr_multiplier > 0:
            raise ReducerConfigError(f"lr_multiplier must be > 0, got {lr_multiplier}")
        self.antialias = antialias
        self.lr_multiplier = float(lr_multiplier)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, filters, 7, padding=3),
            nn.LeakyReLU(slope),
            nn.Conv2d(filters, filters, 1),
            nn.LeakyReLU(slope),
            nn.BatchNorm2d(filters),
        )
        self.blocks = nn.Sequential(*(ResBlock(filters, slope) for _ in range(res_blocks)))
        self.merge = nn.Sequential(
            nn.Conv2d(filters, filters, 3, padding=1), nn.BatchNorm2d(filters)
        )
        self.to_image = nn.Conv2d(filters, in_channels, 7, padding=3)

    def resize(self, x: Tensor) -> Tensor:
        return F.interpolate(
            x, size=self.output_size, mode="bilinear", align_corners=False, antialias=self.antialias
        )

    def forward(self, x: Tensor) -> Tensor:
        resized = self.resize(self.features(x))
        merged = self.merge(self.blocks(resized)) + resized
        return self.to_image(merged) + self.resize(x)


def build_learned_resizer(
    name: str, spec: Mapping[str, Any], in_channels: int, input_size: Size, output_size: Size
) -> Reducer:
    return LearnedResizer(
        name,
        output_size,
        in_channels,
        filters=int(spec.get("filters", 16)),
        res_blocks=int(spec.get("res_blocks", 1)),
        slope=float(spec.get("slope", 0.2)),
        antialias=bool(spec.get("antialias", False)),
        lr_multiplier=float(spec.get("lr_multiplier", 1.0)),
    )
