"""Measuring conditions: the cache flush before every timed call and glibc keeping freed
memory while timing (stn/measure/timing_hygiene.py)."""

import resource

import pytest
import torch
from test_throughput import _batch, _model

from stn.measure.throughput import ThroughputSettings, measure, measure_pipeline
from stn.measure.timing_hygiene import (
    FALLBACK_CACHE_BYTES,
    cache_bytes,
    cache_flusher,
    keep_freed_memory,
    last_level_cache_bytes,
)

BIG = 64 * 2**20  # above glibc's largest mmap threshold (32 MB): always mmapped by default


def fake_cache(root, *levels):
    for i, (level, size) in enumerate(levels):
        index = root / f"index{i}"
        index.mkdir()
        (index / "level").write_text(f"{level}\n")
        (index / "size").write_text(f"{size}\n")
    return root


def test_last_level_cache_is_the_highest_level_in_sysfs(tmp_path):
    root = fake_cache(tmp_path, (1, "32K"), (1, "32K"), (3, "32768K"), (2, "1M"))
    assert last_level_cache_bytes(root) == 32 * 2**20
    assert last_level_cache_bytes(tmp_path / "missing") is None


def test_on_cuda_the_cache_to_overrun_is_the_devices_l2(monkeypatch):
    class Properties:
        L2_cache_size = 50 * 2**20

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Properties())
    assert cache_bytes(torch.device("cuda")) == 50 * 2**20
    Properties.L2_cache_size = 0  # not reported: a size larger than current L2s
    assert cache_bytes(torch.device("cuda")) == FALLBACK_CACHE_BYTES


def test_flush_reads_twice_the_cache_unless_told():
    assert cache_flusher("cpu").size_bytes == 2 * cache_bytes(torch.device("cpu"))
    assert cache_flusher("cpu", size_bytes=4096).size_bytes == 4096
    assert FALLBACK_CACHE_BYTES >= 32 * 2**20
    with pytest.raises(ValueError, match="at least 4 bytes"):
        cache_flusher("cpu", size_bytes=2)


def test_flush_runs_before_every_timed_call_but_not_in_warm_up():
    log = []
    m = measure(lambda: log.append("step"), 1, warmup=1, min_repeats=2, min_seconds=0.0,
                references={"ref": lambda: log.append("ref")},
                flush=lambda: log.append("flush"))  # fmt: skip
    assert log == ["ref", "step"] + ["flush", "ref", "flush", "step"] * 2
    assert m.cache_flushed and m.repeats == 2
    assert not measure(lambda: None, 1, warmup=0, min_repeats=1, min_seconds=0.0).cache_flushed


def faults_of(make):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    make()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def touch_big() -> None:
    t = torch.ones(BIG // 4)  # written: every page is faulted in
    del t


class RecordingLibc:
    def __init__(self, answer=1):
        self.calls, self.answer = [], answer

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return self.answer

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


def test_freed_memory_is_kept_inside_and_the_defaults_come_back_after(monkeypatch):
    import stn.measure.timing_hygiene as hygiene

    libc = RecordingLibc()
    monkeypatch.setattr(hygiene, "_glibc", lambda: libc)
    with keep_freed_memory() as allocator:
        assert allocator == "glibc: freed memory kept"
        assert libc.calls == [
            ("mallopt", hygiene.M_MMAP_MAX, 0),
            ("mallopt", hygiene.M_TRIM_THRESHOLD, -1),
        ]
    assert libc.calls[2:] == [
        ("mallopt", hygiene.M_MMAP_MAX, hygiene.DEFAULT_MMAP_MAX),
        ("mallopt", hygiene.M_TRIM_THRESHOLD, hygiene.DEFAULT_TRIM_THRESHOLD),
        ("malloc_trim", 0),
    ]
    refusing = RecordingLibc(answer=0)  # a C library whose mallopt is a stub
    monkeypatch.setattr(hygiene, "_glibc", lambda: refusing)
    with keep_freed_memory() as allocator:
        assert allocator == "unchanged: mallopt refused (not glibc)"
    monkeypatch.setattr(hygiene, "_glibc", lambda: None)
    with keep_freed_memory() as allocator:
        assert allocator == "unchanged: the C library has no mallopt (not glibc)"


def test_page_faults_are_counted_in_the_timed_window():
    m = measure(touch_big, 1, warmup=1, min_repeats=3, min_seconds=0.0)
    assert m.page_faults >= 3 * BIG // 4096 // 2


def test_pipeline_records_its_conditions():
    model, (x, y) = _model(), _batch()
    quick = ThroughputSettings(warmup=0, min_repeats=1, min_seconds=0.0, rounds=1)
    out = measure_pipeline(model, x, y, None, "cpu", quick)
    assert out["conditions"]["cache_flush_bytes"] == cache_flusher("cpu").size_bytes
    assert out["conditions"]["allocator"] == "glibc: freed memory kept"
    assert all(out[name]["cache_flushed"] for name in ("reducer", "memory_floor"))
    plain = ThroughputSettings(warmup=0, min_repeats=1, min_seconds=0.0, rounds=1,
                               flush_cache=False, keep_freed_memory=False)  # fmt: skip
    out = measure_pipeline(model, x, y, None, "cpu", plain)
    assert out["conditions"] == {
        "cache_flush_bytes": None,
        "allocator": "unchanged: throughput.keep_freed_memory=false",
    }
    assert not out["reducer"]["cache_flushed"]
