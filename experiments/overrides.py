"""Checks of a composed config and the command line that made it, before anything runs.

Hydra and OmegaConf accept more than the suite means: ``+foo=1`` adds a key no section
declares (and changes the run id), ``reducer.antialias=2`` becomes ``true`` (OmegaConf
reads any integer as a boolean), and a preset or override may name code
(``experiments.targets``), and a swept ``sweep=a,../x`` would put a job folder outside
``results/``. :func:`composition_problems` lists each such problem as
``<full key>: <what is wrong and the fix>``; ``experiments.run`` prints them and exits
with status 2 before any run starts, also for every value of a sweep (``-m
reducer.antialias=true,2``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf
from omegaconf.nodes import BooleanNode

from experiments.schemas import sweep_name_problem
from experiments.targets import code_problems
from stn.options import unknown_names_message


def composition_problems(cfg: DictConfig, overrides: Iterable[str]) -> list[str]:
    """What is wrong with ``cfg`` (as composed) and the ``overrides`` that made it."""
    problems = code_problems(OmegaConf.to_container(cfg, resolve=False))
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    for override in parsed:
        if override.is_hydra_override() or override.is_delete():
            continue
        problems += _override_problems(cfg, override)
    return problems


def _override_problems(cfg: DictConfig, override: Override) -> list[str]:
    key = override.key_or_group
    parent_key, _, name = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or name not in parent:
        return []  # a config group (reducer=...), or a key composed away
    node = parent._get_node(name)
    problems = []
    if key == "sweep":  # each value of a sweep too: Hydra makes its job folder from it
        problems += filter(None, (sweep_name_problem(v) for v in _values(override)))
    if override.is_add() or override.is_force_add():
        problem = _added_key_problem(parent, parent_key, name)
        if problem:
            problems.append(f"{key}: {problem}")
    if isinstance(node, BooleanNode):
        refused = [v for v in _values(override) if not isinstance(v, bool)]
        if refused:
            problems.append(f"{key} takes true or false, got {refused[0]!r}")
    return problems


def _values(override: Override) -> list[Any]:
    """Every value an override sets: one, or each of a sweep's."""
    if override.is_discrete_sweep():
        return list(override.sweep_iterator())
    if override.is_sweep_override():
        return []  # an interval: a sweeper's range of numbers, never a boolean
    return [override.value()]


def _added_key_problem(parent: DictConfig, parent_key: str, name: str) -> str | None:
    """Why ``+<parent_key>.<name>`` may not be added: its section has a schema (a
    dataclass) that does not declare it; ``None`` for a section without one (your own
    network's options, classifier=custom) or a declared key."""
    schema = OmegaConf.get_type(parent)
    if schema is None or not dataclasses.is_dataclass(schema):
        return None
    valid = [f.name for f in dataclasses.fields(schema)]
    if name in valid:
        return None
    kind = parent.get("kind") if "kind" in parent else None
    section = parent_key or "run"
    if isinstance(kind, str):
        section = f"{parent_key} kind {kind!r}"
    message = unknown_names_message(section, [name], valid)
    if name == "_target_" and parent_key == "classifier":
        message += "; your own network: classifier=custom classifier._target_=package.module.Class"
    return message
