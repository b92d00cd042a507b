"""How each job of one sweep invocation ended, readable by the sweep's main process.

Every job writes ``outcome.json`` (status ``ok`` / ``failed`` / ``skipped``, run id,
reason) into its own Hydra job folder ``<hydra.sweep.dir>/<job number>/``. That folder
is named per invocation (a timestamp down to microseconds), so the outcome files under
one sweep folder are exactly this invocation's jobs — whichever launcher ran them, in
this process (basic), in local worker processes (joblib) or on cluster nodes (submitit).
A job folder without an outcome is a job that never finished (killed, crashed).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

OUTCOME_FILE = "outcome.json"
STATUSES = ("ok", "failed", "skipped")


@dataclass(frozen=True)
class JobOutcome:
    status: str
    run_id: str
    name: str
    reason: str | None = None
    overrides: str | None = None  # the job's command-line overrides, to tell jobs apart

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"outcome status must be one of {STATUSES}, got {self.status!r}")


@dataclass
class SweepTally:
    """The outcomes of one sweep invocation, and the job folders that have none."""

    ok: list[JobOutcome] = field(default_factory=list)
    failed: list[JobOutcome] = field(default_factory=list)
    skipped: list[JobOutcome] = field(default_factory=list)
    unfinished: list[Path] = field(default_factory=list)
    interrupted: bool = False  # stopped by SIGINT (Ctrl-C) before it ended
    stopped: bool = False  # stopped by a write that failed (experiments.write_failures)

    @property
    def all_succeeded(self) -> bool:
        return not (self.failed or self.unfinished or self.interrupted or self.stopped)

    @property
    def line(self) -> str:
        text = f"sweep: {len(self.ok)} ok, {len(self.failed)} failed, {len(self.skipped)} skipped"
        if self.skipped:
            text += " (ok records kept; resume=false reruns them)"
        if self.unfinished:
            text += f", {len(self.unfinished)} unfinished (no outcome in their job folder)"
        if self.interrupted:
            text += "; interrupted by Ctrl-C (relaunch the same command to resume)"
        if self.stopped:
            text += "; stopped: a write failed (fix it, then relaunch the same command to resume)"
        return text


def write_outcome(job_dir: str | os.PathLike, outcome: JobOutcome) -> Path:
    """Write ``outcome`` to ``job_dir/outcome.json`` atomically (temp file, then rename)."""
    folder = Path(job_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".outcome.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(outcome), handle)
        target = folder / OUTCOME_FILE
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def tally_outcomes(
    sweep_dir: str | os.PathLike, interrupted: bool = False, stopped: bool = False
) -> SweepTally:
    """Collect the outcomes of the numbered job folders directly under ``sweep_dir``;
    ``interrupted`` says SIGINT stopped the sweep before it ended, ``stopped`` that a
    failed write did."""
    tally = SweepTally(interrupted=interrupted, stopped=stopped)
    if not Path(sweep_dir).is_dir():
        return tally
    job_dirs = [p for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.isdigit()]
    for job_dir in sorted(job_dirs, key=lambda p: int(p.name)):
        path = job_dir / OUTCOME_FILE
        try:
            outcome = JobOutcome(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            tally.unfinished.append(job_dir)
            continue
        getattr(tally, outcome.status).append(outcome)
    return tally
