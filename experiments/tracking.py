"""The one wandb adapter: a wandb run per job (``open_tracker``) and one per report
(``log_report``, used by ``stn-bench report``). Nothing else in the suite imports wandb.

The mode is the logger config's ``mode`` (``${oc.env:WANDB_MODE,offline}``) for jobs and
``WANDB_MODE`` for reports, ``offline`` when unset; tests set ``disabled``. Nothing here
waits for a login: offline and disabled need none, and online mode without saved
credentials (``wandb login`` or ``WANDB_API_KEY``) tracks offline instead, with a warning,
rather than prompting. Any wandb failure becomes a warning and the work goes on without
tracking: the local record and report never depend on it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stn.options import option

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_MODE = "offline"
DEFAULT_PROJECT = "stn-bench"
DISABLED = "disabled"


@dataclass(frozen=True)
class LoggerSettings:
    """The ``logger`` section: the one home of its options (schema ``logger/base_logger``;
    ``conf/logger/*.yaml`` extend it, so a mistyped key is refused at composition)."""

    enabled: bool = option(False, "track each job as a wandb run")
    mode: str | None = option(
        None, "online, offline or disabled; null: WANDB_MODE, else offline (never a login)"
    )
    project: str = option(DEFAULT_PROJECT, "wandb project")
    entity: str | None = option(None, "wandb entity (team or user); null: your default")
    dir: str | None = option(None, "folder for wandb's files (<dir>/wandb/); null: wandb's")


def wandb_mode(configured: str | None = None) -> str:
    """The mode to run wandb in: ``configured`` if given, else ``WANDB_MODE``, else
    ``offline``."""
    return configured or os.environ.get("WANDB_MODE") or DEFAULT_MODE


class Tracker:
    """Logs metrics to a wandb run, or nowhere (``run=None``); never raises."""

    def __init__(self, run: Any | None) -> None:
        self.run = run

    def log(self, metrics: dict[str, Any]) -> None:
        self._safely("log", lambda: self.run.log(metrics))

    def summary(self, values: dict[str, Any]) -> None:
        self._safely("summary", lambda: self.run.summary.update(values))

    def _safely(self, what: str, call: Any) -> None:
        if self.run is None:
            return
        try:
            call()
        except Exception as err:  # noqa: BLE001 - tracking must never end a run
            log.warning("wandb %s failed (%s); continuing without it", what, err)
            self.run = None


def start_run(mode: str, **init: Any) -> Any | None:
    """``wandb.init(mode=mode, **init)``, or ``None`` (with a warning) when wandb fails.

    Online mode without saved credentials runs offline instead of prompting for a key.
    """
    # Offline runs otherwise make one network look-up at finish (error reporting).
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        if mode == "online" and not wandb.login(prompt=False, verify=False):
            log.warning(
                "wandb: online mode but no saved credentials (run `wandb login` or set "
                "WANDB_API_KEY); tracking offline instead (`wandb sync` uploads it later)"
            )
            mode = "offline"
        return wandb.init(mode=mode, **init)
    except Exception as err:  # noqa: BLE001 - the local results never depend on wandb
        log.warning("wandb could not start (%s); the local results are still written", err)
        return None


def finish_run(run: Any) -> bool:
    """Finish ``run``; ``False`` (with a warning) when wandb fails to."""
    try:
        run.finish()
    except Exception as err:  # noqa: BLE001
        log.warning("wandb could not finish the run (%s)", err)
        return False
    return True


def _unusable_dir(folder: str | None, what: str = "logger.dir") -> str | None:
    """Why ``folder`` cannot hold wandb's files, or ``None`` when it can.

    wandb itself falls back to a temporary folder without a word, where offline runs
    are easily lost; saying so and tracking nothing is the clearer failure.
    """
    if folder is None:
        return None
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"{what} {path} is not a usable folder ({err.strerror or err})"
    if not os.access(path, os.W_OK):
        return f"{what} {path} is not writable"
    return None


@contextlib.contextmanager
def open_tracker(
    settings: LoggerSettings, name: str, config: dict[str, Any], group: str
) -> Iterator[Tracker]:
    """Yield a ``Tracker`` for one job; ``settings`` is the typed ``logger`` section."""
    mode = wandb_mode(settings.mode)
    if not settings.enabled or mode == DISABLED:
        yield Tracker(None)
        return
    problem = _unusable_dir(settings.dir)
    if problem:
        log.warning("wandb off for this run: %s; the local record is still written", problem)
        yield Tracker(None)
        return
    run = start_run(
        mode,
        project=settings.project,
        entity=settings.entity,
        dir=settings.dir,
        name=name,
        group=group,
        config=config,
        reinit="finish_previous",
    )
    if run is None:
        yield Tracker(None)
        return
    try:
        yield Tracker(run)
    finally:
        finish_run(run)


def log_report(
    name: str,
    table: pd.DataFrame,
    figures: Mapping[str, Path],
    summary: dict[str, Any],
    config: dict[str, Any],
    project: str = DEFAULT_PROJECT,
    folder: str | os.PathLike | None = None,
) -> bool:
    """Log a report's table (as a wandb Table) and figures (caption → PNG) to one run
    named ``name``, with ``summary`` values; never raises. Returns whether the run was
    logged and finished (``False``: mode ``disabled``, or wandb failed, with a warning).

    ``folder`` holds wandb's files (``<folder>/wandb/``): the sweep's, beside its jobs'
    runs. Without it wandb wrote ``./wandb`` into whatever folder the report ran from."""
    mode = wandb_mode()
    if mode == DISABLED:
        return False
    folder = None if folder is None else str(folder)
    problem = _unusable_dir(folder, "the sweep folder")
    if problem:
        log.warning("wandb push skipped: %s; the local report is unaffected", problem)
        return False
    run = start_run(mode, project=project, name=name, job_type="report", config=config, dir=folder)
    if run is None:
        return False
    try:
        import wandb

        rows = [[_plain(v) for v in row] for row in table.itertuples(index=False)]
        logged: dict[str, Any] = {"summary": wandb.Table(columns=list(table.columns), data=rows)}
        for caption, path in figures.items():
            logged[f"figures/{path.stem}"] = wandb.Image(str(path), caption=caption)
        run.log(logged)
        run.summary.update(summary)
    except Exception as err:  # noqa: BLE001 - the local report is written; wandb is extra
        log.warning("wandb push failed (%s); the local report is unaffected", err)
        finish_run(run)
        return False
    return finish_run(run)


def _plain(value: Any) -> Any:
    """A table cell wandb accepts: numpy scalars as Python numbers, NaN as empty."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
