"""The idx format of MNIST, Fashion-MNIST, KMNIST and EMNIST, raw or gzip-compressed.

An idx file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from stn.data.files import (
    DatasetFormatError,
    check_labels,
    first_existing,
    missing_files,
    require_root,
)
from stn.data.images import ImageSet
from stn.data.sources import register_source
from stn.options import option

# dtype code (third magic byte) → big-endian numpy dtype, as in LeCun's MNIST page.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"

FASHION_MNIST_DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# EMNIST names its test files "test-..." where MNIST says "t10k-...".
IDX_SPLIT_ALIASES = {"train": ("train",), "test": ("t10k", "test")}


# The most bytes a gzip-compressed idx file may inflate to, as Pillow's
# PIL.Image.MAX_IMAGE_PIXELS bounds an image: EMNIST ByClass, the largest idx set, is
# 0.55 GB, while a 13.7 MB gzip bomb inflated to 3.1 GB and ended in a bare MemoryError.
# Raise it (stn.data.idx.MAX_IDX_BYTES = ...) for a larger file you trust.
MAX_IDX_BYTES = 2**31


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one idx file (raw, or gzip whatever its name), in native byte
    order.

    Raises :class:`DatasetFormatError` naming the file when the magic number, the dtype
    code or the size implied by the header does not match the file, or when a gzip file
    would inflate past :data:`MAX_IDX_BYTES`: the header is read first, then exactly the
    bytes it declares, so a bomb is refused before it is inflated.
    """
    path = Path(path)
    compressed = _is_gzip(path)
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as stream:
            return _read_idx_stream(path, stream, compressed)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise _damaged(path, err) from err
    except MemoryError as err:
        raise DatasetFormatError(
            f"{path}: not enough memory to read it ({err or 'MemoryError'})"
        ) from err


def _damaged(path: Path, err: BaseException) -> DatasetFormatError:
    return DatasetFormatError(
        f"{path}: the gzip stream is damaged ({err}); the file is truncated or corrupted, "
        "download or copy it again"
    )


