"""After a parallel sweep, time each distinct reducer configuration alone: the quiet pass.

Runs of a parallel launcher time their figures beside each other, so their records say
``throughput.comparable: false`` and a report could not use them. When such a sweep ends
(``experiments.callbacks``), this pass takes every configuration of the folder whose
trained runs have no comparable figures and times it once more, in the sweep's own
process, one configuration after another: the method of ``experiment=throughput``
(``stn.measure.throughput.measure_pipeline``: references interleaved with every timed
call, ``F.interpolate(antialias)`` among them) with ``quiet_pass.throughput``'s settings,
not the brief ones the parallel runs used. Each timing is a ``mode=throughput`` record in
the sweep's folder; the report's throughput table, Pareto figure and verdict read those
where they exist (``stn.report.throughput_table.row_throughput``).

A configuration is the run's config without its seed: seeds change weights, not cost, so
each is timed once, on the smallest seed the sweep ran. A relaunch skips configurations
already timed (their records are ``ok``), like any other run.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from experiments.quiet_settings import QuietPassSettings
from experiments.sections import build_model, read_run
from stn.data.prepare import prepare_data
from stn.measure.environment import describe_environment, resolve_device
from stn.measure.throughput import TimingConditions, measure_pipeline, timing_batch
from stn.measure.train import seed_everything
from stn.results.identity import experiment_id
from stn.results.record import DatasetInfo, Record, new_record
from stn.results.store import is_ok, load_records, write_record

log = logging.getLogger(__name__)

QUIET_MODE = "throughput"


@dataclass(frozen=True)
class QuietPassOutcome:
    timed: list[Record]  # records written by this pass (ok or failed)
    already: int  # configurations whose timing record was already ok

    def line(self) -> str:
        failed = sum(r.status != "ok" for r in self.timed)
        text = f"quiet pass: {len(self.timed)} configuration(s) timed alone"
        if failed:
            text += f" ({failed} failed)"
        if self.already:
            text += f", {self.already} already timed"
        return text


def quiet_config(config: dict[str, Any], settings: QuietPassSettings) -> dict[str, Any]:
    """The timing run of a trained run's config: ``mode=throughput`` with the pass's
    throughput settings (the run's timing batch size kept)."""
    throughput = asdict(settings.throughput)
    run_batch = (config.get("throughput") or {}).get("batch_size")
    if run_batch is not None:
        throughput["batch_size"] = run_batch
    return {**config, "mode": QUIET_MODE, "throughput": throughput}


def quiet_configs(records: Iterable[Record], settings: QuietPassSettings) -> list[dict[str, Any]]:
    """One timing config per distinct configuration among the ``ok`` trained records whose
    figures are not comparable, on the smallest seed it ran with; in record order."""
    chosen: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.status != "ok" or record.mode != "train":
            continue
        if record.throughput.get("comparable") is not False:
            continue
        config = quiet_config(record.config, settings)
        key = experiment_id({**config, "seed": None})
        if key not in chosen or config["seed"] < chosen[key]["seed"]:
            chosen[key] = config
    return list(chosen.values())


def run_quiet_pass(
    sweep_dir: str | Path, settings: QuietPassSettings, sweep: str
) -> QuietPassOutcome:
    """Time every configuration of ``sweep_dir`` that needs it (``quiet_configs``) and
    write its record; a configuration that fails is recorded as failed, not raised."""
    records, _ = load_records(sweep_dir)
    timed, already = [], 0
    for config in quiet_configs(records, settings):
        if is_ok(sweep_dir, experiment_id(config)):
            already += 1
            continue
        record = time_alone(config, sweep)
        write_record(record, sweep_dir)
        log.info("quiet pass: %s %s", record.status, config["reducer"]["name"])
        timed.append(record)
    return QuietPassOutcome(timed, already)


def time_alone(config: dict[str, Any], sweep: str) -> Record:
    """Build ``config``'s data, reducer and network (fitting the reducer where it needs
    it, no training) and time them in this process; the record, ``ok`` or ``failed``."""
    record = new_record(config, sweep=sweep)
    record.timing.started_at = time.time()
    threads = torch.get_num_threads()
    try:
        _measure(config, record)
        record.status = "ok"
    except Exception as err:  # noqa: BLE001 - one configuration must not end the pass
        record.status = "failed"
        record.error = f"{type(err).__name__}: {err}"
        record.traceback = traceback.format_exc()
        log.error("quiet pass: %s failed: %s", config["reducer"]["name"], record.error)
    finally:
        torch.set_num_threads(threads)  # the sweep's process goes on to write the report
    record.timing.finished_at = time.time()
    record.timing.duration_s = record.timing.finished_at - record.timing.started_at
    return record


def _measure(config: dict[str, Any], record: Record) -> None:
    # The same build as experiments.job, without training: the cost of a step does not
    # depend on what the weights learned.
    run = read_run(config)
    if run.threads:
        torch.set_num_threads(run.threads)
    device = resolve_device(run.device)
    record.environment = describe_environment(device)
    seed_everything(run.seed)
    data = prepare_data(run.dataset, run.seed, run.trainer.batch_size)
    record.dataset = DatasetInfo.from_json({"name": run.dataset.name, **data.describe()})
    model = build_model(run, data, device, record)
    batch = timing_batch(data.test, run.throughput.batch_size or run.trainer.batch_size)
    record.throughput = measure_pipeline(
        model,
        batch.x,
        batch.y,
        batch.boxes,
        device,
        run.throughput,
        run.output_size,
        TimingConditions(),
    )
