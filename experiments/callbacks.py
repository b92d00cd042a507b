"""Hydra callback: check the results folder first; at the end, report and tally.

At the start of a sweep (or single run) an unwritable ``results_dir`` stops everything
before any training. At the end of a sweep the comparison table and report are written,
then one line says how many jobs of *this invocation* were ok / failed / skipped (from the
jobs' outcome files, so every launcher is counted), and the process exits with status 1
when any failed or never finished.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.outcomes import tally_outcomes
from stn.results import ResultsDirError, ensure_writable

log = logging.getLogger(__name__)


def _stop_unless_writable(results_dir: str) -> None:
    # Hydra turns a callback's exception into a warning and carries on; SystemExit stops it.
    try:
        ensure_writable(results_dir)
    except ResultsDirError as err:
        sys.exit(f"error: {err}")


class ReportAtSweepEnd(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _stop_unless_writable(config.results_dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _stop_unless_writable(config.results_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Imported here: the report's stack (pandas, scipy, matplotlib) takes seconds to
        # load, and a single run, which never reports, should not pay for it.
        from stn.report import write_report

        results_dir = config.results_dir
        try:
            report = write_report(results_dir)
        except Exception as err:  # noqa: BLE001 - the records are safe; only the report failed
            log.error("could not build the report for %s: %s", results_dir, err)
        else:
            print(report.table_markdown)
            if report.throughput_markdown:
                print("\n" + report.throughput_markdown)
            print(f"\nreport: {report.path}  ({report.summary_line})")
        tally = tally_outcomes(config.hydra.sweep.dir)
        print(tally.line)
        for outcome in tally.failed:
            print(f"  failed {outcome.overrides} (run {outcome.run_id}): {outcome.reason}")
        for job_dir in tally.unfinished:
            print(f"  unfinished: {job_dir} (see its log)")
        if not tally.all_succeeded:
            sys.exit(1)
