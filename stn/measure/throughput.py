"""One timing method for every speed figure: warm-up, repeats, median and spread.

Figures are images per second of a callable that processes one batch (the method of
timm's ``benchmark.py``): ``warmup`` untimed calls, then timed calls until both
``min_repeats`` calls and ``min_seconds`` have passed; the median step time gives
images/s and the interquartile range its spread. On CUDA every timed region is
bracketed by ``torch.cuda.synchronize()`` so that queued kernels are counted.

Every figure carries what it depends on: threads, device, dtype, batch size, input
shape, peak memory during the timed window (RSS high-water mark on CPU, max allocated
on CUDA) and the CPU time *other* processes used during the window (a contention
check on a shared machine: near 0 means the figure was taken on a quiet machine).

``measure_pipeline`` takes the three figures of a run (reducer alone, end-to-end
inference, training step) beside two references measured on the same batch in the
same process (a plain read of the batch, the memory floor; and
``F.interpolate(bilinear, antialias=True)``) and stores each figure as a ratio to both.
Every timed call starts from memory (cache flushed) with glibc keeping freed memory, so
the figures measure the code rather than what ran before it (:mod:`stn.measure.timing_hygiene`).
"""

from __future__ import annotations

import copy
import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn.data.stream import Batch, BatchStream
from stn.measure.timing_hygiene import cache_flusher, keep_freed_memory
from stn.measure.train import MAX_BATCH_SIZE
from stn.options import option
from stn.reducers.base import reduce_batch

T = TypeVar("T")

FIGURES = ("reducer", "inference", "train_step")
REFERENCES = ("memory_floor", "interpolate_aa")


