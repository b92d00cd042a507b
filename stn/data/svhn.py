"""SVHN cropped digits (format 2): ``train_32x32.mat``, ``test_32x32.mat``, ``extra_32x32.mat``.

Each file holds ``X``: uint8 ``(32, 32, 3, N)`` (height, width, RGB, image) and ``y``:
``(N, 1)`` with digits 1–9 as themselves and digit 0 as label 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stn.data.files import DatasetFormatError, check_labels, missing_files, require_root
from stn.data.images import ImageSet
from stn.data.sources import register_source
from stn.options import option

SVHN_HOW = (
    "Download train_32x32.mat and test_32x32.mat (format 2, http://ufldl.stanford.edu/housenumbers/)"
    " into a folder and set dataset.root to it."
)
SVHN_CLASSES = tuple(str(d) for d in range(10))


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 in 0–9 from one .mat file."""
    from scipy.io import loadmat

    try:
        content = loadmat(path, variable_names=("X", "y"))
    except Exception as err:
        # scipy reports damaged files with many types (MatReadError, IndexError, ValueError,
        # NotImplementedError for MATLAB v7.3); any of them means this file cannot be used.
        raise DatasetFormatError(
            f"{path}: not a readable MATLAB file ({err}); it is truncated or corrupted"
        ) from err
    if "X" not in content or "y" not in content:
        raise DatasetFormatError(f"{path}: expected variables X and y")
    images, labels = content["X"], np.asarray(content["y"]).reshape(-1)
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.dtype != np.uint8:
        raise DatasetFormatError(
            f"{path}: expected X uint8 (32, 32, 3, N), got {images.dtype} {images.shape}"
        )
    if images.shape[3] != len(labels):
        raise DatasetFormatError(f"{path}: {images.shape[3]} images but {len(labels)} labels")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and (labels.min() < 1 or labels.max() > 10):
        raise DatasetFormatError(
            f"{path}: SVHN labels must lie in 1–10 (10 meaning digit 0), found "
            f"[{labels.min()}, {labels.max()}]"
        )
    labels = check_labels(labels % 10, 10, path)
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels


@dataclass(frozen=True)
class SvhnOptions:
    extra: bool = option(False, "add the 531,131 extra training digits")


@register_source("svhn", SvhnOptions)
def load_svhn(
    root: str | Path | None, extra: bool = SvhnOptions.extra
) -> tuple[ImageSet, ImageSet]:
    """SVHN: train ``(73257, 3, 32, 32)`` (+ 531131 with ``extra``), test ``(26032, 3, 32, 32)``."""
    folder = require_root(root, "svhn", SVHN_HOW)
    train_files = ["train_32x32.mat"] + (["extra_32x32.mat"] if extra else [])
    files = [*train_files, "test_32x32.mat"]
    if not all((folder / f).is_file() for f in files):
        missing_files("svhn", folder, files, SVHN_HOW)
    train = [read_svhn_mat(folder / f) for f in train_files]
    images, labels = read_svhn_mat(folder / "test_32x32.mat")
    return (
        ImageSet(
            images=np.concatenate([x for x, _ in train]),
            labels=np.concatenate([y for _, y in train]),
            num_classes=10,
            name="svhn",
            class_names=SVHN_CLASSES,
        ),
        ImageSet(images, labels, num_classes=10, name="svhn", class_names=SVHN_CLASSES),
    )
