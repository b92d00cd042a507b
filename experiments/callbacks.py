"""Hydra callback: check the results folder first; at the end, report and tally.

At the start of a sweep (or single run) a ``sweep`` that is not one folder name (status 2),
an ``objective`` that names no recorded metric or disagrees with an optimising sweeper's
direction (status 2, ``experiments.objective``) or an unwritable ``results_dir`` stops
everything before any folder is made or any run trained; the sweep's folder is remembered
for the tally a failed write prints (``experiments.run.cli``). At the end of a sweep the
configurations its runs timed beside each other are timed again alone
(``experiments.quiet_pass``), then the comparison table and report are written (with the
reproduction section when ``reference_dir`` is set), then an optimising sweeper's results
(``optimization_results.yaml``: best parameters and value) are copied beside the report,
then one line says how many jobs of *this invocation* were ok / failed / skipped (from the
jobs' outcome files, so every launcher is counted), and the process exits with status 1
when any failed or never finished. Ctrl-C (SIGINT) ends a sweep with a message, the same
tally marked as interrupted, and status 130 (128 + SIGINT, the shell's convention); a
single run with the message and 130.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from experiments.objective import OPTIMISER_RESULTS, direction_problem, objective_from
from experiments.outcomes import tally_outcomes
from experiments.schemas import sweep_name_problem
from stn.results.store import ResultsDirError, ensure_writable

log = logging.getLogger(__name__)


USAGE_ERROR = 2  # as experiments.run: the command line asks for what the suite refuses


def _stop_unless_writable(config: DictConfig) -> None:
    # Hydra turns a callback's exception into a warning and carries on; SystemExit stops it.
    # The sweep's name first: before any folder is made, a name such as ../../x would put
    # the results (and Hydra's job folders) outside results/.
    problem = sweep_name_problem(config.sweep)
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(USAGE_ERROR)
    try:
        ensure_writable(config.results_dir)
    except ResultsDirError as err:
        sys.exit(f"error: {err}")


def _stop_unless_objective_known(config: DictConfig, sweeper: Any = None) -> None:
    """Exit with status 2 when ``objective`` names no recorded metric or direction, or
    when ``sweeper`` (the sweep's ``hydra.sweeper``) optimises the other way."""
    try:
        objective = objective_from(config.objective)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(USAGE_ERROR) from None
    problem = direction_problem(objective, sweeper)
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(USAGE_ERROR)


def _keep_optimiser_results(config: DictConfig) -> None:
    """Copy what an optimising sweeper found (``hydra.sweep.dir/optimization_results.yaml``:
    best parameters and value) beside the sweep's report, and say so."""
    found = Path(str(config.hydra.sweep.dir)) / OPTIMISER_RESULTS
    if not found.is_file():
        return  # the grid sweeper, or an optimiser that stopped early
    target = Path(str(config.results_dir)) / OPTIMISER_RESULTS
    try:
        shutil.copyfile(found, target)
    except OSError as err:
        log.error("could not copy %s beside the report: %s", found, err)
        target = found
    results = OmegaConf.load(target)
    objective = objective_from(config.objective)
    print(
        f"optimiser: best {objective.metric} {results.get('best_value')} at "
        f"{dict(results.get('best_params') or {})} ({target})",
        flush=True,
    )


INTERRUPTED_EXIT = 130  # 128 + SIGINT: what a shell reports for a command ended by Ctrl-C


# The folder of the sweep this process started (its Hydra job folders), for the tally
# printed when a failed write stops it (experiments.run.cli); None for a single run.
_current_sweep: dict[str, str] = {}


def current_sweep_dir() -> str | None:
    """``hydra.sweep.dir`` of the sweep this process started, or ``None``."""
    return _current_sweep.get("dir")


def print_tally(sweep_dir: str, interrupted: bool = False, stopped: bool = False) -> bool:
    """Print this invocation's tally line and failed / unfinished jobs; True if all ok.
    ``interrupted``: by Ctrl-C; ``stopped``: by a write that failed."""
    tally = tally_outcomes(sweep_dir, interrupted=interrupted, stopped=stopped)
    print(tally.line, flush=True)
    for outcome in tally.failed:
        print(f"  failed {outcome.overrides} (run {outcome.run_id}): {outcome.reason}")
    for job_dir in tally.unfinished:
        print(f"  unfinished: {job_dir} (see its log)")
    return tally.all_succeeded


def _terminate_children() -> None:
    """SIGTERM to this process's direct children (Linux /proc; nothing elsewhere).

    A parallel launcher's workers (joblib's loky) ignore the terminal's Ctrl-C and would
    outlive the ``os._exit`` of the sweep that started them.
    """
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]  # after "pid (comm) state"
            if parent == me:
                os.kill(int(stat.parent.name), signal.SIGTERM)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to signal