@dataclass(frozen=True)
class Measurement:
    """Throughput of one callable: ``images_per_s`` is ``batch_size / median step time``.

    ``images_per_s_q25``/``_q75`` are the rates at the slow (q75 time) and fast (q25
    time) quartiles. ``peak_memory_bytes`` is the RSS high-water mark of the process
    during the window on CPU (``peak_memory_scope`` says ``window`` when the kernel let
    us reset it, else ``process``) and the max allocated memory on CUDA.
    ``others_cpu_s`` is the CPU time other processes used during the timed window and
    ``others_cores`` the same as a number of busy cores (``None`` where /proc/stat is
    missing or the window is shorter than its 10 ms ticks can resolve). ``paired`` holds,
    per reference timed beside every call, the median over calls of
    ``reference time / step time``: the step's images/s over the reference's, taken
    moments apart. ``tries``: how many windows were timed to get this one (a window taken
    under competition is timed again, see :func:`retime_while_contended`);
    ``contended``: the kept window still had more than the allowed ``others_cores``.
    """

    images_per_s: float
    images_per_s_q25: float
    images_per_s_q75: float
    step_ms_median: float
    step_ms_q25: float
    step_ms_q75: float
    repeats: int
    window_s: float
    batch_size: int
    threads: int
    device: str
    dtype: str | None
    input_shape: list[int] | None
    peak_memory_bytes: int | None
    peak_memory_scope: str
    others_cpu_s: float | None
    others_cores: float | None
    paired: dict[str, float] | None = None
    page_faults: int | None = None
    cache_flushed: bool = False
    tries: int = 1
    contended: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def synchronize(device: torch.device | str) -> None:
    """Wait for queued CUDA kernels; a no-op on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# --- what else used the machine, and how much memory we used -------------------------


CPU_STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_seconds_by_state() -> dict[str, float] | None:
    """Seconds all CPUs have spent in each state since boot (/proc/stat's ``cpu`` line,
    :data:`CPU_STATES`), or ``None`` where there is no /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return {state: int(v) / tick for state, v in zip(CPU_STATES, fields[1:], strict=False)}


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (every state but idle and
    iowait; steal counts: the CPU was busy, just not for us), or ``None``."""
    states = cpu_seconds_by_state()
    if states is None:
        return None
    return sum(states.values()) - states["idle"] - states["iowait"]


def minor_page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux ``clear_refs`` 5); ``False`` if not."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def proc_status_bytes(field: str) -> int | None:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; ``None``
    where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    peak = proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _start_memory_window(device: torch.device) -> str:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "window"
    return "window" if reset_peak_rss() else "process"


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return peak_rss_bytes()


# /proc/stat counts in 10 ms ticks: a shorter window cannot say how busy the machine was.
MIN_CONTENTION_WINDOW_S = 0.1


def _cores(others_cpu_s: float | None, window_s: float) -> float | None:
    """Average number of cores other processes kept busy over the window."""
    if others_cpu_s is None or window_s < MIN_CONTENTION_WINDOW_S:
        return None
    return min(float(os.cpu_count() or 1), others_cpu_s / window_s)


def is_contended(m: Measurement, max_others_cores: float) -> bool:
    """Whether other processes kept more than ``max_others_cores`` cores busy during the
    window of ``m`` (unknown contention, ``others_cores=None``, counts as not contended)."""
    return m.others_cores is not None and m.others_cores > max_others_cores


def check_contention_bounds(retries: int, max_others_cores: float) -> None:
    """Raise unless ``retries >= 0`` and ``max_others_cores >= 0`` (the throughput options)."""
    if retries < 0:
        raise ValueError(f"throughput.contention_retries must be >= 0, got {retries}")
    if not max_others_cores >= 0:
        raise ValueError(f"throughput.contention_cores must be >= 0, got {max_others_cores}")


def retime_while_contended(
    take: Callable[[], Measurement], retries: int, max_others_cores: float
) -> Measurement:
    """``take()`` a figure, and take it again (at most ``retries`` more times) while another
    process competed for the CPU during its window (:func:`is_contended`).

    Returns the first uncontended window, else the last one, with ``tries`` and
    ``contended`` set: a figure taken beside a busy process measured the neighbour too
    (a core kept busy by another process read ``resize_area`` at 157 images/s and the same
    2×2 mean as ``pool_avg`` at 2,512), so it is retaken rather than kept.
    """
    check_contention_bounds(retries, max_others_cores)
    for attempt in range(1, retries + 1):
        figure = take()
        if not is_contended(figure, max_others_cores):
            return replace(figure, tries=attempt)
    figure = take()
    return replace(figure, tries=retries + 1, contended=is_contended(figure, max_others_cores))


# --- the timer ------------------------------------------------------------------------


@dataclass(frozen=True)
class ThroughputSettings:
    """The ``throughput`` section: how figures are taken, each option's one home.

    The config's ``throughput:`` node extends it (Hydra schema, ``experiments/schemas.py``)
    and only overrides. Rounds: every figure and reference is taken ``rounds`` times, side
    by side, each round on a fresh copy of the batch (see :func:`measure_pipeline`). Cache
    flush and kept freed memory: :mod:`stn.measure.timing_hygiene`. A timed window in
    which other processes kept more than ``contention_cores`` cores busy
    (``others_cores``) is timed again up to ``contention_retries`` times; a figure still
    contended makes the run's figures not comparable. Whether the run as a whole was timed
    beside other runs is a fact of the launch, not an option: :class:`TimingConditions`.
    """

    warmup: int = option(2, "untimed calls first (>= 0)")
    min_repeats: int = option(5, "timed calls per round: at least this many (>= 1) ...")
    min_seconds: float = option(
        0.2, "... and at least this long (>= 0 s), per round (median and IQR reported)"
    )
    max_repeats: int = option(1000, "timed calls per round: at most this many (>= min_repeats)")
    batch_size: int | None = option(
        None,
        f"images per timed step, 1 to {MAX_BATCH_SIZE}; null = trainer.batch_size (halved on "
        "out-of-memory; refused before training when its copies exceed the available memory)",
    )
    rounds: int = option(
        3,
        "figures and references taken in turn this often, each on a fresh copy of the "
        "batch; ratios = median of the rounds' ratios",
    )
    flush_cache: bool = option(
        True,
        "read 2× the last-level cache (CUDA: L2) before every timed call, so figures and "
        "the memory floor all start from memory",
    )
    keep_freed_memory: bool = option(
        True, "glibc keeps freed memory while timing: no page faults per call"
    )
    contention_cores: float = option(
        0.25,
        "a timed window in which other processes kept more cores busy (others' cores; "
        "quiet here: < 0.16) was taken under competition ...",
    )
    contention_retries: int = option(
        2,
        "... and is timed again at most this often; a figure still contended marks the "
        "run's figures not comparable, with the reason",
    )

    def __post_init__(self) -> None:
        # Each option's own range, named in full: warmup=-1 and min_seconds=-1 passed, and
        # max_repeats=0 failed only after training, in measure(), without the section.
        if self.warmup < 0:
            raise ValueError(f"throughput.warmup must be >= 0, got {self.warmup}")
        if self.min_repeats < 1:
            raise ValueError(f"throughput.min_repeats must be >= 1, got {self.min_repeats}")
        if not self.min_seconds >= 0 or math.isinf(self.min_seconds):
            raise ValueError(
                f"throughput.min_seconds must be a finite number >= 0, got {self.min_seconds}"
            )
        if self.max_repeats < self.min_repeats:
            raise ValueError(
                f"throughput.max_repeats must be >= throughput.min_repeats "
                f"({self.min_repeats}), got {self.max_repeats}"
            )
        if self.rounds < 1:
            raise ValueError(f"throughput.rounds must be >= 1, got {self.rounds}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(
                f"throughput.batch_size must be >= 1 or null (the training batch), "
                f"got {self.batch_size}"
            )
        if self.batch_size is not None and self.batch_size > MAX_BATCH_SIZE:
            raise ValueError(
                f"throughput.batch_size must be <= {MAX_BATCH_SIZE} or null (the training "
                f"batch), got {self.batch_size}"
            )
        check_contention_bounds(self.contention_retries, self.contention_cores)


@dataclass(frozen=True)
class TimingConditions:
    """Facts of the launch that decide whether a run's figures compare with other runs'.

    Not options: the launcher decides them (``experiments.launcher.throughput_conditions``),
    so they stay out of :class:`ThroughputSettings`, the presets and the run id.
    ``comparable`` is ``False`` (with ``reason``) when the figures were taken beside other
    runs, e.g. under a parallel launcher; they are recorded but flagged.
    """

    comparable: bool = True
    reason: str | None = None


def measure(
    step: Callable[[], Any],
    batch_size: int,
    device: torch.device | str = "cpu",
    warmup: int = ThroughputSettings.warmup,
    min_repeats: int = ThroughputSettings.min_repeats,
    min_seconds: float = ThroughputSettings.min_seconds,
    max_repeats: int = ThroughputSettings.max_repeats,
    dtype: torch.dtype | str | None = None,
    input_shape: tuple[int, ...] | list[int] | None = None,
    references: dict[str, Callable[[], Any]] | None = None,
    flush: Callable[[], Any] | None = None,
) -> Measurement:
    """Time ``step`` (one batch of ``batch_size`` images) after ``warmup`` calls.

    Repeats until both ``min_repeats`` calls and ``min_seconds`` have passed (at most
    ``max_repeats``; the defaults are those of :class:`ThroughputSettings`), then reports
    the median and interquartile range. ``dtype`` and ``input_shape`` (``(N, C, H, W)`` of
    the batch) are recorded with the figure.
    ``references``: callables on the same batch, each timed right before every call of
    ``step``; their ratios to it land in ``paired``. On a shared machine the speed of
    a core changed 2× from one tenth of a second to the next here, so only calls timed
    side by side make a ratio that means the same in two runs. ``flush`` (untimed) runs
    before every timed call, references included (see
    :func:`stn.measure.timing_hygiene.cache_flusher`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if min_repeats < 1 or max_repeats < min_repeats:
        raise ValueError(
            f"need 1 <= min_repeats <= max_repeats, got {min_repeats} and {max_repeats}"
        )
    device = torch.device(device)
    references = dict(references or {})

    def timed(call: Callable[[], Any]) -> float:
        if flush is not None:
            flush()
        synchronize(device)
        t0 = time.perf_counter()
        call()
        synchronize(device)
        return time.perf_counter() - t0

    for _ in range(warmup):
        for reference in references.values():
            reference()
        step()
    synchronize(device)
    scope = _start_memory_window(device)
    busy_before, own_before = busy_cpu_seconds(), own_cpu_seconds()
    faults_before = minor_page_faults()
    times: list[float] = []
    reference_times: dict[str, list[float]] = {name: [] for name in references}
    started = time.perf_counter()
    while len(times) < max_repeats and (
        len(times) < min_repeats or time.perf_counter() - started < min_seconds
    ):
        for name, reference in references.items():
            reference_times[name].append(timed(reference))
        times.append(timed(step))
    window = time.perf_counter() - started
    faults = minor_page_faults() - faults_before
    busy_after, own_after = busy_cpu_seconds(), own_cpu_seconds()
    others = None
    if busy_before is not None and busy_after is not None:
        # /proc/stat ticks are coarse (10 ms): clamp the small negative rounding to 0.
        others = max(0.0, (busy_after - busy_before) - (own_after - own_before))
    median = statistics.median(times)
    q25, _, q75 = statistics.quantiles(times, n=4) if len(times) > 1 else (median,) * 3
    return Measurement(
        images_per_s=batch_size / median,
        # A slow step (q75 of the time) is a low rate: the rate quartiles swap.
        images_per_s_q25=batch_size / q75,
        images_per_s_q75=batch_size / q25,
        step_ms_median=median * 1e3,
        step_ms_q25=q25 * 1e3,
        step_ms_q75=q75 * 1e3,
        repeats=len(times),
        window_s=window,
        batch_size=batch_size,
        threads=torch.get_num_threads(),
        device=str(device),
        dtype=None if dtype is None else str(dtype).removeprefix("torch."),
        input_shape=None if input_shape is None else [int(s) for s in input_shape],
        peak_memory_bytes=_peak_memory(device),
        peak_memory_scope=scope,
        others_cpu_s=others,
        others_cores=_cores(others, window),
        paired={
            name: statistics.median(r / t for r, t in zip(ref, times, strict=True))
            for name, ref in reference_times.items()
        }
        or None,
        page_faults=None if device.type == "cuda" else faults,
        cache_flushed=flush is not None,
    )


# --- out of memory: halve the batch, as timm does --------------------------------------


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's ``OutOfMemoryError`` or the CPU allocator's ``RuntimeError``."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "DefaultCPUAllocator: can't allocate" in text
    )


