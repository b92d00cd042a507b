"""One timing method for every speed figure: warm-up, repeats, median and spread.

Figures are images per second of a callable that processes one batch. On CUDA the
timed region is bracketed by ``torch.cuda.synchronize()`` so that queued kernels are
counted. Thread count, device, batch size and input shape travel with every figure.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Measurement:
    """Throughput of one callable: ``images_per_s`` is ``batch_size / median step time``."""

    images_per_s: float
    images_per_s_q25: float
    images_per_s_q75: float
    step_ms_median: float
    repeats: int
    batch_size: int
    threads: int
    device: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    step: Callable[[], Any],
    batch_size: int,
    device: torch.device | str = "cpu",
    warmup: int = 2,
    min_repeats: int = 5,
    min_seconds: float = 0.5,
    max_repeats: int = 1000,
) -> Measurement:
    """Time ``step`` (one batch of ``batch_size`` images) after ``warmup`` calls.

    Repeats until both ``min_repeats`` calls and ``min_seconds`` have passed (at most
    ``max_repeats``), then reports the median and interquartile range.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for _ in range(warmup):
        step()
    synchronize(device)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_repeats and (
        len(times) < min_repeats or time.perf_counter() - started < min_seconds
    ):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    q25, _, q75 = statistics.quantiles(times, n=4) if len(times) > 1 else (median,) * 3
    return Measurement(
        images_per_s=batch_size / median,
        # A slow step (q75 of the time) is a low rate: the rate quartiles swap.
        images_per_s_q25=batch_size / q75,
        images_per_s_q75=batch_size / q25,
        step_ms_median=median * 1e3,
        repeats=len(times),
        batch_size=batch_size,
        threads=torch.get_num_threads(),
        device=str(device),
    )
