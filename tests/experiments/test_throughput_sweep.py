"""Throughput in the Hydra app: a throughput-only sweep writes figures and ratios but no
accuracy, its report shows the speed table, and a parallel launcher marks the figures
not comparable (tests/test_sweep.py checks the basic launcher's records)."""

import re

import torch
from test_sweep import run_app

from stn.results.store import load_records


def test_throughput_sweep_under_a_parallel_launcher(tmp_path):
    out = tmp_path / "tp"
    proc = run_app(
        "experiment=throughput",
        f"results_dir={out}",
        "seed=0,1",  # repeats: the experiment lists seed first, so it varies slowest
        "reducer=pool_adaptive,pool_avg",  # pool_avg cannot reach 48 from 128: it fails
        "dataset=digits_128",
        "dataset.channels=3",
        "device=cpu,cuda_if_present",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=1",
        "throughput.warmup=1",
        "throughput.min_repeats=2",
        "throughput.min_seconds=0",
        "throughput.batch_size=8",
        "dataset.limit_train=16",
        "dataset.limit_test=8",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # one run failed; the sweep went on
    records, _ = load_records(out)
    # cuda_if_present: no record at all on a machine without a GPU.
    assert len(records) == (8 if torch.cuda.is_available() else 4)
    # One pass over every cell per seed: repeats of a cell are a pass apart in time.
    in_order = sorted(records, key=lambda r: r.timing.started_at)
    assert [r.config["seed"] for r in in_order] == sorted(r.config["seed"] for r in records)
    failed = [r for r in records if r.status != "ok"]
    assert {r.config["reducer"]["name"] for r in failed} == {"pool_avg"}
    record = next(
        r for r in records if r.status == "ok" and r.throughput["reducer"]["device"] == "cpu"
    )
    assert record.status == "ok" and record.metrics.to_json() == {}
    tp = record.throughput
    for figure in ("reducer", "inference", "train_step", "memory_floor", "interpolate_aa"):
        assert tp[figure]["images_per_s"] > 0 and tp[figure]["threads"] == 1
    assert tp["batch"]["channels"] == 3 and tp["batch"]["height"] == 128
    assert tp["ratios"]["reducer_vs_memory_floor"] > 0
    assert tp["comparable"] is False and "JoblibLauncher" in tp["not_comparable_reason"]
    assert tp["conditions"]["cache_flush_bytes"] > 0 and tp["reducer"]["cache_flushed"]
    report = (out / "report.md").read_text()
    # No accuracy table row for the failed run (there was never to be an accuracy); the
    # failure is listed with the problems.
    assert "Throughput only (`mode=throughput`)" in report
    assert "| nan" not in report and "## Throughput" in report
    assert "pool_avg cannot reach 48 from 128" in report
    # One row for the cell: the median of the two seeds' runs, not comparable.
    assert re.search(r"\| cpu +\| 3×128×128 \| pool_adaptive \|.*\| +2 \| \*\*no\*\* +\|", report)
