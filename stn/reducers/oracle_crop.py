"""The oracle crop: each image's ground-truth object box, resized to the output size.

It sees what no real reducer can (the box), so it bounds what an attention mechanism
such as a spatial transformer could reach; ``describe()`` marks it ``oracle: true`` and
the report labels it. Only datasets with boxes (the cluttered canvases) can use it.

Boxes are ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive), rounded to whole pixels
and clipped to the image. The resize is ``F.interpolate(bilinear, antialias=True)``
(Pillow-style: the filter widens with the downscale factor, so boxes larger than the
output do not alias). Anti-aliasing needs one filter width per box size, so the batch
is grouped by box size: each group is gathered with one indexing op and resized with
one call. Canvas objects come in a handful of sizes (e.g. 20–36 px), so a batch costs a
few calls, and the result equals cropping and resizing every image on its own.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from stn.reducers.base import Reducer, ReducerConfig, register_reducer


def pixel_boxes(boxes: Tensor, height: int, width: int) -> Tensor:
    """``(N, 4)`` float boxes → ``(N, 4)`` int64 whole-pixel boxes inside the image.

    Raises ``ValueError`` for a box that is empty after clipping.
    """
    rounded = boxes.detach().round().long().cpu()
    rounded[:, 0::2] = rounded[:, 0::2].clamp(0, width)
    rounded[:, 1::2] = rounded[:, 1::2].clamp(0, height)
    empty = (rounded[:, 2] <= rounded[:, 0]) | (rounded[:, 3] <= rounded[:, 1])
    if empty.any():
        i = int(empty.nonzero()[0])
        raise ValueError(
            f"object box {boxes[i].tolist()} of image {i} is empty inside the "
            f"{height}×{width} image; boxes are (x0, y0, x1, y1) in pixels, x1 > x0, y1 > y0"
        )
    return rounded


@register_reducer("oracle_crop", ReducerConfig)
class OracleCrop(Reducer):
    """``(N, C, H, W), boxes (N, 4) → (N, C, h, w)``: crop each box, resize anti-aliased.

    Takes no options of its own (``ReducerConfig``: name and kind only)."""

    uses_boxes = True

    def forward(self, x: Tensor, boxes: Tensor) -> Tensor:
        n, c, height, width = x.shape
        if boxes.shape != (n, 4):
            raise ValueError(f"oracle_crop needs boxes of shape ({n}, 4), got {tuple(boxes.shape)}")
        box = pixel_boxes(boxes, height, width)
        sizes = torch.stack([box[:, 3] - box[:, 1], box[:, 2] - box[:, 0]], dim=1)  # (N, 2) h, w
        out = x.new_empty(n, c, *self.output_size)
        channels = torch.arange(c, device=x.device)
        for size in torch.unique(sizes, dim=0):
            members = (sizes == size).all(dim=1).nonzero().squeeze(1)
            bh, bw = int(size[0]), int(size[1])
            rows = (box[members, 1, None] + torch.arange(bh)).to(x.device)  # (G, bh)
            cols = (box[members, 0, None] + torch.arange(bw)).to(x.device)  # (G, bw)
            idx = members.to(x.device)
            crops = x[
                idx[:, None, None, None],
                channels[None, :, None, None],
                rows[:, None, :, None],
                cols[:, None, None, :],
            ]  # (G, C, bh, bw)
            out[idx] = F.interpolate(
                crops, size=self.output_size, mode="bilinear", align_corners=False, antialias=True
            )
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "oracle": True}
