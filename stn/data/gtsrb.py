"""GTSRB, the German Traffic Sign Recognition Benchmark, in its official layout.

Training: ``GTSRB/Final_Training/Images/<class, 5 digits>/GT-<class>.csv`` beside the
``.ppm`` images. Test: ``GTSRB/Final_Test/Images/*.ppm`` with ``GT-final_test.csv``, which
ships separately (GTSRB_Final_Test_GT.zip) because the images' own
``GT-final_test.test.csv`` has no ClassId. The csv files are ``;``-separated with columns
Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stn.data.embedded import DatasetNotFoundError
from stn.data.files import (
    DatasetFormatError,
    check_labels,
    first_existing,
    read_image,
    require_root,
)
from stn.data.images import ImageSet
from stn.data.sources import register_source
from stn.options import option

GTSRB_CLASSES = 43
GTSRB_COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
GTSRB_HOW = (
    "Unpack GTSRB_Final_Training_Images.zip, GTSRB_Final_Test_Images.zip and "
    "GTSRB_Final_Test_GT.zip (https://benchmark.ini.rub.de/gtsrb_dataset.html) into one "
    "folder, so that it holds GTSRB/Final_Training/Images/00000/GT-00000.csv, "
    "GTSRB/Final_Test/Images/*.ppm and GT-final_test.csv, and set dataset.root to it."
)


def _gtsrb_folder(root: Path) -> Path:
    """The folder holding Final_Training: ``root`` itself or its ``GTSRB`` child."""
    for candidate in (root, root / "GTSRB"):
        if (candidate / "Final_Training" / "Images").is_dir():
            return candidate
    raise DatasetNotFoundError(f"gtsrb: no Final_Training/Images under {root}. {GTSRB_HOW}")


def read_gtsrb_table(csv_path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """File names, ROI boxes ``(N, 4)`` int64 and labels ``(N,)`` int64 from one GT csv."""
    import pandas as pd

    try:
        table = pd.read_csv(csv_path, sep=";")
    except (ValueError, pd.errors.ParserError) as err:
        raise DatasetFormatError(f"{csv_path}: not a readable ';'-separated csv ({err})") from err
    absent = [c for c in GTSRB_COLUMNS if c not in table.columns]
    if absent:
        hint = (
            " (GT-final_test.test.csv has no ClassId: use GT-final_test.csv from "
            "GTSRB_Final_Test_GT.zip)"
            if absent == ["ClassId"]
            else ""
        )
        raise DatasetFormatError(f"{csv_path}: missing columns {', '.join(absent)}{hint}")
    boxes = table[["Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"]].to_numpy(dtype=np.int64)
    labels = check_labels(table["ClassId"].to_numpy(), GTSRB_CLASSES, csv_path)
    return list(table["Filename"].astype(str)), boxes, labels


def _read_rows(
    image_dir: Path, csv_path: Path, size: int, channels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images ``(N, C, size, size)`` uint8, boxes ``(N, 4)`` float32 scaled to ``size``,
    labels ``(N,)`` for the rows of one csv."""
    names, rois, labels = read_gtsrb_table(csv_path)
    images = np.empty((len(names), channels, size, size), dtype=np.uint8)
    scales = np.empty((len(names), 2), dtype=np.float64)
    for i, name in enumerate(names):
        path = image_dir / name
        if not path.is_file():
            raise DatasetNotFoundError(f"{csv_path} lists {name}, which is not in {image_dir}")
        images[i], (width, height) = read_image(path, size, channels)
        scales[i] = size / width, size / height
    # The ROI is read as (x0, y0, x1, y1) with x1, y1 exclusive, as ImageSet boxes are: the
    # GTSRB readme promises a border of at least 5 px, and X1 = 5, X2 = Width - 5 on typical
    # rows fits that only when X2 is exclusive.
    boxes = rois * np.concatenate([scales, scales], axis=1)
    return images, boxes.astype(np.float32), labels


@dataclass(frozen=True)
class GtsrbOptions:
    size: int = option(48, "every sign resized to size × size pixels")
    channels: int = option(3, "3: RGB; 1: grey")


@register_source("gtsrb", GtsrbOptions)
def load_gtsrb(
    root: str | Path | None, *, size: int = GtsrbOptions.size, channels: int = GtsrbOptions.channels
) -> tuple[ImageSet, ImageSet]:
    """GTSRB train (39,209 images) and test (12,630), each resized to ``size``×``size``.

    Images are uint8 ``(N, channels, size, size)``; ``boxes`` hold each sign's ROI scaled
    to the resized image, ``(N, 4)`` float32 ``(x0, y0, x1, y1)``; 43 classes.
    """
    folder = require_root(root, "gtsrb", GTSRB_HOW)
    base = _gtsrb_folder(folder)
    train_dirs = sorted(p for p in (base / "Final_Training" / "Images").iterdir() if p.is_dir())
    parts = []
    for class_dir in train_dirs:
        csv_path = class_dir / f"GT-{class_dir.name}.csv"
        if not csv_path.is_file():
            raise DatasetNotFoundError(f"gtsrb: {csv_path} is missing. {GTSRB_HOW}")
        parts.append(_read_rows(class_dir, csv_path, size, channels))
    if not parts:
        raise DatasetNotFoundError(f"gtsrb: no class folders in {base}/Final_Training/Images")

    test_dir = base / "Final_Test" / "Images"
    test_csv = first_existing(place / "GT-final_test.csv" for place in (test_dir, base, folder))
    if not test_dir.is_dir() or test_csv is None:
        raise DatasetNotFoundError(
            f"gtsrb: test set missing: expected {test_dir}/*.ppm and GT-final_test.csv in "
            f"{test_dir} or {base} or {folder}. {GTSRB_HOW}"
        )
    test = _read_rows(test_dir, test_csv, size, channels)

    def imageset(images: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> ImageSet:
        return ImageSet(images, labels, GTSRB_CLASSES, "gtsrb", boxes=boxes)

    train = [np.concatenate(column) for column in zip(*parts, strict=True)]
    return imageset(*train), imageset(*test)
