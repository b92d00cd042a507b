"""The timing method: statistics, CUDA synchronisation, out-of-memory back-off, and the
figures, references and ratios of one run."""

import dataclasses
import time
import types

import numpy as np
import pytest
import torch

import stn.measure.throughput as tp
from experiments.launcher import throughput_conditions
from stn.data.images import ImageSet
from stn.data.prepare import _with_channels
from stn.measure.throughput import (
    ThroughputSettings,
    TimingConditions,
    combine_rounds,
    is_out_of_memory,
    measure,
    measure_pipeline,
    with_batch_backoff,
)
from stn.measure.train import ReducedClassifier
from stn.networks import build_classifier
from stn.options import options_from
from stn.reducers.registry import build_reducer
from stn.reducers.resize import Resize, ResizeConfig

QUICK = ThroughputSettings(warmup=1, min_repeats=3, min_seconds=0.0)


def test_known_sleep_gives_a_median_near_it_and_ordered_quartiles():
    calls = []

    def step():
        calls.append(1)
        time.sleep(0.02)

    m = measure(step, batch_size=4, warmup=2, min_repeats=5, min_seconds=0.25)
    assert m.repeats >= 5 and len(calls) == m.repeats + 2
    assert m.window_s >= 0.25
    # sleep never returns early; the upper bound is loose for a busy shared machine.
    assert 20.0 <= m.step_ms_median < 200.0
    assert m.step_ms_q25 <= m.step_ms_median <= m.step_ms_q75
    assert m.images_per_s_q25 <= m.images_per_s <= m.images_per_s_q75
    assert m.images_per_s == pytest.approx(4 / (m.step_ms_median / 1e3))
    assert m.threads == torch.get_num_threads() and m.device == "cpu"


def test_statistics_match_numpy_on_a_scripted_clock(monkeypatch):
    durations = [0.010, 0.050, 0.020, 0.040, 0.030, 0.070]
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(tp, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))
    pending = iter(durations)

    def step():
        clock.now += next(pending)

    m = measure(step, batch_size=10, warmup=0, min_repeats=6, min_seconds=0.0)
    q25, q50, q75 = np.percentile(durations, [25, 50, 75], method="weibull")
    assert m.repeats == 6
    assert m.step_ms_median == pytest.approx(q50 * 1e3)
    assert (m.step_ms_q25, m.step_ms_q75) == pytest.approx((q25 * 1e3, q75 * 1e3))
    assert m.images_per_s == pytest.approx(10 / q50)
    assert m.images_per_s_q25 == pytest.approx(10 / q75)  # the slow quartile is the low rate


def test_min_repeats_is_exact_when_no_minimum_time():
    m = measure(lambda: None, batch_size=1, warmup=0, min_repeats=7, min_seconds=0.0)
    assert m.repeats == 7


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"min_repeats": 0}, {"max_repeats": 2}])
def test_bad_timer_settings_are_refused(bad):
    args = {"batch_size": 1, "min_repeats": 3, **bad}
    with pytest.raises(ValueError, match="must be|need"):
        measure(lambda: None, **args)


def test_cuda_timed_regions_are_bracketed_by_synchronize(monkeypatch):
    log = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 12345)
    m = measure(lambda: log.append("step"), 2, device="cuda", warmup=2, min_repeats=3,
                min_seconds=0.0)  # fmt: skip
    assert log == ["step", "step", "sync"] + ["sync", "step", "sync"] * 3
    assert m.device == "cuda" and m.peak_memory_bytes == 12345
    assert m.peak_memory_scope == "window"


def test_every_figure_carries_its_conditions():
    x = torch.rand(3, 2, 16, 16)
    m = measure(lambda: x.sum(), 3, min_repeats=2, min_seconds=0.0, dtype=x.dtype,
                input_shape=x.shape)  # fmt: skip
    assert m.dtype == "float32" and m.input_shape == [3, 2, 16, 16]
    assert m.peak_memory_bytes > 0 and m.peak_memory_scope in ("window", "process")
    assert m.others_cpu_s is None or m.others_cpu_s >= 0.0


def test_contention_is_reported_only_for_a_window_its_ticks_resolve():
    assert tp._cores(0.05, 0.01) is None
    assert tp._cores(0.5, 1.0) == pytest.approx(0.5)
    assert tp._cores(None, 1.0) is None


