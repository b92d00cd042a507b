"""Pooling to the output size: non-overlapping windows, or adaptive."""

from __future__ import annotations

from dataclasses import dataclass

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

POOL_MODES = ("avg", "max", "adaptive_avg", "adaptive_max")


@dataclass(frozen=True)
class PoolConfig(ReducerConfig):
    mode: str = option(
        "avg", "avg/max: input a multiple of the output; adaptive_avg/adaptive_max: any size"
    )

    def __post_init__(self) -> None:
        require_choice("pool mode", self.mode, POOL_MODES)


@register_reducer("pool", PoolConfig)
class Pool(Reducer):
    """Non-overlapping pooling (``avg``/``max``) or adaptive pooling to the output size."""

    config: PoolConfig

    def __init__(
        self, config: PoolConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        self.mode = mode = config.mode
        self.factor: Size | None = None
        if mode in ("avg", "max"):
            factors = []
            for axis, (size_in, size_out) in enumerate(
                zip(self.input_size, self.output_size, strict=True)
            ):
                if size_in % size_out:
                    multiples = ", ".join(str(size_out * k) for k in range(2, 7))
                    raise ReducerConfigError(
                        f"pool_{mode} cannot reach {size_out} from {size_in} on axis {axis}: "
                        f"the input size must be a multiple of the output size ({multiples}, ...). "
                        "Use reducer=pool_adaptive for any size."
                    )
                factors.append(size_in // size_out)
            self.factor = (factors[0], factors[1])

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "avg":
            return F.avg_pool2d(x, self.factor)
        if self.mode == "max":
            return F.max_pool2d(x, self.factor)
        if self.mode == "adaptive_avg":
            return F.adaptive_avg_pool2d(x, self.output_size)
        return F.adaptive_max_pool2d(x, self.output_size)
