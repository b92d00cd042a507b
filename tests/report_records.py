"""Synthetic sweep records for the report tests (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stn.results.examples import examples_path, write_examples
from stn.results.record import ClassifierInfo, DatasetInfo, Metrics, Record, ReducerInfo, new_record
from stn.results.store import write_record


def make_record(
    reducer: str,
    seed: int,
    accuracy: float | None,
    dataset: str = "digits_96",
    classifier: str = "cnn",
    status: str = "ok",
    kind: str = "resize",
    images_per_s: float = 1000.0,
    reducer_options: dict[str, Any] | None = None,
    epochs: int = 3,
    num_classes: int | None = 10,
    stalled: bool = False,
) -> Record:
    """A record as ``run_job`` writes it. ``stalled``: its training loss stays at ln C and
    its training accuracy at 1/C (the chance plateau); ``num_classes=None`` leaves the
    class count out, as in records that cannot get a plateau verdict."""
    config = {
        "seed": seed,
        "dataset": {"name": dataset, "canvas_size": 96},
        "reducer": {"name": reducer, "kind": kind, **(reducer_options or {})},
        "classifier": {"name": classifier, "kind": classifier},
        "trainer": {"epochs": epochs, "lr": 0.001, "batch_size": 64},
        "output_size": [48, 48],
        "results_dir": "unused",
    }
    record = new_record(config, sweep="test")
    record.status = status
    record.environment = {"python": "3.11", "torch": "2.13.0", "cpu": "test", "device": "cpu"}
    if status != "ok":
        record.error = "ReducerConfigError: pool_avg cannot reach 48 from 100\nsecond line"
        return record
    record.reducer = ReducerInfo(name=reducer, kind=kind, learned=kind == "stn", parameters=0)
    record.classifier = ClassifierInfo(name=classifier, parameters=10)
    record.dataset = DatasetInfo(name=dataset, num_classes=num_classes)
    chance = np.log(num_classes or 10)
    curves = [
        {
            "epoch": e + 1,
            "train_loss": chance if stalled else 2.0 / (e + 1),
            "train_accuracy": 0.1 if stalled else 0.5,
            "test_loss": 1.0,
            "test_accuracy": accuracy * (e + 1) / epochs,
            "seconds": 1.0,
        }
        for e in range(epochs)
    ]
    record.metrics = Metrics(test_accuracy=accuracy, test_loss=1.0, curves=curves)
    record.throughput = {
        "reducer": {
            "images_per_s": images_per_s,
            "step_ms_median": 64e3 / images_per_s,
            "batch_size": 64,
            "device": "cpu",
        }
    }
    return record


def write_examples_for(record: Record, sweep_dir: Path, theta: bool = False, k: int = 4) -> Path:
    """A small examples file: (k, 1, 96, 96) inputs, (k, 1, 48, 48) outputs, θ optional."""
    rng = np.random.default_rng(0)
    arrays = {
        "inputs": rng.integers(0, 256, size=(k, 1, 96, 96), dtype=np.uint8),
        "labels": np.arange(k),
        "outputs": rng.random((k, 1, 48, 48), dtype=np.float32),
        "boxes": np.tile(np.array([[10.0, 20.0, 38.0, 48.0]], dtype=np.float32), (k, 1)),
    }
    if theta:
        arrays["theta"] = np.tile(np.array([[0.5, 0, 0.1], [0, 0.5, -0.2]], np.float32), (k, 1, 1))
    return write_examples(arrays, examples_path(sweep_dir, record.run_id))


def write_all(records: list[Record], sweep_dir: Path) -> None:
    for record in records:
        write_record(record, sweep_dir)
