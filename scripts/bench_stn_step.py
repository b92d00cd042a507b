"""Cost of a whole training step with a spatial transformer, relative to plain resize.

Measures forward + backward + optimiser step of (reducer → CNN) on one batch of random
canvases, for ``resize_bilinear`` and STN variants, in the same process, and prints
images/s with the ratio of each step time to the resize step timed right before it.

    python scripts/bench_stn_step.py --size 128 --batch 64 --threads 1
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

from stn.models import build_classifier
from stn.reducers import build_reducer
from stn.throughput import measure
from stn.train import ReducedClassifier, TrainSettings, make_optimizer

# The stn_* presets' localisation net (conf/reducer/stn_bilinear.yaml).
PRESET_LOC = {"loc_channels": [8, 16], "loc_hidden": 32}

VARIANTS = {
    "resize_bilinear": {"kind": "resize", "mode": "bilinear"},
    "stn_bilinear (attention)": {"kind": "stn", "transform": "attention", **PRESET_LOC},
    "stn_bilinear (affine)": {"kind": "stn", "transform": "affine", **PRESET_LOC},
    "stn_bilinear (attention, loc net 16/32, hidden 64)": {"kind": "stn"},
    "stn_blob (frozen detector, 44-px glimpse)": {
        "kind": "stn",
        "loc_head": "heatmap",
        "loc_head_init": "blob",
        "loc_norm": "standardize",
        "loc_downscale": 2.875,
        "loc_channels": [1, 1],
        "blob_sharpness": 60,
        "glimpse_size": 44,
        "lr_multiplier": 0.0,
    },
    "stn_bicubic (attention)": {"kind": "stn", "kernel": "bicubic", **PRESET_LOC},
    "stn_lanczos3 (attention)": {"kind": "stn", "kernel": "lanczos3", **PRESET_LOC},
    "stn_bilinear_aa (attention)": {"kind": "stn", "antialias": True, **PRESET_LOC},
    "stn_bilinear_aa (affine)": {
        "kind": "stn",
        "transform": "affine",
        "antialias": True,
        **PRESET_LOC,
    },
}


def train_step(spec: dict, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One training step (forward, loss, backward, Adam) of (reducer → CNN) on ``x``."""
    reducer = build_reducer(spec, x.shape[1], tuple(x.shape[-2:]))
    model = ReducedClassifier(reducer, build_classifier("cnn", x.shape[1], 10, (48, 48)))
    optimizer = make_optimizer(model, TrainSettings())

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="input canvas side (default 128)")
    parser.add_argument("--batch", type=int, default=64, help="images per step (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="timed seconds per row")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    # The resize step is timed right before every step of each variant (paired): the speed
    # of a core here changes 2x within seconds, so rows timed one after another disagree.
    resize = train_step(VARIANTS["resize_bilinear"], x, y)
    print(f"training step, {args.size}→48, batch {args.batch}, {args.threads} thread(s), CPU\n")
    print("| reducer | images/s | step time vs resize_bilinear (paired, median) |")
    print("|---|---:|---:|")
    for name, spec in VARIANTS.items():
        m = measure(
            train_step(spec, x, y), len(x), warmup=3, min_repeats=10,
            min_seconds=args.min_seconds, references={"resize": resize},
        )  # fmt: skip
        print(f"| {name} | {m.images_per_s:,.0f} | {1 / m.paired['resize']:.2f}× |")


if __name__ == "__main__":
    main()
