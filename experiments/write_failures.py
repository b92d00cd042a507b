"""A write that fails stops the sweep at once, in one line that names the folder.

A record that cannot be written (a full disk, ENOSPC; a file-size limit, EFBIG; a folder
removed under the sweep) means every later run would train for nothing: the sweep kept
training and ended in a Hydra traceback, with no tally. Now the job raises
:class:`SweepStopped` (``experiments.run.main``), and so does a failed write of Hydra's
own (its job folders, the ``.hydra/`` config copies, the job's log); ``experiments.run``
prints ``error: <the line>``, the sweep's tally, and exits with :data:`WRITE_FAILED`.
Records already written stay: each was written atomically (``stn.results.atomic``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

WRITE_FAILED = 74  # EX_IOERR of sysexits.h: an input/output error, told apart from a failed run


class SweepStopped(SystemExit):
    """A write failed: the sweep stops. ``message`` names the folder and the OS error.

    A ``SystemExit``, so that it passes Hydra's handling of a job's exceptions (which
    records them and runs the next job) and, from a joblib worker, reaches the process
    that started the sweep; :data:`WRITE_FAILED` if nothing catches it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = WRITE_FAILED

    @property
    def message(self) -> str:
        return str(self.args[0])


def write_failure(err: BaseException, folder: str | os.PathLike | None = None) -> str | None:
    """The one line for ``err`` when an OS error (``err`` itself or what caused it) is
    behind it: ``could not write <file> in <folder>: [Errno 28] No space left on
    device``; ``None`` when no OS error is. ``folder`` is named when the error names no
    file (a failed ``write()`` names none)."""
    found = _os_error(err)
    if found is None:
        return None
    code = f"[Errno {found.errno}] " if found.errno is not None else ""
    reason = f"{code}{found.strerror or os.strerror(found.errno or errno.EIO)}"
    if found.filename is not None:
        path = Path(os.fsdecode(found.filename))
        where = f"could not write {path.name} in {path.parent}"
    elif folder is not None:
        where = f"could not write in {folder}"
    else:
        where = "could not write"
    return (
        f"{where}: {reason}; stopped (records already written are kept; free space or "
        "fix the folder, then relaunch the same command to resume)"
    )


def _os_error(err: BaseException | None) -> OSError | None:
    """The OS error ``err`` is or was raised from (``raise ... from``; not an error that
    was merely being handled). One with an errno only: Hydra's MissingConfigException is
    an IOError without one."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        seen.add(id(err))
        err = err.__cause__
    return None


def name_hydra_write_failures() -> None:
    """Make a failed write of Hydra's config copies (``.hydra/config.yaml`` ...) name its
    file: a failed ``write()`` raises an ``OSError`` without one."""
    import hydra.core.utils as hydra_utils

    save = hydra_utils._save_config
    if getattr(save, "names_its_file", False):
        return

    def save_naming_file(cfg: object, filename: str, output_dir: Path) -> None:
        try:
            save(cfg, filename, output_dir)
        except OSError as err:
            if err.filename is not None:
                raise
            raise OSError(err.errno, err.strerror, str(Path(output_dir) / filename)) from err

    save_naming_file.names_its_file = True  # type: ignore[attr-defined]
    hydra_utils._save_config = save_naming_file
