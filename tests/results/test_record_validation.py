"""Every record is checked once against the schema as it is read: a bad one is named with
what is wrong and left out, and the report is written from the rest (issue 20, item 2)."""

import json
import math
from collections.abc import Callable

import pytest
from report_records import make_record, write_all

from stn.report.document import write_report
from stn.results.record import new_record, validate_record
from stn.results.store import load_records
from stn_bench import report as report_script


def _set(path: str, value) -> Callable[[dict], None]:
    """A change to a record: ``path`` like ``config.seed`` set to ``value``."""

    def change(record: dict) -> None:
        *parents, key = path.split(".")
        target = record
        for parent in parents:
            target = target[parent]
        target[key] = value

    return change


# (what is changed, the phrase the report must give)
BAD_RECORDS = {
    "null reducer": (_set("reducer", None), "reducer is null; expected an object"),
    "null metrics": (_set("metrics", None), "metrics is null; expected an object"),
    "null config": (_set("config", None), "config is null; expected an object"),
    "null config.reducer": (_set("config.reducer", None), "config.reducer is null"),
    "NaN accuracy": (_set("metrics.test_accuracy", math.nan), "test_accuracy is NaN"),
    "inf accuracy": (_set("metrics.test_accuracy", math.inf), "test_accuracy is inf"),
    "95% accuracy": (_set("metrics.test_accuracy", "95%"), "test_accuracy is '95%' (a string)"),
    "accuracy 95": (_set("metrics.test_accuracy", 95.0), "test_accuracy is 95.0; expected"),
    "seed zero": (_set("config.seed", "zero"), "config.seed is 'zero' (a string)"),
    "no accuracy": (_set("metrics", {"test_loss": 1.0}), "test_accuracy is missing"),
    "inf images/s": (
        _set("throughput.reducer.images_per_s", math.inf),
        "throughput.reducer.images_per_s is inf",
    ),
}


def _good_sweep(folder) -> None:
    records = [
        make_record(reducer, seed, accuracy + seed / 100)
        for reducer, accuracy in (("resize_bilinear", 0.80), ("pool_avg", 0.85))
        for seed in (0, 1)
    ]
    write_all(records, folder)


def _write_bad(folder, change: Callable[[dict], None]) -> str:
    """An otherwise fine record of ``pool_odd`` with ``change`` applied, written as JSON
    the way any writer might (NaN and Infinity included); returns its file name."""
    record = make_record("pool_odd", 0, 0.99).to_json()
    change(record)
    name = "bad-record.json"
    (folder / "records" / name).write_text(json.dumps(record, allow_nan=True))
    return name


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_a_bad_record_is_named_left_out_and_the_report_written_from_the_rest(
    case, tmp_path, capsys
):
    change, phrase = BAD_RECORDS[case]
    _good_sweep(tmp_path)
    name = _write_bad(tmp_path, change)

    code = report_script.main([str(tmp_path), "--no-figures"])

    assert code == report_script.EXIT_SKIPPED
    assert name in capsys.readouterr().err
    text = (tmp_path / "report.md").read_text()
    skipped = text.split("## Skipped record files")[1]
    assert name in skipped and phrase in skipped
    assert "4 ok, 0 failed of 4 expected runs, 1 record file(s) skipped" in text
    assert "pool_odd" not in text.split("## Skipped record files")[0]  # left out, not counted
    assert "inf %" not in text and "nan %" not in text
    assert "**85.5 ± 6.4 %**" in text  # pool_avg is still the best, in bold


def test_every_problem_of_a_record_is_named_at_once():
    record = make_record("pool_avg", 0, 0.5).to_json()
    record["config"]["seed"] = True
    record["config"]["dataset"] = {"canvas_size": 96}
    record["config"]["reducer"]["antialias"] = "false"
    record["metrics"]["test_loss"] = -math.inf
    record["run_id"] = ""
    problems = validate_record(record)
    assert problems == [
        "run_id is '' (a string); expected a non-empty string",
        "config.seed is true (a boolean); expected an integer",
        "config.dataset.name is missing; expected a non-empty string",
        "config.reducer.antialias is 'false' (a string); expected true/false",
        "metrics.test_loss is -inf; expected a finite number ≥ 0",
    ]


def test_records_the_job_writes_in_every_state_are_valid():
    assert validate_record(make_record("pool_avg", 0, 0.5).to_json()) == []
    assert validate_record(make_record("pool_avg", 0, 1.0).to_json()) == []
    # reducer {} metrics {}
    failed_early = make_record("pool_max", 0, None, status="failed").to_json()
    assert failed_early["reducer"] == {} and validate_record(failed_early) == []
    config = make_record("pool_avg", 0, 0.5).config | {"mode": "throughput"}
    # no accuracy: not trained
    throughput_only = new_record(config, "t").to_json() | {"status": "ok"}
    assert validate_record(throughput_only) == []
    assert (
        "test_accuracy is missing"
        in validate_record(throughput_only | {"config": {**config, "mode": "train"}})[0]
    )


def test_load_records_reports_the_file_and_keeps_the_rest(tmp_path):
    _good_sweep(tmp_path)
    _write_bad(tmp_path, _set("metrics.test_accuracy", math.nan))
    records, skipped = load_records(tmp_path)
    assert len(records) == 4 and [s.path.name for s in skipped] == ["bad-record.json"]
    assert skipped[0].reason.startswith(str(skipped[0].path))
    assert "relaunch the sweep" in skipped[0].reason  # and how to fix it


def test_a_folder_of_only_bad_records_has_no_readable_records(tmp_path, capsys):
    (tmp_path / "records").mkdir()
    _write_bad(tmp_path, _set("reducer", None))
    assert report_script.main([str(tmp_path), "--no-figures"]) == report_script.EXIT_NO_RECORDS
    err = capsys.readouterr().err
    assert "bad-record.json" in err and "no readable records" in err
    assert (tmp_path / "report.md").is_file()


def test_a_report_on_good_records_skips_nothing(tmp_path):
    _good_sweep(tmp_path)
    report = write_report(tmp_path, with_figures=False)
    assert report.skipped == [] and len(report.runs) == 4
