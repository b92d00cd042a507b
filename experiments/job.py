"""The body of one run, importable so that every Hydra launcher can pickle it.

``run_job(cfg)``: check the results folder is writable, skip if an ``ok`` record with
the same run id exists (resume), else build data, reducer and classifier, train,
evaluate, time, and write exactly one record, ``ok`` or ``failed`` with the reason. A
failure never escapes to take the sweep down; only a write that fails does (an unwritable
results folder, a record that cannot be written: an ``OSError`` naming the file), because
no record could say what happened and every later run would be lost too
(``experiments.write_failures``).
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from experiments.checkpoints import check_checkpoint_options, save_trained_network
from experiments.classifier import classifier_name
from experiments.launcher import throughput_conditions
from experiments.outcomes import JobOutcome
from experiments.schemas import sweep_name_problem
from experiments.sections import build_model, read_run, section_settings
from experiments.tracking import LoggerSettings, open_tracker
from stn.data.prepare import prepare_data
from stn.measure.environment import describe_determinism, describe_environment, resolve_device
from stn.measure.glimpse import measure_glimpses
from stn.measure.plateau import plateau_verdict
from stn.measure.throughput import (
    TimingConditions,
    check_timing_batch_fits,
    measure_data_path,
    measure_pipeline,
    peak_rss_bytes,
    reset_peak_rss,
    timing_batch,
)
from stn.measure.train import fit, seed_everything
from stn.results.examples import examples_path, try_save_examples
from stn.results.record import (
    DatasetInfo,
    Metrics,
    Record,
    Resources,
    new_record,
)
from stn.results.store import (
    SCHEMA_VERSION,
    ensure_writable,
    is_ok,
    newer_record_version,
    record_path,
    write_record,
)
from stn.sampling import native

log = logging.getLogger(__name__)


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config as a plain dict, without Hydra's own node."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    return config


def run_job(cfg: DictConfig) -> JobOutcome:
    """Run one configured job; its outcome says ``ok``, ``failed`` (why) or ``skipped``."""
    config = plain_config(cfg)
    # A network given by _target_ alone is named after its class, in the config too: the
    # report, its curves and the completeness grid read config.classifier.name.
    config["classifier"] = {**config["classifier"], "name": classifier_name(config["classifier"])}
    record = new_record(config, sweep=str(config["sweep"]))
    run_id = record.run_id
    run_name = f"{config['reducer']['name']}-{config['dataset']['name']}-s{config['seed']}"
    # Before the folder is made: a sweep name such as ../../x would place it elsewhere.
    sweep_problem = sweep_name_problem(config["sweep"])
    if sweep_problem:
        log.error("run %s refused: %s", run_name, sweep_problem)
        return JobOutcome("failed", run_id, run_name, f"ValueError: {sweep_problem}")
    sweep_dir = Path(config["results_dir"])
    ensure_writable(sweep_dir)
    if config["device"] == "cuda_if_present" and not torch.cuda.is_available():
        log.info("skipped %s: device=cuda_if_present and no CUDA GPU here", run_name)
        return JobOutcome("skipped", run_id, run_name)
    # A run asked to save a checkpoint that is not there reruns even when its record is ok.
    saved = not config["save_checkpoint"] or Path(config["save_checkpoint"]).is_file()
    if config["resume"] and is_ok(sweep_dir, run_id) and saved:
        log.info("skipped %s (%s): an ok record already exists in %s", run_name, run_id, sweep_dir)
        return JobOutcome("skipped", run_id, run_name)
    newer = newer_record_version(sweep_dir, run_id)
    if newer is not None:  # written by a newer stn-bench: this one cannot read what it replaces
        reason = (
            f"RecordError: {record_path(sweep_dir, run_id)} has schema version {newer}, newer "
            f"than this stn-bench writes ({SCHEMA_VERSION}); not overwritten: run the newer "
            "stn-bench, or move the file away to rerun with this one"
        )
        log.error("run %s not run: %s", run_name, reason)
        return JobOutcome("failed", run_id, run_name, reason)
    started = time.time()
    record.timing.started_at = started
    logger = section_settings(LoggerSettings, config["logger"], "logger")
    with open_tracker(logger, run_name, config, group=str(config["sweep"])) as tracker:
        try:
            _train_and_measure(config, record, tracker)
            record.status = "ok"
        except Exception as err:  # noqa: BLE001 - one failed run must not end the sweep
            record.status = "failed"
            record.error = f"{type(err).__name__}: {err}"
            record.traceback = traceback.format_exc()
            log.error("run %s failed: %s", run_name, record.error)
        _release_gpu_memory()
        record.timing.finished_at = time.time()
        record.timing.duration_s = record.timing.finished_at - started
        path = write_record(record, sweep_dir)
        tracker.summary({"status": record.status, **record.metrics.scalars()})
    log.info("%s %s → %s", record.status, run_name, path)
    return JobOutcome(record.status, run_id, run_name, record.error)


def _release_gpu_memory() -> None:
    # After a CUDA out-of-memory error the next job of this process needs the cache back.
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _train_and_measure(config: dict[str, Any], record: Record, tracker: Any) -> None:
    # The config read once, before any data: an unknown key (+foo=1), a malformed size, a
    # value out of range or a mistyped option of any section fails at once, naming it.
    run = read_run(config)
    if run.threads:
        torch.set_num_threads(run.threads)
    device = resolve_device(run.device)
    # Peak memory of this run alone where the kernel lets us reset the high-water mark.
    rss_scope = "run" if reset_peak_rss() else "process"
    record.environment = describe_environment(device)
    record.determinism = describe_determinism(device)
    run.classifier.check()  # a mistyped target fails before the data
    # A missing, unsafe or mismatched checkpoint too (what needs the data: at build_model).
    check_checkpoint_options(run.classifier, run.output_size)
    if run.save_checkpoint and run.mode != "train":
        raise ValueError(
            f"save_checkpoint={run.save_checkpoint!r} needs mode=train: a throughput run "
            "trains nothing"
        )
    settings, tp = run.trainer, run.throughput
    batch_size = settings.batch_size
    seed_everything(run.seed)
    data = prepare_data(run.dataset, run.seed, batch_size)
    record.dataset = DatasetInfo.from_json({"name": run.dataset.name, **data.describe()})
    # The timing comes after training: a batch that cannot fit must fail the run now.
    timed = "throughput.batch_size" if tp.batch_size else "trainer.batch_size (the timing batch)"
    check_timing_batch_fits(tp.batch_size or batch_size, data.test.input_shape, timed, device)

    model = build_model(run, data, device, record)
    if run.mode == "train":  # throughput: no training, the record has no accuracy
        record.metrics = Metrics.from_json(
            fit(
                model,
                data.train,
                data.test,
                settings,
                device,
                on_epoch_end=lambda entry: tracker.log(entry),
            )
        )
        # Whether the optimiser left the ln C plateau: the report counts and marks runs
        # that did not, instead of averaging them silently into the reducer's mean.
        record.metrics.plateau = plateau_verdict(record.metrics.curves, int(data.num_classes))
        # "Does it zoom onto the object?" as numbers, not only as the report's picture.
        record.metrics.glimpse = measure_glimpses(model.reducer, data.test, device)
        if run.save_checkpoint:  # the trained network, for classifier.checkpoint=... later
            record.extra["saved_checkpoint"] = save_trained_network(
                run.save_checkpoint,
                model.classifier,
                run.classifier,
                data.train.input_shape[0],
                data.num_classes,
                run.output_size,
                {
                    "run_id": record.run_id,
                    "dataset": run.dataset.name,
                    "reducer": run.reducer.name,
                    "seed": run.seed,
                    "test_accuracy": record.metrics.test_accuracy,
                },
            )
    record.resources = Resources(peak_rss_mb=peak_rss_bytes() / 2**20, peak_rss_scope=rss_scope)
    batch = timing_batch(data.test, tp.batch_size or batch_size)
    conditions = TimingConditions(**throughput_conditions())
    record.throughput = measure_pipeline(
        model, batch.x, batch.y, batch.boxes, device, tp, run.output_size, conditions
    )
    # After training and timing: whether the general sampler ran compiled (stn/sampling/native.py).
    record.environment["compiled_sampler"] = native.loaded_status()
    data_path = measure_data_path(data.train, batch_size, tp)
    record.throughput["data"] = data_path
    record.throughput["ratios"]["data_vs_train_step"] = (
        data_path["images_per_s"] / record.throughput["train_step"]["images_per_s"]
    )
    example_file = examples_path(run.results_dir, record.run_id)
    record.examples = try_save_examples(model.reducer, next(data.test.batches()), example_file)