def _read_idx_stream(path: Path, stream: BinaryIO, compressed: bool) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise DatasetFormatError(f"{path}: {len(magic)} bytes, too short for an idx header")
    zero0, zero1, code, ndim = magic
    if zero0 != 0 or zero1 != 0:
        raise DatasetFormatError(
            f"{path}: not an idx file (magic number {magic.hex()} should start with 0000); "
            "is it an image, an html error page or another format?"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DatasetFormatError(f"{path}: unknown idx dtype code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise DatasetFormatError(f"{path}: idx header declares 0 dimensions")
    header = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DatasetFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, "
            f"file has {4 + len(dims)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    dtype = IDX_DTYPES[code]
    # Python ints: np.prod in int64 wrapped around for headers of huge dimensions (2³¹ × 2³¹
    # × 4 gave 0 bytes expected) and the damage surfaced as a reshape error without a name.
    payload = math.prod(shape) * dtype.itemsize
    expected = header + payload
    declared = f"header says shape {shape} of {dtype.name} = {expected} bytes"
    if not compressed:
        size = path.stat().st_size
        if size != expected:
            problem = "truncated" if size < expected else "has trailing bytes"
            raise DatasetFormatError(f"{path}: {problem}: {declared}, file holds {size}")
    elif payload > MAX_IDX_BYTES:
        raise DatasetFormatError(
            f"{path}: {declared}, more than the {MAX_IDX_BYTES:,} bytes a gzip idx file may "
            "inflate to (stn.data.idx.MAX_IDX_BYTES, as PIL.Image.MAX_IMAGE_PIXELS bounds an "
            "image): a decompression bomb or a damaged header; raise the limit only for a "
            "file you trust"
        )
    data = stream.read(payload)
    if len(data) < payload:
        raise DatasetFormatError(f"{path}: truncated: {declared}, file holds {header + len(data)}")
    if compressed and stream.read(1):
        raise DatasetFormatError(
            f"{path}: has trailing bytes: {declared}, the file inflates to more (read no further)"
        )
    values = np.frombuffer(data, dtype=dtype).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def load_idx_pair(
    images_path: str | Path,
    labels_path: str | Path,
    *,
    name: str,
    num_classes: int,
    class_names: tuple[str, ...] = (),
    transpose: bool = False,
) -> ImageSet:
    """An image file ``(N, H, W)`` uint8 and a label file ``(N,)`` → ImageSet ``(N, 1, H, W)``.

    ``transpose`` swaps H and W: EMNIST stores its images transposed.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = read_idx(images_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetFormatError(
            f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DatasetFormatError(f"{labels_path}: expected labels (N,), got {labels.shape}")
    if len(labels) != len(images):
        raise DatasetFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; the two files come from different sets"
        )
    if transpose:
        images = images.transpose(0, 2, 1)
    return ImageSet(
        images=np.ascontiguousarray(images[:, None]),
        labels=check_labels(labels, num_classes, labels_path),
        num_classes=num_classes,
        name=name,
        class_names=class_names,
    )


def find_idx_files(root: Path, split: str, prefix: str = "") -> tuple[Path, Path] | None:
    """(images, labels) paths of ``split`` ("train" or "test") under ``root``, or None.

    Accepts the MNIST names (``train-…``, ``t10k-…``), EMNIST's ``test-…``, a ``prefix``
    such as ``"emnist-balanced-"``, with or without ``.gz``.
    """
    images_stem, labels_stem = IDX_FILES[split]
    found = []
    for stem in (images_stem, labels_stem):
        kind = stem.split("-", 1)[1]  # "images-idx3-ubyte" / "labels-idx1-ubyte"
        candidates = [
            root / f"{prefix}{alias}-{kind}{ext}"
            for alias in IDX_SPLIT_ALIASES[split]
            for ext in (".gz", "")
        ]
        path = first_existing(candidates)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def _idx_how_to_get(prefix: str) -> str:
    names = ", ".join(f"{prefix}{stem}[.gz]" for pair in IDX_FILES.values() for stem in pair)
    return f"Put {names} in that folder (test files may be named {prefix}test-… as in EMNIST)."


@dataclass(frozen=True)
class IdxOptions:
    prefix: str = option("", "file name prefix (emnist-letters-: emnist-letters-train-...)")
    num_classes: int | None = option(None, "null: len(class_names), else the largest label + 1")
    class_names: tuple[str, ...] = option((), "one name per label, for tables and figures")
    transpose: bool = option(False, "swap rows and columns (EMNIST stores images transposed)")
    name: str = option("idx", "how messages and image sets name the source")


@register_source("idx", IdxOptions)
def load_idx_folder(
    root: str | Path | None,
    *,
    prefix: str = IdxOptions.prefix,
    num_classes: int | None = IdxOptions.num_classes,
    class_names: tuple[str, ...] = IdxOptions.class_names,
    transpose: bool = IdxOptions.transpose,
    name: str = IdxOptions.name,
) -> tuple[ImageSet, ImageSet]:
    """(train, test) ImageSets ``(N, 1, H, W)`` uint8 from a folder of idx files.

    ``num_classes`` defaults to ``len(class_names)`` or else the largest label + 1 over both
    splits. Note that EMNIST letters label a–z as 1–26, so class 0 stays empty there.
    """
    how = _idx_how_to_get(prefix)
    folder = require_root(root, name, how)
    pairs = {split: find_idx_files(folder, split, prefix) for split in IDX_FILES}
    absent = [split for split, pair in pairs.items() if pair is None]
    if absent:
        expected = [f"{prefix}{stem}[.gz]" for split in absent for stem in IDX_FILES[split]]
        missing_files(name, folder, expected, how)
    if num_classes is None and class_names:
        num_classes = len(class_names)
    if num_classes is None:
        # Read the label files once to size the class range; they are small (≤ 1 MB).
        num_classes = 1 + max(int(read_idx(pair[1]).max(initial=0)) for pair in pairs.values())
    train, test = (
        load_idx_pair(
            *pairs[split],
            name=name,
            num_classes=num_classes,
            class_names=class_names,
            transpose=transpose,
        )
        for split in ("train", "test")
    )
    return train, test


@register_source("fashion_mnist")
def load_fashion_mnist(root: str | Path | None = None) -> tuple[ImageSet, ImageSet]:
    """Fashion-MNIST: train ``(60000, 1, 28, 28)``, test ``(10000, 1, 28, 28)`` uint8, 10 classes.

    ``root`` defaults to where Debian's ``dataset-fashion-mnist`` package installs the files
    (``/usr/share/datasets/fashion-mnist``).
    """
    folder = FASHION_MNIST_DEBIAN_ROOT if root is None else Path(root).expanduser()
    how = (
        "Install it with `apt-get install dataset-fashion-mnist` (files go to "
        f"{FASHION_MNIST_DEBIAN_ROOT}), or put train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz "
        "in a folder and set dataset.root to it."
    )
    folder = require_root(folder, "fashion_mnist", how)
    pairs = {split: find_idx_files(folder, split) for split in IDX_FILES}
    if any(pair is None for pair in pairs.values()):
        missing_files(
            "fashion_mnist", folder, [f"{s}[.gz]" for p in IDX_FILES.values() for s in p], how
        )
    train, test = (
        load_idx_pair(
            *pairs[split],
            name="fashion_mnist",
            num_classes=10,
            class_names=FASHION_MNIST_CLASSES,
        )
        for split in ("train", "test")
    )
    return train, test