def _oom_above(limit, error):
    tried = []

    def run(batch):
        tried.append(batch)
        if batch > limit:
            raise error
        return f"ran {batch}"

    return run, tried


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        torch.cuda.OutOfMemoryError("CUDA out of memory."),
    ],
)
def test_out_of_memory_halves_the_batch_until_it_fits(error):
    run, tried = _oom_above(8, error)
    assert is_out_of_memory(error)
    assert with_batch_backoff(run, 64) == ("ran 8", 8)
    assert tried == [64, 32, 16, 8]


def test_other_errors_and_oom_at_batch_one_are_raised():
    run, tried = _oom_above(8, RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with_batch_backoff(run, 64)
    assert tried == [64]
    run, tried = _oom_above(0, RuntimeError("out of memory"))
    with pytest.raises(RuntimeError, match="out of memory"):
        with_batch_backoff(run, 4)
    assert tried == [4, 2, 1]


def _model(in_channels=1, size=64):
    reducer = build_reducer({"kind": "resize", "mode": "bilinear"}, in_channels, (size, size))
    return ReducedClassifier(reducer, build_classifier("mlp", in_channels, 10, (48, 48)))


def _batch(n=6, channels=1, size=64):
    torch.manual_seed(0)
    return torch.rand(n, channels, size, size), torch.randint(0, 10, (n,))


def test_pipeline_records_three_figures_two_references_and_their_ratios():
    model = _model()
    x, y = _batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # No contention threshold can be crossed: the test must not depend on what else runs.
    settings = ThroughputSettings(
        warmup=1, min_repeats=3, min_seconds=0.0, batch_size=20, rounds=1, contention_cores=1e9
    )
    out = measure_pipeline(model, x, y, None, "cpu", settings)

    for name in ("reducer", "inference", "train_step", "memory_floor", "interpolate_aa"):
        assert out[name]["images_per_s"] > 0 and out[name]["batch_size"] == 20
        assert out[name]["input_shape"] == [20, 1, 64, 64]
    assert out["batch"] == {
        "size": 20, "requested_size": 20, "channels": 1, "height": 64, "width": 64
    }  # fmt: skip
    ratios = out["ratios"]
    assert len(ratios) == 6
    for figure in ("reducer", "inference", "train_step"):
        # Each figure's ratio is the one timed call by call beside the reference.
        assert set(out[figure]["paired"]) == {"memory_floor", "interpolate_aa"}
        for ref in ("memory_floor", "interpolate_aa"):
            assert ratios[f"{figure}_vs_{ref}"] == out[figure]["paired"][ref]
    floor = out["memory_floor"]
    assert floor["gb_per_s"] == pytest.approx(20 * 64 * 64 * 4 / floor["step_ms_median"] / 1e6)
    assert out["comparable"] is True and out["not_comparable_reason"] is None
    # The training step ran on a copy: the evaluated model is unchanged.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_pipeline_backs_off_on_out_of_memory_and_records_the_batch():
    class Hungry(Resize):
        def forward(self, x):
            if len(x) > 8:
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory")
            return super().forward(x)

    hungry = Hungry(ResizeConfig(name="hungry", kind="resize"), 1, (64, 64), (48, 48))
    model = ReducedClassifier(hungry, build_classifier("mlp", 1, 10, (48, 48)))
    x, y = _batch()
    settings = ThroughputSettings(warmup=1, min_repeats=2, min_seconds=0.0, batch_size=64)
    out = measure_pipeline(model, x, y, None, "cpu", settings)
    assert out["batch"]["size"] == 8 and out["batch"]["requested_size"] == 64
    assert out["reducer"]["batch_size"] == out["memory_floor"]["batch_size"] == 8


def test_settings_from_config_name_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown throughput option.*warmpu"):
        options_from(ThroughputSettings, {"warmpu": 1}, "throughput")
    made = options_from(ThroughputSettings, {"warmup": 4}, "throughput")
    conditions = TimingConditions(comparable=False, reason="r")
    assert (made.warmup, conditions.comparable, conditions.reason) == (4, False, "r")


def test_parallel_launchers_make_figures_not_comparable():
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert throughput_conditions(basic) == {"comparable": True, "reason": None}
    parallel = throughput_conditions(joblib)
    assert parallel["comparable"] is False and "JoblibLauncher" in parallel["reason"]
    assert "basic launcher" in parallel["reason"]


def test_grey_images_repeat_into_channels_and_colour_images_are_refused():
    grey = ImageSet(np.arange(2 * 16, dtype=np.uint8).reshape(2, 1, 4, 4), np.zeros(2), 1, "g")
    rgb = _with_channels(grey, 3)
    assert rgb.images.shape == (2, 3, 4, 4)
    assert all(np.array_equal(rgb.images[:, c], grey.images[:, 0]) for c in range(3))
    assert _with_channels(grey, None) is grey
    with pytest.raises(ValueError, match="only repeat 1-channel"):
        _with_channels(rgb, 2)


def test_rounds_are_combined_side_by_side_median_figure_and_median_ratio():
    def figure(rate):
        return {"images_per_s": rate, "step_ms_median": 1e3 / rate}

    rounds = [
        {"reducer": figure(10.0), "memory_floor": figure(100.0)},  # ratio 0.10
        {"reducer": figure(30.0), "memory_floor": figure(200.0)},  # ratio 0.15
        {"reducer": figure(20.0), "memory_floor": figure(50.0)},  # ratio 0.40
    ]
    figures, ratios = combine_rounds(rounds)
    assert figures["reducer"]["images_per_s"] == 20.0  # the median round, as measured
    assert figures["reducer"]["rounds_images_per_s"] == [10.0, 30.0, 20.0]
    assert figures["memory_floor"]["images_per_s"] == 100.0
    # The median of each round's own ratio, not 20 / 100 from different rounds.
    assert ratios == {"reducer_vs_memory_floor": pytest.approx(0.15)}


def test_pipeline_takes_every_figure_once_per_round_on_a_fresh_copy():
    model = _model()
    x, y = _batch()
    seen = []
    forward = model.reducer.forward
    model.reducer.forward = lambda batch: (seen.append(batch.data_ptr()), forward(batch))[1]
    settings = ThroughputSettings(warmup=0, min_repeats=1, min_seconds=0.0, rounds=3)
    out = measure_pipeline(model, x, y, None, "cpu", settings)
    assert out["rounds"] == 3
    for name in ("reducer", "inference", "train_step", "memory_floor", "interpolate_aa"):
        assert len(out[name]["rounds_images_per_s"]) == 3
    assert len(set(seen)) >= 2  # the rounds did not all read the same allocation
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        measure_pipeline(model, x, y, None, "cpu", dataclasses.replace(settings, rounds=0))


def test_references_timed_beside_every_call_give_the_ratio_of_their_times(monkeypatch):
    """A fake clock: each step takes 4 units, the reference 1, whatever else happens, so
    the step's images/s are a quarter of the reference's in every pair."""
    clock = [0.0]
    monkeypatch.setattr(tp.time, "perf_counter", lambda: clock[0])

    def advance(units):
        return lambda: clock.__setitem__(0, clock[0] + units)

    m = measure(
        advance(4.0), batch_size=8, warmup=1, min_repeats=5, min_seconds=0.0,
        references={"floor": advance(1.0)},
    )  # fmt: skip
    assert m.repeats == 5
    assert m.paired == {"floor": pytest.approx(0.25)}
    assert m.step_ms_median == pytest.approx(4000.0)  # the reference's time is not the step's
    assert measure(advance(1.0), 1, warmup=0, min_repeats=2, min_seconds=0.0).paired is None


def test_ratios_fall_back_to_images_per_s_without_a_paired_reference():
    figures = {
        "reducer": {"images_per_s": 10.0, "paired": {"memory_floor": 0.2}},
        "memory_floor": {"images_per_s": 100.0},
        "interpolate_aa": {"images_per_s": 40.0},
    }
    ratios = tp.figure_ratios(figures)
    assert ratios["reducer_vs_memory_floor"] == 0.2  # paired wins
    assert ratios["reducer_vs_interpolate_aa"] == pytest.approx(0.25)  # 10 / 40


def test_busy_cpu_seconds_is_every_state_but_idle_and_iowait():
    states = tp.cpu_seconds_by_state()
    if states is None:
        pytest.fail("this Linux test machine should have /proc/stat")
    assert tuple(states) == tp.CPU_STATES and all(v >= 0 for v in states.values())
    busy_then = sum(states.values()) - states["idle"] - states["iowait"]
    busy_now = tp.busy_cpu_seconds()
    # Counters only grow: read later, busy time is at least what it was, and the read
    # between them is far shorter than a second.
    assert busy_then <= busy_now < busy_then + 1.0


FIGURE_NAMES = ("memory_floor", "interpolate_aa", "reducer", "inference", "train_step")


def _competition(monkeypatch, *cores: float) -> list[float]:
    """Stand in for the contention measurement: each timed window reads the next of
    ``cores`` as its ``others_cores`` (the last one repeats). Returns the values handed out."""
    handed: list[float] = []

    def scripted(others_cpu_s, window_s):
        handed.append(cores[min(len(handed), len(cores) - 1)])
        return handed[-1]

    monkeypatch.setattr(tp, "_cores", scripted)
    return handed


def _timed_once(comparable=True, reason=None, **settings):
    quick = ThroughputSettings(warmup=0, min_repeats=1, min_seconds=0.0, rounds=1, **settings)
    x, y = _batch()
    conditions = TimingConditions(comparable=comparable, reason=reason)
    return measure_pipeline(_model(), x, y, None, "cpu", quick, conditions=conditions)


def test_a_figure_taken_under_competition_is_retimed_up_to_the_bound_then_marked(monkeypatch):
    # Before: a figure with another process on a core (others' cores 1.0) was kept as it
    # was and the run said comparable: yes.
    handed = _competition(monkeypatch, 1.0)
    out = _timed_once(contention_cores=0.25, contention_retries=2)
    assert len(handed) == 5 * 3  # five windows, each taken 1 + 2 times
    for name in FIGURE_NAMES:
        assert out[name]["tries"] == 3 and out[name]["contended"] is True
    assert out["comparable"] is False
    reason = out["not_comparable_reason"]
    assert "throughput.contention_cores=0.25" in reason and "after 2 re-timings" in reason
    assert "reducer (round 1: 1.00 cores)" in reason and "train_step (round 1" in reason
    assert out["contention"] == {
        "max_cores": 0.25, "retries": 2, "windows": 5, "retimed": 10, "contended": 5
    }  # fmt: skip


def test_a_figure_taken_on_a_quiet_machine_is_not_retimed(monkeypatch):
    handed = _competition(monkeypatch, 0.05)
    out = _timed_once()
    assert len(handed) == 5
    assert all(out[name]["tries"] == 1 and not out[name]["contended"] for name in FIGURE_NAMES)
    assert out["comparable"] is True and out["not_comparable_reason"] is None
    assert out["contention"]["retimed"] == out["contention"]["contended"] == 0


def test_a_retime_that_finds_the_machine_quiet_keeps_the_figure_comparable(monkeypatch):
    handed = _competition(monkeypatch, 0.9, 0.0)  # the first window only was contended
    out = _timed_once(contention_retries=1)
    assert len(handed) == 6
    assert out["memory_floor"]["tries"] == 2 and not out["memory_floor"]["contended"]
    assert out["memory_floor"]["others_cores"] == 0.0  # the quiet window is the one kept
    assert out["comparable"] is True and out["contention"]["retimed"] == 1


def test_no_retries_marks_a_contended_figure_at_once_beside_the_launcher_reason(monkeypatch):
    handed = _competition(monkeypatch, 0.0, 0.0, 0.0, 0.0, 0.6)  # the training step only
    out = _timed_once(contention_retries=0, comparable=False, reason="parallel launcher.")
    assert len(handed) == 5 and out["train_step"]["contended"]
    assert out["not_comparable_reason"].startswith("parallel launcher. other processes")
    assert "train_step (round 1: 0.60 cores)" in out["not_comparable_reason"]
    assert "reducer (" not in out["not_comparable_reason"]


def test_contention_settings_are_checked():
    with pytest.raises(ValueError, match="contention_retries must be >= 0"):
        tp.retime_while_contended(lambda: None, -1, 0.25)
    with pytest.raises(ValueError, match="contention_cores must be >= 0"):
        tp.retime_while_contended(lambda: None, 1, -0.5)
