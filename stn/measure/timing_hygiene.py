"""Conditions that keep a timed call from measuring the machine instead of the code.

Two effects made the same throughput ratio differ by up to 3.5× between two processes
on a shared 2-core VM (see docs/throughput.md, "Repeatability"):

* **Cache state.** A batch of 64 × 1 × 128² floats is 4 MB and sits in a 32 MB
  last-level cache after one call; whether the next call reads it from cache or from
  memory depended on what ran just before (our own reducer, or a neighbour on the host).
  :func:`cache_flusher` reads a buffer twice the size of the last-level cache (CPU) or
  of the L2 (CUDA) before every timed call, as Triton's ``do_bench`` does on GPUs, so
  every call and every reference starts from memory: the "memory floor" is then a read
  from memory, not from cache.
* **Page faults.** glibc returns large freed blocks to the kernel, so a reducer that
  allocates big temporaries (e.g. ``pool_blur``'s full-resolution blur) page-faults on
  every call, and how much that costs changed from process to process.
  :func:`keep_freed_memory` makes glibc keep freed memory for reuse while figures are
  taken (what jemalloc/tcmalloc do, and what PyTorch's CUDA caching allocator does on
  GPUs), then hands it back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

# Used where the cache size cannot be read (no sysfs, no CUDA property): larger than the
# last-level caches of common CPUs and the L2 of current GPUs (H100: 50 MB).
FALLBACK_CACHE_BYTES = 64 * 2**20

# glibc mallopt parameters (malloc.h) and their documented defaults.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
# mallopt takes an int but glibc stores the threshold as size_t: -1 is SIZE_MAX, never
# trim. A bound such as 1 GiB let learned_resizer's 2 GB of temporaries at 276² be
# trimmed and faulted in again (1.5M faults per window).
KEEP_TRIM_THRESHOLD = -1


def _size_bytes(text: str) -> int:
    """sysfs cache sizes read like ``32768K`` or ``1M``."""
    text = text.strip()
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def last_level_cache_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Size of the CPU's highest-level cache from Linux sysfs, or ``None``."""
    best: tuple[int, int] | None = None
    for index in sysfs.glob("index*"):
        try:
            level = int((index / "level").read_text())
            size = _size_bytes((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if best is None or level > best[0]:
            best = (level, size)
    return None if best is None else best[1]


def cache_bytes(device: torch.device) -> int:
    """The cache a flush must overrun on ``device``: L2 on CUDA, last level on CPU."""
    if device.type == "cuda":
        size = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0)
        return int(size) or FALLBACK_CACHE_BYTES
    return last_level_cache_bytes() or FALLBACK_CACHE_BYTES


def cache_flusher(device: torch.device | str, size_bytes: int | None = None) -> Callable[[], None]:
    """A callable that reads ``size_bytes`` (default: twice :func:`cache_bytes`) of
    memory on ``device``, evicting whatever a previous call left in the cache."""
    device = torch.device(device)
    size = int(size_bytes if size_bytes is not None else 2 * cache_bytes(device))
    if size < 4:
        raise ValueError(f"a cache flush needs at least 4 bytes, got {size}")
    # Filled once so that the pages exist: reading never-touched pages would read the
    # shared zero page, which occupies no cache at all.
    buffer = torch.ones(size // 4, dtype=torch.float32, device=device)

    def flush() -> None:
        buffer.sum()

    flush.size_bytes = size  # type: ignore[attr-defined]
    return flush


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextmanager
def keep_freed_memory() -> Iterator[str]:
    """Within the block, glibc keeps freed memory (no ``mmap`` for big blocks, no trimming
    of the heap) so repeated calls reuse pages instead of faulting them in again; after
    it, the documented defaults are restored and free memory is handed back
    (``malloc_trim``). Yields what was done, for the record: ``"glibc: freed memory
    kept"``, or ``"unchanged: ..."`` where the C library has no ``mallopt``. Restoring the
    defaults also ends glibc's dynamic mmap threshold for the process (it is fixed once
    set): allocation speed outside measuring can change, results cannot.
    """
    libc = _glibc()
    if libc is None:
        yield "unchanged: the C library has no mallopt (not glibc)"
        return
    # glibc's mallopt returns 1 on success; other C libraries' stubs return 0.
    if libc.mallopt(M_MMAP_MAX, 0) != 1:
        yield "unchanged: mallopt refused (not glibc)"
        return
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
    try:
        yield "glibc: freed memory kept"
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
