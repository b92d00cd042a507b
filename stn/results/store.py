"""Result records on disk: one JSON file per run, written atomically, read and checked.

The record's layout (its keys, types and schema versions) lives in
``stn.results.record``; this module only moves ``Record`` objects to and from files.
Everything downstream (tables, plots, wandb) reads records and never re-runs anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stn.results.atomic import TEMP_SUFFIX, remove_stale_temp_files, write_atomically
from stn.results.examples import EXAMPLES_SUBDIR
from stn.results.record import (
    SCHEMA_VERSION,
    Record,
    RecordLayoutError,
    new_record,
    newer_schema_version,
    run_id_for,
    upgrade,
    validate_record,
)

# Re-exported: callers written before stn.results.record existed import these from here.
__all__ = [
    "RECORDS_SUBDIR",
    "SCHEMA_VERSION",
    "RecordError",
    "ResultsDirError",
    "SkippedRecord",
    "ensure_writable",
    "is_ok",
    "load_records",
    "new_record",
    "newer_record_version",
    "read_record",
    "record_path",
    "records_dir",
    "run_id_for",
    "validate_record",
    "write_record",
]

RECORDS_SUBDIR = "records"
RERUN_HINT = "relaunch the sweep over this folder to redo the run, or delete the file"


class RecordError(ValueError):
    """A record file that cannot be used: unreadable, not JSON, another schema, or
    invalid against the record schema (``validate_record``)."""


@dataclass(frozen=True)
class SkippedRecord:
    path: Path
    reason: str


def records_dir(sweep_dir: str | os.PathLike) -> Path:
    return Path(sweep_dir) / RECORDS_SUBDIR


def record_path(sweep_dir: str | os.PathLike, run_id: str) -> Path:
    return records_dir(sweep_dir) / f"{run_id}.json"


def write_record(record: Record, sweep_dir: str | os.PathLike) -> Path:
    """Write ``record`` under ``sweep_dir/records/<run_id>.json`` atomically.

    The JSON goes to a temporary file in the same folder, is flushed to disk, then
    renamed over the target, so a reader (or a crash) never sees half a record and two
    writers never interleave.
    """
    target = record_path(sweep_dir, record.run_id)
    text = json.dumps(
        record.to_json(), indent=2, sort_keys=True, default=_json_default, allow_nan=True
    )
    return write_atomically(target, lambda handle: handle.write(text.encode()))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"record value of type {type(value).__name__} is not JSON-serialisable")


def read_record(path: str | os.PathLike) -> Record:
    """Read one record of any readable schema version; raise ``RecordError`` naming the
    file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise RecordError(f"{path}: cannot read ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, found {type(data).__name__}")
    try:
        data = upgrade(data)
    except RecordLayoutError as err:
        raise RecordError(f"{path}: {err}") from err
    problems = validate_record(data)
    if problems:
        raise RecordError(f"{path}: invalid record: {'; '.join(problems)} ({RERUN_HINT})")
    return Record.from_json(data)


def load_records(
    sweep_dir: str | os.PathLike,
) -> tuple[list[Record], list[SkippedRecord]]:
    """All readable records of a sweep folder, and the files that were skipped (with why)."""
    folder = records_dir(sweep_dir)
    records: list[Record] = []
    skipped: list[SkippedRecord] = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(read_record(path))
        except RecordError as err:
            skipped.append(SkippedRecord(path, str(err)))
    return records, skipped


class ResultsDirError(OSError):
    """A results folder that cannot hold records (not creatable or not writable)."""


def ensure_writable(sweep_dir: str | os.PathLike) -> Path:
    """Create ``sweep_dir/records``, prove a file can be written there, and remove the
    stale hidden ``.tmp`` files an interrupted writer left in it (and in ``examples/``).

    Called before any training (at the start of a sweep and of every run) so that a
    sweep pointed at a read-only or mistyped folder fails at once, naming the folder,
    instead of after hours of work.
    """
    folder = records_dir(sweep_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=TEMP_SUFFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ResultsDirError(
            f"results folder {Path(sweep_dir)} cannot hold records ({folder}: "
            f"{err.strerror or err}); choose a writable one with results_dir=<path>"
        ) from err
    remove_stale_temp_files(folder)
    remove_stale_temp_files(Path(sweep_dir) / EXAMPLES_SUBDIR)
    return folder


def newer_record_version(sweep_dir: str | os.PathLike, run_id: str) -> int | None:
    """The schema version of ``run_id``'s record in ``sweep_dir`` when a newer stn-bench
    wrote it (resume must not replace it), else ``None`` (no file, or not newer)."""
    try:
        data = json.loads(record_path(sweep_dir, run_id).read_text())
    except (OSError, ValueError):
        return None
    return newer_schema_version(data)


def is_ok(sweep_dir: str | os.PathLike, run_id: str) -> bool:
    """Whether ``sweep_dir`` already holds an ``ok`` record of the experiment ``run_id``
    (resume check).

    Reads that run's file first; when it is absent, not ok or unreadable, every other
    record of the folder whose experiment is ``run_id`` (records written before run ids
    ignored timing settings carry another file name). Unreadable or other-schema files
    count as not ok, so the run is redone and its record replaced (a newer-schema one
    is not: :func:`newer_record_version`).
    """
    path = record_path(sweep_dir, run_id)
    if _ok_record(path) is not None:
        return True
    for other in sorted(records_dir(sweep_dir).glob("*.json")):
        record = _ok_record(other) if other != path else None
        if record is not None and record.experiment_id == run_id:
            return True
    return False


def _ok_record(path: Path) -> Record | None:
    """The record at ``path`` when it exists, reads and is ``ok``; else ``None``."""
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except RecordError:
        return None
    return record if record.status == "ok" else None
