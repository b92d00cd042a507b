"""Print the figures of issues #5 and #21: PCA fit time and transform images/s on the
embedded training split (canvases at 128 and 276 px), and the learned resizer's
training-step cost relative to resize_bilinear.

    python -m scripts.bench_reducers                     # everything (276 px PCA: minutes)
    python -m scripts.bench_reducers --pca-sizes 128 --skip-resizer
    python -m scripts.bench_reducers --pca-sizes 276 --pca-repeats 1 --skip-resizer
    python -m scripts.bench_reducers --skip-pca --resizer-sizes 96 276

The PCA fit is timed against its peer, one float32 product X·Xᵀ of the same training
images, in the same process: ``--pca-repeats`` rounds of (product, fit), and the median
of the per-round ratios fit ÷ product, which survives a busy machine better than either
time. Each fit's peak memory is its RSS high-water mark above the RSS before it (the
peer's images freed first). One thread by default (stable on a shared machine). Each
figure says how much CPU other processes used while it was taken: a large number means
a noisy figure.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from stn.data.prepare import DatasetSpec, prepare_data
from stn.measure.throughput import (
    busy_cpu_seconds,
    measure,
    own_cpu_seconds,
    peak_rss_bytes,
    proc_status_bytes,
    reset_peak_rss,
)
from stn.measure.train import ReducedClassifier, TrainSettings, make_optimizer
from stn.networks import build_classifier
from stn.reducers.registry import build_reducer

# The digits_128 / digits_276 presets' canvases.
CLUTTER = {96: 6, 128: 8, 276: 37}


@contextmanager
def others_cpu() -> Iterator[list[float]]:
    """Yields a list that receives the CPU seconds other processes used in the block (NaN
    where there is no /proc/stat)."""
    out: list[float] = []
    busy, own = busy_cpu_seconds(), own_cpu_seconds()
    yield out
    busy_after = busy_cpu_seconds()
    if busy is None or busy_after is None:
        out.append(float("nan"))
    else:
        out.append((busy_after - busy) - (own_cpu_seconds() - own))


def canvases(size: int, batch_size: int = 64):
    spec = DatasetSpec(
        name=f"digits_{size}",
        canvas_size=size,
        object_size=(20, 36) if size == 96 else (28, 28),
        clutter=CLUTTER.get(size, 8),
        jitter=1.0,  # anywhere on the canvas (DatasetSpec's default is digits_96's 0.5)
    )
    return prepare_data(spec, seed=0, batch_size=batch_size)


def rss_bytes() -> int:
    """The process's resident memory now (``VmRSS``; 0 where there is no /proc)."""
    return proc_status_bytes("VmRSS") or 0


def product_seconds(data) -> float:
    """Seconds of one float32 ``X·Xᵀ`` of the training images as the fit reads them
    (``X`` is ``(n, C·H·W)``; rendering it is not timed), all freed afterwards."""
    x = torch.cat([b.x.reshape(len(b.x), -1) for b in data.train.batches(epoch=0)])
    started = time.perf_counter()
    gram = x @ x.T
    seconds = time.perf_counter() - started
    del x, gram
    gc.collect()
    return seconds


def timed_fit(spec: dict, size: int, data) -> tuple[object, dict, float, float, float]:
    """A fresh reducer fitted once: ``(reducer, facts, seconds, others' CPU-s, peak bytes
    above the RSS before the fit)``; the peak is the process's where it cannot be reset."""
    reducer = build_reducer(spec, 1, (size, size))
    gc.collect()
    before = rss_bytes() if reset_peak_rss() else 0
    with others_cpu() as others:
        started = time.perf_counter()
        facts = reducer.fit(data.train)
        fit_s = time.perf_counter() - started
    return reducer, facts, fit_s, others[0], peak_rss_bytes() - before


