"""Run one configured job, or a sweep with ``-m``: the app behind ``stn-bench run``.

    stn-bench run                                # one run, the defaults
    stn-bench run reducer=resize_area seed=3     # one run, overridden
    stn-bench run -m reducer=resize_bilinear,pool_avg seed=0,1
    stn-bench run experiment=compare             # the default comparison sweep

``python -m experiments.run ...`` is the same app (the sweeps already running call it so).
Records land in ``results/<sweep>/records/<run id>.json``; ``--help`` lists every group,
``--cfg job`` prints every option's value (each section's schema: experiments/schemas.py).
An override of an option its section lacks (``trainer.epohcs=3``) exits with status 2,
naming the valid options and the closest match.
A sweep re-launched over the same ``results_dir`` skips runs whose record is ``ok``
(``resume=false`` reruns them), ends with an ``ok / failed / skipped`` line and exits
non-zero when any run failed. Launchers: ``hydra/launcher=joblib`` (local processes, one
thread each when n_jobs = cores), ``hydra/launcher=slurm`` (cluster preset),
``hydra/launcher=submitit_local`` (the cluster path without SLURM). Each job returns its
objective to the sweeper (``experiments.objective``), so ``hydra/sweeper=tune`` (Optuna)
can optimise a setting.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from experiments import CONF_DIR
from experiments.callbacks import current_sweep_dir, print_tally
from experiments.objective import objective_from, sweep_return
from experiments.outcomes import write_outcome
from experiments.overrides import composition_problems
from experiments.schemas import register_schemas
from experiments.write_failures import (
    WRITE_FAILED,
    SweepStopped,
    name_hydra_write_failures,
    write_failure,
)
from stn.options import unknown_names_message

USAGE_ERROR = 2  # the exit status of a command line that names something that is not there

# Here, not in a function: every process that composes a config needs the schemas, and a
# parallel launcher's workers import this module to unpickle the task (and save Hydra's
# config copies, whose failed writes must name their file).
register_schemas()
name_hydra_write_failures()


def unknown_option_message(err: BaseException | None) -> str | None:
    """``trainer.epohcs: unknown trainer option 'epohcs' (did you mean 'epochs'?); valid:
    ...`` when ``err`` is OmegaConf's error for a key its section lacks; else ``None``."""
    if not isinstance(err, (ConfigAttributeError, ConfigKeyError)):
        return None
    parent, key = err.parent_node, err.key
    if not isinstance(parent, DictConfig) or key is None or key in parent:
        return None
    full_key = str(err.full_key or key)
    section = full_key.rpartition(".")[0]
    valid = [str(k) for k in parent.keys() if not (section == "" and k == "hydra")]
    unknown = unknown_names_message(_section_name(section, parent), [str(key)], valid)
    message = f"{full_key}: {unknown}"
    if OmegaConf.get_type(parent) in (dict, None):  # no schema: a key of your own network
        message += f"; a key the preset does not list takes a leading +: +{full_key}=..."
    return message


def _section_name(section: str, node: DictConfig) -> str:
    if not section:
        return "run"
    kind = node.get("kind") if "kind" in node else None
    return f"{section} kind {kind!r}" if isinstance(kind, str) else section


