"""What a result depends on besides its config: versions, hardware, code revision."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

import stn


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(start: Path | None = None) -> str | None:
    """The checkout's commit (with ``+dirty`` when files changed), or ``None`` outside git."""
    folder = start or Path(stn.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
        if commit.returncode:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def describe_environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "stn_bench": stn.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def describe_determinism(device: torch.device) -> dict[str, Any]:
    """What a rerun of the same config and seed on ``device`` can be expected to repeat.

    The suite seeds Python, NumPy and torch from the config's seed and does *not* call
    ``torch.use_deterministic_algorithms(True)``: on CUDA, ``grid_sample``'s backward has
    no deterministic kernel (it would raise), and the deterministic cuDNN convolutions
    are slower, which would bias the throughput figures this suite exists to measure.
    """
    info: dict[str, Any] = {
        "seeded": True,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
    if device.type == "cpu":
        info["repeatable"] = True
        info["note"] = (
            "CPU: the same config, seed and torch_threads give identical metrics run after run"
        )
    else:
        info["repeatable"] = info["deterministic_algorithms"]
        info["note"] = (
            f"{device.type}: cuDNN convolution algorithms and the backward of grid_sample and "
            "interpolate accumulate with atomics in a varying order, so reruns agree only up "
            "to float rounding (deterministic algorithms are not enabled by the suite)"
        )
    return info


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda_if_present`` is ``cuda`` (the caller
    skips the run where there is none); otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda_if_present":
        name = "cuda"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was asked for but no CUDA GPU is visible; use device=cpu")
    return device
