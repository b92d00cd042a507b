"""Grid sampling with any separable kernel, optionally anti-aliased, differentiable.

``grid_sample`` has the call shape and coordinate conventions of ``F.grid_sample`` and adds
kernels PyTorch lacks (Lanczos, Gaussian, box, Pillow's bicubic) and anti-aliasing: the
kernel is stretched by the local sampling step, as Pillow does for resizing, generalised to
any grid. ``sample_axis_aligned`` is the separable fast path for scale + translation
transforms (the STN "attention" family); ``affine_grid`` builds grids without
``F.affine_grid``'s overhead.

Coordinates: a grid value ``g`` in ``[-1, 1]`` maps to the input pixel index
``x = (g + 1) / 2 · (W − 1)`` with ``align_corners=True`` and ``x = ((g + 1) · W − 1) / 2``
otherwise, exactly as ``F.grid_sample``. Output = ``Σ_n Σ_m U[n, m] · w_y(n) · w_x(m)`` with
``w_x(m) = k((x − m) / s_x)`` (``s_x = 1`` without anti-aliasing) over the taps in the
kernel's support.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from stn.sampling import native
from stn.sampling.kernels import Kernel, get_kernel, support_taps

PADDING_MODES = ("zeros", "border")
# "auto": F.grid_sample where it has the kernel, else the compiled sampler where it runs
# (CPU, float32/64, stn/sampling/native.py), else the torch path; the others force one path.
BACKENDS = ("auto", "native", "torch")

# Taps gathered per step of the general path: bounds its working memory (2**17 float32 =
# 512 KiB, cache-sized) whatever the batch size and window; chunks split the flattened
# (image, sample) axis, so even one image with a huge anti-aliasing window is bounded.
# Larger chunks measured slower here: fresh large buffers page-fault on every call.
_CHUNK_ELEMENTS = 1 << 17
# Samples × taps per step of the per-axis weights: bounds the window function's
# temporaries; smaller steps measured slower here (per-op overhead), larger no faster.
_WEIGHT_CHUNK_ELEMENTS = 1 << 16


# Anti-aliased sampling refuses a grid that spans more than this many times the input: a
# zoom-out that far shows nothing a network can read, and its windows (cost ∝ step²) would
# let a diverged transformer crawl through an epoch instead of failing.
GRID_SPAN_LIMIT = 4


def step_bound(input_hw: tuple[int, int], output_hw: tuple[int, int]) -> float:
    """The largest anti-aliased sampling step allowed, in input pixels: that of a grid of
    ``output_hw`` spanning ``GRID_SPAN_LIMIT`` times the input's larger side."""
    return GRID_SPAN_LIMIT * max(input_hw) / min(output_hw)


class SamplingStepError(ValueError):
    """An anti-aliased grid steps beyond :func:`step_bound` (see :func:`grid_sample`).

    ``step`` (input pixels), ``bound`` (the largest step allowed) and ``axis`` (``"x"`` or
    ``"y"``) let a caller word its own message.
    """

    def __init__(self, message: str, step: float, bound: float, axis: str) -> None:
        super().__init__(message)
        self.step, self.bound, self.axis = step, bound, axis


# --------------------------------------------------------------------------- validation


def _check_input(fn: str, input: Tensor) -> None:
    if not isinstance(input, Tensor) or input.dim() != 4:
        shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"{fn}: expected input of shape (N, C, H, W), got {shape}")
    if not input.is_floating_point():
        raise TypeError(f"{fn}: expected a floating-point input, got {input.dtype}")
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f"{fn}: input has an empty spatial size {tuple(input.shape[2:])}")


def _check_padding(fn: str, padding_mode: str) -> None:
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{fn}: unsupported padding_mode {padding_mode!r}; expected one of {PADDING_MODES}"
        )


