"""The layout of a run record: the one module that knows its keys.

A record is one JSON object per run (``<sweep>/records/<run_id>.json``). The job builds
it as a ``Record`` (``new_record``, then it fills the sections) and writes
``Record.to_json()``; a reader turns the JSON object back into a ``Record`` once
(``stn.results.store.read_record``: ``upgrade`` → ``validate_record`` →
``Record.from_json``), and ``stn.results.collect.runs_frame`` flattens the records into
the frame every table and figure uses. Nothing else indexes a record's JSON.

The sections the record defines are typed here (``ReducerInfo``, ``ClassifierInfo``,
``DatasetInfo``, ``Metrics``, ``Timing``, ``Resources``). Sections whose layout another
module owns are carried as plain objects: ``config`` (the resolved run config, laid out
by ``conf/``), ``throughput`` (``stn.measure.throughput.measure_pipeline``),
``environment`` and ``determinism`` (``stn.measure.environment``) and ``reducer_fit``
(the reducer's ``fit``). Every key a section does not model is kept in its ``extra`` and
written back, so a record round-trips whole.

Schema versions: ``SCHEMA_VERSION`` is the layout this code writes; ``READERS`` maps
every version it reads to the function that brings such a JSON object to the current
layout. Version 1 is the only layout so far. It grew optional parts over time (records
written before them lack ``determinism``, ``resources``, ``examples``,
``metrics.plateau``, ``metrics.steps``, ``throughput.contention``, ...); those read as
``None`` (or absent), and the report treats them as unknown. A change of layout bumps
the version and adds a reader for the old one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

from stn.results.identity import experiment_id

SCHEMA_VERSION = 1
VERSION_KEY = "schema_version"

# Config sections every run names: the report groups by these names.
NAMED_CONFIG_SECTIONS = ("dataset", "reducer", "classifier")
RUN_MODES = ("train", "throughput")
DEFAULT_MODE = "train"
# Throughput stats the tables rank (bold) and the Pareto figure plots on a log axis.
RANKED_THROUGHPUT_STATS = ("images_per_s", "step_ms_median")
MISSING = object()  # a key absent from a record, told apart from one set to null
_OPTIONAL = "optional"  # field metadata: written only when set (not None)


class RecordLayoutError(ValueError):
    """A JSON object that is not a record this code can read (another schema version)."""


def run_id_for(config: Mapping[str, Any]) -> str:
    """The run id of a resolved config: its experiment's id
    (``stn.results.identity.experiment_id``), so timing and logging settings never
    make a run a new one."""
    return experiment_id(config)


@dataclass(kw_only=True)
class Section:
    """One object of a record: its known keys as fields (``None``: absent), every other
    key in ``extra``, so nothing a writer added is lost on the way through."""

    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Self:
        """The section from its JSON object (``None`` or missing: an empty section)."""
        data = data or {}
        known = _field_names(cls)
        return cls(
            **{k: v for k, v in data.items() if k in known},
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object: ``extra`` and every field that is set."""
        out = dict(self.extra)
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(kw_only=True)
class ReducerInfo(Section):
    """What the run's reducer was (``Reducer.describe()``); ``extra``: its own options
    (kernel, antialias, n_components, ...)."""

    name: str | None = None
    kind: str | None = None
    learned: bool | None = None
    parameters: int | None = None
    output_size: list[int] | None = None  # [h, w]
    oracle: bool | None = None  # sees the ground truth (labelled so in the report)


@dataclass(kw_only=True)
class ClassifierInfo(Section):
    """The downstream network: a predefined ``kind`` or the user's ``target`` class."""

    name: str | None = None
    kind: str | None = None
    target: str | None = None
    parameters: int | None = None
    # Set only when the run loaded weights (classifier.checkpoint): the file as configured,
    # the SHA-256 of its bytes (which weights, whatever the path), and whether they stayed fixed.
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    frozen: bool | None = None


@dataclass(kw_only=True)
class DatasetInfo(Section):
    """The data the run read (``PreparedData.describe()`` plus the configured name)."""

    name: str | None = None
    num_classes: int | None = None
    input_shape: list[int] | None = None  # [C, H, W]
    n_train: int | None = None
    n_test: int | None = None


