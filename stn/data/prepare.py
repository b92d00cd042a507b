"""From a dataset description to the train and test batch streams of one run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from stn.data.canvas import CanvasSpec
from stn.data.catalog import load_dataset
from stn.data.images import ImageSet, stratified_split
from stn.data.stream import BatchStream


@dataclass(frozen=True)
class DatasetSpec:
    """What a ``conf/dataset/*.yaml`` preset describes (see the comments there)."""

    name: str
    source: str = "digits"
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    test_fraction: float = 0.2
    split_seed: int = 0
    limit_train: int | None = None
    limit_test: int | None = None
    canvas_size: int | None = None
    object_size: tuple[int, int] = (28, 28)
    object_scale: tuple[float, float] | None = None
    clutter: int = 0
    clutter_size: int = 8
    jitter: float = 1.0
    fresh_train_canvases: bool = True
    channels: int | None = None

    def canvas(self) -> CanvasSpec | None:
        if self.canvas_size is None:
            return None
        return CanvasSpec(
            size=int(self.canvas_size),
            object_size=(int(self.object_size[0]), int(self.object_size[1])),
            object_scale=None
            if self.object_scale is None
            else (float(self.object_scale[0]), float(self.object_scale[1])),
            clutter=int(self.clutter),
            clutter_size=int(self.clutter_size),
            jitter=float(self.jitter),
        )


@dataclass(frozen=True)
class PreparedData:
    train: BatchStream
    test: BatchStream
    num_classes: int

    def describe(self) -> dict[str, Any]:
        return {
            "n_train": len(self.train.images),
            "n_test": len(self.test.images),
            "num_classes": self.num_classes,
            "input_shape": list(self.train.input_shape),
        }


def _limit(images: ImageSet, limit: int | None) -> ImageSet:
    if limit is None or limit >= len(images):
        return images
    if limit < 1:
        raise ValueError(f"a dataset limit must be >= 1, got {limit}")
    return images.subset(np.arange(limit))


def _with_channels(images: ImageSet, channels: int | None) -> ImageSet:
    """Grey images repeated into ``channels`` identical channels (a colour-shaped input
    for throughput runs; it adds no colour information)."""
    if channels is None or channels == images.channels:
        return images
    if images.channels != 1 or channels < 1:
        raise ValueError(
            f"{images.name}: dataset.channels={channels} can only repeat 1-channel images "
            f"into more channels; this source has {images.channels}. Use channels=null."
        )
    return replace(images, images=np.repeat(images.images, channels, axis=1))


def prepare_data(spec: DatasetSpec, seed: int, batch_size: int) -> PreparedData:
    """Load, split (when the source has no official test split), and wrap in streams.

    The split and the test canvases depend on ``spec.split_seed`` only, so runs with
    different seeds are scored on the same test images; training order and training
    canvases follow the run's ``seed``.
    """
    train, test = load_dataset(spec.source, spec.root, **spec.options)
    if test is None:
        train_idx, test_idx = stratified_split(train.labels, spec.test_fraction, spec.split_seed)
        train, test = train.subset(train_idx), train.subset(test_idx)
    train, test = _limit(train, spec.limit_train), _limit(test, spec.limit_test)
    train, test = _with_channels(train, spec.channels), _with_channels(test, spec.channels)
    canvas = spec.canvas()
    return PreparedData(
        train=BatchStream(
            train, batch_size, canvas, seed, fresh_canvases=spec.fresh_train_canvases
        ),
        test=BatchStream(test, batch_size, canvas, spec.split_seed + 1_000_003),
        num_classes=train.num_classes,
    )
