"""Write a file so that readers (and crashes) see the old file or the whole new one."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
# A temp file older than this belongs to a writer that died (SIGKILL, power loss): a live
# one holds it for the milliseconds a write and fsync take. An hour, not minutes, so a
# writer on a network file system whose clock lags the server's is never mistaken for dead.
STALE_TEMP_SECONDS = 3600.0


def write_atomically(target: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` on a temporary file beside ``target``, flush it to disk, then rename
    it over ``target``; two writers never interleave and nothing half-written remains: a
    write that fails (its ``OSError`` names ``target``) leaves the old file as it was.

    The file gets the mode a plain ``open()`` would give it (0666 less the umask), so a
    teammate sharing the folder can read it whenever the umask lets them."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target.parent, target.stem)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename is not None or err.errno is None:
            raise
        # A failed write() (EFBIG under a file-size limit, ENOSPC) names no file: say which.
        raise OSError(err.errno, err.strerror, str(target)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_text_atomically(target: str | os.PathLike, text: str) -> Path:
    """``text`` (UTF-8) into ``target`` as :func:`write_atomically` writes: a report or
    table that cannot be written whole leaves the previous one in place."""
    data = text.encode()
    return write_atomically(target, lambda handle: handle.write(data))


def _create_temp(folder: Path, stem: str) -> tuple[int, Path]:
    """A new, empty ``.<stem>.<random>.tmp`` in ``folder``, open for writing.

    Not ``tempfile.mkstemp``: it forces mode 0600, which hid every record of a shared
    sweep from the teammates reporting on it. ``O_EXCL`` with 0666 lets the kernel apply
    the umask (and any default ACL) while still refusing a name that exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(16):
        path = folder / f".{stem}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue  # 64 random bits collided: astronomically rare, try another name
    raise FileExistsError(f"no free temporary name for {stem} in {folder}")


def remove_stale_temp_files(
    folder: str | os.PathLike, older_than_s: float = STALE_TEMP_SECONDS
) -> list[Path]:
    """Delete the hidden ``.*.tmp`` files in ``folder`` last modified more than
    ``older_than_s`` ago (left by a writer killed between create and rename); return them.

    Fresher ones are kept: another process writing into the same folder may own them.
    Only regular files are touched; one that cannot be removed (another user's, in a
    sticky folder) is left and logged."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime <= older_than_s:
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # another starting job removed it first
        except OSError as err:
            log.warning("could not remove stale temporary file %s: %s", path, err.strerror)
            continue
        removed.append(path)
    if removed:
        log.info("removed %d stale temporary file(s) from %s", len(removed), folder)
    return removed
