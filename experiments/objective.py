"""What a job returns to Hydra's sweeper: the objective an optimising sweeper optimises.

    stn-bench run -m hydra/sweeper=optuna hydra.sweeper.direction=maximize \\
        hydra.sweeper.n_trials=20 'trainer.lr=interval(0.001,0.01)'

Every job returns its run's ``objective.metric`` as a float, read from the record (so a
run skipped because its ``ok`` record exists returns the same value as when it ran).
Hydra's grid sweeper (``basic``) ignores the value; an optimising one (Optuna) reads it,
and its ``hydra.sweeper.direction`` must be ``objective.direction`` (checked before any
trial runs, :func:`direction_problem`).

A run with no value (failed, or a metric it did not record) follows the Optuna sweeper's
failure contract: the job raises :class:`NoObjective`, Hydra hands the exception back in
the job's return, and the sweeper marks that trial failed; when the failed share of a
batch exceeds ``hydra.sweeper.max_failure_rate`` (default 0) the sweeper stops there with
the job's error. The record (``failed`` with the reason) is written first either way.
Under the grid sweeper a failed run returns ``None`` and the sweep goes on, as before: the
tally at its end names it and the command exits 1. Returning NaN instead would break the
Optuna sweeper: ``study.tell`` refuses NaN, and its fallback then fails too.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from stn.options import checked_options, closest_match, option
from stn.results.record import Metrics

DIRECTIONS = ("maximize", "minimize")
# Hydra's grid sweeper: runs every combination and never reads what a job returns.
GRID_SWEEPERS = frozenset({"hydra._internal.core_plugins.basic_sweeper.BasicSweeper"})
# The file the Optuna sweeper writes into the invocation's Hydra folder at the end.
OPTIMISER_RESULTS = "optimization_results.yaml"


def objective_metrics() -> tuple[str, ...]:
    """The recorded metrics an objective may name: the numbers of a record's ``metrics``."""
    hints = typing.get_type_hints(Metrics)
    return tuple(
        f.name
        for f in dataclasses.fields(Metrics)
        if {float, int} & set(typing.get_args(hints[f.name]) or (hints[f.name],))
    )


class NoObjective(RuntimeError):
    """A run gave its optimising sweeper no value: the sweeper marks the trial failed."""


@dataclass(frozen=True)
class Objective:
    """The ``objective`` section: which recorded metric an optimising sweeper optimises."""

    metric: str = option(
        "test_accuracy",
        "the recorded metric a job returns to an optimising sweeper (hydra/sweeper=optuna): "
        + ", ".join(objective_metrics()),
    )
    direction: str = option(
        "maximize", "maximize or minimize; the sweeper's hydra.sweeper.direction must agree"
    )

    def __post_init__(self) -> None:
        metrics = objective_metrics()
        if self.metric not in metrics:
            near = closest_match(self.metric, metrics)
            hint = f" (did you mean {near!r}?)" if near else ""
            raise ValueError(
                f"objective.metric: {self.metric!r} is not a recorded metric{hint}; "
                f"recorded: {', '.join(metrics)}"
            )
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"objective.direction: {self.direction!r} is not one of {', '.join(DIRECTIONS)}"
            )


def objective_from(section: Any) -> Objective:
    """The ``objective`` section of a composed config (a mapping) as an :class:`Objective`;
    a ``ValueError`` naming the key for an unknown metric, direction or key."""
    return Objective(**checked_options(Objective, dict(section), "objective"))


def is_optimising(sweeper_target: str | None) -> bool:
    """Whether the sweeper with this ``_target_`` reads the jobs' return values."""
    return sweeper_target is not None and sweeper_target not in GRID_SWEEPERS


def direction_problem(objective: Objective, sweeper: Any) -> str | None:
    """Why the sweeper's ``direction`` disagrees with the objective's (``None`` when it
    agrees, or when the sweeper has no direction: the grid sweeper)."""
    if not hasattr(sweeper, "get") or sweeper.get("direction") is None:
        return None
    direction = sweeper.get("direction")
    directions = [direction] if isinstance(direction, (str, Enum)) else list(direction)
    named = [d.name if isinstance(d, Enum) else str(d) for d in directions]  # Optuna's enum
    if named == [objective.direction]:
        return None
    direction = named[0] if len(named) == 1 else named
    return (
        f"hydra.sweeper.direction={direction} but objective.metric={objective.metric} is to "
        f"be {objective.direction}d (objective.direction={objective.direction}): add "
        f"hydra.sweeper.direction={objective.direction}, or use hydra/sweeper=tune (its "
        "direction is objective.direction)"
    )


def objective_value(results_dir: str | Path, run_id: str, objective: Objective) -> float | None:
    """The objective's value in the ``ok`` record of ``run_id`` under ``results_dir``;
    ``None`` when there is no such record or it did not record the metric."""
    from stn.results.store import read_record, record_path

    path = record_path(results_dir, run_id)
    if not path.is_file():
        return None
    record = read_record(path)
    value = record.metrics.scalars().get(objective.metric) if record.status == "ok" else None
    return None if value is None else float(value)


def sweep_return(
    status: str,
    reason: str | None,
    run_id: str,
    results_dir: str | Path,
    objective: Objective,
    sweeper_target: str | None,
) -> float | None:
    """What the job hands Hydra's sweeper: the objective's value; ``None`` under the grid
    sweeper, or :class:`NoObjective` raised under an optimising one, when there is none."""
    value = objective_value(results_dir, run_id, objective) if status != "failed" else None
    if value is None and is_optimising(sweeper_target):
        why = reason or f"its record has no metrics.{objective.metric}"
        raise NoObjective(
            f"run {run_id} gave no {objective.metric} ({status}: {why}); the sweeper marks "
            "this trial failed (hydra.sweeper.max_failure_rate: the failed share of a batch "
            "it tolerates)"
        )
    return value
