"""Print the figures of issue #5: PCA fit time and transform images/s on the embedded
training split (canvases at 128 and 276 px), and the learned resizer's training-step
cost relative to resize_bilinear.

    python -m scripts.bench_reducers                     # everything (276 px PCA: minutes)
    python -m scripts.bench_reducers --pca-sizes 128 --skip-resizer
    python -m scripts.bench_reducers --skip-pca --resizer-sizes 96 276

One thread by default (stable on a shared machine). Each figure says how much CPU
other processes used while it was taken: a large number means a noisy figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from stn.data.prepare import DatasetSpec, prepare_data
from stn.models import build_classifier
from stn.reducers import build_reducer
from stn.throughput import busy_cpu_seconds, measure, own_cpu_seconds
from stn.train import ReducedClassifier, TrainSettings, make_optimizer

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
    )
    return prepare_data(spec, seed=0, batch_size=batch_size)


def bench_pca(size: int, solver: str, components: int | None, budget_mb: float) -> None:
    data = canvases(size)
    spec = {
        "kind": "pca",
        "name": "pca",
        "n_components": components,
        "solver": solver,
        "memory_budget_mb": budget_mb,
        "cache_dir": None,
    }
    reducer = build_reducer(spec, 1, (size, size))
    with others_cpu() as others:
        started = time.perf_counter()
        facts = reducer.fit(data.train)
        fit_s = time.perf_counter() - started
    x = next(data.test.batches()).x

    @torch.no_grad()
    def step() -> None:
        reducer(x)

    with others_cpu() as others_tp:
        figure = measure(step, batch_size=len(x), warmup=2, min_repeats=10, min_seconds=2.0)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"PCA {size}x{size}: n_train={facts['n_train']} k={facts['n_components']} "
        f"solver={facts['solver']} chunk_rows={facts['chunk_rows']} fit={fit_s:.1f} s "
        f"(others used {others[0]:.1f} CPU-s) | explained variance "
        f"{facts['explained_variance_ratio_total'][0]:.4f} | transform "
        f"{figure.images_per_s:,.0f} images/s (IQR {figure.images_per_s_q25:,.0f}-"
        f"{figure.images_per_s_q75:,.0f}, batch {figure.batch_size}, others used "
        f"{others_tp[0]:.1f} CPU-s) | peak RSS so far {peak_gb:.1f} GB"
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
    parser.add_argument("--pca-solver", default="auto", help="auto|randomized|full|incremental")
    parser.add_argument("--pca-components", type=int, default=None, help="default: 48*48")
    parser.add_argument("--pca-budget-mb", type=float, default=2048.0)
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
            bench_pca(size, args.pca_solver, args.pca_components, args.pca_budget_mb)
    if not args.skip_resizer:
        for size in args.resizer_sizes:
            bench_resizer(size, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
