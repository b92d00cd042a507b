"""Check that the harness itself costs nothing that matters; print figures, assert nothing.

    python -m scripts.bench_harness ops                  # reducer vs torch op, same process
    python -m scripts.bench_harness overhead             # seconds per run outside measuring
    python -m scripts.bench_harness agreement A B        # two throughput sweeps, same ratios?
    python -m scripts.bench_harness floor-drift          # does the memory floor hold still?

ops: each resize/pool reducer and the torch call it wraps (F.interpolate, F.avg_pool2d,
...) timed with the same method, alternating, in one process; prints images/s and the
ratio reducer / direct (goal: >= 0.80).
overhead: launches throughput-only runs (wandb offline): each in its own process, then
a sweep of several in one process, and prints wall time minus the time spent measuring,
per run (goal: < 3 s).
agreement: per (device, input, batch, reducer) the ratio to the memory floor in two
sweep folders and their relative difference (goal: within 15 %), with the contention
seen; the same count for the ratio to interpolate_aa; and, per folder with several
passes (seeds), how much a cell's ratio varies between passes.
floor-drift: the two references exactly as a throughput run takes them (a plain read of
a batch, and F.interpolate(antialias=True) to 48×48; cache flushed before every call,
freed memory kept), timed in consecutive blocks of a few seconds in one process; prints
each per block (with the CPU time the hypervisor stole meanwhile, /proc/stat), their
ranges and the range of interpolate_aa's ratio to the floor. Where that ratio moves by
more than a few percent from block to block, ratios to the floor in two sweeps cannot
agree better than that: compare by the ratio to interpolate_aa.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from stn.measure.throughput import cpu_seconds_by_state, measure, reference_steps
from stn.measure.timing_hygiene import cache_flusher, keep_freed_memory
from stn.reducers.registry import build_reducer
from stn.report.document import throughput_table
from stn.report.throughput_table import THROUGHPUT_KEYS
from stn.results.collect import runs_frame
from stn.results.record import Record
from stn.results.store import load_records

ROOT = Path(__file__).resolve().parents[1]

# preset fields → the torch call the reducer should cost no more than.
OPS: dict[str, tuple[dict, Callable[[torch.Tensor, tuple[int, int], int], torch.Tensor]]] = {
    "resize_nearest": (
        {"kind": "resize", "mode": "nearest"},
        lambda x, size, k: F.interpolate(x, size=size, mode="nearest"),
    ),
    "resize_bilinear": (
        {"kind": "resize", "mode": "bilinear"},
        lambda x, size, k: F.interpolate(x, size=size, mode="bilinear", align_corners=False),
    ),
    "resize_bilinear_aa": (
        {"kind": "resize", "mode": "bilinear", "antialias": True},
        lambda x, size, k: F.interpolate(
            x, size=size, mode="bilinear", align_corners=False, antialias=True
        ),
    ),
    "resize_area": (
        {"kind": "resize", "mode": "area"},
        lambda x, size, k: F.interpolate(x, size=size, mode="area"),
    ),
    "pool_avg": ({"kind": "pool", "mode": "avg"}, lambda x, size, k: F.avg_pool2d(x, k)),
    "pool_max": ({"kind": "pool", "mode": "max"}, lambda x, size, k: F.max_pool2d(x, k)),
    "pool_adaptive": (
        {"kind": "pool", "mode": "adaptive_avg"},
        lambda x, size, k: F.adaptive_avg_pool2d(x, size),
    ),
}


def bench_ops(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    size = (args.output, args.output)
    x = torch.rand(args.batch, args.channels, args.input, args.input)
    factor = args.input // args.output
    rows = []
    for name, (spec, direct) in OPS.items():
        if spec["kind"] == "pool" and spec["mode"] in ("avg", "max") and args.input % args.output:
            continue  # non-overlapping pooling needs a multiple of the output size
        reducer = build_reducer(spec, args.channels, (args.input, args.input), size).eval()
        rates: dict[str, list[float]] = {"reducer": [], "direct": []}
        contention = 0.0
        with torch.no_grad():
            for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both
                for label, step in (
                    ("direct", lambda op=direct: op(x, size, factor)),
                    ("reducer", lambda module=reducer: module(x)),
                ):
                    m = measure(step, args.batch, warmup=2, min_repeats=5, min_seconds=0.2)
                    rates[label].append(m.images_per_s)
                    contention = max(contention, m.others_cores or 0.0)
        direct_rate = statistics.median(rates["direct"])
        reducer_rate = statistics.median(rates["reducer"])
        rows.append(
            {
                "reducer": name,
                "direct img/s": round(direct_rate),
                "reducer img/s": round(reducer_rate),
                "reducer / direct": round(reducer_rate / direct_rate, 3),
                "others' cores (max)": round(contention, 2),
            }
        )
    print(
        f"input {args.batch}×{args.channels}×{args.input}×{args.input} → {args.output}, "
        f"threads={args.threads}, {args.rounds} alternating rounds, medians"
    )
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(f"lowest ratio: {min(r['reducer / direct'] for r in rows):.3f} (goal >= 0.80)")
    return 0


def _throughput_run(tmp: str, overrides: list[str]) -> tuple[float, list[Record], str]:
    """Launch ``experiments.run`` (wandb offline, one thread) in its own process; returns
    its wall time, the records it wrote and its stderr. ``overrides`` go first, so they
    may start with ``-m``."""
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_DIR": tmp,
        "WANDB_CACHE_DIR": tmp,
        "OMP_NUM_THREADS": "1",
    }
    settings = [
        "mode=throughput",
        "logger=wandb",
        "threads=1",
        "dataset=digits_128",
        f"results_dir={tmp}/run",
        "throughput.warmup=1",
        "throughput.min_repeats=2",
        "throughput.min_seconds=0",
        "throughput.rounds=1",
        "throughput.batch_size=16",
    ]
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.run", *overrides, *settings],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    records, _ = load_records(Path(tmp, "run"))
    return wall, records, proc.stderr if proc.returncode else ""


def _measuring_seconds(record: Record) -> float:
    """Seconds a run spent timing (the figures and the data path), not harness overhead."""
    throughput = record.throughput
    return throughput["seconds"] + throughput["data"]["window_s"]


def bench_overhead(args: argparse.Namespace) -> int:
    overheads = []
    for attempt in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall, records, failure = _throughput_run(tmp, [f"seed={attempt}"])
        if failure:
            print(failure[-3000:], file=sys.stderr)
            return 1
        (record,) = records
        measuring = _measuring_seconds(record)
        overheads.append(wall - measuring)
        print(
            f"own process {attempt + 1}: wall {wall:.2f} s, measuring {measuring:.2f} s, "
            f"in-job outside measuring {record.timing.duration_s - measuring:.2f} s, "
            f"overhead {wall - measuring:.2f} s"
        )
    print(
        f"median overhead of a run in its own process (imports, config, data, wandb "
        f"offline, record write): {statistics.median(overheads):.2f} s"
    )
    seeds = ",".join(str(s) for s in range(args.sweep))
    with tempfile.TemporaryDirectory() as tmp:
        wall, records, failure = _throughput_run(tmp, ["-m", f"seed={seeds}"])
    if failure or len(records) != args.sweep:
        print(failure[-3000:] or f"expected {args.sweep} records", file=sys.stderr)
        return 1
    measuring = sum(_measuring_seconds(r) for r in records)
    in_job = statistics.median(r.timing.duration_s - _measuring_seconds(r) for r in records)
    print(
        f"sweep of {args.sweep} runs in one process (basic launcher): wall {wall:.2f} s, "
        f"measuring {measuring:.2f} s → overhead per run {(wall - measuring) / args.sweep:.2f} s "
        f"(goal < 3 s; imports and Hydra start paid once); in-job outside measuring, "
        f"median {in_job:.2f} s"
    )
    return 0


def pass_scatter(table: pd.DataFrame) -> tuple[float, int] | None:
    """Median over cells that ran more than once of their ratio to the floor's coefficient
    of variation between runs (the sweep's passes), and their median number of runs;
    ``None`` when no cell ran twice."""
    repeated = table[table["n"] >= 2]
    if repeated.empty:
        return None
    return float(repeated["reducer_vs_floor_cv"].median()), int(repeated["n"].median())


def bench_agreement(args: argparse.Namespace) -> int:
    tables = []
    for folder in (args.first, args.second):
        records, _ = load_records(folder)
        table = throughput_table(runs_frame(records))
        if table.empty:
            print(f"error: {folder} has no ok throughput records", file=sys.stderr)
            return 2
        tables.append(table)
        scatter = pass_scatter(table)
        if scatter is not None:
            print(
                f"{folder}: between passes a cell's ratio to the floor varies by "
                f"{scatter[0]:.1%} (median coefficient of variation, {scatter[1]} runs per cell)"
            )
    keys = THROUGHPUT_KEYS
    both = tables[0].merge(tables[1], on=keys, suffixes=("_1", "_2"))
    for ratio in ("reducer_vs_floor", "reducer_vs_interp_aa"):
        both[f"{ratio}_diff"] = (both[f"{ratio}_2"] / both[f"{ratio}_1"] - 1).abs()
    shown = both[
        keys
        + [
            "reducer_vs_floor_1",
            "reducer_vs_floor_2",
            "reducer_vs_floor_diff",
            "others_cores_1",
            "others_cores_2",
        ]
    ]
    print(shown.round(3).to_markdown(index=False))
    for ratio, label in (
        ("reducer_vs_floor", "ratio to the memory floor"),
        ("reducer_vs_interp_aa", "ratio to interpolate_aa"),
    ):
        difference = both[f"{ratio}_diff"]
        within = int((difference <= args.tolerance).sum())
        print(
            f"{label}: {within}/{len(both)} within {args.tolerance:.0%}; median difference "
            f"{difference.median():.1%}, worst {difference.max():.1%}"
        )
    return 0


def _spread(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return f"{low:{fmt}}–{high:{fmt}} ({high / low - 1:.0%} apart)"


def bench_floor_drift(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = torch.rand(args.batch, args.channels, args.size, args.size, device=device)
    references = reference_steps(x, (48, 48))
    image_bytes = x[0].numel() * x.element_size()
    print(f"a {tuple(x.shape)} batch on {device}, {args.threads} thread(s), 48×48 out:")
    floor_img_s, floor_gb_s, interp_img_s = [], [], []
    with keep_freed_memory() as allocator:
        flush = cache_flusher(device)

        def rate(step: Callable[[], object]) -> float:
            half_block = args.block_seconds / 2
            figure = measure(
                step, len(x), device, min_seconds=half_block, max_repeats=10**7, flush=flush
            )
            return figure.images_per_s

        for block in range(1, args.blocks + 1):
            before = cpu_seconds_by_state()
            floor_img_s.append(rate(references["memory_floor"]))
            floor_gb_s.append(floor_img_s[-1] * image_bytes / 1e9)
            interp_img_s.append(rate(references["interpolate_aa"]))
            after = cpu_seconds_by_state()
            stolen = (
                "n/a" if before is None or after is None or "steal" not in after
                else f"{(after['steal'] - before['steal']) * 1e3:.0f} ms"
            )  # fmt: skip
            print(
                f"block {block}: memory floor {floor_gb_s[-1]:.2f} GB/s, "
                f"interpolate_aa {interp_img_s[-1]:,.0f} img/s, stolen by the host {stolen}"
            )
    ratios = [i / f for i, f in zip(interp_img_s, floor_img_s, strict=True)]
    print(
        f"over {args.blocks} blocks of {args.block_seconds:g} s (allocator: {allocator}):\n"
        f"  memory floor GB/s: median {statistics.median(floor_gb_s):.2f}, "
        f"range {_spread(floor_gb_s, '.2f')}\n"
        f"  interpolate_aa img/s: median {statistics.median(interp_img_s):,.0f}, "
        f"range {_spread(interp_img_s, ',.0f')}\n"
        f"  interpolate_aa × memory floor: median {statistics.median(ratios):.3f}, "
        f"range {_spread(ratios, '.3f')}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    ops = sub.add_parser("ops", help="reducer vs the torch call it wraps, same process")
    ops.add_argument("--input", type=int, default=192, help="input side (default 192 = 4×48)")
    ops.add_argument("--output", type=int, default=48)
    ops.add_argument("--channels", type=int, default=1)
    ops.add_argument("--batch", type=int, default=64)
    ops.add_argument("--threads", type=int, default=1)
    ops.add_argument("--rounds", type=int, default=3, help="alternating rounds per pair")
    ops.set_defaults(run=bench_ops)
    overhead = sub.add_parser("overhead", help="seconds per run outside measuring")
    overhead.add_argument("--runs", type=int, default=3, help="runs in their own process")
    overhead.add_argument("--sweep", type=int, default=6, help="runs in one sweep process")
    overhead.set_defaults(run=bench_overhead)
    agree = sub.add_parser("agreement", help="ratios to the memory floor in two sweeps")
    agree.add_argument("first", type=Path, help="a throughput sweep folder")
    agree.add_argument("second", type=Path, help="the same sweep, repeated")
    agree.add_argument("--tolerance", type=float, default=0.15)
    agree.set_defaults(run=bench_agreement)
    drift = sub.add_parser("floor-drift", help="the two references, block after block")
    drift.add_argument("--blocks", type=int, default=9)
    drift.add_argument("--block-seconds", type=float, default=10.0, help="half per reference")
    drift.add_argument("--channels", type=int, default=3)
    drift.add_argument("--size", type=int, default=128, help="input side (default 128)")
    drift.add_argument("--batch", type=int, default=64)
    drift.add_argument("--threads", type=int, default=1)
    drift.add_argument("--device", default="cpu")
    drift.set_defaults(run=bench_floor_drift)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
