"""Batches for training and evaluation, converted from uint8 (and rendered) per batch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from stn.data.canvas import CanvasSpec, render_canvases
from stn.data.images import ImageSet


@dataclass(frozen=True)
class Batch:
    """``x`` ``(B, C, H, W)`` float32 in [0, 1], ``y`` ``(B,)`` int64, ``boxes`` ``(B, 4)``."""

    x: Tensor
    y: Tensor
    boxes: Tensor | None


class BatchStream:
    """Iterate over one split in batches, as plain images or as cluttered canvases.

    Args:
        images: the split (uint8, stays uint8 in memory).
        batch_size: images per batch (the last batch may be smaller).
        canvas: render each image onto a cluttered canvas; ``None`` uses the images as
            they are.
        seed: fixes shuffling and canvas placement.
        fresh_canvases: re-draw canvas placements every epoch (training); otherwise
            every epoch sees the same canvases (evaluation).
    """

    def __init__(
        self,
        images: ImageSet,
        batch_size: int,
        canvas: CanvasSpec | None,
        seed: int,
        fresh_canvases: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(images) == 0:
            raise ValueError(f"{images.name}: the split is empty")
        if canvas is not None:
            canvas.validate(images.size)
        self.images = images
        self.batch_size = batch_size
        self.canvas = canvas
        self.seed = seed
        self.fresh_canvases = fresh_canvases

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the batches' images."""
        if self.canvas is None:
            return (self.images.channels, *self.images.size)
        return (self.images.channels, self.canvas.size, self.canvas.size)

    def batches(self, epoch: int = 0, shuffle: bool = False) -> Iterator[Batch]:
        order = np.arange(len(self.images))
        if shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(order)
        placement_epoch = epoch if self.fresh_canvases else 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.batch_of(idx, placement_epoch)

    def batch_of(self, idx: np.ndarray, placement_epoch: int = 0) -> Batch:
        y = torch.from_numpy(self.images.labels[idx])
        if self.canvas is None:
            x = torch.from_numpy(self.images.images[idx]).float().div_(255.0)
            boxes = (
                None
                if self.images.boxes is None
                else torch.from_numpy(self.images.boxes[idx]).float()
            )
            return Batch(x, y, boxes)
        x, boxes = render_canvases(self.images.images, idx, self.canvas, self.seed, placement_epoch)
        return Batch(x, y, boxes)
