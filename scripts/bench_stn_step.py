"""Cost of a whole training step with a spatial transformer, relative to plain resize.

Measures forward + backward + optimiser step of (reducer → CNN) on one batch of random
canvases, for ``resize_bilinear`` and STN variants, in the same process, and prints
images/s with the ratio of each step time to the resize step timed right before it.

    python -m scripts.bench_stn_step --size 128 --batch 64 --threads 1
    python -m scripts.bench_stn_step --size 276 --batch 32 \
        --presets ats_sampling ats_sampling:kernel=lanczos3 ats_topk

Each row is a reducer preset from ``conf/reducer/`` (a few with one option changed);
``--presets`` measures the given ones instead, each ``name`` or ``name:option=value``
(repeat ``:option=value`` to change several).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.schemas import register_schemas
from stn.measure.throughput import measure
from stn.measure.train import ReducedClassifier, TrainSettings, make_optimizer
from stn.networks import build_classifier
from stn.reducers.registry import build_reducer

CONF = Path(__file__).resolve().parents[1] / "conf"


def preset(name: str, **changes: Any) -> dict[str, Any]:
    """Reducer preset ``conf/reducer/<name>.yaml`` as Hydra composes it, with ``changes``:
    the rows measure what the sweeps run, not a copy of it."""
    register_schemas()  # the presets extend the sections' schemas
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"reducer={name}"])
    return {**OmegaConf.to_container(cfg.reducer, resolve=True), **changes}


def variants() -> dict[str, dict[str, Any]]:
    return {
        "resize_bilinear": preset("resize_bilinear"),
        "stn_bilinear (attention)": preset("stn_bilinear"),
        "stn_bilinear (affine)": preset("stn_bilinear", transform="affine"),
        "stn_bilinear (attention, loc net 16/32, hidden 64)": preset(
            "stn_bilinear", loc_channels=[16, 32], loc_hidden=64
        ),
        "stn_blob (frozen detector, 44-px glimpse)": preset("stn_blob"),
        "stn_bicubic (attention)": preset("stn_bicubic"),
        "stn_lanczos3 (attention)": preset("stn_lanczos3"),
        "stn_bilinear_aa (attention)": preset("stn_bilinear_aa"),
        "stn_bilinear_aa (affine)": preset("stn_bilinear_aa", transform="affine"),
    }


def chosen(entries: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Rows of ``--presets``: ``name`` or ``name:option=value[:option=value...]``."""
    rows = {"resize_bilinear": preset("resize_bilinear")}
    for entry in entries:
        name, *changes = entry.split(":")
        pairs = [change.split("=", 1) for change in changes]
        if any(len(pair) != 2 for pair in pairs):
            raise SystemExit(f"--presets: {entry!r} is not name or name:option=value")
        rows[entry] = preset(name, **{k: yaml.safe_load(v) for k, v in pairs})
    return rows


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
    parser.add_argument(
        "--presets", nargs="+", help="measure these presets (name or name:option=value)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    # The resize step is timed right before every step of each variant (paired): the speed
    # of a core here changes 2x within seconds, so rows timed one after another disagree.
    rows = chosen(args.presets) if args.presets else variants()
    resize = train_step(rows["resize_bilinear"], x, y)
    print(f"training step, {args.size}→48, batch {args.batch}, {args.threads} thread(s), CPU\n")
    print("| reducer | images/s | step time vs resize_bilinear (paired, median) |")
    print("|---|---:|---:|")
    for name, spec in rows.items():
        m = measure(
            train_step(spec, x, y), len(x), warmup=3, min_repeats=10,
            min_seconds=args.min_seconds, references={"resize": resize},
        )  # fmt: skip
        print(f"| {name} | {m.images_per_s:,.0f} | {1 / m.paired['resize']:.2f}× |")


if __name__ == "__main__":
    main()
