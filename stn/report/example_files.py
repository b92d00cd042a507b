"""Example files on disk: where they live, atomic write, tolerant read (NumPy only).

Kept apart from ``stn.report.examples`` (which runs reducers, so needs torch) so that the
report reads pictures without paying torch's import time. Contents: see ``stn.report.examples``.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from stn.results.atomic import write_atomically

log = logging.getLogger(__name__)

EXAMPLES_SUBDIR = "examples"


def examples_path(sweep_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(sweep_dir) / EXAMPLES_SUBDIR / f"{run_id}.npz"


def load_examples(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The arrays of an examples file, or ``None`` when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        log.warning("skipped unreadable examples file %s: %s", path, err)
        return None
    if "inputs" not in arrays or "outputs" not in arrays:
        log.warning("skipped examples file %s: no inputs/outputs arrays", path)
        return None
    return arrays


def write_examples(arrays: dict[str, np.ndarray], target: str | os.PathLike) -> Path:
    """Write ``arrays`` to ``target`` (``.npz``) via a temp file and a rename."""
    return write_atomically(target, lambda handle: np.savez_compressed(handle, **arrays))