def bench_pca(
    size: int, solver: str, components: int | None, budget_mb: float, repeats: int
) -> None:
    data = canvases(size)
    spec = {
        "kind": "pca",
        "name": "pca",
        "n_components": components,
        "solver": solver,
        "memory_budget_mb": budget_mb,
        "cache_dir": None,
    }
    n = len(data.train.images)
    split_gb = 4 * n * size * size / 2**30
    ratios = []
    for round_ in range(repeats):
        with others_cpu() as others_p:
            product_s = product_seconds(data)
        reducer, facts, fit_s, others_f, peak = timed_fit(spec, size, data)
        ratios.append(fit_s / product_s)
        details = facts["fit_details"] or {}
        print(
            f"PCA {size}x{size} round {round_ + 1}/{repeats}: X·Xᵀ {product_s:.1f} s (others "
            f"used {others_p[0]:.1f} CPU-s) | fit {fit_s:.1f} s (others used {others_f:.1f} "
            f"CPU-s) = {fit_s / product_s:.2f}x the product | fit peak +{peak / 2**30:.2f} GB "
            f"over the RSS before it (the split as float32: {split_gb:.2f} GB, held: "
            f"{details.get('held_split', '-')}) | phases {details.get('seconds_by_phase', '-')}"
            f" | eigh {details.get('eigh_dtype', '-')} (float32 residual "
            f"{details.get('eigh_float32_residual', '-')})",
            flush=True,
        )
    x = next(data.test.batches()).x

    @torch.no_grad()
    def step() -> None:
        reducer(x)

    with others_cpu() as others_tp:
        figure = measure(step, batch_size=len(x), warmup=2, min_repeats=10, min_seconds=2.0)
    print(
        f"PCA {size}x{size}: n_train={facts['n_train']} k={facts['n_components']} "
        f"solver={facts['solver']} chunk_rows={facts['chunk_rows']} ({facts['solver_reason']})"
        f" | fit ÷ X·Xᵀ median {statistics.median(ratios):.2f}x over {repeats} round(s) "
        f"({', '.join(f'{r:.2f}' for r in ratios)}) | explained variance "
        f"{facts['explained_variance_ratio_total'][0]:.4f} | transform "
        f"{figure.images_per_s:,.0f} images/s (IQR {figure.images_per_s_q25:,.0f}-"
        f"{figure.images_per_s_q75:,.0f}, batch {figure.batch_size}, others used "
        f"{others_tp[0]:.1f} CPU-s)",
        flush=True,
    )


def train_step_ms(reducer_spec: dict, size: int, batch_size: int) -> tuple[float, float, int]:
    torch.manual_seed(0)
    reducer = build_reducer(reducer_spec, 1, (size, size))
    model = ReducedClassifier(reducer, build_classifier("cnn", 1, 10, (48, 48)))
    optimizer = make_optimizer(model, TrainSettings())
    x = torch.rand(batch_size, 1, size, size)
    y = torch.randint(0, 10, (batch_size,))
    model.train()

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with others_cpu() as others:
        figure = measure(step, batch_size=batch_size, warmup=2, min_repeats=10, min_seconds=2.0)
    return figure.step_ms_median, others[0], reducer.num_parameters()


def bench_resizer(size: int, batch_size: int) -> None:
    base_ms, base_others, _ = train_step_ms(
        {"kind": "resize", "mode": "bilinear"}, size, batch_size
    )
    learned_ms, learned_others, params = train_step_ms(
        {"kind": "learned_resizer"}, size, batch_size
    )
    print(
        f"training step {size}->48, batch {batch_size}, CNN classifier: resize_bilinear "
        f"{base_ms:.1f} ms, learned_resizer (n=16, r=1, {params:,} parameters) "
        f"{learned_ms:.1f} ms = {learned_ms / base_ms:.1f}x (others used "
        f"{base_others:.1f} / {learned_others:.1f} CPU-s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pca-sizes", type=int, nargs="*", default=[128, 276])
    parser.add_argument(
        "--pca-solver", default="auto", help="auto|gram|randomized|full|incremental"
    )
    parser.add_argument("--pca-components", type=int, default=None, help="default: 48*48")
    parser.add_argument("--pca-budget-mb", type=float, default=2048.0)
    parser.add_argument(
        "--pca-repeats", type=int, default=3, help="rounds of (X·Xᵀ, fit) per size; median ratio"
    )
    parser.add_argument("--resizer-sizes", type=int, nargs="*", default=[96, 276])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-pca", action="store_true")
    parser.add_argument("--skip-resizer", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs")
    if not args.skip_pca:
        for size in args.pca_sizes:
            bench_pca(
                size, args.pca_solver, args.pca_components, args.pca_budget_mb, args.pca_repeats
            )
    if not args.skip_resizer:
        for size in args.resizer_sizes:
            bench_resizer(size, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