def _check_grid(input: Tensor, grid: Tensor) -> None:
    if not isinstance(grid, Tensor) or grid.dim() != 4 or grid.shape[-1] != 2:
        shape = tuple(grid.shape) if isinstance(grid, Tensor) else type(grid).__name__
        raise ValueError(f"grid_sample: expected grid of shape (N, H_out, W_out, 2), got {shape}")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(
            f"grid_sample: grid batch size {grid.shape[0]} != input batch size {input.shape[0]}"
        )
    if grid.dtype != input.dtype:
        raise TypeError(
            f"grid_sample: grid dtype {grid.dtype} != input dtype {input.dtype}; "
            "expected both the same floating-point dtype"
        )
    if grid.device != input.device:
        raise ValueError(f"grid_sample: grid on {grid.device}, input on {input.device}")


def _output_hw(fn: str, output_size: Sequence[int], batch: int | None = None) -> tuple[int, int]:
    size = tuple(int(s) for s in output_size)
    if len(size) == 4:
        if batch is not None and size[0] != batch:
            raise ValueError(f"{fn}: output_size batch {size[0]} != batch size {batch}")
        size = size[2:]
    if len(size) != 2 or min(size) < 1:
        raise ValueError(
            f"{fn}: expected output_size (H_out, W_out) or (N, C, H_out, W_out) with positive "
            f"sizes, got {tuple(output_size)}"
        )
    return size[0], size[1]


# --------------------------------------------------------------------------- coordinates


def _unnormalize(g: Tensor, size: int, align_corners: bool) -> Tensor:
    """Normalised coordinate in [-1, 1] → input pixel index (F.grid_sample's convention)."""
    if align_corners:
        return (g + 1) * ((size - 1) / 2)
    return ((g + 1) * size - 1) / 2


def _base_coords(n: int, align_corners: bool, like: Tensor) -> Tensor:
    """Normalised output coordinates, as F.affine_grid's ``linspace_from_neg_one``."""
    if n <= 1:
        return torch.zeros(n, dtype=like.dtype, device=like.device)
    base = torch.linspace(-1, 1, n, dtype=like.dtype, device=like.device)
    return base if align_corners else base * ((n - 1) / n)


def _finite_difference(t: Tensor, dim: int) -> Tensor:
    """Derivative along ``dim`` per unit index: central inside, one-sided at the ends.

    A length-1 axis has no neighbours; it reports zero (no stretch), which leaves the
    kernel at its native width.
    """
    n = t.shape[dim]
    if n == 1:
        return torch.zeros_like(t)
    first = t.narrow(dim, 1, 1) - t.narrow(dim, 0, 1)
    if n == 2:
        return torch.cat([first, first], dim)
    last = t.narrow(dim, n - 1, 1) - t.narrow(dim, n - 2, 1)
    inner = (t.narrow(dim, 2, n - 2) - t.narrow(dim, 0, n - 2)) / 2
    return torch.cat([first, inner, last], dim)


def _stretch(step_sq: Tensor) -> Tensor:
    """``s = max(1, step)`` from the squared step; clamping first keeps sqrt's gradient finite."""
    return step_sq.clamp(min=1).sqrt()


def _window_taps(fn: str, what: str, kern: Kernel, stretch: Tensor, axis: str, bound: float) -> int:
    """Window length ``T`` of anti-aliased sampling along one input axis, or a clear error.

    The window is sized by the largest stretch ``s`` ``(*)`` in the batch, so one sample's
    step sizes the working memory of all: a step beyond ``bound`` input pixels
    (:func:`step_bound`: the grid would span more than ``GRID_SPAN_LIMIT`` times the
    input) is refused before anything of size samples × window is allocated. A diverged
    spatial transformer produced such steps (10⁷ px: a 195 GB request for one batch).
    """
    widest = float(stretch.detach().max())
    if not math.isfinite(widest):
        raise ValueError(
            f"{fn}: antialias=True sizes each window from the grid's spacing, "
            f"but {what} holds NaN or infinite values; pass a finite {what.removeprefix('the ')}"
        )
    if widest > bound:
        raise SamplingStepError(
            f"{fn}: the sampling step along input {axis} reaches {widest:.3g} px, beyond the "
            f"bound of {bound:.3g} px (a grid spanning {GRID_SPAN_LIMIT}× the input's larger "
            f"side), and antialias=True would widen every window of the batch to "
            f"{support_taps(kern.radius * widest):.3g} taps. Pass a grid that zooms out less",
            widest,
            bound,
            axis,
        )
    return support_taps(kern.radius * widest)


