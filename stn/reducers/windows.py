"""Multi-scale candidate windows over a canvas, and their extraction at the output size.

A :class:`WindowGrid` lists every candidate window of an attention map: each side ``s`` of
``sizes`` (input pixels) at each cell of a ``rows × cols`` grid. Index ``i`` of the
flattened list is ``(scale, row, col)`` in that order (scale-major), the order of an
attention network's ``(S, rows, cols)`` logits flattened. The windows of one size are
spread evenly so that the first and last touch the canvas edges, on whole pixels::

    x0(col) = round(col · (W − s) / (cols − 1))        ((W − s) / 2 for a single column)

so every window lies inside the canvas, and no two of one size coincide unless the
grid has more cells than the canvas has room. A window of side ``s`` is reduced to
``(h, w)`` by the attention transform ``θ = [[s/W, 0, t_x], [0, s/H, t_y]]``
(``t = 2·centre/side − 1``) on :func:`stn.sampling.grid.grid_sample` with the run's
kernel, anti-aliased or not: at ``s / w`` input pixels per output pixel the sampler really
downsamples (128 → 48: 2.7×).

:class:`WindowSampler` samples a crop around each window rather than the whole canvas: the
crop holds every tap the kernel reads (its support widened by the sampling step when
anti-aliased), so the result equals sampling the canvas itself at a cost that does not
grow with it. Because window origins are whole pixels, every window of one size is the
*same* linear operator applied to its crop, so a weighted mix of windows equals the
reduction of the same mix of crops (:meth:`WindowSampler.mix`): the differentiable top-K
reduces K mixed crops per size instead of every window it mixes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from stn.reducers.base import ReducerConfigError
from stn.sampling.grid import affine_grid, grid_sample
from stn.sampling.kernels import Kernel, get_kernel

Size = tuple[int, int]


@dataclass(frozen=True)
class WindowGrid:
    """Every window side of ``sizes`` at every cell of a ``cells = (rows, cols)`` grid
    over a canvas of ``canvas = (H, W)`` pixels (see the module docstring)."""

    canvas: Size
    sizes: tuple[int, ...]
    cells: Size

    def __post_init__(self) -> None:
        height, width = self.canvas
        if not self.sizes:
            raise ReducerConfigError("window_sizes is empty: give at least one window side")
        if min(self.cells) < 1:
            raise ReducerConfigError(f"the window grid needs >= 1 cell per side, got {self.cells}")
        for size in self.sizes:
            if size < 1:
                raise ReducerConfigError(f"window sizes must be >= 1 pixel, got {size}")
            if size > min(height, width):
                raise ReducerConfigError(
                    f"window size {size} px is larger than the {height}×{width} canvas: "
                    f"a window must fit inside it. Use window_sizes of at most "
                    f"{min(height, width)} px for this dataset"
                )

    @property
    def positions(self) -> int:
        """Windows of one size: one per cell."""
        return self.cells[0] * self.cells[1]

    @property
    def count(self) -> int:
        """All candidate windows: sizes × cells."""
        return len(self.sizes) * self.positions

    def check_selectable(self, k: int) -> None:
        """A clear error unless ``k`` distinct windows can be chosen from the grid."""
        if not 1 <= k <= self.count:
            raise ReducerConfigError(
                f"cannot choose {k} windows per image: the grid offers {self.count} "
                f"({len(self.sizes)} sizes × {self.cells[0]}×{self.cells[1]} cells). "
                f"Use windows between 1 and {self.count}, or a larger view_size"
            )

    @staticmethod
    def _axis_origins(size: int, length: int, n: int) -> Tensor:
        if n == 1:
            return torch.tensor([(length - size) // 2])
        return torch.linspace(0, length - size, n, dtype=torch.float64).round().long()

    def origins(self) -> Tensor:
        """``(count, 2)`` long ``(x0, y0)``: each window's left-top pixel, index order."""
        height, width = self.canvas
        rows, cols = self.cells
        parts = []
        for size in self.sizes:
            y0 = self._axis_origins(size, height, rows).view(rows, 1).expand(rows, cols)
            x0 = self._axis_origins(size, width, cols).view(1, cols).expand(rows, cols)
            parts.append(torch.stack([x0, y0], -1).reshape(-1, 2))
        return torch.cat(parts)

    def sides(self) -> Tensor:
        """``(count,)`` long: each window's side in input pixels, index order."""
        return torch.tensor(self.sizes).repeat_interleave(self.positions)

    def scale_of(self, indices: Tensor) -> Tensor:
        """Which entry of ``sizes`` each window of ``indices`` has (same shape)."""
        return torch.div(indices, self.positions, rounding_mode="floor")

    def boxes(self, indices: Tensor) -> Tensor:
        """``(*, 4)`` float32 ``(x0, y0, x1, y1)`` input pixels of the windows ``indices``
        ``(*)`` (long, in ``[0, count)``)."""
        origin = self.origins().to(indices.device)[indices].float()
        side = self.sides().to(indices.device)[indices].float().unsqueeze(-1)
        return torch.cat([origin, origin + side], -1)

    def theta(self, indices: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """``(*, 2, 3)`` attention transforms that sample the windows ``indices`` from the
        whole canvas (``F.affine_grid`` convention, ``align_corners=False``)."""
        box = self.boxes(indices).to(torch.float64)
        side = box[..., 2] - box[..., 0]
        centre_x, centre_y = (box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2
        return attention_theta(side, centre_x, centre_y, self.canvas).to(dtype)


def attention_theta(side: Tensor, cx: Tensor, cy: Tensor, frame: Size) -> Tensor:
    """``(*, 2, 3)``: the square window of ``side`` pixels centred at ``(cx, cy)`` (pixel
    ``i`` spans ``[i, i + 1]``) of a frame of ``(H, W)`` pixels, as the affine map output →
    frame in normalised coordinates."""
    height, width = frame
    zero = torch.zeros_like(side)
    row_x = torch.stack([side / width, zero, 2 * cx / width - 1], -1)
    row_y = torch.stack([zero, side / height, 2 * cy / height - 1], -1)
    return torch.stack([row_x, row_y], -2)


def crop_margin(side: int, output_size: Size, kernel_radius: float, antialias: bool) -> int:
    """Pixels a crop must extend beyond a window of ``side`` px so that it holds every tap
    the kernel reads for an output of ``output_size`` (support × sampling step, + 1)."""
    step = max(1.0, side / min(output_size)) if antialias else 1.0
    return math.ceil(kernel_radius * step) + 1


class WindowSampler:
    """Cuts windows of a :class:`WindowGrid` from ``(N, C, H, W)`` canvases and reduces
    them to ``output_size`` with one kernel (``stn.sampling.grid.grid_sample``): equal to
    sampling the whole canvas with :meth:`WindowGrid.theta` (zeros padding,
    ``align_corners=False``), computed on crops."""

    def __init__(
        self,
        grid: WindowGrid,
        output_size: Size,
        kernel: str | Kernel = "bilinear",
        antialias: bool = True,
        kernel_params: dict[str, float] | None = None,
    ) -> None:
        self.grid = grid
        self.output_size = (int(output_size[0]), int(output_size[1]))
        # Built once: every batch and every window size samples with the same kernel.
        self.kernel = get_kernel(kernel, **dict(kernel_params or {}))
        self.antialias = bool(antialias)
        radius = self.kernel.radius
        self.margins = [crop_margin(s, self.output_size, radius, antialias) for s in grid.sizes]
        self.pad = max(self.margins)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[-2:]) != tuple(self.grid.canvas):
            raise ValueError(
                f"window sampling: expected (N, C, H, W) input of {self.grid.canvas} pixels "
                f"(the window grid's canvas), got {tuple(x.shape)}"
            )

    def _padded(self, x: Tensor) -> Tensor:
        p = self.pad  # zeros: what grid_sample reads off the canvas
        return F.pad(x, (p, p, p, p))

    def _crops(self, padded: Tensor, scale: int, image: Tensor, window: Tensor) -> Tensor:
        """``(J, C, span, span)``: the crops of windows ``window`` (all of size
        ``sizes[scale]``) of images ``image``, ``span = side + 2·margin``."""
        side, margin = self.grid.sizes[scale], self.margins[scale]
        span = side + 2 * margin
        origin = self.grid.origins().to(padded.device)[window] + (self.pad - margin)
        steps = torch.arange(span, device=padded.device)
        rows = (origin[:, 1:] + steps).view(-1, span, 1)
        cols = (origin[:, :1] + steps).view(-1, 1, span)
        return padded[image.view(-1, 1, 1), :, rows, cols].permute(0, 3, 1, 2)

    def _reduce(self, crops: Tensor, scale: int) -> Tensor:
        """``(J, C, span, span) → (J, C, h, w)``: the window centred in each crop."""
        side = self.grid.sizes[scale]
        span = crops.shape[-1]
        j = crops.shape[0]
        centre = crops.new_full((j,), span / 2)
        theta = attention_theta(crops.new_full((j,), float(side)), centre, centre, (span, span))
        sample_grid = affine_grid(theta, self.output_size)
        return grid_sample(crops, sample_grid, self.kernel, self.antialias)

    def extract(self, x: Tensor, image: Tensor, window: Tensor) -> Tensor:
        """``(J, C, h, w)``: window ``window[j]`` of image ``image[j]`` (both ``(J,)``
        long), reduced to the output size."""
        self._check(x)
        if image.shape != window.shape or image.dim() != 1:
            raise ValueError(
                f"window sampling: image and window must be (J,) each, got "
                f"{tuple(image.shape)} and {tuple(window.shape)}"
            )
        out = x.new_zeros(len(window), x.shape[1], *self.output_size)
        padded = self._padded(x)
        scale_of = self.grid.scale_of(window)
        for scale in range(len(self.grid.sizes)):
            chosen = (scale_of == scale).nonzero().squeeze(1)
            if len(chosen):
                crops = self._crops(padded, scale, image[chosen], window[chosen])
                out[chosen] = self._reduce(crops, scale)
        return out

    def extract_selected(self, x: Tensor, indices: Tensor) -> Tensor:
        """``(N, K, C, h, w)``: the windows ``indices`` ``(N, K)`` of each image of ``x``."""
        n, k = indices.shape
        image = torch.arange(n, device=x.device).repeat_interleave(k)
        out = self.extract(x, image, indices.reshape(-1))
        return out.view(n, k, *out.shape[1:])

    def mix(self, x: Tensor, weights: Tensor) -> Tensor:
        """``(N, K, C, h, w)``: ``Σ_p weights[n, k, p] · window_p(x[n])``, differentiable
        w.r.t. ``weights`` ``(N, K, P)`` (P = the grid's count).

        Computed as the reduction of the same mix of crops, one size at a time (the
        reduction is linear and the same for every window of a size); only windows with a
        non-zero weight are cut and only (image, slot, size) with some weight reduced.
        """
        self._check(x)
        n, k, count = weights.shape
        if count != self.grid.count:
            raise ValueError(
                f"window sampling: weights over {count} windows, the grid has {self.grid.count}"
            )
        padded = self._padded(x)
        out = x.new_zeros(n, k, x.shape[1], *self.output_size)
        per_size = self.grid.positions
        for scale in range(len(self.grid.sizes)):
            w = weights[:, :, scale * per_size : (scale + 1) * per_size]  # (N, K, positions)
            used = w.detach().ne(0).any(1)  # (N, positions)
            width = int(used.sum(1).max())
            if width == 0:
                continue
            support = used.to(torch.uint8).topk(width, dim=1).indices  # used ones first
            image, slot = used.gather(1, support).nonzero(as_tuple=True)
            crops = self._crops(padded, scale, image, support[image, slot] + scale * per_size)
            table = crops.new_zeros(n, width, crops[0].numel())
            table[image, slot] = crops.flatten(1)
            # Slots of the support nobody uses hold zeros, and their weights are zero.
            mixed = torch.bmm(w.gather(2, support.unsqueeze(1).expand(-1, k, -1)), table)
            active_n, active_k = w.detach().ne(0).any(2).nonzero(as_tuple=True)
            reduced = self._reduce(mixed[active_n, active_k].view(-1, *crops.shape[1:]), scale)
            out = out.index_put((active_n, active_k), reduced, accumulate=True)
        return out


def grid_cells(view_size: int, stages: int) -> int:
    """Cells per side of an attention map computed on a ``view_size`` view by ``stages``
    2× poolings, or a clear error when the view does not divide."""
    multiple = 2**stages
    if view_size < multiple or view_size % multiple:
        nearest = max(multiple, view_size // multiple * multiple)
        raise ReducerConfigError(
            f"view_size {view_size} must be a multiple of 2**{stages} = {multiple} "
            f"(one 2× pooling per attention stage), e.g. {nearest}"
        )
    return view_size // multiple


def low_resolution_view(x: Tensor, view_size: int) -> Tensor:
    """``(N, C, v, v)``: ``x`` resized to ``view_size`` with anti-aliasing (bilinear)."""
    if tuple(x.shape[-2:]) == (view_size, view_size):
        return x
    return F.interpolate(
        x, size=(view_size, view_size), mode="bilinear", align_corners=False, antialias=True
    )
