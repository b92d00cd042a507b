"""Datasets by name: ``load_dataset(name, root) -> (train, test or None)``."""

from __future__ import annotations

from pathlib import Path

from stn.data.embedded import load_embedded_digits
from stn.data.images import ImageSet

DATASETS = ("digits",)


def load_dataset(
    name: str, root: str | Path | None = None, **options: object
) -> tuple[ImageSet, ImageSet | None]:
    """Load a dataset; ``test`` is ``None`` where the source has no official split."""
    if name == "digits":
        return load_embedded_digits(), None
    raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