def _on_interrupt(sweep_dir: str | None, signum: int, frame: FrameType | None) -> None:
    """SIGINT handler: say what happened, tally the sweep (if any), exit with 130.

    The process ends at once (``os._exit``): an exception raised wherever the main thread
    happens to be can land inside Hydra's config composition, which turns it into a
    config error and exit status 1 (seen under load). Nothing is lost that unwinding would
    have kept: records are written atomically, the run in progress has none (a relaunch
    redoes it), and a stale temporary record is removed at the next start.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C ends at once
    print(
        "\ninterrupted (SIGINT): stopped; records written so far are kept, the run in "
        "progress has none; relaunch the same command to resume",
        file=sys.stderr,
        flush=True,
    )
    if sweep_dir is not None:
        print_tally(sweep_dir, interrupted=True)
    sys.stdout.flush()
    sys.stderr.flush()
    _terminate_children()
    os._exit(INTERRUPTED_EXIT)


def _exit_cleanly_on_ctrl_c(sweep_dir: str | None) -> None:
    # Only the main thread may set a handler; Hydra runs callbacks there (a caller that
    # does not keeps Python's KeyboardInterrupt).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, functools.partial(_on_interrupt, sweep_dir))


def _quiet_pass(config: DictConfig) -> None:
    """Time each configuration of a parallel sweep alone before the report reads the
    figures (``experiments.quiet_pass``); a failure is logged, never fatal."""
    from experiments.launcher import SEQUENTIAL_LAUNCHERS
    from experiments.quiet_pass import QuietPassSettings, run_quiet_pass
    from stn.measure.throughput import ThroughputSettings

    section = OmegaConf.to_container(config.quiet_pass, resolve=True)
    launcher = OmegaConf.select(config, "hydra.launcher._target_")
    # After a parallel sweep only: runs of the basic launcher were timed one at a time
    # already, and a figure they kept contended met other processes, which timing again
    # straight away would meet too.
    if not section.get("enabled", True) or launcher in SEQUENTIAL_LAUNCHERS:
        return
    settings = QuietPassSettings(
        enabled=True, throughput=ThroughputSettings(**section.get("throughput", {}))
    )
    try:
        outcome = run_quiet_pass(config.results_dir, settings, sweep=str(config.sweep))
    except Exception as err:  # noqa: BLE001 - the records are safe; only the timing failed
        log.error("quiet pass failed in %s: %s", config.results_dir, err)
        return
    if outcome.timed or outcome.already:
        print(outcome.line(), flush=True)


class ReportAtSweepEnd(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _stop_unless_objective_known(config)
        _stop_unless_writable(config)
        _exit_cleanly_on_ctrl_c(None)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _stop_unless_objective_known(config, config.hydra.sweeper)
        _stop_unless_writable(config)
        _current_sweep["dir"] = str(config.hydra.sweep.dir)
        _exit_cleanly_on_ctrl_c(str(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Imported here: the report's stack (pandas, scipy, matplotlib) takes seconds to
        # load, and a single run, which never reports, should not pay for it.
        from stn.report.document import write_report

        results_dir = config.results_dir
        _quiet_pass(config)
        try:
            report = write_report(results_dir, reference=config.get("reference_dir"))
        except Exception as err:  # noqa: BLE001 - the records are safe; only the report failed
            log.error("could not build the report for %s: %s", results_dir, err)
        else:
            print(report.table_markdown)
            if report.throughput_markdown:
                print("\n" + report.throughput_markdown)
            print(f"\nreport: {report.path}  ({report.summary_line})")
        _keep_optimiser_results(config)
        if not print_tally(str(config.hydra.sweep.dir)):
            sys.exit(1)
