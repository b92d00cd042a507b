"""wandb adapter: one wandb run per job, never able to lose the local record.

Offline by default (the mode comes from ``WANDB_MODE``, else ``offline``), ``disabled``
in tests. Any wandb failure becomes a warning and the job goes on without tracking.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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


def _unusable_dir(folder: str | None) -> str | None:
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
        return f"logger.dir {path} is not a usable folder ({err.strerror or err})"
    if not os.access(path, os.W_OK):
        return f"logger.dir {path} is not writable"
    return None


@contextlib.contextmanager
def open_tracker(
    settings: dict[str, Any], name: str, config: dict[str, Any], group: str
) -> Iterator[Tracker]:
    """Yield a ``Tracker`` for one job; ``settings`` is the ``logger`` config group."""
    if not settings.get("enabled", False) or settings.get("mode") == "disabled":
        yield Tracker(None)
        return
    problem = _unusable_dir(settings.get("dir"))
    if problem:
        log.warning("wandb off for this run: %s; the local record is still written", problem)
        yield Tracker(None)
        return
    # Offline runs otherwise make one network look-up at finish (error reporting).
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        run = wandb.init(
            project=settings.get("project", "stn-bench"),
            entity=settings.get("entity"),
            mode=settings.get("mode", "offline"),
            dir=settings.get("dir"),
            name=name,
            group=group,
            config=config,
            reinit="finish_previous",
        )
    except Exception as err:  # noqa: BLE001
        log.warning("wandb could not start (%s); the local record is still written", err)
        yield Tracker(None)
        return
    try:
        yield Tracker(run)
    finally:
        try:
            run.finish()
        except Exception as err:  # noqa: BLE001
            log.warning("wandb could not finish the run (%s)", err)
