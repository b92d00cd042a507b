"""A class-per-folder image tree: ``root/<class name>/*.png|jpg|jpeg|ppm|bmp``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stn.data.embedded import DatasetNotFoundError
from stn.data.files import DatasetFormatError, read_image, require_root
from stn.data.images import ImageSet
from stn.data.sources import Splits, register_source
from stn.options import option

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".bmp")
FOLDER_HOW = "Arrange the images as <root>/<class name>/<image file> and set dataset.root to it."


def _image_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    # Sorted so the same tree always gives the same order; hidden files (.DS_Store…) skipped.
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions
    )


@dataclass(frozen=True)
class FolderOptions:
    size: int = option(48, "every image resized to size × size pixels")
    channels: int = option(3, "3: RGB; 1: grey")
    extensions: tuple[str, ...] = option(IMAGE_EXTENSIONS, "the file suffixes read")
    name: str | None = option(None, "how the image set is named (null: the folder's name)")


@register_source("folder", FolderOptions)
def load_folder_source(root: str | Path | None, **options: object) -> Splits:
    """The tree as one training set: the run holds out its own test split."""
    return load_image_folder(root, **options), None  # type: ignore[arg-type]


def load_image_folder(
    root: str | Path | None,
    *,
    size: int = FolderOptions.size,
    channels: int = FolderOptions.channels,
    extensions: tuple[str, ...] = FolderOptions.extensions,
    name: str | None = FolderOptions.name,
) -> ImageSet:
    """Every image under ``root/<class>/`` as uint8 ``(N, channels, size, size)``.

    Classes are the sub-folder names in sorted order (label i = i-th name). Images of any
    size are resized to ``size``×``size`` with Pillow; ``channels`` 1 converts to grayscale,
    3 to RGB. A file that Pillow cannot decode raises :class:`DatasetFormatError` naming it.
    """
    folder = require_root(root, "folder", FOLDER_HOW)
    extensions = tuple(e.lower() for e in extensions)
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DatasetNotFoundError(f"folder: no class sub-folders in {folder}. {FOLDER_HOW}")
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = _image_files(class_dir, extensions)
        if not files:
            # An empty class would be unlearnable and silently shift nothing but the count.
            raise DatasetFormatError(
                f"{class_dir}: no images with extensions {', '.join(extensions)}; "
                "add images or remove the folder"
            )
        images.extend(read_image(path, size, channels)[0] for path in files)
        labels.extend([label] * len(files))
    return ImageSet(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        num_classes=len(class_dirs),
        name=name or folder.name,
        class_names=tuple(p.name for p in class_dirs),
    )