# Why the next three functions wrap Hydra's private methods (hydra-core 1.3.8, pinned
# < 1.4 in pyproject.toml; tests/experiments/test_section_options.py, test_config_code.py and
# test_write_failures.py run the app and fail if a wrapped method moves): Hydra 1.3 offers
# no public hook that does their jobs.
# - Unknown options: the composition error is raised inside Hydra's main and printed there
#   by `run_and_report` (the OmegaConf cause only: "Key 'epohcs' is not in struct"), exit
#   status 1, before any callback exists. Callbacks (`on_run_start`, `on_multirun_start`,
#   `on_job_start`) only ever see configs that composed. `HYDRA_FULL_ERROR=1` would let the
#   exception reach `cli`, but it is the user's debugging switch: it turns every other error
#   into a full traceback. Composing the command line first with the public Compose API
#   (`hydra.compose`) refuses sweep overrides (`seed=0,1,2`, `interval(...)`) and cannot see
#   the configs a sweeper composes later, one per job.
# - Configs that name code: they must be refused before Hydra instantiates what the config
#   names, and `Hydra.multirun` instantiates the callbacks themselves (and the job logging's
#   handlers) before the first callback runs. Hydra 1.4's `on_compose_config` callback would
#   see every composed config, but it too is instantiated from the config it would check.
# - Failed writes of Hydra's own files are raised out of `Hydra.run` / `Hydra.multirun`
#   into the same `run_and_report`.
def _explain_unknown_options() -> None:
    """Make Hydra's "Could not override 'trainer.epohcs'" say which options the section
    has and which one was likely meant, then exit with status 2.

    Hydra composes the config (and reports its errors) inside its own ``main``; the one
    place that sees both the failed key and its section's node is the loader's override
    step, wrapped here for this process's command line only.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    apply: Callable[..., Any] = ConfigLoaderImpl._apply_overrides_to_config
    if getattr(apply, "explains_unknown_options", False):
        return

    def apply_or_explain(overrides: Any, cfg: DictConfig) -> None:
        try:
            apply(overrides, cfg)
        except ConfigCompositionException as err:
            message = unknown_option_message(err.__cause__)
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(USAGE_ERROR) from None

    apply_or_explain.explains_unknown_options = True  # type: ignore[attr-defined]
    ConfigLoaderImpl._apply_overrides_to_config = staticmethod(apply_or_explain)


def _check_composed_configs() -> None:
    """Refuse, with status 2, a composed config that names code anywhere but where a
    config may, an added key its section does not declare, or a boolean option given
    anything but true or false (``experiments.overrides``).

    Wrapped around the loader's composition, so that every config this process composes
    is checked before Hydra instantiates its callbacks and launcher: the sweep's (with
    every value of each swept option) and each job's.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    load: Callable[..., DictConfig] = ConfigLoaderImpl._load_configuration_impl
    if getattr(load, "checks_composed_configs", False):
        return

    def load_and_check(self: Any, config_name: Any, overrides: list[str], *args: Any, **kw: Any):
        cfg = load(self, config_name, overrides, *args, **kw)
        problems = composition_problems(cfg, overrides)
        if problems:
            print("\n".join(f"error: {problem}" for problem in problems), file=sys.stderr)
            raise SystemExit(USAGE_ERROR)
        return cfg

    load_and_check.checks_composed_configs = True  # type: ignore[attr-defined]
    ConfigLoaderImpl._load_configuration_impl = load_and_check


def _stop_on_hydra_write_failures() -> None:
    """A write of Hydra's own that fails (a job folder, its ``.hydra/`` copies, its log)
    stops the sweep as a failed record does (``experiments.write_failures``), instead of
    Hydra's traceback: the launcher raises it out of ``Hydra.run`` / ``Hydra.multirun``."""
    from hydra._internal.hydra import Hydra

    for method in ("run", "multirun"):
        launch: Callable[..., Any] = getattr(Hydra, method)
        if getattr(launch, "stops_on_write_failures", False):
            continue

        def launch_or_stop(self: Any, *args: Any, _launch: Callable[..., Any] = launch, **kw: Any):
            try:
                return _launch(self, *args, **kw)
            except Exception as err:
                line = write_failure(err, current_sweep_dir())
                if line is None:
                    raise
                raise SweepStopped(line) from err

        launch_or_stop.stops_on_write_failures = True  # type: ignore[attr-defined]
        setattr(Hydra, method, launch_or_stop)


# An absolute path: a path relative to this module ("../conf") is read as the package
# "conf" when the module is imported rather than run (stn-bench run), and conf/ is no package.
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """One job; returns its ``objective`` (test accuracy unless configured) to the sweeper
    (``experiments.objective``: an optimising sweeper reads it, the grid sweeper does not)."""
    # Imported here: torch takes seconds to load, and config errors should not wait for it.
    from experiments.job import run_job

    hydra_cfg = HydraConfig.get()
    try:
        outcome = run_job(cfg)
        # The sweep's end-of-run callback reads these files, whatever process ran the job.
        overrides = " ".join(hydra_cfg.overrides.task)
        outcome = dataclasses.replace(outcome, overrides=overrides)
        write_outcome(hydra_cfg.runtime.output_dir, outcome)
    except OSError as err:  # a record or outcome not written: every later run would be lost
        raise SweepStopped(write_failure(err) or str(err)) from err
    if hydra_cfg.mode == RunMode.RUN and outcome.status == "failed":
        sys.exit(1)  # a single run; in a sweep the callback exits after the report
    sweeper = hydra_cfg.sweeper.get("_target_") if hydra_cfg.mode == RunMode.MULTIRUN else None
    return sweep_return(
        outcome.status,
        outcome.reason,
        outcome.run_id,
        cfg.results_dir,
        objective_from(cfg.objective),
        sweeper,
    )


def cli() -> None:
    """``stn-bench run`` (and ``python -m experiments.run``): Hydra's main, with clear errors
    for unknown options, refused configs (status 2) and failed writes (status 74, after the
    sweep's tally)."""
    _explain_unknown_options()
    _check_composed_configs()
    _stop_on_hydra_write_failures()
    try:
        main()
    except SweepStopped as stop:
        print(f"error: {stop.message}", file=sys.stderr, flush=True)
        sweep_dir = current_sweep_dir()
        if sweep_dir is not None:
            print_tally(sweep_dir, stopped=True)
        sys.stdout.flush()
        raise SystemExit(WRITE_FAILED) from None


if __name__ == "__main__":
    cli()
