"""The body of one run, importable so that every Hydra launcher can pickle it.

``run_job(cfg)``: skip if an ``ok`` record with the same run id exists (resume), else
build data, reducer and classifier, train, evaluate, time, and write exactly one record,
``ok`` or ``failed`` with the reason. A failure never escapes to take the sweep down.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from experiments.tracking import open_tracker
from stn.data.prepare import DatasetSpec, prepare_data
from stn.environment import describe_environment, resolve_device
from stn.models import build_classifier, count_parameters
from stn.reducers import build_reducer, reduce_batch
from stn.results import new_record, ok_run_ids, write_record
from stn.throughput import measure
from stn.train import ReducedClassifier, TrainSettings, fit, seed_everything

log = logging.getLogger(__name__)

DATASET_KEYS = frozenset(DatasetSpec.__dataclass_fields__)


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config as a plain dict, without Hydra's own node."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    return config


def dataset_spec(section: dict[str, Any]) -> DatasetSpec:
    unknown = set(section) - DATASET_KEYS
    if unknown:
        raise ValueError(
            f"unknown dataset option(s) {sorted(unknown)}; valid: {sorted(DATASET_KEYS)}"
        )
    return DatasetSpec(**section)


def run_job(cfg: DictConfig) -> str:
    """Run one configured job; returns ``ok``, ``failed`` or ``skipped``."""
    config = plain_config(cfg)
    sweep_dir = Path(config["results_dir"])
    record = new_record(config, sweep=str(config["sweep"]))
    if config.get("resume", True) and record["run_id"] in ok_run_ids(sweep_dir):
        log.info("skipped %s: an ok record already exists in %s", record["run_id"], sweep_dir)
        return "skipped"
    run_name = f"{config['reducer']['name']}-{config['dataset']['name']}-s{config['seed']}"
    started = time.time()
    record["timing"]["started_at"] = started
    with open_tracker(config["logger"], run_name, config, group=str(config["sweep"])) as tracker:
        try:
            _train_and_measure(config, record, tracker)
            record["status"] = "ok"
        except Exception as err:  # noqa: BLE001 - one failed run must not end the sweep
            record["status"] = "failed"
            record["error"] = f"{type(err).__name__}: {err}"
            record["traceback"] = traceback.format_exc()
            log.error("run %s failed: %s", run_name, record["error"])
        record["timing"]["finished_at"] = time.time()
        record["timing"]["duration_s"] = record["timing"]["finished_at"] - started
        path = write_record(record, sweep_dir)
        tracker.summary({"status": record["status"], **_scalar_metrics(record.get("metrics", {}))})
    log.info("%s %s → %s", record["status"], run_name, path)
    return str(record["status"])


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _train_and_measure(config: dict[str, Any], record: dict[str, Any], tracker: Any) -> None:
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    device = resolve_device(str(config["device"]))
    record["environment"] = describe_environment(device)
    seed = int(config["seed"])
    seed_everything(seed)
    trainer = dict(config["trainer"])
    batch_size = int(trainer.pop("batch_size"))
    settings = TrainSettings(**trainer)
    data = prepare_data(dataset_spec(config["dataset"]), seed, batch_size)
    record["dataset"] = {"name": config["dataset"]["name"], **data.describe()}

    channels, height, width = data.train.input_shape
    output_size = tuple(config["output_size"])
    reducer = build_reducer(config["reducer"], channels, (height, width), output_size)
    classifier_cfg = dict(config["classifier"])
    # Reseed so the classifier starts from the same weights whatever the reducer drew:
    # otherwise its init (and whether it leaves the ln 10 loss plateau) depends on the reducer.
    torch.manual_seed(seed)
    classifier = build_classifier(
        classifier_cfg.pop("kind"),
        channels,
        data.num_classes,
        output_size,
        **{k: v for k, v in classifier_cfg.items() if k != "name"},
    )
    record["classifier"] = {
        "name": config["classifier"]["name"],
        "parameters": count_parameters(classifier),
    }
    if reducer.needs_fit:
        record["reducer_fit"] = reducer.fit(data.train)
    record["reducer"] = reducer.describe()

    model = ReducedClassifier(reducer, classifier)
    metrics = fit(
        model,
        data.train,
        data.test,
        settings,
        device,
        on_epoch_end=lambda entry: tracker.log(entry),
    )
    record["metrics"] = metrics
    record["throughput"] = measure_reducer(model, data, device, config["throughput"])


def measure_reducer(
    model: ReducedClassifier, data: Any, device: torch.device, settings: dict[str, Any]
) -> dict[str, Any]:
    """Images/s of the reducer alone on a test batch (inference, no gradients)."""
    batch = next(data.test.batches())
    x = batch.x.to(device)
    boxes = None if batch.boxes is None else batch.boxes.to(device)
    model.eval()

    @torch.no_grad()
    def reducer_step() -> None:
        reduce_batch(model.reducer, x, boxes)

    figure = measure(
        reducer_step,
        batch_size=len(x),
        device=device,
        warmup=int(settings["warmup"]),
        min_repeats=int(settings["min_repeats"]),
        min_seconds=float(settings["min_seconds"]),
    )
    return {"reducer": figure.as_dict()}