def with_batch_backoff(run: Callable[[int], T], batch_size: int) -> tuple[T, int]:
    """``run(batch_size)``, halving the batch after each out-of-memory error.

    Returns ``(result, batch size that worked)``; re-raises when even a batch of 1
    does not fit, and any error that is not out-of-memory at once.
    """
    batch = int(batch_size)
    while True:
        try:
            return run(batch), batch
        except (RuntimeError, MemoryError) as err:
            if not (is_out_of_memory(err) or isinstance(err, MemoryError)) or batch <= 1:
                raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        batch //= 2


# --- the figures of one run --------------------------------------------------------------


def _timer(
    settings: ThroughputSettings,
    x: Tensor,
    device: torch.device,
    flush: Callable[[], Any] | None = None,
):
    def time_it(
        step: Callable[[], Any], references: dict[str, Callable[[], Any]] | None = None
    ) -> Measurement:
        def take() -> Measurement:
            return measure(
                step,
                batch_size=len(x),
                device=device,
                warmup=settings.warmup,
                min_repeats=settings.min_repeats,
                min_seconds=settings.min_seconds,
                max_repeats=settings.max_repeats,
                dtype=x.dtype,
                input_shape=tuple(x.shape),
                references=references,
                flush=flush,
            )

        return retime_while_contended(take, settings.contention_retries, settings.contention_cores)

    return time_it


