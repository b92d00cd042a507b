"""Hydra structured-config schemas: every section's dataclass registered with ``ConfigStore``.

The library's frozen dataclasses are the one home of each option's default, type and help;
registered here as schemas, they make the YAML presets overrides only:

==========  ===============  =====================================  ============================
group       schema           dataclass                              presets that extend it
==========  ===============  =====================================  ============================
(primary)   ``base_config``  :class:`RunConfig` (below)             ``conf/config.yaml``
dataset     ``base_dataset`` ``stn.data.prepare.DatasetSpec``       ``conf/dataset/*.yaml``
trainer     ``base_trainer`` ``stn.measure.train.TrainSettings``    ``conf/trainer/*.yaml``
logger      ``base_logger``  ``experiments.tracking.LoggerSettings`` ``conf/logger/*.yaml``
classifier  ``base_<kind>``  ``stn.networks.models.CnnConfig``, ...  ``conf/classifier/*.yaml``
reducer     ``base_<kind>``  each registered kind's ``config_type`` ``conf/reducer/*.yaml``
==========  ===============  =====================================  ============================

The ``throughput`` section is a field of :class:`RunConfig`
(``stn.measure.throughput.ThroughputSettings``). A preset extends its schema with
``defaults: [base_trainer, _self_]``: a key the schema lacks then fails at composition, a
value of the wrong type too, and ``stn-bench run --cfg job`` shows every
option with its value. ``classifier=custom`` (your own ``_target_`` and its keyword
arguments) has no schema: its keys are the constructor's, checked when the run starts.

Call :func:`register_schemas` before composing (``experiments.run`` does, so do the tests
and scripts that use Hydra's compose API). A new section or kind adds one line to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from experiments.objective import Objective
from experiments.quiet_settings import QuietPassSettings
from experiments.tracking import LoggerSettings
from stn.data.prepare import DatasetSpec
from stn.measure.throughput import ThroughputSettings
from stn.measure.train import TrainSettings
from stn.networks import NETWORKS
from stn.options import option
from stn.reducers.registry import REDUCERS
from stn.results.record import RUN_MODES


@dataclass(frozen=True)
class RunConfig:
    """The top-level options of one run, and the sections that groups fill.

    ``conf/config.yaml`` extends it (``defaults: [base_config, _self_, ...]``) and
    ``conf/experiment/*.yaml`` presets override it.
    """

    seed: int = option(
        0, "seeds training order, training canvases and initial weights (0 <= seed < 2**32)"
    )
    sweep: str = option(
        "default", "names the results folder results/<sweep>/: one folder name, no '/'"
    )
    results_dir: str = option(
        "results/${sweep}", "records go to <results_dir>/records/<run id>.json"
    )
    resume: bool = option(True, "skip runs whose record is already ok (false: rerun them)")
    device: str = option(
        "auto", "auto (CUDA when present), cpu, cuda, cuda:1, cuda_if_present (skip without GPU)"
    )
    threads: int | None = option(None, "torch CPU threads (>= 1); null keeps torch's default")
    # Any, not tuple[int, int]: a malformed size (output_size=48) reaches the run, which
    # fails saying the form it takes (experiments.sections.output_size_of), not Hydra's error.
    output_size: Any = option((48, 48), "the small network's input [h, w]: two integers >= 1")
    mode: str = option(
        "train", "train: fit, evaluate, then time; throughput: time only (no accuracy)"
    )
    throughput: ThroughputSettings = option(
        ThroughputSettings(), "images/s: reducer alone, inference, training step, + references"
    )
    save_checkpoint: str | None = option(
        None,
        "after training, write the downstream network's weights and what they were trained "
        "for to this file (for classifier.checkpoint=...; experiment=frozen_checkpoint)",
    )
    reference_dir: str | None = option(
        None,
        "a folder of reference records: the report ends comparing each run with the "
        "reference record of the same experiment (make main: results/compare)",
    )
    quiet_pass: QuietPassSettings = option(
        QuietPassSettings(),
        "after a parallel sweep, each reducer configuration timed alone (comparable speeds)",
    )
    objective: Objective = option(
        Objective(),
        "what each job returns to an optimising sweeper (hydra/sweeper=optuna): a recorded "
        "metric and its direction",
    )
    # Filled by the config groups (each preset brings its own schema): conf/<group>/.
    dataset: Any = option(MISSING, "conf/dataset/: what the images are and how large")
    reducer: Any = option(MISSING, "conf/reducer/: how images reach output_size")
    classifier: Any = option(MISSING, "conf/classifier/: the downstream network")
    trainer: Any = option(MISSING, "conf/trainer/: epochs, lr, batch size")
    logger: Any = option(MISSING, "conf/logger/: wandb (offline by default) or none")

    def __post_init__(self) -> None:
        problem = sweep_name_problem(self.sweep)
        if problem:
            raise ValueError(problem)
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must lie in [0, 2**32) (NumPy's range), got {self.seed}")
        if self.mode not in RUN_MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {', '.join(RUN_MODES)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or null (torch's default), got {self.threads}")


def sweep_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a sweep's name (``None`` when it can).

    The name is one folder under ``results/``: ``../../x`` wrote outside it, ``''`` and
    ``.`` wrote records straight into ``results/`` beside every other sweep's folder."""
    if (
        isinstance(name, str)
        and name.strip()
        and name not in (".", "..")
        and not any(c in name for c in "/\\")
        and all(c.isprintable() for c in name)
    ):
        return None
    return (
        f"sweep={name!r} is not a folder name: the sweep names one folder, results/<sweep>/ "
        "(not empty, '.' or '..', no '/' or '\\', no control characters; e.g. sweep=mine). "
        "To write somewhere else, set results_dir=<path>"
    )


def schema_node(config_type: type) -> DictConfig:
    """``config_type`` (a dataclass) as a writable Hydra schema node.

    OmegaConf makes the node of a frozen dataclass read-only, which would refuse every
    preset and override; the node keeps its field types and its unknown-key errors.
    """
    node = OmegaConf.structured(config_type)
    _make_writable(node)
    return node


def _make_writable(node: DictConfig | ListConfig) -> None:
    OmegaConf.set_readonly(node, False)
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)):
            _make_writable(child)


def reducer_config_types() -> dict[str, type]:
    """kind → config dataclass of every registered reducer kind."""
    return {kind: REDUCERS.config_type(kind) for kind in REDUCERS}


def section_schemas() -> list[tuple[str | None, str, type]]:
    """``(group, name, dataclass)`` of every schema, the primary config's first."""
    schemas: list[tuple[str | None, str, type]] = [
        (None, "base_config", RunConfig),
        ("dataset", "base_dataset", DatasetSpec),
        ("trainer", "base_trainer", TrainSettings),
        ("logger", "base_logger", LoggerSettings),
    ]
    schemas += [
        ("classifier", f"base_{kind}", NETWORKS.config_type(kind)) for kind in sorted(NETWORKS)
    ]
    schemas += [
        ("reducer", f"base_{kind}", config_type)
        for kind, config_type in sorted(reducer_config_types().items())
    ]
    return schemas


def register_schemas() -> None:
    """Store every schema in Hydra's ``ConfigStore``; calling it again changes nothing.

    A kind's schema (``reducer/base_stn``, ``classifier/base_cnn``) sets its ``kind`` and
    names itself after it, so presets need not repeat ``kind:`` and the schema composes
    as a preset of its own (``reducer=base_stn``: the kind's defaults)."""
    store = ConfigStore.instance()
    for group, name, config_type in section_schemas():
        node = schema_node(config_type)
        if group in ("reducer", "classifier"):
            node.kind = node.name = name.removeprefix("base_")
        store.store(group=group, name=name, node=node)
