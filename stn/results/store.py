"""Result records: one JSON file per run, written atomically, collected into a DataFrame.

A record is a plain dict (see ``new_record``). Everything downstream (tables, plots,
wandb) reads records and never re-runs anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stn.report.example_files import EXAMPLES_SUBDIR
from stn.results.atomic import TEMP_SUFFIX, remove_stale_temp_files, write_atomically

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1
RECORDS_SUBDIR = "records"

# Config keys that do not change what a run computes: two configs that differ only here
# are the same run (same run id), so a resumed sweep recognises finished work.
VOLATILE_CONFIG_KEYS = frozenset({"results_dir", "logger", "resume", "hydra", "sweep"})


# The sections ``new_record`` writes as objects; in a record they are objects (or absent).
RECORD_SECTIONS = (
    "config",
    "reducer",
    "classifier",
    "dataset",
    "metrics",
    "throughput",
    "environment",
    "timing",
)
# Config sections every run names: the report groups by these names.
NAMED_CONFIG_SECTIONS = ("dataset", "reducer", "classifier")
RUN_MODES = ("train", "throughput")
# Throughput stats the tables rank (bold) and the Pareto figure plots on a log axis.
RANKED_THROUGHPUT_STATS = ("images_per_s", "step_ms_median")
MISSING = object()  # a key absent from a record, told apart from one set to null
RERUN_HINT = "relaunch the sweep over this folder to redo the run, or delete the file"


class RecordError(ValueError):
    """A record file that cannot be used: unreadable, not JSON, another schema, or
    invalid against the record schema (``validate_record``)."""


@dataclass(frozen=True)
class SkippedRecord:
    path: Path
    reason: str


def run_id_for(config: dict[str, Any]) -> str:
    """Stable 16-hex-digit id of a resolved config, ignoring ``VOLATILE_CONFIG_KEYS``."""
    stable = {k: v for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}
    text = json.dumps(stable, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_record(config: dict[str, Any], sweep: str) -> dict[str, Any]:
    """An empty record for ``config``; the caller fills metrics, throughput and status."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id_for(config),
        "sweep": sweep,
        "status": "running",
        "error": None,
        "config": config,
        "reducer": {},
        "classifier": {},
        "dataset": {},
        "metrics": {},
        "throughput": {},
        "environment": {},
        "timing": {},
    }


def records_dir(sweep_dir: str | os.PathLike) -> Path:
    return Path(sweep_dir) / RECORDS_SUBDIR


def record_path(sweep_dir: str | os.PathLike, run_id: str) -> Path:
    return records_dir(sweep_dir) / f"{run_id}.json"


def write_record(record: dict[str, Any], sweep_dir: str | os.PathLike) -> Path:
    """Write ``record`` under ``sweep_dir/records/<run_id>.json`` atomically.

    The JSON goes to a temporary file in the same folder, is flushed to disk, then
    renamed over the target, so a reader (or a crash) never sees half a record and two
    writers never interleave.
    """
    target = record_path(sweep_dir, record["run_id"])
    text = json.dumps(record, indent=2, sort_keys=True, default=_json_default, allow_nan=True)
    return write_atomically(target, lambda handle: handle.write(text.encode()))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"record value of type {type(value).__name__} is not JSON-serialisable")


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read one record; raise ``RecordError`` naming the file and the problem."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except OSError as err:
        raise RecordError(f"{path}: cannot read ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(record, dict):
        raise RecordError(f"{path}: expected a JSON object, found {type(record).__name__}")
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"{path}: schema version {version!r}, this stn-bench reads version {SCHEMA_VERSION}"
        )
    problems = validate_record(record)
    if problems:
        raise RecordError(f"{path}: invalid record: {'; '.join(problems)} ({RERUN_HINT})")
    return record


def validate_record(record: dict[str, Any]) -> list[str]:
    """What is wrong with ``record`` against schema version 1, one phrase per problem
    (empty when it is valid).

    Checks what the report relies on: ``run_id`` and ``status`` non-empty strings; the
    ``RECORD_SECTIONS`` objects where present (never ``null``); ``config.seed`` an
    integer; ``config.dataset/reducer/classifier`` objects with a ``name``; an ``ok``
    training run's ``metrics.test_accuracy`` a finite number in [0, 1]; the loss, the
    training time and the ranked throughput figures finite where present.
    """
    problems = [
        f"{key} is {_describe(record.get(key, MISSING))}; expected a non-empty string"
        for key in ("run_id", "status")
        if not _is_name(record.get(key))
    ]
    for section in RECORD_SECTIONS:
        if section in record and not isinstance(record[section], dict):
            problems.append(f"{section} is {_describe(record[section])}; expected an object")
    config = record.get("config", MISSING)
    if not isinstance(config, dict):
        if config is MISSING:
            problems.append("config is missing; expected the run's resolved config")
        return problems
    problems += _config_problems(config)
    problems += _metrics_problems(record, str(config.get("mode", "train")))
    problems += _throughput_problems(record.get("throughput"))
    return problems


