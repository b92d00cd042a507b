"""Tests run offline, on one CPU thread (stable on a shared 2-core machine), no wandb."""

import os

import pytest
import torch

os.environ["WANDB_MODE"] = "disabled"
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _wandb_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path_factory.mktemp("wandb-cache")))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path_factory.mktemp("wandb-dir")))
