"""Hydra callback: when a sweep ends, print its comparison table and write its report."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from stn.report import write_report

log = logging.getLogger(__name__)


class ReportAtSweepEnd(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        results_dir = config.results_dir
        try:
            report = write_report(results_dir)
        except Exception as err:  # noqa: BLE001 - the records are safe; only the report failed
            log.error("could not build the report for %s: %s", results_dir, err)
            return
        print(report.table_markdown)
        if report.throughput_markdown:
            print("\n" + report.throughput_markdown)
        print(f"\nreport: {report.path}  ({report.summary_line})")
