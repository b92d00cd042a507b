"""Layers more than one reducer kind builds from (the STN's localisation net, the saliency
sampler's detector): kept apart so that no kind borrows from another's module."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


def conv_stages(in_channels: int, channels: Sequence[int], batch_norm: bool) -> nn.Sequential:
    """(5×5 conv [– batch norm] – ReLU – 2×2 max-pool) per entry of ``channels``."""
    layers: list[nn.Module] = []
    width = in_channels
    for out in channels:
        layers.append(nn.Conv2d(width, out, 5, padding=2))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        width = out
    return nn.Sequential(*layers)


def standardize(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-image standardisation of ``(N, C, H, W)``: zero mean, unit variance per image."""
    mean = x.mean((1, 2, 3), keepdim=True)
    std = x.std((1, 2, 3), keepdim=True, unbiased=False)
    return (x - mean) / (std + eps)