@dataclass(kw_only=True)
class Metrics(Section):
    """What training measured (``stn.measure.train.fit``); empty for a throughput-only run
    or one that failed before training ended."""

    test_accuracy: float | None = None  # a fraction in [0, 1]
    test_loss: float | None = None
    train_seconds: float | None = None
    steps: int | None = None
    # One object per epoch: epoch, train_loss, train_accuracy, test_loss, test_accuracy,
    # seconds (stn.measure.train).
    curves: list[dict[str, Any]] | None = None
    plateau: dict[str, Any] | None = None  # stn.measure.plateau.plateau_verdict
    # Where a learned sampler looked on the test images: zoom, distance of its centre to
    # the object's (stn.measure.glimpse.summarise_glimpses); absent for other reducers.
    glimpse: dict[str, float] | None = None

    def scalars(self) -> dict[str, int | float]:
        """The top-level numbers (for a tracker's summary)."""
        return {
            k: v
            for k, v in self.to_json().items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }


@dataclass(kw_only=True)
class Timing(Section):
    """When the run started and ended (seconds since the epoch) and how long it took."""

    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None


@dataclass(kw_only=True)
class Resources(Section):
    """Peak resident memory, of the ``run`` alone or of the whole ``process``."""

    peak_rss_mb: float | None = None
    peak_rss_scope: str | None = None


def _optional(default: Any = None) -> Any:
    return field(default=default, metadata={_OPTIONAL: True})


@dataclass(kw_only=True)
class Record:
    """One run: what was asked (``config``), what ran, what it measured, whether it
    ended ``ok`` or ``failed`` (and why).

    Built by ``new_record``; the job fills the sections as the run goes. ``None`` in an
    optional field means "not reached" (a run that failed early, or a record written
    before the field existed): the key is then absent from the JSON.
    """

    run_id: str
    sweep: str | None
    config: dict[str, Any]  # the resolved run config (conf/), without Hydra's node
    status: str = "running"  # running, ok or failed
    error: str | None = None  # "<ExceptionType>: message" of a failed run
    reducer: ReducerInfo = field(default_factory=ReducerInfo)
    classifier: ClassifierInfo = field(default_factory=ClassifierInfo)
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    metrics: Metrics = field(default_factory=Metrics)
    # stn.measure.throughput.measure_pipeline: one object per figure (reducer,
    # inference, train_step, ...) plus batch, ratios, comparable, data.
    throughput: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)  # describe_environment
    timing: Timing = field(default_factory=Timing)
    traceback: str | None = _optional()
    determinism: dict[str, Any] | None = _optional()  # describe_determinism
    resources: Resources | None = _optional()
    reducer_fit: dict[str, Any] | None = _optional()  # what a fitted reducer's fit returned
    examples: str | None = _optional()  # path of the run's example pictures (.npz)
    extra: dict[str, Any] = field(default_factory=dict)  # keys this layout does not know

    # -- the config facts the report groups by ---------------------------------------

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def experiment_id(self) -> str:
        """The id of the experiment this record ran, from its config: the run id of
        records written since run ids ignore timing settings, a different one for older
        records (``stn.results.identity``)."""
        return experiment_id(self.config)

    @property
    def mode(self) -> Any:
        """``train`` (the default) or ``throughput`` (timed only, no accuracy)."""
        return self.config.get("mode", DEFAULT_MODE)

    def configured(self, section: str, key: str) -> Any:
        """``config.<section>.<key>``, or ``None`` where the section or key is absent."""
        value = self.config.get(section)
        return value.get(key) if isinstance(value, dict) else None

    def name_of(self, section: str) -> Any:
        """The dataset's, reducer's or classifier's name: as built and recorded, else as
        configured (a run that failed before building it still names it)."""
        built = getattr(self, section).name
        return built if built is not None else self.configured(section, "name")

    @property
    def object_scale(self) -> float | None:
        """The mean of ``config.dataset.object_scale`` ``[lo, hi]``; ``None`` when unset."""
        scale = self.configured("dataset", "object_scale")
        if scale is None:
            return None
        lo, hi = (float(scale[0]), float(scale[1])) if len(scale) == 2 else (float(scale[0]),) * 2
        return (lo + hi) / 2

    # -- JSON ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to disk (current ``SCHEMA_VERSION``)."""
        out: dict[str, Any] = dict(self.extra)
        out[VERSION_KEY] = SCHEMA_VERSION
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.metadata.get(_OPTIONAL) and value is None):
                continue
            out[f.name] = value.to_json() if isinstance(value, Section) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        """A record from its JSON object in the current layout (``upgrade`` brings older
        ones there); assumes ``validate_record`` found nothing wrong."""
        known = _field_names(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in known or f.name not in data:
                continue
            value = data[f.name]
            section = _SECTION_TYPES.get(f.name)
            values[f.name] = section.from_json(value) if section and value is not None else value
        values.setdefault("sweep", None)
        values.setdefault("config", {})
        extra = {k: v for k, v in data.items() if k not in known and k != VERSION_KEY}
        return cls(**values, extra=extra)


_SECTION_TYPES: dict[str, type[Section]] = {
    "reducer": ReducerInfo,
    "classifier": ClassifierInfo,
    "dataset": DatasetInfo,
    "metrics": Metrics,
    "timing": Timing,
    "resources": Resources,
}
# The object-valued keys every record has (``new_record`` writes them, empty at first);
# a record never holds null there.
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


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls) if f.name != "extra")


