"""The record's layout (stn/results/record.py): typed sections that round-trip through
JSON unchanged, readers per schema version, and the one frame the report reads."""

import json
import shutil
from pathlib import Path

import pytest
from report_records import make_record

from stn.results import record as layout
from stn.results.collect import record_plateau, runs_frame
from stn.results.record import (
    SCHEMA_VERSION,
    ClassifierInfo,
    DatasetInfo,
    Metrics,
    Record,
    ReducerInfo,
    Resources,
    Timing,
    new_record,
)
from stn.results.store import RecordError, load_records, read_record, write_record
from stn_bench import report as report_script

ROOT = Path(__file__).resolve().parents[2]
EARLY_V1 = Path(__file__).resolve().parents[1] / "data" / "early_v1"  # written as ce70f3a's job did
REFERENCE_RECORDS = sorted(ROOT.glob("results/*/records/*.json"))

# The keys new_record wrote when the record was a plain dict: the shape on disk.
NEW_RECORD_KEYS = {
    "schema_version",
    "run_id",
    "sweep",
    "status",
    "error",
    "config",
    "reducer",
    "classifier",
    "dataset",
    "metrics",
    "throughput",
    "environment",
    "timing",
}
# Columns of the runs frame that the tables, figures and report sections read.
REPORT_COLUMNS = {
    "run_id",
    "status",
    "error",
    "dataset",
    "reducer",
    "reducer_kind",
    "classifier",
    "seed",
    "mode",
    "oracle",
    "learned",
    "reducer_params",
    "test_accuracy",
    "test_loss",
    "train_seconds",
    "kernel",
    "antialias",
    "object_scale",
    "ended_on_plateau",
    "left_plateau_at_epoch",
    "final_train_loss",
    "final_train_accuracy",
    "chance_loss",
    "tp_device",
    "tp_comparable",
    "tp_reducer_images_per_s",
}


def full_record() -> Record:
    """A record with every section set, unknown keys included."""
    config = {
        "seed": 2,
        "mode": "train",
        "dataset": {"name": "digits_96", "object_scale": [0.2, 0.4]},
        "reducer": {"name": "stn_lanczos_aa", "kind": "stn", "kernel": "lanczos"},
        "classifier": {"name": "cnn", "kind": "cnn"},
        "results_dir": "x",
    }
    record = new_record(config, "sweep-a")
    record.status = "ok"
    record.reducer = ReducerInfo(
        name="stn_lanczos_aa",
        kind="stn",
        learned=True,
        parameters=1234,
        output_size=[48, 48],
        extra={"kernel": "lanczos", "glimpse_size": None},  # a reducer's own options
    )
    record.classifier = ClassifierInfo(name="cnn", kind="cnn", parameters=98682)
    record.dataset = DatasetInfo(
        name="digits_96", num_classes=10, input_shape=[1, 96, 96], n_train=40, n_test=20
    )
    curves = [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.6, "test_accuracy": 0.7}]
    record.metrics = Metrics(
        test_accuracy=0.7, test_loss=0.9, train_seconds=3.5, steps=7, curves=curves
    )
    record.metrics.plateau = {"ended_on_plateau": False, "left_at_epoch": 1}
    record.throughput = {"reducer": {"images_per_s": 500.0, "device": "cpu"}, "comparable": True}
    record.environment = {"torch": "2.13.0", "torch_threads": 1}
    record.timing = Timing(started_at=10.0, finished_at=12.5, duration_s=2.5)
    record.determinism = {"repeatable": True}
    record.resources = Resources(peak_rss_mb=512.0, peak_rss_scope="run")
    record.reducer_fit = {"n_train": 40}
    record.examples = "x/examples/abc.npz"
    record.extra["written_by_a_newer_version"] = {"x": 1}
    return record


def test_a_typed_record_round_trips_through_its_file(tmp_path):
    record = full_record()
    path = write_record(record, tmp_path)
    back = read_record(path)
    assert back == record
    assert back.metrics.test_accuracy == 0.7 and back.resources.peak_rss_mb == 512.0
    assert back.reducer.extra == {"kernel": "lanczos", "glimpse_size": None}
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["reducer"]["kernel"] == "lanczos" and data["reducer"]["glimpse_size"] is None
    assert data["written_by_a_newer_version"] == {"x": 1}
    assert data["metrics"]["plateau"]["left_at_epoch"] == 1


