"""What makes two runs the same experiment: the one place that says which config keys
define an experiment and which only describe how it was timed or logged.

A run's id is a hash of its experiment keys (``experiment_id``). Two records with the same
id are one sample, however they were timed, logged or where they were written: the report
merges them, and a sweep relaunched over a folder skips a run whose experiment already has
an ``ok`` record there, whatever file name an older version of this code gave it.

Every top-level key of ``experiments.schemas.RunConfig`` is listed in exactly one of
``EXPERIMENT_KEYS``, ``TIMING_KEYS`` and ``LOGGING_KEYS`` (a test holds the schema to
it). A key listed nowhere (``+my_option=...``) counts as part of the experiment: an
unknown key may change what a run computes, and a needless rerun costs less than two
different experiments read as one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# What a run computes: data, reducer, network, training, seed, output size, whether it
# trains at all, and the device (CUDA and CPU kernels round differently).
EXPERIMENT_KEYS = frozenset(
    {"dataset", "reducer", "classifier", "trainer", "seed", "output_size", "mode", "device"}
)
# How a run was timed. Part of the experiment only where timing *is* the experiment
# (``mode: throughput``): there a thread count or a batch size changes what is measured.
TIMING_KEYS = frozenset({"throughput", "threads"})
# Where the run was written and how it was reported.
# save_checkpoint: where the trained network is also written, not what the run computes.
LOGGING_KEYS = frozenset(
    {
        "logger",
        "results_dir",
        "resume",
        "sweep",
        "hydra",
        "reference_dir",
        "quiet_pass",
        "save_checkpoint",
    }
)
# Keys inside an experiment section that only change what a run prints.
LOGGING_SUBKEYS = frozenset({("trainer", "progress")})
# Options added to a section after runs were recorded, with the value every earlier run
# had: left out of the id while they hold it, so those runs keep their ids (and resume).
# The STN options below came after results/stn_goal's records; each value is the one those
# runs computed with (one glimpse, no zoom schedule, the sampler reading the raw batch).
LATER_DEFAULTS: dict[tuple[str, str], Any] = {
    ("classifier", "checkpoint"): None,
    ("classifier", "frozen"): False,
    ("reducer", "glimpses"): 1,
    ("reducer", "zoom_schedule"): [],
    ("reducer", "sampler_input"): "raw",
}
TIMING_MODE = "throughput"
ID_LENGTH = 16  # hex digits


def experiment_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved run config that defines its experiment (see the module doc)."""
    timed = config.get("mode") == TIMING_MODE
    kept = {
        key: value
        for key, value in config.items()
        if key not in LOGGING_KEYS and (timed or key not in TIMING_KEYS)
    }
    for section, key in LOGGING_SUBKEYS:
        if isinstance(kept.get(section), Mapping):
            kept[section] = {k: v for k, v in kept[section].items() if k != key}
    for (section, key), default in LATER_DEFAULTS.items():
        part = kept.get(section)
        if isinstance(part, Mapping) and key in part and _same_value(part[key], default):
            kept[section] = {k: v for k, v in part.items() if k != key}
    return kept


def _same_value(value: Any, default: Any) -> bool:
    """Equal and of the same type: a ``True`` is not the default ``1``."""
    return type(value) is type(default) and value == default


def _whole_floats_as_ints(value: Any) -> Any:
    """``value`` with every float that is a whole number written as an int, at any depth."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: _whole_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_whole_floats_as_ints(item) for item in value]
    return value


def experiment_id(config: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit id of the experiment a resolved config defines; configs that
    differ only in timing or logging keys share it, and so do configs whose numbers differ
    only as ``60`` and ``60.0`` (a typed schema made some options floats after runs were
    recorded with the preset's integers)."""
    text = json.dumps(_whole_floats_as_ints(experiment_config(config)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


def config_differences(
    ours: Mapping[str, Any], theirs: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """The dotted experiment keys whose values differ between two configs, sorted
    (``reducer.glimpses``); a key absent on one side differs."""
    if not prefix:
        ours, theirs = experiment_config(ours), experiment_config(theirs)
    differences = []
    for key in sorted(set(ours) | set(theirs), key=str):
        a, b = ours.get(key, _ABSENT), theirs.get(key, _ABSENT)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            differences += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            differences.append(f"{prefix}{key}")
    return differences


_ABSENT = object()