def _config_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    seed = config.get("seed", MISSING)
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.append(f"config.seed is {_describe(seed)}; expected an integer")
    for section in NAMED_CONFIG_SECTIONS:
        value = config.get(section, MISSING)
        if not isinstance(value, dict):
            problems.append(f"config.{section} is {_describe(value)}; expected an object")
        elif not _is_name(value.get("name")):
            problems.append(
                f"config.{section}.name is {_describe(value.get('name', MISSING))}; "
                "expected a non-empty string"
            )
    mode = config.get("mode", "train")
    if mode not in RUN_MODES:
        problems.append(f"config.mode is {_describe(mode)}; expected one of {', '.join(RUN_MODES)}")
    reducer = config.get("reducer")
    if isinstance(reducer, dict):
        for key, kind, expected in (("kernel", str, "a string"), ("antialias", bool, "true/false")):
            value = reducer.get(key)
            if value is not None and not isinstance(value, kind):
                problems.append(f"config.reducer.{key} is {_describe(value)}; expected {expected}")
    return problems


def _metrics_problems(record: dict[str, Any], mode: str) -> list[str]:
    metrics = record.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    accuracy = metrics.get("test_accuracy")
    problems = []
    if accuracy is None:
        if record.get("status") == "ok" and mode == "train":
            found = _describe(metrics.get("test_accuracy", MISSING))
            problems.append(
                f"metrics.test_accuracy is {found} in an ok training run; "
                "expected a number in [0, 1]"
            )
    elif not _is_finite(accuracy) or not 0.0 <= accuracy <= 1.0:
        problems.append(
            f"metrics.test_accuracy is {_describe(accuracy)}; expected a number in [0, 1] "
            "(a fraction, not a percentage)"
        )
    for key in ("test_loss", "train_seconds"):
        value = metrics.get(key)
        if value is not None and not (_is_finite(value) and value >= 0):
            problems.append(f"metrics.{key} is {_describe(value)}; expected a finite number ≥ 0")
    return problems


def _throughput_problems(throughput: Any) -> list[str]:
    if not isinstance(throughput, dict):
        return []
    problems = []
    for figure, stats in throughput.items():
        if not isinstance(stats, dict):
            continue
        for stat in RANKED_THROUGHPUT_STATS:
            value = stats.get(stat)
            if value is not None and not (_is_finite(value) and value > 0):
                problems.append(
                    f"throughput.{figure}.{stat} is {_describe(value)}; "
                    "expected a finite number > 0"
                )
    return problems


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_finite(value: Any) -> bool:
    """A real JSON number (not a boolean, not a string) that is neither NaN nor ±inf."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _describe(value: Any) -> str:
    """How a bad value reads in a message: ``null``, ``NaN``, ``'95%' (a string)``."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"{value!r} (a string)"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def load_records(
    sweep_dir: str | os.PathLike,
) -> tuple[list[dict[str, Any]], list[SkippedRecord]]:
    """All readable records of a sweep folder, and the files that were skipped (with why)."""
    folder = records_dir(sweep_dir)
    records: list[dict[str, Any]] = []
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


def is_ok(sweep_dir: str | os.PathLike, run_id: str) -> bool:
    """Whether ``sweep_dir`` already holds an ``ok`` record for ``run_id`` (resume check).

    Reads only that run's file; an unreadable or other-schema file counts as not ok,
    so the run is redone and its record replaced.
    """
    path = record_path(sweep_dir, run_id)
    if not path.exists():
        return False
    try:
        return read_record(path).get("status") == "ok"
    except RecordError:
        return False


def records_to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record with the columns tables and plots need.

    Columns: run_id, sweep, status, error, dataset, reducer, reducer_kind, learned,
    reducer_params, oracle, classifier, seed, mode (train/throughput), test_accuracy,
    test_loss, train_seconds, and
    every ``throughput.<figure>.<stat>`` number flattened as ``tp_<figure>_<stat>``,
    ``tp_device`` and ``tp_comparable`` (``False``: taken beside other runs).
    """
    rows = []
    for r in records:
        cfg = r.get("config", {})
        row = {
            "run_id": r.get("run_id"),
            "sweep": r.get("sweep"),
            "status": r.get("status"),
            "error": r.get("error"),
            "dataset": r.get("dataset", {}).get("name"),
            # A run that failed before building its reducer still names it, from its config.
            "reducer": r.get("reducer", {}).get("name") or cfg.get("reducer", {}).get("name"),
            "reducer_kind": r.get("reducer", {}).get("kind"),
            "learned": r.get("reducer", {}).get("learned"),
            "reducer_params": r.get("reducer", {}).get("parameters"),
            "oracle": bool(r.get("reducer", {}).get("oracle", False)),
            "classifier": r.get("classifier", {}).get("name"),
            "seed": cfg.get("seed"),
            "mode": cfg.get("mode", "train"),
            "test_accuracy": r.get("metrics", {}).get("test_accuracy"),
            "test_loss": r.get("metrics", {}).get("test_loss"),
            "train_seconds": r.get("metrics", {}).get("train_seconds"),
        }
        throughput = r.get("throughput") or {}
        row["tp_device"] = (throughput.get("reducer") or {}).get("device")
        row["tp_comparable"] = throughput.get("comparable")
        for figure, stats in throughput.items():
            if isinstance(stats, dict):
                for stat, value in stats.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        row[f"tp_{figure}_{stat}"] = value
        rows.append(row)
    import pandas as pd  # here, not at the top: every run writes records, few build frames

    return pd.DataFrame(rows)
