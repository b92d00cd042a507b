"""The fitted PCA map and its on-disk cache.

A cache entry is one ``.npz`` file named after the split and a digest of everything
that changes the fit: the training images' bytes and labels, the canvas layout, the
stream seed (when canvases are drawn from it), and the fit options. A sweep over
seeds (plain images) or classifiers therefore fits once per key. An entry that does
not load, or whose stored key, shapes or values are wrong, is refitted, not trusted.
Entries are written atomically (temporary file, then rename), so parallel workers
that fit the same key at once both leave a valid file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from stn.data.stream import BatchStream

CACHE_FORMAT = 1


@dataclass(frozen=True)
class FittedPCA:
    """Per-channel PCA: ``mean (C, F)``, ``components (C, k, F)``,
    ``explained_variance (C, k)``, ``explained_variance_ratio (C, k)``, float32."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    @classmethod
    def stack(cls, models: list[Any]) -> FittedPCA:
        """From fitted scikit-learn ``PCA`` / ``IncrementalPCA`` objects, one per channel."""

        def field(attr: str) -> np.ndarray:
            return np.stack([np.asarray(getattr(m, attr), dtype=np.float32) for m in models])

        return cls(
            mean=field("mean_"),
            components=field("components_"),
            explained_variance=field("explained_variance_"),
            explained_variance_ratio=field("explained_variance_ratio_"),
        )


def cache_key(train: BatchStream, fit_options: dict[str, Any]) -> str:
    """A hex digest of the training data as the stream renders it, and the fit options."""
    import sklearn

    digest = hashlib.sha256()
    images = train.images
    digest.update(np.ascontiguousarray(images.images).tobytes())
    digest.update(np.ascontiguousarray(images.labels).tobytes())
    canvas = None if train.canvas is None else asdict(train.canvas)
    meta = {
        "format": CACHE_FORMAT,
        "shape": list(images.images.shape),
        "canvas": canvas,
        # Plain images do not depend on the seed; canvases are drawn from it.
        "seed": None if train.canvas is None else int(train.seed),
        "options": fit_options,
        "sklearn": ".".join(sklearn.__version__.split(".")[:2]),
    }
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cache_path(cache_dir: str | None, train: BatchStream, k: int, key: str) -> Path | None:
    """``<cache_dir>/<split>-<C>x<H>x<W>-k<k>-<digest>.npz``; ``None`` when caching is off."""
    if cache_dir is None:
        return None
    c, h, w = train.input_shape
    return Path(cache_dir) / f"{train.images.name}-{c}x{h}x{w}-k{k}-{key[:20]}.npz"


def load_fitted(
    path: Path, key: str, shape: tuple[int, int, int]
) -> tuple[FittedPCA | None, str | None]:
    """``(fitted, None)`` on a hit, ``(None, None)`` when absent, ``(None, reason)`` when
    the file exists but cannot be trusted. ``shape`` is ``(C, k, F)``."""
    if not path.is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None, "stored key differs"
            fitted = FittedPCA(
                mean=stored["mean"],
                components=stored["components"],
                explained_variance=stored["explained_variance"],
                explained_variance_ratio=stored["explained_variance_ratio"],
            )
    except Exception as err:  # noqa: BLE001 - any unreadable file is refitted
        return None, f"unreadable: {type(err).__name__}: {err}"
    c, k, f = shape
    expected = {
        "mean": (c, f),
        "components": (c, k, f),
        "explained_variance": (c, k),
        "explained_variance_ratio": (c, k),
    }
    for name, want in expected.items():
        value = getattr(fitted, name)
        if value.shape != want:
            return None, f"{name} has shape {value.shape}, expected {want}"
        if not np.isfinite(value).all():
            return None, f"{name} holds non-finite values"
    return fitted, None


def save_fitted(path: Path, key: str, fitted: FittedPCA) -> None:
    """Write atomically: a reader sees the old entry, the new one, or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, key=np.asarray(key), **asdict(fitted))
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the entry from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
