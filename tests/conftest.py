"""Tests run offline, on one CPU thread (stable on a shared 2-core machine), no wandb."""

import os
import sys
from pathlib import Path

import pytest
import torch

from experiments.schemas import register_schemas

# The tests mirror the package tree (tests/reducers/, tests/report/, ...); their shared
# helpers (tiny_runs, report_records, custom_nets) stay here, importable from every folder.
sys.path.insert(0, str(Path(__file__).parent))
os.environ["WANDB_MODE"] = "disabled"
torch.set_num_threads(1)
# The presets extend the sections' schemas: every test that composes a config needs them.
register_schemas()


@pytest.fixture(autouse=True)
def _wandb_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path_factory.mktemp("wandb-cache")))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path_factory.mktemp("wandb-dir")))


@pytest.fixture
def memory_cap():
    """Caps this process's address space at its current size + 2 GiB for one test.

    For tests that reproduce a runaway allocation (a diverged transform asked for 195 GB):
    on code without the guard the allocation fails fast with an error the test does not
    expect, instead of swapping or waking the OOM killer on a shared machine.
    """
    import resource

    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    used = pages * os.sysconf("SC_PAGE_SIZE")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = used + 2 * 2**30
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