def new_record(config: dict[str, Any], sweep: str) -> Record:
    """An empty ``running`` record for ``config``; the job fills it as the run goes."""
    return Record(run_id=run_id_for(config), sweep=sweep, config=config)


# -- reading any version ---------------------------------------------------------------


def _read_v1(data: dict[str, Any]) -> dict[str, Any]:
    # The current layout: its later optional parts may be absent; they read as unknown.
    return data


# Schema version → the function that brings a JSON object of that version to the
# current layout. Add the old version's reader here when the layout changes.
READERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _read_v1}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a record's JSON object of any readable version) in the current layout;
    ``RecordLayoutError`` for a version no reader knows."""
    version = data.get(VERSION_KEY, MISSING)
    readable = ", ".join(str(v) for v in sorted(READERS))
    if not isinstance(version, int) or isinstance(version, bool):
        # A string "1" read as "schema version '1', this stn-bench reads version 1" before.
        raise RecordLayoutError(
            f"schema version is {_describe(version)}: {VERSION_KEY} must be an integer, a "
            f'JSON number (1, not "1"); this stn-bench reads version {readable}'
        )
    reader = READERS.get(version)
    if reader is None:
        if version > SCHEMA_VERSION:
            raise RecordLayoutError(
                f"schema version {version} is newer than this stn-bench reads ({readable}): "
                "a newer stn-bench wrote it; read it with that one"
            )
        raise RecordLayoutError(
            f"schema version {version} is not one this stn-bench reads ({readable})"
        )
    return reader(data)


def newer_schema_version(data: Any) -> int | None:
    """The schema version of a record's JSON object when it is newer than the layout this
    code writes (``SCHEMA_VERSION``), else ``None``: such a record is never replaced."""
    version = data.get(VERSION_KEY) if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return version
    return None


# -- validation ------------------------------------------------------------------------


def validate_record(record: Mapping[str, Any]) -> list[str]:
    """What is wrong with a record's JSON object (current layout), one phrase per problem
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
    problems += _metrics_problems(record, str(config.get("mode", DEFAULT_MODE)))
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
    mode = config.get("mode", DEFAULT_MODE)
    if mode not in RUN_MODES:
        problems.append(f"config.mode is {_describe(mode)}; expected one of {', '.join(RUN_MODES)}")
    reducer = config.get("reducer")
    if isinstance(reducer, dict):
        for key, kind, expected in (("kernel", str, "a string"), ("antialias", bool, "true/false")):
            value = reducer.get(key)
            if value is not None and not isinstance(value, kind):
                problems.append(f"config.reducer.{key} is {_describe(value)}; expected {expected}")
    return problems


def _metrics_problems(record: Mapping[str, Any], mode: str) -> list[str]:
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