# --------------------------------------------------------------------------- per-axis weights


def _window(pos: Tensor, stretch: Tensor | None, taps: int, kern: Kernel) -> tuple[Tensor, Tensor]:
    """First tap index and normalised weights of each sample's window along one axis.

    Args:
        pos: ``(*)`` sample positions in input pixels.
        stretch: ``(*)`` kernel stretch ``s >= 1`` (anti-aliasing) or ``None`` (``s = 1``).
        taps: window length ``T``; must cover ``(pos − radius·s, pos + radius·s]``.

    Returns:
        ``start`` ``(*)`` int64 (unbounded: may lie outside the input) and ``w`` ``(*, T)``,
        the weights of taps ``start, …, start + T − 1``.
    """
    radius = kern.radius if stretch is None else kern.radius * stretch.detach()
    # The window start is piecewise constant in pos: it carries no gradient. Where it jumps,
    # the tap entering or leaving sits at the support edge with weight 0 (or a kink).
    start = torch.floor(pos.detach() - radius) + 1
    offsets = torch.arange(taps, dtype=pos.dtype, device=pos.device)
    # Normalising is Pillow's rule for stretched kernels and makes Lanczos and Gaussian
    # partitions of unity; for nearest/bilinear/bicubic the sum is already exactly 1.
    # The sum runs over the whole window, before padding, so "zeros" means sampling an
    # image extended by zeros (as F.grid_sample), not renormalising at the border (as Pillow).
    # Unstretched partition-of-unity kernels already sum to 1: skip a sum and a division
    # per tap, forward and backward (they were a large share of the bicubic cost).
    normalize = stretch is not None or not kern.partition_of_unity
    if kern.deriv is not None:
        w = _WindowWeights.apply(pos, stretch, start, offsets, kern, normalize)
        return start.long(), w
    d = pos.unsqueeze(-1) - (start.unsqueeze(-1) + offsets)
    if stretch is not None:
        d = d / stretch.unsqueeze(-1)
    w = kern.fn(d)
    return start.long(), w / w.sum(-1, keepdim=True) if normalize else w


