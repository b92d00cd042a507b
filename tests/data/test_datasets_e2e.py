"""Datasets through the whole pipeline: colour images, canvases from any base set."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stn.data.canvas import CanvasSpec, render_canvases
from stn.data.catalog import load_dataset
from stn.data.embedded import DatasetNotFoundError

ROOT = Path(__file__).resolve().parents[2]


def _colour_tree(root: Path, per_class: int = 12) -> None:
    """Three classes told apart by colour alone: red, green and blue squares."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(["red", "green", "blue"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.zeros((28, 28, 3), np.uint8)
            lo, hi = rng.integers(2, 8), rng.integers(20, 26)
            pixels[lo:hi, lo:hi, label] = 255
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def _colour_base(n: int = 20) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, 3, 28, 28), dtype=np.uint8)


def _fashion_or_skip():
    try:
        return load_dataset("fashion_mnist")[0]
    except DatasetNotFoundError:
        pytest.skip("dataset-fashion-mnist not installed: apt-get install dataset-fashion-mnist")


@pytest.mark.parametrize("base", ["digits", "colour", "fashion_mnist"])
def test_canvases_from_any_base_set_repeat_and_keep_channels(base):
    if base == "digits":
        images = load_dataset("digits")[0].images[:40]
    elif base == "colour":
        images = _colour_base(40)
    else:
        images = _fashion_or_skip().images[:40]
    spec = CanvasSpec(size=96, object_size=(24, 40), clutter=5)
    a, boxes_a = render_canvases(images, np.arange(8), spec, seed=2, epoch=1)
    b, boxes_b = render_canvases(images, np.arange(8), spec, seed=2, epoch=1)
    assert a.shape == (8, images.shape[1], 96, 96)
    assert torch.equal(a, b) and torch.equal(boxes_a, boxes_b)
    assert not torch.equal(a, render_canvases(images, np.arange(8), spec, seed=3)[0])


def test_colour_images_flow_through_every_reducer_family(tmp_path):
    _colour_tree(tmp_path / "tree")
    out = tmp_path / "colour"
    # PCA needs fewer components than the 27 training images; the other reducers refuse
    # the option, so it runs on its own.
    logs = [_colour_run(tmp_path, out, "reducer=resize_bilinear_aa,stn_bicubic_aa")]
    logs.append(_colour_run(tmp_path, out, "reducer=pca", "++reducer.n_components=16"))
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == 3, logs
    for record in records:
        assert record["status"] == "ok", record["error"]
        assert record["dataset"]["input_shape"] == [3, 64, 64]
        assert record["throughput"]["batch"]["channels"] == 3
        assert record["resources"]["peak_rss_mb"] > 0
        assert record["throughput"]["data"]["images_per_s"] > 0
        assert record["throughput"]["ratios"]["data_vs_train_step"] > 0


def _colour_run(tmp_path: Path, out: Path, *overrides: str) -> str:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.run",
            "-m",
            *overrides,
            "dataset.source=folder",
            f"dataset.root={tmp_path / 'tree'}",
            "dataset.name=colour",
            "+dataset.options={size: 28, channels: 3}",
            "dataset.canvas_size=64",
            "dataset.object_size=[28,28]",
            "dataset.clutter=2",
            "dataset.test_fraction=0.25",
            "trainer=smoke",
            "logger=none",
            "threads=1",
            "throughput.min_seconds=0",
            "throughput.min_repeats=1",
            f"results_dir={out}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.stderr[-2000:]