def reference_steps(x: Tensor, output_size: tuple[int, int]) -> dict[str, Callable[[], Any]]:
    """The references as callables on batch ``x`` ``(N, C, H, W)``: a plain read of every
    input byte (``memory_floor``) and ``F.interpolate(bilinear, antialias=True)`` to
    ``output_size`` (``interpolate_aa``)."""

    def interpolate_aa() -> Tensor:
        return F.interpolate(
            x, size=output_size, mode="bilinear", align_corners=False, antialias=True
        )

    return {"memory_floor": lambda: x.sum(), "interpolate_aa": interpolate_aa}


def reference_figures(
    x: Tensor,
    output_size: tuple[int, int],
    settings: ThroughputSettings,
    flush: Callable[[], Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The two references on batch ``x`` ``(N, C, H, W)``: a plain read of every input
    byte (``memory_floor``, with ``gb_per_s``) and ``F.interpolate(bilinear,
    antialias=True)`` to ``output_size`` (``interpolate_aa``); ``flush`` before each
    timed call."""
    time_it = _timer(settings, x, x.device, flush)
    with torch.no_grad():
        figures = {
            name: time_it(step).as_dict() for name, step in reference_steps(x, output_size).items()
        }
    floor = figures["memory_floor"]
    floor["gb_per_s"] = x.numel() * x.element_size() / (floor["step_ms_median"] * 1e-3) / 1e9
    return figures


def pipeline_figures(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    boxes: Tensor | None,
    settings: ThroughputSettings,
    output_size: tuple[int, int] = (48, 48),
    flush: Callable[[], Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Reducer alone and end-to-end inference (``eval``, no gradients), and one training
    step (forward, cross-entropy, backward, Adam step) on a deep copy of ``model``, so
    the model that was evaluated is never changed by measuring it. Both references
    (:func:`reference_steps`) are timed beside every call (``paired``); ``flush`` runs
    before each timed call.

    ``model`` has ``.reducer`` and is called as ``model(x, boxes)``.
    """
    timer = _timer(settings, x, x.device, flush)
    references = reference_steps(x, output_size)

    def time_it(step: Callable[[], Any]) -> Measurement:
        return timer(step, references)

    was_training = model.training
    model.eval()
    with torch.no_grad():
        reducer = time_it(lambda: reduce_batch(model.reducer, x, boxes)).as_dict()
        inference = time_it(lambda: model(x, boxes)).as_dict()
    model.train(was_training)

    trainee = copy.deepcopy(model).train()
    trainable = [p for p in trainee.parameters() if p.requires_grad]
    if not trainable:
        # A fixed reducer before a frozen network: no step to take; the forward and loss a
        # step would start with are timed instead, and marked so.
        def forward_only() -> None:
            with torch.no_grad():
                F.cross_entropy(trainee(x, boxes), y)

        train = {**time_it(forward_only).as_dict(), "nothing_trains": True}
        return {"reducer": reducer, "inference": inference, "train_step": train}
    optimizer = torch.optim.Adam(trainable, lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(trainee(x, boxes), y).backward()
        optimizer.step()

    train = time_it(train_step).as_dict()
    return {"reducer": reducer, "inference": inference, "train_step": train}


def figure_ratios(figures: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``<figure>_vs_<reference>``: images/s of each figure over each reference's; the
    paired ratio (reference timed beside every call) where the figure has one."""

    def ratio(name: str, ref: str) -> float:
        paired = figures[name].get("paired") or {}
        if ref in paired:
            return paired[ref]
        return figures[name]["images_per_s"] / figures[ref]["images_per_s"]

    return {
        f"{name}_vs_{ref}": ratio(name, ref)
        for name in FIGURES
        for ref in REFERENCES
        if name in figures and ref in figures
    }


def combine_rounds(
    rounds: list[dict[str, dict[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Figures and ratios of several rounds taken side by side.

    Each figure is the round with its median images/s (odd counts: an actual
    measurement), with every round's rate in ``rounds_images_per_s``; each ratio is the
    median over rounds of that round's ratio, so a figure is only ever divided by a
    reference taken moments apart on the same copy of the batch.
    """
    figures: dict[str, dict[str, Any]] = {}
    for name in rounds[0]:
        taken = sorted((r[name] for r in rounds), key=lambda f: f["images_per_s"])
        figures[name] = {
            **taken[(len(taken) - 1) // 2],
            "rounds_images_per_s": [r[name]["images_per_s"] for r in rounds],
        }
    per_round = [figure_ratios(r) for r in rounds]
    ratios = {key: statistics.median(r[key] for r in per_round) for key in per_round[0]}
    return figures, ratios


def _windows(rounds: list[dict[str, dict[str, Any]]]) -> list[tuple[int, str, dict[str, Any]]]:
    """``(round number from 1, figure name, figure)`` of every window kept in ``rounds``."""
    return [(i + 1, name, f) for i, taken in enumerate(rounds) for name, f in taken.items()]


def contention_summary(
    rounds: list[dict[str, dict[str, Any]]], settings: ThroughputSettings
) -> dict[str, float | int]:
    """Numbers for the record (and the report's table): ``max_cores`` and ``retries``
    (the settings), ``windows`` (figures kept, over all rounds), ``retimed`` (extra
    windows timed because of competition) and ``contended`` (figures still contended)."""
    windows = _windows(rounds)
    return {
        "max_cores": settings.contention_cores,
        "retries": settings.contention_retries,
        "windows": len(windows),
        "retimed": sum(f.get("tries", 1) - 1 for _, _, f in windows),
        "contended": sum(bool(f.get("contended")) for _, _, f in windows),
    }


def contention_reason(rounds: list[dict[str, dict[str, Any]]], settings: ThroughputSettings) -> str:
    """Why figures taken beside busy processes are not comparable, naming each one."""
    contended = [(i, name, f) for i, name, f in _windows(rounds) if f.get("contended")]
    named = ", ".join(
        f"{name} (round {i}: {f['others_cores']:.2f} cores)" for i, name, f in contended
    )
    return (
        f"other processes kept more than throughput.contention_cores="
        f"{settings.contention_cores:g} cores busy while timing {named}, still after "
        f"{settings.contention_retries} re-timings: measure on a quiet machine."
    )


def measure_pipeline(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    boxes: Tensor | None,
    device: torch.device | str,
    settings: ThroughputSettings,
    output_size: tuple[int, int] = (48, 48),
    conditions: TimingConditions | None = None,
) -> dict[str, Any]:
    """Every throughput figure of a run, as the record's ``throughput`` section.

    ``x`` ``(N, C, H, W)``, ``y`` ``(N,)``, ``boxes`` ``(N, 4)`` or ``None`` (on any
    device). ``settings.batch_size`` images are timed per step (the batch is tiled when
    it is shorter); an out-of-memory error halves that batch until it fits, and the
    batch actually used is recorded. References and figures are taken ``settings.rounds``
    times in turn, each round on a fresh copy of the batch (:func:`combine_rounds`),
    under the conditions ``settings`` asks for (cache flushed before each timed call,
    freed memory kept; what was done is the record's ``conditions``). Returns the figures
    (``reducer``, ``inference``, ``train_step``, ``memory_floor``, ``interpolate_aa``),
    their ``ratios``, the ``batch`` (``size``, ``requested_size``, ``channels``,
    ``height``, ``width``), ``conditions`` (``cache_flush_bytes``, ``allocator``),
    ``contention`` (:func:`contention_summary`), ``comparable`` (+
    ``not_comparable_reason``: ``conditions.reason`` when the launch made the figures not
    comparable (default: comparable), and the figures that stayed contended after their
    retries), ``train_step_on`` and ``seconds``.
    """
    device = torch.device(device)
    requested = int(settings.batch_size or len(x))
    if requested < 1:
        raise ValueError(f"throughput.batch_size must be >= 1, got {requested}")
    started = time.perf_counter()
    index = torch.arange(requested) % len(x)
    x_all, y_all = x[index].to(device), y[index].to(device)
    boxes_all = None if boxes is None else boxes[index].to(device)
    model.to(device)
    flush = cache_flusher(device) if settings.flush_cache else None

    def take_all(batch: int) -> list[dict[str, dict[str, Any]]]:
        yb = y_all[:batch]
        bb = None if boxes_all is None else boxes_all[:batch]
        rounds = []
        for _ in range(settings.rounds):
            # Rounds spread the figures over time and over allocations (a fresh copy each):
            # one window of one copy can catch the host in a slow or a fast state.
            xb = x_all[:batch].clone()
            refs = reference_figures(xb, output_size, settings, flush)
            figures = pipeline_figures(model, xb, yb, bb, settings, output_size, flush)
            rounds.append({**refs, **figures})
        return rounds

    if settings.keep_freed_memory:
        with keep_freed_memory() as allocator:
            rounds, used = with_batch_backoff(take_all, requested)
    else:
        allocator = "unchanged: throughput.keep_freed_memory=false"
        rounds, used = with_batch_backoff(take_all, requested)
    figures, ratios = combine_rounds(rounds)
    contention = contention_summary(rounds, settings)
    conditions = conditions or TimingConditions()
    reasons = [] if conditions.comparable else [conditions.reason or "flagged by the caller"]
    if contention["contended"]:
        reasons.append(contention_reason(rounds, settings))
    _, channels, height, width = x_all.shape
    return {
        **figures,
        "ratios": ratios,
        "rounds": settings.rounds,
        "batch": {
            "size": used,
            "requested_size": requested,
            "channels": int(channels),
            "height": int(height),
            "width": int(width),
        },
        "conditions": {
            "cache_flush_bytes": None if flush is None else flush.size_bytes,
            "allocator": allocator,
        },
        "contention": contention,
        "comparable": not reasons,
        "not_comparable_reason": " ".join(reasons) or None,
        "train_step_on": "a deep copy of the model, after evaluation",
        "seconds": time.perf_counter() - started,
    }


# Float32 copies of the timing batch held at once: the batch drawn from the test split,
# the tiled copy measure_pipeline indexes out of it, and one round's fresh copy.
TIMING_BATCH_COPIES = 3


def available_memory_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory a new allocation can take: the kernel's ``MemAvailable`` (RAM it can hand
    out without swapping; ``None`` without /proc), or the free memory of a CUDA device."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_timing_batch_fits(
    size: int,
    input_shape: tuple[int, int, int],
    option: str,
    device: torch.device | str = "cpu",
) -> None:
    """Raise ``ValueError`` naming ``option`` unless ``TIMING_BATCH_COPIES`` float32
    copies of a ``(size, C, H, W)`` timing batch fit in the memory available now.

    Called before training: the timing comes after it, and a batch that does not fit
    there (7.45 GiB asked for by trainer.batch_size=1000000000) lost the trained run.
    Unknown available memory (no /proc) passes.
    """
    channels, height, width = input_shape
    needed = TIMING_BATCH_COPIES * size * channels * height * width * 4
    devices = {torch.device("cpu"), torch.device(device)}
    for where in sorted(devices, key=str):
        available = available_memory_bytes(where)
        if available is None or needed <= available:
            continue
        fits = max(1, available // (TIMING_BATCH_COPIES * channels * height * width * 4))
        raise ValueError(
            f"{option}: a timing batch of {size:,} images of {channels}×{height}×{width} "
            f"takes {needed / 2**30:.2f} GiB ({TIMING_BATCH_COPIES} float32 copies), more "
            f"than the {available / 2**30:.2f} GiB available on {where}; set "
            f"throughput.batch_size to at most {fits:,} (the timing batch; trainer.batch_size "
            "stays as it is)"
        )


def timing_batch(stream: BatchStream, size: int) -> Batch:
    """``size`` images of ``stream``'s split, in order, cycling when the split is shorter."""
    return stream.batch_of(np.arange(size) % len(stream.images))


def measure_data_path(stream: BatchStream, batch_size: int, settings: ThroughputSettings) -> dict:
    """Images/s of producing one training batch (uint8 → float, canvas rendering) alone.

    Set beside the training-step figure, it says whether an epoch is bound by data.
    """
    index = np.arange(batch_size) % len(stream.images)
    figure = measure(
        lambda: stream.batch_of(index, placement_epoch=1),
        batch_size=len(index),
        warmup=1,
        min_repeats=settings.min_repeats,
        min_seconds=settings.min_seconds,
        max_repeats=settings.max_repeats,
        input_shape=(len(index), *stream.input_shape),
    )
    return figure.as_dict()