class _WindowWeights(torch.autograd.Function):
    """Normalised ``k((pos − start − t) / s)`` over taps ``t``, with an analytic backward.

    Same values as the autograd version in :func:`_window`, but one pass forward and a few
    backward instead of an autograd graph of a dozen elementwise ops per tap, which
    dominated the Lanczos profile. Unstretched windows of kernels with a ``window`` are
    evaluated from one offset per sample, derivatives included.
    """

    @staticmethod
    def forward(ctx, pos, stretch, start, offsets, kern, normalize):  # type: ignore[override]
        taps = offsets.shape[0]
        shape = (*pos.shape, taps)
        pos, start = pos.reshape(-1), start.reshape(-1)
        windowed = stretch is None and kern.window is not None
        s = None if stretch is None else stretch.reshape(-1, 1)
        wn = pos.new_empty(pos.shape[0], taps)
        u = dw = None
        if windowed:
            dw = torch.empty_like(wn)
        else:
            u = torch.empty_like(wn)
        total = pos.new_empty(pos.shape[0], 1) if normalize else None
        # Chunks bound the memory of a window function's dozens of temporaries.
        for sl in _chunks(pos.shape[0], taps, _WEIGHT_CHUNK_ELEMENTS):
            if windowed:
                w, dw[sl] = kern.window(pos[sl] - start[sl])
            else:
                ui = pos[sl].unsqueeze(-1) - (start[sl].unsqueeze(-1) + offsets)
                if s is not None:
                    ui = ui / s[sl]
                u[sl] = ui
                w = kern.fn(ui)
            if normalize:
                total[sl] = w.sum(-1, keepdim=True)
                w = w / total[sl]
            wn[sl] = w
        ctx.save_for_backward(u, wn, total, s, dw)
        ctx.kern, ctx.shape = kern, shape
        return wn.view(shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        u, wn, total, s, dw = ctx.saved_tensors
        grad = grad.reshape(wn.shape)
        shape = ctx.shape[:-1]
        if total is not None:
            # Through the normalisation: d(w_t / Σw) / dw_u = (δ_tu − wn_t) / Σw.
            grad = (grad - (grad * wn).sum(-1, keepdim=True)) / total
        if dw is not None:
            return (grad * dw).sum(-1).view(shape), None, None, None, None, None
        grad_u = grad * ctx.kern.deriv(u)
        if s is None:
            return grad_u.sum(-1).view(shape), None, None, None, None, None
        grad_pos = (grad_u / s).sum(-1).view(shape)
        grad_stretch = None
        if ctx.needs_input_grad[1]:
            grad_stretch = -(grad_u * u / s).sum(-1).view(shape)
        return grad_pos, grad_stretch, None, None, None, None


# --------------------------------------------------------------------------- general path


def _fit_window(start: Tensor, w: Tensor, size: int, padding_mode: str) -> tuple[Tensor, Tensor]:
    """Move each window inside ``[0, size)`` and fold its outside taps' weights onto it.

    Args:
        start: ``(*)`` int64 first tap of each window, unbounded.
        w: ``(*, T)`` weights of taps ``start, …, start + T − 1``; needs ``T <= size``.

    Returns:
        ``start`` clamped to ``[0, size − T]`` and the weights of the moved window: outside
        taps are dropped (``"zeros"``) or added to the edge pixel they replicate
        (``"border"``). Equal to sampling the padded image, without copying it.
    """
    taps = w.shape[-1]
    inside = start.clamp(0, size - taps)
    if torch.equal(inside, start):
        return start, w
    idx = start.unsqueeze(-1) + torch.arange(taps, device=start.device)
    if padding_mode == "zeros":
        w = w * ((idx >= 0) & (idx < size)).to(w.dtype)
    slot = idx.clamp(0, size - 1) - inside.unsqueeze(-1)
    return inside, torch.zeros_like(w).scatter_add(-1, slot, w)


class _TapSum(torch.autograd.Function):
    """``out[m, c] = Σ_ab wy[m, a] · wx[m, b] · input[n(m), c, y0[m] + a, x0[m] + b]``.

    ``rows`` ``(M,)`` holds each sample's flat index of its window's first tap in channel 0
    of its image; every window lies inside the input (see :func:`_fit_window`). Samples run
    in chunks of ``_CHUNK_ELEMENTS`` taps with a flat int64 index per chunk, so memory
    stays at one chunk whatever the batch size and window; backward re-gathers the taps
    rather than saving them. The weights' gradients continue through autograd to the grid.
    """

    @staticmethod
    def forward(ctx, input: Tensor, rows: Tensor, wy: Tensor, wx: Tensor) -> Tensor:
        c = input.shape[1]
        (m, ty), tx = wy.shape, wx.shape[1]
        flat = input.reshape(-1)
        offsets = _tap_offsets(input, ty, tx)
        out = input.new_empty(m, c)
        for sl in _chunks(m, c * ty * tx):
            k = rows[sl].shape[0]
            index = (rows[sl].unsqueeze(-1) + offsets).view(-1)
            vals = flat.index_select(0, index).view(k, c * ty, tx)
            across = torch.bmm(vals, wx[sl].unsqueeze(-1)).view(k, c, ty)
            out[sl] = torch.bmm(across, wy[sl].unsqueeze(-1)).view(k, c)
        ctx.save_for_backward(input, rows, wy, wx)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        input, rows, wy, wx = ctx.saved_tensors
        c = input.shape[1]
        (m, ty), tx = wy.shape, wx.shape[1]
        need_input, _, need_wy, need_wx = ctx.needs_input_grad
        flat = input.reshape(-1)
        offsets = _tap_offsets(input, ty, tx)
        grad_input = torch.zeros_like(flat) if need_input else None
        grad_wy = torch.empty_like(wy) if need_wy else None
        grad_wx = torch.empty_like(wx) if need_wx else None
        for sl in _chunks(m, c * ty * tx):
            g = grad_out[sl].unsqueeze(1)  # (k, 1, C)
            k = g.shape[0]
            index = (rows[sl].unsqueeze(-1) + offsets).view(-1)
            # Gradient of each window row's value: (k, C·Ty, 1).
            g_rows = (g.transpose(1, 2) * wy[sl].unsqueeze(1)).reshape(k, c * ty, 1)
            if need_wy or need_wx:
                vals = flat.index_select(0, index).view(k, c * ty, tx)
                if need_wy:
                    across = torch.bmm(vals, wx[sl].unsqueeze(-1)).view(k, c, ty)
                    grad_wy[sl] = torch.bmm(g, across).view(k, ty)
                if need_wx:
                    grad_wx[sl] = torch.bmm(g_rows.transpose(1, 2), vals).view(k, tx)
            if need_input:
                grad_input.index_add_(0, index, (g_rows * wx[sl].unsqueeze(1)).reshape(-1))
        if grad_input is not None:
            grad_input = grad_input.view(input.shape)
        return grad_input, None, grad_wy, grad_wx


def _chunks(total: int, per_item: int, elements: int | None = None) -> list[slice]:
    """Slices of ``range(total)`` of about ``elements`` (default ``_CHUNK_ELEMENTS``) each."""
    step = max(1, (elements or _CHUNK_ELEMENTS) // max(per_item, 1))
    return [slice(i, i + step) for i in range(0, total, step)]


def _tap_offsets(input: Tensor, ty: int, tx: int) -> Tensor:
    """Flat offsets ``(C·Ty·Tx,)`` of a window's taps from its first tap in channel 0."""
    c, h, w = input.shape[1:]
    channel = torch.arange(c, device=input.device).view(c, 1, 1) * (h * w)
    line = torch.arange(ty, device=input.device).view(1, ty, 1) * w
    return (channel + line + torch.arange(tx, device=input.device)).view(-1)


def grid_sample_general(
    input: Tensor,
    grid: Tensor,
    kern: Kernel,
    antialias: bool,
    padding_mode: str,
    align_corners: bool,
    sampler: native.NativeSampler | None = None,
) -> Tensor:
    """Vectorised separable sampler for any kernel; see :func:`grid_sample`, which calls it
    with a checked input and grid wherever it does not delegate to ``F.grid_sample``.

    ``sampler``: the compiled sampler (:func:`stn.sampling.native.native_sampler`) to run the
    windows with, or ``None`` for the torch path. Both compute the same weights.
    """
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]
    x = _unnormalize(grid[..., 0], w, align_corners)  # (N, Ho, Wo) input pixels
    y = _unnormalize(grid[..., 1], h, align_corners)
    sx = sy = None
    tx = ty = support_taps(kern.radius)
    if antialias:
        # Each input axis is stretched by how far one output step moves along it, combining
        # both output directions (the Jacobian row's norm): for an axis-aligned grid this is
        # the plain downscale factor, and it is invariant under rotation of the output grid.
        sx = _stretch(_finite_difference(x, 2) ** 2 + _finite_difference(x, 1) ** 2)
        sy = _stretch(_finite_difference(y, 2) ** 2 + _finite_difference(y, 1) ** 2)
        bound = step_bound((h, w), (ho, wo))
        tx = _window_taps("grid_sample", "the grid", kern, sx, "x", bound)
        ty = _window_taps("grid_sample", "the grid", kern, sy, "y", bound)
    if sampler is not None:
        normalize = antialias or not kern.partition_of_unity  # as _window's rule
        spec = native.make_spec(kern.formula, kern.radius, (tx, ty), normalize, padding_mode)
        flat = [None if t is None else t.reshape(n, -1) for t in (x, y, sx, sy)]
        return native.NativeSample.apply(input, *flat, spec, sampler).view(n, c, ho, wo)
    # Windows are moved inside the image rather than the image padded (a full copy, forward
    # and backward); only an image smaller than the window is padded, by a window each side.
    px, py = (tx if w < tx else 0), (ty if h < ty else 0)
    if px or py:
        mode = "constant" if padding_mode == "zeros" else "replicate"
        input = F.pad(input, (px, px, py, py), mode=mode)
        x, y = x + px, y + py
    x0, wx = _window(x, sx, tx, kern)
    y0, wy = _window(y, sy, ty, kern)
    x0, wx = _fit_window(x0, wx, w + 2 * px, padding_mode)
    y0, wy = _fit_window(y0, wy, h + 2 * py, padding_mode)
    image = torch.arange(n, device=input.device).view(n, 1, 1) * input[0].numel()
    rows = (image + y0 * (w + 2 * px) + x0).view(-1)
    out = _TapSum.apply(input.contiguous(), rows, wy.reshape(-1, ty), wx.reshape(-1, tx))
    return out.view(n, ho, wo, c).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------- public API


def grid_sample(
    input: Tensor,
    grid: Tensor,
    kernel: str | Kernel = "bilinear",
    antialias: bool = False,
    padding_mode: str = "zeros",
    align_corners: bool = False,
    backend: str = "auto",
    **kernel_params: float,
) -> Tensor:
    r"""Sample ``input`` at ``grid`` with any separable kernel, optionally anti-aliased.

    Same call shape and coordinates as :func:`torch.nn.functional.grid_sample` (4-D case):
    ``grid[n, h, w]`` holds ``(x, y)`` normalised to ``[-1, 1]``, x first; ``(-1, -1)`` is
    the left-top pixel (its centre with ``align_corners=True``, its outer corner otherwise).

    Each output is ``Σ_n Σ_m U[n, m] · w_y(n) · w_x(m)`` with ``w_x(m) ∝ k((x − m) / s_x)``
    normalised over the kernel's window (the STN paper's eq. 3 with separable ``k``).

    Args:
        input: ``(N, C, H_in, W_in)`` floating point.
        grid: ``(N, H_out, W_out, 2)``, same dtype and device as ``input``.
        kernel: a name from :func:`stn.sampling.kernels.kernel_names` (``nearest``, ``bilinear``,
            ``bicubic`` (a = −0.75, PyTorch/OpenCV), ``bicubic_pil`` (a = −0.5, Pillow),
            ``lanczos2``, ``lanczos3``, ``gaussian``, ``box``) or a built
            :class:`stn.sampling.kernels.Kernel`.
        antialias: stretch the kernel along each input axis by the local sampling step
            ``s = max(1, step)`` in input pixels, where ``step`` is the norm of how far one
            output step (along output x and y, by finite differences of the grid) moves
            along that input axis. For an affine grid ``s`` is constant per image; for a
            pure axis-aligned downscale it is the downscale factor, as Pillow and
            ``F.interpolate(antialias=True)``. Upsampling is unaffected (``s = 1``).
        padding_mode: ``"zeros"`` (taps outside the input read 0) or ``"border"`` (they read
            the nearest edge pixel). ``"reflection"`` is not supported.
        align_corners: as in :func:`torch.nn.functional.grid_sample`.
        backend: ``"auto"`` (default): ``F.grid_sample`` for the kernels it has without
            anti-aliasing, else the compiled sampler (:mod:`stn.sampling.native`; CPU float32/64)
            where it could be built, else the torch path. ``"native"`` or ``"torch"``
            force that general path (``"native"`` fails with the reason where it cannot
            run).
        **kernel_params: parameters of parametrised kernels, e.g. ``sigma=0.5`` for
            ``gaussian``.

    Returns:
        ``(N, C, H_out, W_out)``, differentiable w.r.t. ``input`` and ``grid``.

    .. note::
        Under ``backend="auto"``, a kernel that ``F.grid_sample`` computes (its
        :attr:`~stn.sampling.kernels.Kernel.grid_sample_mode`: ``nearest``, ``bilinear``,
        ``bicubic``) without anti-aliasing is delegated to it, whether given by name or
        built. Every other case runs a vectorised
        gather over ``ceil(2·radius·s)²`` taps per sample, in bounded chunks of samples;
        with ``antialias=True`` the window is sized by the largest ``s`` in the batch, and a
        step beyond :func:`step_bound` (a grid spanning more than ``GRID_SPAN_LIMIT`` = 4
        times the input's larger side, as a diverged transform produces) raises
        :class:`SamplingStepError` naming the step and that bound, rather than asking for a
        window of that size.

    .. warning::
        Anti-aliasing with ``zeros`` padding normalises weights over the whole window,
        outside pixels included, so outputs near the border darken towards 0 as with
        ``F.grid_sample``; Pillow and ``F.interpolate`` renormalise over inside pixels
        instead. They agree away from the border.
        The gradient w.r.t. ``grid`` of ``nearest`` and ``box`` is zero, and it is
        discontinuous wherever a sample crosses a kernel kink (pixel centres for
        bilinear); test gradients in float64.
    """
    _check_input("grid_sample", input)
    _check_grid(input, grid)
    _check_padding("grid_sample", padding_mode)
    if backend not in BACKENDS:
        raise ValueError(f"grid_sample: unknown backend {backend!r}; expected one of {BACKENDS}")
    kern = get_kernel(kernel, **kernel_params)
    if backend == "auto" and not antialias and kern.grid_sample_mode is not None:
        return F.grid_sample(
            input,
            grid,
            mode=kern.grid_sample_mode,
            padding_mode=padding_mode,
            align_corners=align_corners,
        )
    sampler = _compiled_sampler(backend, input, kern)
    return grid_sample_general(input, grid, kern, antialias, padding_mode, align_corners, sampler)


def _compiled_sampler(backend: str, input: Tensor, kern: Kernel) -> native.NativeSampler | None:
    """The compiled sampler if ``backend`` wants it and it can take ``input`` and ``kern``."""
    if backend == "torch":
        return None
    fits = native.supports(input, kern.formula)
    if backend == "auto":
        return native.native_sampler() if fits else None
    if not fits:
        raise ValueError(
            f"grid_sample: backend='native' takes CPU float32/float64 input and the built-in "
            f"kernels; got {input.device.type} {input.dtype} with kernel {kern.name!r}. "
            "Use backend='auto' or 'torch'."
        )
    sampler = native.native_sampler()
    if sampler is None:
        raise RuntimeError(
            f"grid_sample: backend='native' but the compiled sampler is "
            f"{native.native_sampler_status()}. Use backend='auto' or 'torch'."
        )
    return sampler


def affine_grid(theta: Tensor, output_size: Sequence[int], align_corners: bool = False) -> Tensor:
    """Sampling grid of an affine map, equal to :func:`torch.nn.functional.affine_grid`.

    Built by broadcasting ``x_in = θ[:, 0] · (x, y, 1)``, ``y_in = θ[:, 1] · (x, y, 1)``,
    which is cheaper on CPU than ``F.affine_grid``'s batched matrix product.

    Args:
        theta: ``(N, 2, 3)`` floating point.
        output_size: ``(H_out, W_out)`` or ``(N, C, H_out, W_out)`` as for ``F.affine_grid``.
        align_corners: as in :func:`torch.nn.functional.affine_grid`.

    Returns:
        ``(N, H_out, W_out, 2)`` grid for :func:`grid_sample`.
    """
    if not isinstance(theta, Tensor) or theta.dim() != 3 or tuple(theta.shape[1:]) != (2, 3):
        shape = tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__
        raise ValueError(f"affine_grid: expected theta of shape (N, 2, 3), got {shape}")
    if not theta.is_floating_point():
        raise TypeError(f"affine_grid: expected a floating-point theta, got {theta.dtype}")
    ho, wo = _output_hw("affine_grid", output_size, theta.shape[0])
    xs = _base_coords(wo, align_corners, theta).view(1, 1, wo)
    ys = _base_coords(ho, align_corners, theta).view(1, ho, 1)
    t = theta.unsqueeze(-1).unsqueeze(-1)  # (N, 2, 3, 1, 1)
    gx = t[:, 0, 0] * xs + t[:, 0, 1] * ys + t[:, 0, 2]
    gy = t[:, 1, 0] * xs + t[:, 1, 1] * ys + t[:, 1, 2]
    return torch.stack([gx, gy], dim=-1)


def _axis_matrix(
    pos: Tensor,
    size: int,
    kern: Kernel,
    antialias: bool,
    padding_mode: str,
    axis: str,
    bound: float,
) -> Tensor:
    """Dense sampling matrix ``(N, L_out, size)`` of one axis from positions ``(N, L_out)``.

    ``axis`` (``"x"`` or ``"y"``) and ``bound`` (the largest sampling step allowed, in
    input pixels) only serve :func:`_window_taps`'s checks and messages.
    """
    stretch = None
    taps = support_taps(kern.radius)
    if antialias:
        stretch = _stretch(_finite_difference(pos, 1) ** 2)
        fn, what = "sample_axis_aligned", "the scale or translation"
        taps = _window_taps(fn, what, kern, stretch, axis, bound)
    start, w = _window(pos, stretch, taps, kern)
    idx = start.unsqueeze(-1) + torch.arange(taps, device=pos.device)
    if padding_mode == "zeros":
        w = w * ((idx >= 0) & (idx < size)).to(w.dtype)
    idx = idx.clamp(0, size - 1)
    # scatter_add sums taps that border padding clamped onto the same edge pixel.
    matrix = pos.new_zeros(pos.shape[0], pos.shape[1], size)
    return matrix.scatter_add(2, idx, w)


def sample_axis_aligned(
    input: Tensor,
    scale: Tensor,
    translation: Tensor,
    output_size: Sequence[int],
    kernel: str | Kernel = "bilinear",
    antialias: bool = False,
    padding_mode: str = "zeros",
    align_corners: bool = False,
    **kernel_params: float,
) -> Tensor:
    r"""Separable fast path for scale + translation: ``θ = [[s_x, 0, t_x], [0, s_y, t_y]]``.

    Equal to ``grid_sample(input, affine_grid(θ, output_size), kernel, ...)`` but computed
    as two small matrix products per image, ``out = A_y @ U @ A_xᵀ``, with ``A_y``
    ``(H_out, H_in)`` and ``A_x`` ``(W_out, W_in)`` built from the kernel (any support,
    anti-aliased or not). Cost grows with ``H_in · W_in``, not with the kernel's width.

    Args:
        input: ``(N, C, H_in, W_in)`` floating point.
        scale: ``(N, 2)`` as ``(s_x, s_y)``, or ``(N,)`` / ``(N, 1)`` for ``s_x = s_y``;
            ``x_in = s_x · x_out + t_x`` in normalised coordinates. Negative scales flip.
        translation: ``(N, 2)`` as ``(t_x, t_y)``.
        output_size: ``(H_out, W_out)`` or ``(N, C, H_out, W_out)``.
        kernel, antialias, padding_mode, align_corners, kernel_params: as :func:`grid_sample`
            (with ``antialias=True``, a step beyond :func:`step_bound` raises
            :class:`SamplingStepError`).

    Returns:
        ``(N, C, H_out, W_out)``, differentiable w.r.t. ``input``, ``scale`` and
        ``translation``.
    """
    fn = "sample_axis_aligned"
    _check_input(fn, input)
    _check_padding(fn, padding_mode)
    n, _, h, w = input.shape
    ho, wo = _output_hw(fn, output_size, n)
    if scale.dim() == 1 or (scale.dim() == 2 and scale.shape[1] == 1):
        scale = scale.reshape(-1, 1).expand(-1, 2)
    for name, t in (("scale", scale), ("translation", translation)):
        if t.dim() != 2 or tuple(t.shape) != (n, 2):
            raise ValueError(f"{fn}: expected {name} of shape ({n}, 2), got {tuple(t.shape)}")
        if t.dtype != input.dtype:
            raise TypeError(f"{fn}: {name} dtype {t.dtype} != input dtype {input.dtype}")
    kern = get_kernel(kernel, **kernel_params)
    gx = scale[:, :1] * _base_coords(wo, align_corners, input) + translation[:, :1]  # (N, Wo)
    gy = scale[:, 1:] * _base_coords(ho, align_corners, input) + translation[:, 1:]  # (N, Ho)
    bound = step_bound((h, w), (ho, wo))
    x = _unnormalize(gx, w, align_corners)
    y = _unnormalize(gy, h, align_corners)
    ax = _axis_matrix(x, w, kern, antialias, padding_mode, "x", bound)
    ay = _axis_matrix(y, h, kern, antialias, padding_mode, "y", bound)
    # Contract in the order with fewer multiply-adds.
    if h * wo * (w + ho) <= ho * w * (h + wo):
        return ay.unsqueeze(1) @ (input @ ax.transpose(1, 2).unsqueeze(1))
    return (ay.unsqueeze(1) @ input) @ ax.transpose(1, 2).unsqueeze(1)
