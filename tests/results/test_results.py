import json

import pytest

from stn.results.collect import runs_frame
from stn.results.record import (
    SCHEMA_VERSION,
    ClassifierInfo,
    DatasetInfo,
    Metrics,
    ReducerInfo,
    new_record,
    run_id_for,
)
from stn.results.store import RecordError, load_records, read_record, write_record


def _record(seed=0, status="ok"):
    config = {
        "seed": seed,
        "reducer": {"name": "pool_avg"},
        "dataset": {"name": "digits_96"},
        "classifier": {"name": "cnn"},
        "results_dir": "x",
    }
    record = new_record(config, "t")
    record.status = status
    record.reducer = ReducerInfo(name="pool_avg", kind="pool", learned=False, parameters=0)
    record.classifier = ClassifierInfo(name="cnn", parameters=10)
    record.dataset = DatasetInfo(name="digits_96")
    record.metrics = Metrics(test_accuracy=0.5 + seed / 10, test_loss=1.0, curves=[])
    record.throughput = {"reducer": {"images_per_s": 100.0, "batch_size": 8, "device": "cpu"}}
    return record


def test_record_round_trip(tmp_path):
    record = _record()
    path = write_record(record, tmp_path)
    assert path.name == f"{record.run_id}.json"
    assert read_record(path) == record
    assert json.loads(path.read_text()) == json.loads(json.dumps(record.to_json()))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_run_id_ignores_volatile_keys_only():
    base = {"seed": 1, "reducer": {"name": "a"}, "results_dir": "x", "logger": {"mode": "a"}}
    moved = {**base, "results_dir": "y", "logger": {"mode": "b"}}
    assert run_id_for(base) == run_id_for(moved)
    assert run_id_for(base) != run_id_for({**base, "seed": 2})


def test_bad_records_are_named_and_skipped(tmp_path):
    write_record(_record(seed=0), tmp_path)
    folder = tmp_path / "records"
    (folder / "broken.json").write_text('{"schema_version": 1, "run')
    (folder / "old.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    records, skipped = load_records(tmp_path)
    assert len(records) == 1
    reasons = {s.path.name: s.reason for s in skipped}
    assert "not valid JSON" in reasons["broken.json"]
    assert "schema version" in reasons["old.json"]
    with pytest.raises(RecordError, match="broken.json"):
        read_record(folder / "broken.json")


def test_records_to_frame_flattens_throughput():
    frame = runs_frame([_record(0), _record(1, status="failed")])
    assert list(frame["reducer"]) == ["pool_avg", "pool_avg"]
    assert list(frame["status"]) == ["ok", "failed"]
    assert frame["tp_reducer_images_per_s"].tolist() == [100.0, 100.0]
    assert frame["test_accuracy"].tolist() == pytest.approx([0.5, 0.6])
