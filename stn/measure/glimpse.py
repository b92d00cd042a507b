"""Where a learned reducer looks: the zoom of its glimpse and its distance to the object.

"Does the transformer zoom onto the object?" as numbers a record carries, from the affine
``θ`` the reducer sampled with and the true object boxes. ``θ`` maps the output grid's
normalised coordinates ``[-1, 1]`` (``align_corners=False``) to the input's: the glimpse's
centre is ``θ·(0, 0, 1)`` and its side, as a fraction of the input's, is the square root
of ``|det A|`` (``A`` the 2×2 part; exact for the attention family ``s·I``, the side of a
square of the same area for a full affine map).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from stn.data.stream import BatchStream

GLIMPSE_SUMMARY_KEYS = (
    "zoom_mean",
    "zoom_std",
    "glimpse_side_px_mean",
    "object_side_px_mean",
    "centre_distance_px_mean",
    "centre_distance_rel_mean",
    "centre_in_box",
    "images",
)


def glimpse_geometry(theta: Tensor, boxes: Tensor, input_hw: tuple[int, int]) -> dict[str, Tensor]:
    """Per-image geometry of a glimpse.

    Args:
        theta: ``(N, 2, 3)`` affine map from output to input normalised coordinates.
        boxes: ``(N, 4)`` object boxes ``(x0, y0, x1, y1)`` in input pixels (x1, y1
            exclusive), as ``stn.data.canvas.render_canvases`` returns them.
        input_hw: the input's ``(H, W)`` in pixels.

    Returns ``(N,)`` tensors: ``zoom`` (glimpse side ÷ input side: 1 is the whole input,
    < 1 zooms in), ``glimpse_side_px``, ``centre_x_px``, ``centre_y_px``,
    ``centre_distance_px`` (glimpse centre to box centre), ``centre_in_box`` (1.0 or 0.0).
    """
    if theta.ndim != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta must be (N, 2, 3), got {tuple(theta.shape)}")
    if boxes.shape != (theta.shape[0], 4):
        raise ValueError(f"boxes must be ({theta.shape[0]}, 4), got {tuple(boxes.shape)}")
    h, w = input_hw
    theta, boxes = theta.double(), boxes.double()
    zoom = torch.linalg.det(theta[:, :, :2]).abs().sqrt()
    # Normalised u in [-1, 1] spans pixel coordinates [0, W]: x = (u + 1)·W / 2.
    centre_x = (theta[:, 0, 2] + 1) * w / 2
    centre_y = (theta[:, 1, 2] + 1) * h / 2
    box_x = (boxes[:, 0] + boxes[:, 2]) / 2
    box_y = (boxes[:, 1] + boxes[:, 3]) / 2
    inside = (
        (centre_x >= boxes[:, 0])
        & (centre_x < boxes[:, 2])
        & (centre_y >= boxes[:, 1])
        & (centre_y < boxes[:, 3])
    )
    return {
        "zoom": zoom,
        "glimpse_side_px": zoom * (h * w) ** 0.5,
        "centre_x_px": centre_x,
        "centre_y_px": centre_y,
        "centre_distance_px": torch.hypot(centre_x - box_x, centre_y - box_y),
        "centre_in_box": inside.double(),
    }


def summarise_glimpses(
    batches: Iterable[tuple[Tensor, Tensor]], input_hw: tuple[int, int]
) -> dict[str, float] | None:
    """Means over every image of ``(θ (N, 2, 3), boxes (N, 4))`` batches: the record's
    ``metrics.glimpse`` (keys ``GLIMPSE_SUMMARY_KEYS``); None when there are no images.

    ``centre_distance_rel_mean`` is the distance as a fraction of the input's side, so
    canvases of different sizes compare; ``object_side_px_mean`` lets a reader set the
    glimpse's side against the object's (zoomed onto the object: about equal)."""
    parts: dict[str, list[Tensor]] = {}
    object_sides: list[Tensor] = []
    for theta, boxes in batches:
        for key, value in glimpse_geometry(theta, boxes, input_hw).items():
            parts.setdefault(key, []).append(value)
        boxes = boxes.double()
        object_sides.append(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt())
    if not object_sides:
        return None
    every = {key: torch.cat(values) for key, values in parts.items()}
    side = (input_hw[0] * input_hw[1]) ** 0.5
    zoom = every["zoom"]
    return {
        "zoom_mean": zoom.mean().item(),
        "zoom_std": zoom.std().item() if len(zoom) > 1 else 0.0,
        "glimpse_side_px_mean": every["glimpse_side_px"].mean().item(),
        "object_side_px_mean": torch.cat(object_sides).mean().item(),
        "centre_distance_px_mean": every["centre_distance_px"].mean().item(),
        "centre_distance_rel_mean": every["centre_distance_px"].mean().item() / side,
        "centre_in_box": every["centre_in_box"].mean().item(),
        "images": len(zoom),
    }


GLIMPSE_MAX_IMAGES = 2000  # enough for a mean to 1 % of the side; bounds the cost at 276²


@torch.no_grad()
def measure_glimpses(
    reducer: torch.nn.Module,
    stream: BatchStream,
    device: torch.device,
    max_images: int = GLIMPSE_MAX_IMAGES,
) -> dict[str, float] | None:
    """:func:`summarise_glimpses` over the first ``max_images`` test images, for a reducer
    that samples on a transform (``forward_with_theta``) and canvases with known boxes;
    None otherwise. With several windows (``θ`` ``(N, K, 2, 3)``) the first, most
    attended one is measured. Runs in evaluation mode and restores the reducer's mode."""
    if not hasattr(reducer, "forward_with_theta"):
        return None
    was_training = reducer.training
    reducer.eval()
    pairs: list[tuple[Tensor, Tensor]] = []
    seen = 0
    try:
        for batch in stream.batches(epoch=0, shuffle=False):
            if batch.boxes is None or seen >= max_images:
                break
            x = batch.x[: max_images - seen].to(device)
            _, theta = reducer.forward_with_theta(x)
            theta = theta[:, 0] if theta.ndim == 4 else theta
            pairs.append((theta.cpu(), batch.boxes[: len(x)].cpu()))
            seen += len(x)
    finally:
        reducer.train(was_training)
    input_hw = tuple(stream.input_shape[-2:])
    return summarise_glimpses(pairs, input_hw)  # type: ignore[arg-type]
