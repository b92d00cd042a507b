"""What a config may name as code: checked on the composed config before anything is called.

Sweeps are shared as preset files and command lines, so a config must never run anything
but a network class. A config names code in these places only:

=====================================  ==============================================
where                                  what the named object must be
=====================================  ==============================================
``classifier._target_``                a subclass of ``torch.nn.Module``, or a function
                                       registered with ``experiments.classifier
                                       .network_factory`` (checked when the run starts,
                                       on the imported object, before it is called)
``hydra.callbacks.<name>._target_``    a subclass of Hydra's ``Callback``
``hydra.launcher._target_``            a subclass of Hydra's ``Launcher``
``hydra.sweeper._target_``             a subclass of Hydra's ``Sweeper``
``hydra.sweeper.sampler._target_``     a subclass of Optuna's ``BaseSampler`` (the
                                       optimising sweeper, ``hydra/sweeper=optuna``)
``hydra.*_logging.handlers.<h>.class`` a subclass of ``logging.Handler``
``hydra.*_logging.formatters.<f>.class``  a subclass of ``logging.Formatter``
=====================================  ==============================================

Everywhere else Hydra's instantiate keys (``_target_``, ``_args_``, ``_partial_``,
``_recursive_``, ``_convert_``) and logging's factory key ``()`` are refused, naming the
key: Hydra instantiates a nested ``_target_`` before the object around it, so a loader
(``numpy.load`` with ``allow_pickle``), a hub (``torch.hub.load``) or a builtin named
inside an option ran before any check of the outer target. Two more ways a config could
make this process or its children run code are closed: ``hydra.job.env_set`` may not set
the loaders' variables (``LD_*``, ``DYLD_*``, ``PYTHON*``), and a SLURM launcher's
``setup`` lines may only be ``export NAME=value``. The Optuna sweeper's
``custom_search_space`` (a dotted path it calls with each trial) must stay ``null``.

:func:`code_problems` is called by ``experiments.run`` on every config it composes, before
Hydra instantiates its callbacks or launcher; a problem exits with status 2.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

# Keys Hydra's instantiate acts on, and logging.config's user-defined factory key.
INSTANTIATE_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")
LOGGING_FACTORY_KEY = "()"
CODE_KEYS = (*INSTANTIATE_KEYS, LOGGING_FACTORY_KEY)

CLASSIFIER_TARGET = "classifier._target_"
# full key → (dotted path of the base class, what it is called in a message)
HYDRA_PLUGIN_SLOTS = {
    "hydra.launcher._target_": ("hydra.plugins.launcher.Launcher", "a Hydra launcher"),
    "hydra.sweeper._target_": ("hydra.plugins.sweeper.Sweeper", "a Hydra sweeper"),
    "hydra.sweeper.sampler._target_": ("optuna.samplers.BaseSampler", "an Optuna sampler"),
}
CALLBACK_BASE = ("hydra.experimental.callback.Callback", "a Hydra callback")
LOGGING_CONFIGS = ("hydra.job_logging", "hydra.hydra_logging")
LOGGING_CLASSES = {
    "handlers": (logging.Handler, "a logging handler"),
    "formatters": (logging.Formatter, "a logging formatter"),
}
# Environment variables that make a process started later load code of their choosing.
LOADER_VARIABLES = re.compile(r"^(LD_|DYLD_|PYTHON)")
SETUP_LINE = re.compile(r"^export [A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.,:/+=@%-]*$")

WHERE = (
    "a config names code only as classifier._target_ (an nn.Module class), and as Hydra's "
    "own callback, launcher and sweeper classes (README: Configuration)"
)


def code_problems(config: Mapping[str, Any]) -> list[str]:
    """What in ``config`` (a composed config as plain containers, unresolved) would make
    Hydra or this suite call something other than the classes allowed above; one
    ``<full key>: <problem and fix>`` per problem, empty when there is none.

    The Hydra and logging classes are imported and checked here; the classifier's target
    is checked when the run starts (its module may need torch, and the job imports it)."""
    problems = []
    for key, value in _code_keys(config, ""):
        problems += _slot_problems(key, value)
    hydra = config.get("hydra")
    if isinstance(hydra, Mapping):
        problems += _logging_problems(hydra)
        problems += _environment_problems(hydra)
        problems += _setup_problems(hydra)
        problems += _sweeper_problems(hydra)
    return problems


def nested_code_keys(options: Mapping[str, Any], prefix: str) -> list[str]:
    """Full keys (``classifier.x._target_``) of every instantiate or factory key inside
    ``options``, at any depth."""
    return [key for key, _ in _code_keys(options, prefix)]


def _code_keys(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            full = f"{prefix}.{key}" if prefix else str(key)
            if key in CODE_KEYS:
                yield full, value
            yield from _code_keys(value, full)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _code_keys(value, f"{prefix}[{index}]")


def _slot_problems(key: str, value: Any) -> list[str]:
    if key == CLASSIFIER_TARGET:
        if isinstance(value, str):
            return []  # an nn.Module class or a registered factory: checked at the run's start
        return [f"{key}: {value!r} is not a dotted path; write package.module.Class"]
    if key in HYDRA_PLUGIN_SLOTS:
        return _class_problems(key, value, *HYDRA_PLUGIN_SLOTS[key])
    parts = key.split(".")
    if len(parts) == 4 and parts[:2] == ["hydra", "callbacks"] and parts[3] == "_target_":
        return _class_problems(key, value, *CALLBACK_BASE)
    return [f"{key}: refused, nothing named here may be called; {WHERE}"]


def _class_problems(key: str, value: Any, base_path: str, what: str) -> list[str]:
    base = locate(base_path)
    problem = subclass_problem(value, base, what)
    return [] if problem is None else [f"{key}: {problem}"]


def subclass_problem(path: Any, base: type, what: str) -> str | None:
    """Why the object ``path`` names is not a subclass of ``base`` (``None`` when it is);
    the module is imported, nothing it holds is called."""
    if not isinstance(path, str) or "${" in path:
        return f"{path!r} must be written out as a dotted path to {what} class"
    try:
        found = locate(path)
    except (ImportError, AttributeError, ValueError) as err:
        return f"cannot import {path!r} ({type(err).__name__}: {err})"
    if isinstance(found, type) and issubclass(found, base):
        return None
    kind = "class" if isinstance(found, type) else type(found).__name__
    return (
        f"{path!r} is a {kind}, not {what} ({base.__module__}.{base.__qualname__} "
        "subclass); nothing was called"
    )


def locate(path: str) -> Any:
    """The object a dotted path ``package.module.Name`` names: the module imported, the
    name read from it. Nothing is called."""
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{path!r} is not a dotted path package.module.Name")
    return getattr(importlib.import_module(module_name), name)


def _logging_problems(hydra: Mapping[str, Any]) -> list[str]:
    problems = []
    for section in LOGGING_CONFIGS:
        config = hydra.get(section.split(".", 1)[1])
        if not isinstance(config, Mapping):
            continue
        for group, (base, what) in LOGGING_CLASSES.items():
            entries = config.get(group)
            for name, entry in (entries or {}).items() if isinstance(entries, Mapping) else ():
                if isinstance(entry, Mapping) and "class" in entry:
                    problem = subclass_problem(entry["class"], base, what)
                    if problem is not None:
                        problems.append(f"{section}.{group}.{name}.class: {problem}")
    return problems


def _environment_problems(hydra: Mapping[str, Any]) -> list[str]:
    job = hydra.get("job")
    env_set = job.get("env_set") if isinstance(job, Mapping) else None
    if not isinstance(env_set, Mapping):
        return []
    return [
        f"hydra.job.env_set.{name}: refused; a loader's variable makes every process the "
        "job starts load code of the config's choosing (set it in your shell if you mean it)"
        for name in env_set
        if LOADER_VARIABLES.match(str(name))
    ]


def _sweeper_problems(hydra: Mapping[str, Any]) -> list[str]:
    sweeper = hydra.get("sweeper")
    named = sweeper.get("custom_search_space") if isinstance(sweeper, Mapping) else None
    if named is None:
        return []
    return [
        f"hydra.sweeper.custom_search_space: {named!r} refused; the sweeper would call the "
        "function it names with every trial. Give the search space as overrides instead "
        "(trainer.lr=interval(0.001,0.01), reducer=a,b)"
    ]


def _setup_problems(hydra: Mapping[str, Any]) -> list[str]:
    launcher = hydra.get("launcher")
    setup = launcher.get("setup") if isinstance(launcher, Mapping) else None
    if not isinstance(setup, (list, tuple)):
        return []
    return [
        f"hydra.launcher.setup[{index}]: {line!r} refused; a setup line runs in the job's "
        "shell, so a config may only export a variable (export NAME=value, no quotes or "
        "shell syntax)"
        for index, line in enumerate(setup)
        if not (isinstance(line, str) and SETUP_LINE.match(line))
    ]
