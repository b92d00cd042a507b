"""Every committed reference run recomposes, from its overrides, to the experiment its
record names: no refactor of presets, schemas or sections moves a run id (or a figure).

A record holds its resolved config, not the command line that made it. Its overrides
were written down once (``recorded_runs.json`` beside this file, made by running this
module as a script): the presets its sections name (``dataset=digits_276``,
``reducer=ablation/stn_loc_rate_1``, ``experiment=<sweep>`` where the sweep has one),
its seed, mode, device and output size, and every value its presets did not hold then
(``trainer.epochs=20``). The test composes each with Hydra's compose API and compares
the experiment config (``stn.results.identity``) and its id with the record's.

Some records are older than options their sections have today. ``LATER_DEFAULTS``
(``stn.results.identity``) keeps a record's id only for options listed there (a
classifier's ``checkpoint``, the STN's ``glimpses``, ...); the others were added without
an entry, so today's composition holds keys those records lack, and rerunning one of them
makes a new run id (the run is redone, never confused with the old one). Each such record lists the
keys in ``added_since`` with the reason (``REASONS``); the comparison leaves out exactly
those keys and checks the record has none of them. Nothing else may differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from stn.results.identity import experiment_config, experiment_id

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
SNAPSHOT = Path(__file__).with_name("recorded_runs.json")
SECTIONS = ("dataset", "reducer", "classifier", "trainer", "throughput")
TOP_LEVEL = ("seed", "mode", "device", "output_size", "threads")
REASONS = {
    "later_option": (
        "option added to its section's schema after the run was recorded, with no "
        "LATER_DEFAULTS entry (rerunning it makes a new run id)"
    ),
    "before_schemas": (
        "recorded before reducer presets extended their kind's schema (commit cc165ec): "
        "the section holds only the preset's own keys"
    ),
    "refused": (
        "the recorded value is one the option's type no longer takes (kernel_params: null "
        "then, a mapping now, {} the same kernel); the run cannot be recomposed as it was"
    ),
}


def record_files() -> list[Path]:
    """The committed records: results/ also holds what a user's own sweeps wrote there
    (make main's results/main), which no snapshot can know."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", "results/*/records/*.json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every record
        return sorted(ROOT.glob("results/*/records/*.json"))
    return sorted(ROOT / name for name in listed.split("\0") if name)


def _preset(group: str, name: str) -> str | None:
    """The preset of ``group`` named ``name`` (``ablation/stn_loc_rate_1`` in a subfolder)."""
    found = sorted((CONF / group).rglob(f"{name}.yaml"))
    return found[0].relative_to(CONF / group).with_suffix("").as_posix() if found else None


def _choices(record: dict[str, Any]) -> list[str]:
    config = record["config"]
    overrides = []
    if (CONF / "experiment" / f"{record['sweep']}.yaml").is_file():
        overrides.append(f"experiment={record['sweep']}")
    for group in ("dataset", "reducer", "classifier"):
        preset = _preset(group, str(config[group]["name"]))
        if preset:
            overrides.append(f"{group}={preset}")
    return overrides + [f"{key}={json.dumps(config[key])}" for key in TOP_LEVEL]


def _composed(overrides: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The resolved config of ``overrides``. Runs that differ by their seed alone share one
    composition (no preset interpolates the seed), which keeps this test to seconds."""
    seeds = [o for o in overrides if o.startswith("seed=")]
    config = json.loads(json.dumps(_composed_once(tuple(o for o in overrides if o not in seeds))))
    for seed in seeds:
        config["seed"] = int(seed.partition("=")[2])
    return config


@cache
def _composed_once(overrides: tuple[str, ...]) -> dict[str, Any]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    return config


def _leaves(section: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _section_leaves(config: dict[str, Any]) -> dict[str, Any]:
    kept = experiment_config(config)
    return {k: v for s in SECTIONS if s in kept for k, v in _leaves(kept[s], f"{s}.").items()}


def _without(config: dict[str, Any], dotted: list[str]) -> dict[str, Any]:
    config = json.loads(json.dumps(config))
    for key in dotted:
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node[part]
        node.pop(last)
    return config


def snapshot_entry(record: dict[str, Any]) -> dict[str, Any]:
    """A record's overrides against today's presets, and the keys it predates."""
    choices = _choices(record)
    recorded = _section_leaves(record["config"])
    composed = _section_leaves(_composed(tuple(choices)))
    values = [f"{k}={json.dumps(v)}" for k, v in recorded.items() if composed.get(k, v) != v]
    refused = [v for v in values if _refused(choices + [v])]
    values = [v for v in values if v not in refused]
    added = sorted(k for k in composed if k not in recorded)
    entry: dict[str, Any] = {"overrides": choices + values}
    if refused:
        entry["refused"] = refused
        entry["reason"] = "refused"
    if added:
        # A section written before the schemas holds the preset's few keys, not most.
        ours, theirs = _composed(choices)["reducer"], record["config"]["reducer"]
        schema_less = 2 * len(theirs) < len(ours)
        entry["added_since"] = added
        later = "before_schemas" if schema_less else "later_option"
        entry["reason"] = entry.get("reason") or later
    return entry


def _refused(overrides: list[str]) -> bool:
    try:
        _composed(overrides)
    except ConfigCompositionException:
        return True
    return False


def write_snapshot() -> None:
    """``python tests/results/test_recorded_runs.py``: write the overrides of every record, once."""
    entries = {}
    for path in record_files():
        entries[path.relative_to(ROOT).as_posix()] = snapshot_entry(json.loads(path.read_text()))
    SNAPSHOT.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")


def _snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text())


def test_every_committed_record_has_its_overrides_written_down():
    assert sorted(_snapshot()) == [p.relative_to(ROOT).as_posix() for p in record_files()]
    assert len(_snapshot()) > 200  # the reference runs are there to check


@pytest.mark.parametrize("sweep", sorted({p.parts[-3] for p in record_files()}))
def test_recorded_runs_recompose_to_their_experiment(sweep):
    for name, entry in _snapshot().items():
        if Path(name).parts[1] != sweep:
            continue
        record = json.loads((ROOT / name).read_text())
        composed = _composed(tuple(entry["overrides"]))
        added = entry.get("added_since", [])
        assert not set(added) & set(_section_leaves(record["config"])), name
        refused = [override.partition("=")[0] for override in entry.get("refused", [])]
        for override in entry.get("refused", []):  # refused today, as the entry says
            with pytest.raises(ConfigCompositionException):
                _composed(entry["overrides"] + [override])
        if added or refused:
            assert entry["reason"] in REASONS, name
        recomposed = _without(experiment_config(composed), added + refused)
        assert recomposed == _without(experiment_config(record["config"]), refused), name
        if not added and not refused:  # 2048 and 2048.0 included: the id hashes both alike
            assert experiment_id(composed) == experiment_id(record["config"]), name


def test_most_records_need_no_exception():
    """The exceptions stay the old runs they are: a new key in a schema that every
    recent record lacked would turn up here as a flood of new ``added_since`` keys."""
    exceptions = [e for e in _snapshot().values() if e.get("added_since")]
    assert 0 < len(exceptions) < len(_snapshot()) / 2


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from experiments.schemas import register_schemas

    register_schemas()
    write_snapshot()
