"""A small folder of your own images, one sub-folder per class, for the folder examples.

    python -c "from tests.folder_images import make_image_folder; make_image_folder('shapes')"

Three classes of bright shapes (a disc, a ring, a square) of 16–40 px placed anywhere on a
dark, noisy 100×100 grey background: a side that is not a multiple of 48, so the folder
command has pooling to leave out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("disc", "ring", "square")


def _shape(kind: str, size: int) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(x, y) / (size / 2)
    if kind == "disc":
        return r <= 1
    if kind == "ring":
        return (r <= 1) & (r >= 0.6)
    return np.ones((size, size), dtype=bool)


def make_image_folder(root: str | Path, per_class: int = 6, side: int = 100, seed: int = 0) -> Path:
    """``root/<class>/<n>.png`` for each of ``CLASSES``; returns ``root``."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in CLASSES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            image = rng.integers(0, 40, size=(side, side)).astype(np.uint8)
            size = int(rng.integers(16, 41))
            top, left = rng.integers(0, side - size + 1, size=2)
            patch = image[top : top + size, left : left + size]
            patch[_shape(kind, size)] = rng.integers(180, 256)
            Image.fromarray(image, mode="L").save(root / kind / f"{n}.png")
    return root
