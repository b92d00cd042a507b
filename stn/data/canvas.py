"""Cluttered large canvases, in the spirit of the STN paper's cluttered MNIST.

Each canvas holds one object (a base image scaled to a random size at a random
position) and clutter fragments cut from *other* images of the same split. Everything
is drawn from ``(seed, index, epoch)``, so a canvas is the same whenever it is
rendered; nothing is stored, and a batch is rendered with tensor ops when needed, so a
276×276 set never needs gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class CanvasSpec:
    """How to build a canvas.

    Attributes:
        size: canvas side H = W in pixels.
        object_size: (min, max) side of the placed object in pixels, drawn uniformly
            (integers, inclusive). Ignored when ``object_scale`` is given.
        object_scale: (min, max) side of the object as a fraction of the canvas side.
        clutter: number of clutter fragments per canvas.
        clutter_size: side of each square fragment in pixels, cut at the base image's
            own resolution.
        jitter: how far the object may stray from the centre, as a fraction of the free
            space: 1 places it anywhere on the canvas, 0 always in the centre.
    """

    size: int
    object_size: tuple[int, int] = (28, 28)
    object_scale: tuple[float, float] | None = None
    clutter: int = 0
    clutter_size: int = 8
    jitter: float = 1.0

    def object_size_range(self) -> tuple[int, int]:
        if self.object_scale is not None:
            lo, hi = self.object_scale
            return max(1, round(lo * self.size)), max(1, round(hi * self.size))
        return int(self.object_size[0]), int(self.object_size[1])

    def validate(self, base_size: tuple[int, int]) -> None:
        lo, hi = self.object_size_range()
        if not 1 <= lo <= hi:
            raise ValueError(f"object size range ({lo}, {hi}) must satisfy 1 <= min <= max")
        if hi > self.size:
            raise ValueError(
                f"objects up to {hi} px do not fit a {self.size} px canvas; "
                "lower dataset.object_size / object_scale or raise dataset.canvas_size"
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must lie in [0, 1], got {self.jitter}")
        if self.clutter < 0:
            raise ValueError(f"clutter must be >= 0, got {self.clutter}")
        if self.clutter and not 1 <= self.clutter_size <= min(base_size):
            raise ValueError(
                f"clutter_size {self.clutter_size} must lie in [1, {min(base_size)}] "
                f"(fragments are cut from {base_size[0]}×{base_size[1]} base images)"
            )


@dataclass(frozen=True)
class Placement:
    """The random draws behind one batch of canvases (all arrays have length B or B·K)."""

    object_side: np.ndarray  # (B,)
    object_xy: np.ndarray  # (B, 2) top-left x, y
    clutter_source: np.ndarray  # (B, K) indices into the base set
    clutter_crop_xy: np.ndarray  # (B, K, 2) top-left of the crop inside the base image
    clutter_xy: np.ndarray  # (B, K, 2) top-left on the canvas


def draw_placements(
    spec: CanvasSpec,
    indices: np.ndarray,
    n_base: int,
    base_size: tuple[int, int],
    seed: int,
    epoch: int = 0,
) -> Placement:
    """Random draws for the canvases of base images ``indices``.

    Each canvas has its own generator seeded by ``(seed, index, epoch)``, so a canvas does
    not depend on the batch it is rendered in. Every generator makes a single call for
    all of its uniforms; the arithmetic that turns them into placements runs over the
    whole batch at once.
    """
    lo, hi = spec.object_size_range()
    k, p = spec.clutter, spec.clutter_size
    bh, bw = base_size
    indices = np.asarray(indices, dtype=np.int64)
    b = len(indices)
    # Per canvas: side, offset x, offset y, then k × (source, crop x, crop y, spot x, spot y).
    u = np.stack(
        [np.random.default_rng([seed, int(i), epoch]).random(3 + 5 * k) for i in indices]
    ).reshape(b, 3 + 5 * k)

    def uniform_int(v: np.ndarray, low: int, high: int) -> np.ndarray:
        """Integers in [low, high] from uniforms in [0, 1)."""
        return low + np.minimum((v * (high - low + 1)).astype(np.int64), high - low)

    sides = uniform_int(u[:, 0], lo, hi)
    free = spec.size - sides
    offset = (2.0 * u[:, 1:3] - 1.0) * spec.jitter * free[:, None] / 2
    xy = np.clip(np.rint(free[:, None] / 2 + offset), 0, free[:, None]).astype(np.int64)
    draws = u[:, 3:].reshape(b, k, 5)
    # Clutter comes from other images: draw from n_base - 1 and skip over our own.
    src = uniform_int(draws[..., 0], 0, max(n_base - 2, 0))
    if n_base > 1:
        src = np.where(src >= indices[:, None], src + 1, src)
    # Crops keep clear of the border, where base images such as digits are blank.
    margin_y, margin_x = min(bh // 7, (bh - p) // 2), min(bw // 7, (bw - p) // 2)
    crops = np.stack(
        [
            uniform_int(draws[..., 1], margin_x, bw - p - margin_x),
            uniform_int(draws[..., 2], margin_y, bh - p - margin_y),
        ],
        axis=-1,
    )
    spots = uniform_int(draws[..., 3:5], 0, spec.size - p)
    return Placement(
        object_side=sides,
        object_xy=xy,
        clutter_source=src,
        clutter_crop_xy=crops,
        clutter_xy=spots,
    )


def paste_max(canvas: Tensor, patches: Tensor, batch: Tensor, xy: Tensor) -> None:
    """Paste square patches into ``canvas`` in place, keeping the brighter pixel.

    Pixels of a patch that fall outside the canvas are dropped.

    Args:
        canvas: ``(B, C, H, W)``.
        patches: ``(M, C, p, p)``.
        batch: ``(M,)`` canvas index of each patch.
        xy: ``(M, 2)`` top-left (x, y) of each patch.
    """
    if patches.numel() == 0:
        return
    _, c, h, w = canvas.shape
    p = patches.shape[-1]
    offs = torch.arange(p)
    rows = (xy[:, 1, None] + offs)[:, None, :, None]  # (M, 1, p, 1)
    cols = (xy[:, 0, None] + offs)[:, None, None, :]  # (M, 1, 1, p)
    chan = torch.arange(c)[None, :, None, None]
    flat = ((batch[:, None, None, None] * c + chan) * h + rows) * w + cols  # (M, C, p, p)
    values = patches
    inside = (rows < h) & (cols < w)
    if not bool(inside.all()):
        inside = inside.expand_as(flat)
        flat, values = flat[inside], patches[inside]
    canvas.view(-1).scatter_reduce_(0, flat.reshape(-1), values.reshape(-1), reduce="amax")


def render_canvases(
    base_images: np.ndarray, indices: np.ndarray, spec: CanvasSpec, seed: int, epoch: int = 0
) -> tuple[Tensor, Tensor]:
    """Render the canvases of ``indices``.

    Args:
        base_images: uint8 ``(N, C, h, w)`` of one split; clutter is cut from these.
        indices: ``(B,)`` which base image each canvas shows.
        spec: canvas layout.
        seed, epoch: with the index, fix every random draw.

    Returns:
        canvases ``(B, C, size, size)`` float32 in [0, 1] and boxes ``(B, 4)`` float32
        ``(x0, y0, x1, y1)`` of the object in canvas pixels (x1, y1 exclusive).
    """
    indices = np.asarray(indices, dtype=np.int64)
    n, c, bh, bw = base_images.shape
    spec.validate((bh, bw))
    draws = draw_placements(spec, indices, n, (bh, bw), seed, epoch)
    b, size = len(indices), spec.size
    _, hi = spec.object_size_range()
    canvas = torch.zeros(b, c, size, size)

    clutter_src = torch.from_numpy(draws.clutter_source.reshape(-1))
    if spec.clutter:
        p = spec.clutter_size
        crop = draws.clutter_crop_xy.reshape(-1, 2)
        offs = np.arange(p)
        fragments = base_images[
            clutter_src.numpy()[:, None, None, None],
            np.arange(c)[None, :, None, None],
            (crop[:, 1, None] + offs)[:, None, :, None],
            (crop[:, 0, None] + offs)[:, None, None, :],
        ]  # (B·K, C, p, p)
        fragments = torch.from_numpy(fragments).float() / 255.0
        owners = torch.arange(b).repeat_interleave(spec.clutter)
        paste_max(canvas, fragments, owners, torch.from_numpy(draws.clutter_xy.reshape(-1, 2)))

    objects = torch.from_numpy(base_images[indices]).float() / 255.0
    sides = draws.object_side
    patches = torch.zeros(b, c, hi, hi)
    for side in np.unique(sides):
        members = np.flatnonzero(sides == side)
        # Anti-aliased resize: a shrunken object keeps its strokes instead of aliasing away.
        patches[members, :, :side, :side] = F.interpolate(
            objects[members],
            size=(int(side), int(side)),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        ).clamp_(0.0, 1.0)
    xy = torch.from_numpy(draws.object_xy)
    paste_max(canvas, patches, torch.arange(b), xy)

    boxes = torch.cat([xy, xy + torch.from_numpy(sides)[:, None]], dim=1).float()
    return canvas, boxes
