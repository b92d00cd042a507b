"""Per-run picture artifacts: a few fixed test inputs and what the reducer made of them.

The job makes them here (the reducer runs, so torch is needed) and writes them with
``stn.results.examples.save_examples``; records hold numbers only, and the report's example
grid and STN sampling-region figures read the files (no torch, nothing run). One ``.npz`` per
run under ``<results_dir>/examples/<run_id>.npz`` with the arrays

- ``inputs``  ``(k, C, H, W)`` uint8: the first ``k`` images of the test stream (the same
  for every run of a dataset, since test canvases depend on ``dataset.split_seed`` only);
- ``labels``  ``(k,)`` int64;
- ``outputs`` ``(k, C, h, w)`` float32: the reducer's output (not clipped);
- ``theta``   ``(k, 2, 3)`` float32 (``(k, G, 2, 3)``: G windows an image), only for
  reducers with ``forward_with_theta``;
- ``weights`` ``(k, G)`` float32: the weight each of the G windows has in the reading
  (same order as ``theta``), only for window selectors (``chosen_windows``);
- ``boxes``   ``(k, 4)`` float32 ``(x0, y0, x1, y1)`` pixels, only when the data has them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from stn.data.stream import Batch
from stn.reducers.base import reduce_batch

DEFAULT_COUNT = 6


@torch.no_grad()
def reducer_examples(
    reducer: nn.Module, x: Tensor, boxes: Tensor | None = None
) -> dict[str, np.ndarray]:
    """The reducer's output for ``x`` ``(k, C, H, W)``, with θ ``(k, 2, 3)`` when it has one
    and a window selector's weights ``(k, G)``."""
    was_training = reducer.training
    reducer.eval()
    try:
        if hasattr(reducer, "forward_with_theta"):
            out, theta = reducer.forward_with_theta(x)
            arrays = {"theta": theta.detach().float().cpu().numpy()}
            if hasattr(reducer, "chosen_windows"):  # how much each window counts
                arrays["weights"] = reducer.chosen_windows(x)[2].detach().float().cpu().numpy()
        else:
            out = reduce_batch(reducer, x, boxes)
            arrays = {}
    finally:
        reducer.train(was_training)
    arrays["outputs"] = out.detach().float().cpu().numpy()
    return arrays


def example_arrays(
    reducer: nn.Module, batch: Batch, count: int = DEFAULT_COUNT
) -> dict[str, np.ndarray]:
    """The first ``count`` images of ``batch`` (``x`` ``(N, C, H, W)`` in [0, 1]) and the
    reducer's output for them: the arrays of an examples file (``stn.results.examples``)."""
    if batch.x.ndim != 4:
        raise ValueError(f"examples need a batch (N, C, H, W), got shape {tuple(batch.x.shape)}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    device = next(reducer.parameters(), torch.empty(0)).device
    x, y = batch.x[:count].to(device), batch.y[:count]
    boxes = None if batch.boxes is None else batch.boxes[:count].to(device)
    arrays = reducer_examples(reducer, x, boxes)
    arrays["inputs"] = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    arrays["labels"] = y.cpu().numpy().astype(np.int64)
    if boxes is not None:
        arrays["boxes"] = boxes.float().cpu().numpy()
    return arrays
