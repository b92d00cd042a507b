"""From a dataset description to the train and test batch streams of one run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stn.data.canvas import CanvasSpec
from stn.data.catalog import load_dataset, source_options
from stn.data.images import ImageSet, stratified_split
from stn.data.stream import BatchStream
from stn.options import option


@dataclass(frozen=True)
class DatasetSpec:
    """The ``dataset`` section: the one home of each option's default, type and help.

    The defaults are the default preset, ``digits_96``; ``conf/dataset/*.yaml`` presets
    extend it (Hydra schema ``dataset/base_dataset``) and only override.
    """

    name: str = option("digits_96", "label in tables, records and run names")
    source: str = option("digits", "stn.data.catalog name (digits: the embedded MNIST digits)")
    root: str | None = option(None, "folder for sources read from disk (null: the default)")
    options: dict[str, Any] = option({}, "source-specific reader options")
    test_fraction: float = option(
        0.2, "held-out share (stratified) when the source has no test split"
    )
    split_seed: int = option(0, "fixes the split and the test canvases for every run seed")
    limit_train: int | None = option(
        None, "use only the first N training images (smoke tests); null: all"
    )
    limit_test: int | None = option(None, "use only the first N test images; null: all")
    canvas_size: int | None = option(96, "canvas side in pixels; null = the images as they are")
    object_size: tuple[int, int] = option(
        (24, 40), "object side in pixels [min, max], drawn uniformly per canvas"
    )
    object_scale: tuple[float, float] | None = option(
        None, "or the side as a fraction of the canvas, e.g. [0.25, 0.25] (null: object_size)"
    )
    clutter: int = option(6, "clutter fragments per canvas, cut from other images of the split")
    clutter_size: int = option(8, "fragment side in pixels")
    jitter: float = option(
        0.5, "object offset from the centre as a fraction of the free space (1: anywhere)"
    )
    fresh_train_canvases: bool = option(
        True, "re-draw training placements each epoch (test canvases stay fixed)"
    )
    channels: int | None = option(
        None,
        "repeat grey images into N channels (e.g. 3 for colour-shaped throughput runs); "
        "null: as they are",
    )

    def __post_init__(self) -> None:
        # The source and its options checked now, before any file is read: an unknown
        # source or option names the closest. The section keeps them as given (a mapping).
        source_options(self.source, self.options)

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


class DatasetSplitError(ValueError):
    """A split a run cannot learn or be scored on (empty, or one class); the message names
    the dataset, the split and the fix."""


def _describe_source(spec: DatasetSpec) -> str:
    root = f", root {spec.root}" if spec.root else ""
    return f"dataset {spec.name!r} (source {spec.source!r}{root})"


def _images_per_class_needed(test_fraction: float) -> int:
    """The fewest images a class needs so that the stratified split leaves it at least one
    in each split (``round(n · fraction)`` test images, Python's rounding)."""
    n = 2
    while not 1 <= round(n * test_fraction) <= n - 1:
        n += 1
    return n


def _split_fix(spec: DatasetSpec, whole: ImageSet | None, split: str) -> str:
    """Why ``split`` came out empty and how to fill it; ``whole`` is the set the run split
    itself (``None``: the source's own split files)."""
    if whole is None:
        return (
            f"the source's {split} files hold no images; point dataset.root at files that hold some"
        )
    counts = np.bincount(whole.labels, minlength=whole.num_classes)
    fraction = spec.test_fraction
    return (
        f"its {len(whole)} images (as few as {int(counts[counts > 0].min())} in a class) are "
        f"split per class with dataset.test_fraction={fraction:g}, which leaves the {split} "
        f"split no image; give each class at least {_images_per_class_needed(fraction)} "
        "images, or set dataset.test_fraction nearer 0.5"
    )


def check_splits(
    spec: DatasetSpec, train: ImageSet, test: ImageSet, whole: ImageSet | None
) -> None:
    """Raise :class:`DatasetSplitError` unless both splits hold images and the training
    split holds at least two classes; ``whole`` is the set the run split itself (``None``
    for a source's official split). Called before any training: an empty split said only
    "the split is empty", and a one-class set trained to the end and then failed."""
    for split, images in (("train", train), ("test", test)):
        if len(images) == 0:
            raise DatasetSplitError(
                f"{_describe_source(spec)}: the {split} split is empty: "
                f"{_split_fix(spec, whole, split)}"
            )
    classes = np.unique(train.labels)
    if len(classes) < 2:
        names = train.class_names
        shown = names[int(classes[0])] if names and len(classes) == 1 else str(classes.tolist())
        fix = (
            "add a sub-folder of images for each further class"
            if spec.source == "folder"
            else "use a source with images of at least two classes"
        )
        raise DatasetSplitError(
            f"{_describe_source(spec)}: the train split holds images of one class only "
            f"({shown}); a classifier needs at least two to learn anything: {fix}"
        )


def prepare_data(spec: DatasetSpec, seed: int, batch_size: int) -> PreparedData:
    """Load, split (when the source has no official test split), and wrap in streams.

    The split and the test canvases depend on ``spec.split_seed`` only, so runs with
    different seeds are scored on the same test images; training order and training
    canvases follow the run's ``seed``. Raises :class:`DatasetSplitError` for an empty
    split or a training split of one class.
    """
    train, test = load_dataset(spec.source, spec.root, **spec.options)
    whole = None
    if test is None:
        whole = train
        if len(whole) == 0:
            raise DatasetSplitError(f"{_describe_source(spec)}: the source holds no images")
        train_idx, test_idx = stratified_split(train.labels, spec.test_fraction, spec.split_seed)
        train, test = train.subset(train_idx), train.subset(test_idx)
    train, test = _limit(train, spec.limit_train), _limit(test, spec.limit_test)
    check_splits(spec, train, test, whole)
    train, test = _with_channels(train, spec.channels), _with_channels(test, spec.channels)
    canvas = spec.canvas()
    return PreparedData(
        train=BatchStream(
            train, batch_size, canvas, seed, fresh_canvases=spec.fresh_train_canvases
        ),
        test=BatchStream(test, batch_size, canvas, spec.split_seed + 1_000_003),
        num_classes=train.num_classes,
    )