def test_a_new_record_has_the_shape_the_dict_record_had():
    data = new_record({"seed": 0, "reducer": {"name": "a"}}, "s").to_json()
    assert set(data) == NEW_RECORD_KEYS
    assert data["status"] == "running" and data["error"] is None
    sections = ("reducer", "classifier", "dataset", "metrics", "throughput", "environment")
    assert all(data[key] == {} for key in (*sections, "timing"))
    # Optional parts appear once set, and not before.
    failed = new_record({"seed": 0}, "s")
    failed.traceback = "Traceback ..."
    assert set(failed.to_json()) == NEW_RECORD_KEYS | {"traceback"}


def test_every_reference_record_reads_and_writes_back_unchanged():
    assert len(REFERENCE_RECORDS) > 100, "the committed reference records are missing"
    for path in REFERENCE_RECORDS:
        assert read_record(path).to_json() == json.loads(path.read_text()), path


def test_a_record_in_the_early_version_1_layout_loads_and_reports(tmp_path):
    # Written before determinism, resources, examples, metrics.plateau, classifier.kind
    # and the throughput figures beyond the reducer existed.
    records, skipped = load_records(EARLY_V1)
    assert skipped == []
    ok, failed = sorted(records, key=lambda r: r.status, reverse=True)
    assert (ok.status, failed.status) == ("ok", "failed")
    assert ok.determinism is None and ok.resources is None and ok.examples is None
    assert ok.metrics.plateau is None and ok.metrics.steps == 189
    assert failed.traceback.startswith("Traceback") and failed.reducer == ReducerInfo()
    # The plateau verdict is computed from the curves, as for any record without one.
    assert record_plateau(ok)["ended_on_plateau"] is False
    assert record_plateau(ok)["left_at_epoch"] == 1

    sweep = tmp_path / "early"
    shutil.copytree(EARLY_V1, sweep)
    code = report_script.main([str(sweep), "--no-figures"])
    assert code == report_script.EXIT_INCOMPLETE  # one failed run
    text = (sweep / "report.md").read_text()
    assert "1 ok, 1 failed" in text
    assert "| pool_avg " in text and "75.0" in text  # its accuracy, in percent
    assert "pool_max cannot reach 48 from 100" in text  # the failed run, named from config


def test_each_schema_version_is_read_by_its_own_reader(tmp_path, monkeypatch):
    # A hypothetical version 0 that kept the accuracy in percent under another key.
    def read_v0(data: dict) -> dict:
        metrics = dict(data["metrics"])
        metrics["test_accuracy"] = metrics.pop("accuracy_percent") / 100
        return {**data, "schema_version": SCHEMA_VERSION, "metrics": metrics}

    monkeypatch.setitem(layout.READERS, 0, read_v0)
    data = make_record("pool_avg", 0, 0.5).to_json()
    data["schema_version"] = 0
    data["metrics"] = {"accuracy_percent": 85.0}
    path = tmp_path / "records" / "old.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    assert read_record(path).metrics.test_accuracy == pytest.approx(0.85)


def test_a_version_without_a_reader_is_refused_with_the_versions_that_are_read(tmp_path):
    path = tmp_path / "future.json"
    path.write_text(json.dumps({**full_record().to_json(), "schema_version": 99}))
    newer = r"schema version 99 is newer than this stn-bench reads \(1\)"
    with pytest.raises(RecordError, match=newer):
        read_record(path)


def test_the_frame_has_every_column_the_report_reads_with_the_records_values():
    record = full_record()
    bare = new_record({"seed": 1, "reducer": {"name": "pool_max", "kind": "pool"}}, "s")
    bare.status = "failed"
    frame = runs_frame([record, bare])
    assert REPORT_COLUMNS <= set(frame.columns)
    row = frame.iloc[0]
    assert (row.run_id, row.dataset, row.reducer, row.classifier) == (
        record.run_id,
        "digits_96",
        "stn_lanczos_aa",
        "cnn",
    )
    assert (row["seed"], row["mode"], row.reducer_kind, row.kernel) == (
        2,
        "train",
        "stn",
        "lanczos",
    )
    assert row.learned and row.reducer_params == 1234 and not row.oracle
    assert row.test_accuracy == 0.7 and row.train_seconds == 3.5
    assert row.object_scale == pytest.approx(0.3)  # the mean of [0.2, 0.4]
    assert row.ended_on_plateau is False and row.left_plateau_at_epoch == 1
    assert row.tp_reducer_images_per_s == 500.0 and row.tp_device == "cpu"
    # A run that failed before building anything is named from its config.
    failed = frame.iloc[1]
    assert (failed.reducer, failed.reducer_kind, failed.status) == ("pool_max", "pool", "failed")
    assert failed.ended_on_plateau is None
