"""The Hydra app end to end: sweeps write one record per run and end with a table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stn.measure.plateau import plateau_verdict
from stn.results.store import load_records

ROOT = Path(__file__).resolve().parents[2]


def run_app(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_smoke_sweep_writes_two_ok_records_and_a_two_row_table(tmp_path):
    out = tmp_path / "smoke"
    # Contention never flags a figure here (no machine has 1e9 cores): what this test
    # checks is that the basic launcher does not (contention: tests/test_throughput.py).
    quiet = "throughput.contention_cores=1e9"
    proc = run_app("experiment=smoke", f"results_dir={out}", "threads=1", quiet, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records, skipped = load_records(out)
    assert not skipped
    assert sorted(r.reducer.name for r in records) == ["pool_avg", "resize_bilinear"]
    assert all(r.status == "ok" for r in records)
    for r in records:
        assert r.throughput["reducer"]["images_per_s"] > 0
        assert r.throughput["inference"]["images_per_s"] > 0
        assert r.throughput["train_step"]["images_per_s"] > 0
        assert r.throughput["ratios"]["reducer_vs_memory_floor"] > 0
        assert r.throughput["comparable"] is True  # the basic launcher
        assert r.metrics.curves and 0 <= r.metrics.test_accuracy <= 1
        assert r.config["seed"] == 0 and r.environment["torch"]
        # The job judged the run against its dataset's class count (digits: 10).
        assert r.metrics.plateau == plateau_verdict(r.metrics.curves, 10)
    table_rows = [line for line in proc.stdout.splitlines() if line.startswith("| digits_96")]
    assert len(table_rows) == 2
    report = (out / "report.md").read_text()
    assert "resize_bilinear" in report and "pool_avg" in report
    assert sorted(p.stem for p in (out / "examples").glob("*.npz")) == sorted(
        r.run_id for r in records
    )
    assert "![What each reducer makes of the same test images" in report

    # Relaunching over the same folder resumes: nothing is rerun or duplicated.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()}
    again = run_app("experiment=smoke", f"results_dir={out}", "threads=1", quiet, cwd=tmp_path)
    assert again.returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()} == stamps
    assert "skipped" in again.stderr + again.stdout


def test_a_failing_run_writes_a_failed_record_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "mixed"
    # 100×100 canvases: pool_avg cannot reach 48 (not a multiple), resize can.
    proc = run_app(
        "experiment=smoke",
        f"results_dir={out}",
        "dataset.canvas_size=100",
        "threads=1",
        cwd=tmp_path,
    )
    records, _ = load_records(out)
    status = {r.config["reducer"]["name"]: r for r in records}
    assert status["resize_bilinear"].status == "ok"
    failed = status["pool_avg"]
    assert failed.status == "failed"
    assert "cannot reach 48 from 100" in failed.error and "pool_adaptive" in failed.error
    assert "Failed runs" in (out / "report.md").read_text()
    assert proc.returncode == 0 or "failed" in proc.stdout


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.canvas_size=40", "smaller than the output"),
        ("trainer.batch_size=0", "batch_size must be >= 1"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(tmp_path, override, message):
    out = tmp_path / "bad"
    run_app(
        "trainer=smoke",
        "logger=none",
        "dataset.limit_train=32",
        "dataset.limit_test=16",
        "dataset.object_size=[20,20]",
        f"results_dir={out}",
        override,
        cwd=tmp_path,
    )
    records, _ = load_records(out)
    assert len(records) == 1 and records[0].status == "failed"
    assert message in records[0].error
    assert json.loads(json.dumps(records[0].to_json()))["config"]


def test_unknown_preset_fails_before_running_and_lists_choices(tmp_path):
    out = tmp_path / "typo"
    proc = run_app("reducer=resize_bilinearr", f"results_dir={out}", cwd=tmp_path)
    assert proc.returncode != 0
    assert "resize_bilinearr" in proc.stderr and "resize_bilinear_aa" in proc.stderr
    assert not (out / "records").exists()
