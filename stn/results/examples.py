"""Example files on disk: where they live, atomic write, tolerant read (NumPy only).

The job makes them (``stn.measure.examples`` runs the reducer, so needs torch); the report
reads them here, without torch and without running anything. Contents: see
``stn.measure.examples``.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stn.results.atomic import write_atomically

if TYPE_CHECKING:
    from torch import nn

    from stn.data.stream import Batch

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


def save_examples(
    reducer: nn.Module, batch: Batch, path: str | os.PathLike, **options: int
) -> Path:
    """Store ``stn.measure.examples.example_arrays`` in ``path`` (``.npz``), atomically
    (temp file + rename); ``options``: its ``count``. Called by the job; imported when
    called, so that the report, which only reads these files, never loads torch."""
    from stn.measure.examples import example_arrays

    return write_examples(example_arrays(reducer, batch, **options), path)


def try_save_examples(reducer: nn.Module, batch: Batch, path: str | os.PathLike) -> str | None:
    """``save_examples`` that only warns on failure: a picture must never fail a trained run."""
    try:
        return str(save_examples(reducer, batch, path))
    except Exception as err:  # noqa: BLE001
        log.warning("could not save examples to %s: %s", path, err)
        return None
