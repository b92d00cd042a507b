"""CIFAR-10 and CIFAR-100 from their "python version" pickles.

Each batch is a dict with ``b"data"``: uint8 ``(N, 3072)``, one row per image holding
1024 red, then 1024 green, then 1024 blue values, each plane row-major 32×32, so a plain
reshape gives ``(N, 3, 32, 32)``.
"""

from __future__ import annotations

import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from stn.data.files import DatasetFormatError, check_labels, missing_files, require_root
from stn.data.images import ImageSet
from stn.data.sources import register_source
from stn.options import option

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_HOW = (
    "Unpack cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and set "
    f"dataset.root to the {CIFAR10_FOLDER} folder or the folder above it."
)
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_HOW = (
    "Unpack cifar-100-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and set "
    f"dataset.root to the {CIFAR100_FOLDER} folder or the folder above it."
)

# A pickle can run any code it names. The CIFAR batches need only numpy's array
# reconstruction, so nothing else is let through. The files were written by numpy 1
# (numpy.core); numpy 2 moved those functions to numpy._core.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy._core", "numpy.core")
        if (canonical, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not a CIFAR batch")
        # Try numpy 2's module first: importing numpy.core there emits a deprecation warning.
        for candidate in (canonical.replace("numpy.core", "numpy._core"), canonical):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"cannot find {module}.{name} in this numpy")


def read_pickle_dict(path: Path) -> dict[bytes, Any]:
    """One CIFAR pickle as a dict with bytes keys (the files were written by Python 2)."""
    try:
        with path.open("rb") as handle:
            content = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as err:
        raise DatasetFormatError(
            f"{path}: not a readable CIFAR pickle ({err}); extract it again from the archive"
        ) from err
    if not isinstance(content, dict):
        raise DatasetFormatError(f"{path}: expected a dict, got {type(content).__name__}")
    return content


def _field(batch: dict[bytes, Any], key: bytes, path: Path) -> Any:
    if key not in batch:
        found = ", ".join(k.decode(errors="replace") for k in batch)
        raise DatasetFormatError(f"{path}: no {key.decode()!r} entry (found: {found})")
    return batch[key]


def read_cifar_batch(
    path: Path, label_key: bytes, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one batch file."""
    batch = read_pickle_dict(path)
    data = np.asarray(_field(batch, b"data", path))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise DatasetFormatError(
            f"{path}: expected data uint8 (N, 3072), got {data.dtype} {data.shape}"
        )
    labels = np.asarray(_field(batch, label_key, path))
    if len(labels) != len(data):
        raise DatasetFormatError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), check_labels(labels, num_classes, path)


def _dataset_folder(root: str | Path | None, folder: str, dataset: str, how: str) -> Path:
    """``root`` itself or its ``folder`` child, whichever holds the batches."""
    path = require_root(root, dataset, how)
    return path / folder if (path / folder).is_dir() else path


def _class_names(path: Path, key: bytes) -> tuple[str, ...]:
    """Names from a meta pickle, or () when the optional meta file is absent."""
    if not path.is_file():
        return ()
    return tuple(name.decode() for name in _field(read_pickle_dict(path), key, path))


def _imageset(
    parts: list[tuple[np.ndarray, np.ndarray]], num_classes: int, name: str, names: tuple
) -> ImageSet:
    return ImageSet(
        images=np.concatenate([images for images, _ in parts]),
        labels=np.concatenate([labels for _, labels in parts]),
        num_classes=num_classes,
        name=name,
        class_names=names,
    )


@register_source("cifar10")
def load_cifar10(root: str | Path | None) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10: train ``(50000, 3, 32, 32)``, test ``(10000, 3, 32, 32)`` uint8, 10 classes."""
    folder = _dataset_folder(root, CIFAR10_FOLDER, "cifar10", CIFAR10_HOW)
    files = (*CIFAR10_TRAIN, "test_batch")
    if not all((folder / f).is_file() for f in files):
        missing_files("cifar10", folder, files, CIFAR10_HOW)
    names = _class_names(folder / "batches.meta", b"label_names")
    train = [read_cifar_batch(folder / f, b"labels", 10) for f in CIFAR10_TRAIN]
    test = [read_cifar_batch(folder / "test_batch", b"labels", 10)]
    return _imageset(train, 10, "cifar10", names), _imageset(test, 10, "cifar10", names)


@dataclass(frozen=True)
class Cifar100Options:
    labels: str = option("fine", "fine: the 100 classes; coarse: the 20 superclasses")


@register_source("cifar100", Cifar100Options)
def load_cifar100(
    root: str | Path | None, labels: Literal["fine", "coarse"] = "fine"
) -> tuple[ImageSet, ImageSet]:
    """CIFAR-100: train ``(50000, 3, 32, 32)``, test ``(10000, 3, 32, 32)`` uint8.

    ``labels="fine"`` gives the 100 classes, ``"coarse"`` the 20 superclasses.
    """
    if labels not in ("fine", "coarse"):
        raise ValueError(f"cifar100 labels must be 'fine' or 'coarse', got {labels!r}")
    folder = _dataset_folder(root, CIFAR100_FOLDER, "cifar100", CIFAR100_HOW)
    if not all((folder / f).is_file() for f in ("train", "test")):
        missing_files("cifar100", folder, ("train", "test", "meta"), CIFAR100_HOW)
    num_classes = 100 if labels == "fine" else 20
    key = f"{labels}_labels".encode()
    names = _class_names(folder / "meta", f"{labels}_label_names".encode())
    name = "cifar100" if labels == "fine" else "cifar100_coarse"
    train, test = (
        _imageset([read_cifar_batch(folder / f, key, num_classes)], num_classes, name, names)
        for f in ("train", "test")
    )
    return train, test
