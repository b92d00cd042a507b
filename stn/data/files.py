"""What every reader shares: format errors that name the file, file look-up, label checks,
and decoding one image file with Pillow to a fixed size."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import numpy as np

from stn.data.embedded import DatasetNotFoundError


class DatasetFormatError(ValueError):
    """A dataset file that exists but is not what its format promises; the message names it."""


def require_root(root: str | Path | None, dataset: str, how_to_get: str) -> Path:
    """``root`` as an existing folder, or :class:`DatasetNotFoundError` saying how to fill it."""
    if root is None:
        raise DatasetNotFoundError(
            f"{dataset}: no folder given; set dataset.root to the folder holding it. {how_to_get}"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"{dataset}: folder {path} does not exist. {how_to_get}")
    return path


def first_existing(candidates: Iterable[Path]) -> Path | None:
    """The first path that is a file, or None."""
    return next((path for path in candidates if path.is_file()), None)


def missing_files(dataset: str, root: Path, expected: Iterable[str], how_to_get: str) -> NoReturn:
    """Raise :class:`DatasetNotFoundError` listing the file names ``root`` should hold."""
    names = ", ".join(expected)
    raise DatasetNotFoundError(f"{dataset}: expected {names} under {root}. {how_to_get}")


def check_labels(labels: np.ndarray, num_classes: int, source: Path) -> np.ndarray:
    """``labels`` as int64, or :class:`DatasetFormatError` naming ``source`` if any lies
    outside ``[0, num_classes)``.

    :class:`ImageSet` checks the same range, but only a reader knows which file was wrong.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DatasetFormatError(f"{source}: labels must be one per image, got {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise DatasetFormatError(
            f"{source}: labels must lie in [0, {num_classes}), found {len(bad)} outside it "
            f"(e.g. {bad[0]}); the file is corrupted or belongs to another dataset"
        )
    return labels.astype(np.int64)


def read_image(path: Path, size: int, channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One image file as uint8 ``(channels, size, size)`` and its original ``(width, height)``.

    Resized with Pillow's bilinear filter, whose support widens with the downscale factor,
    so a large image is averaged rather than aliased into the small one. A file Pillow
    cannot decode, or one of more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a
    decompression bomb), raises :class:`DatasetFormatError` naming it; Pillow's warning for
    an image over the limit (but not twice) is re-issued with the file's path.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    mode = "L" if channels == 1 else "RGB"
    try:
        # Pillow's decompression-bomb warning does not say which file; it is re-issued
        # below with the path (other warnings pass through unchanged).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                # Pillow decodes lazily: a truncated file only fails here, inside the try.
                original = image.size
                pixels = image.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
    except Image.DecompressionBombError as err:
        raise DatasetFormatError(
            f"{path}: refused to decode: {err} If the image is genuine, raise "
            "PIL.Image.MAX_IMAGE_PIXELS (Pillow refuses twice that many pixels); otherwise "
            "remove the file"
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DatasetFormatError(f"{path}: cannot read this image ({err})") from err
    for warning in caught:
        bomb = issubclass(warning.category, Image.DecompressionBombWarning)
        text = f"{path}: {warning.message}" if bomb else warning.message
        warnings.warn(text, warning.category, stacklevel=2)
    array = np.asarray(pixels, dtype=np.uint8)
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return np.ascontiguousarray(array), original
