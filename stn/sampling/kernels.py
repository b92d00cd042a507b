"""One-dimensional sampling kernels k(d) with their support, for separable 2-D sampling.

The spatial transformer's sampler (Jaderberg et al. 2015, eq. 3) is
``V = Σ_n Σ_m U[n, m] · k(x − m) · k(y − n)`` for any kernel ``k``. This module holds the
kernels as pure functions of the distance ``d`` (in input pixels) from the sample to a tap:
each is a torch op, differentiable in ``d`` wherever the kernel is, and exactly zero for
``|d| >= radius`` (``nearest``/``box`` include one edge, see below), so a sampler may read
any window that covers ``(x − radius, x + radius]``.

``get_kernel(name, **params)`` builds one; ``kernel_names()`` lists them. Each kernel
registers itself in :data:`KERNELS` (``stn.registry``) where its factory is defined, with
the dataclass of its parameters; the registry is the only module-level state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial

import torch
from torch import Tensor

from stn.options import option
from stn.registry import Registry

KernelFn = Callable[[Tensor], Tensor]
WindowFn = Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Kernel:
    """A 1-D sampling kernel.

    Attributes:
        name: registry name, with parameters for parametrised kernels (``"gaussian(sigma=0.5)"``).
        radius: support half-width in input pixels: ``fn(d) == 0`` for ``|d| > radius``.
        fn: ``d -> k(d)``, elementwise, same shape and dtype as ``d``.
        interpolating: ``k(0) == 1`` and ``k(n) == 0`` for other integers ``n``, so sampling at
            pixel centres returns the pixels themselves.
        deriv: ``d -> k'(d)`` (one-sided at kinks), or ``None`` to let autograd differentiate
            ``fn``. Samplers use it to skip building an autograd graph per tap, which
            dominated the cost of Lanczos weights.
        partition_of_unity: ``Σ_m k(x − m) = 1`` for every ``x``, so unstretched weights
            need no normalising (nearest, box, bilinear, Keys cubic; not Lanczos).
        window: ``d -> (k(d − t), k'(d − t))`` for the taps ``t = 0, …, T − 1`` of an
            unstretched window (``T = support_taps(radius)``), stacked on a new last axis,
            for ``d`` ``(*)`` in ``[radius − 1, radius)`` (the offset of a sample from its
            window's first tap), or ``None``. Evaluating all taps from one offset per sample
            is several times cheaper than ``T`` calls of ``fn`` and ``deriv``.
        formula: the closed form and its parameters (``("keys", (a,))``, ``("lanczos",
            (lobes,))``, ``("gaussian", (sigma, value at the radius))``, ``("tent", ())``,
            ...) for the compiled sampler (``stn/sampling/csrc/sampler.cpp``), which evaluates the
            same formulas; ``None`` for kernels it does not know (they use the torch path).
        grid_sample_mode: the ``mode`` of ``F.grid_sample`` that computes exactly this kernel
            without anti-aliasing (``"nearest"``, ``"bilinear"``, ``"bicubic"``), or ``None``.
            :func:`stn.sampling.grid.grid_sample` delegates to ``F.grid_sample`` where it is
            set (``nearest`` agrees up to which neighbour wins an exact half-pixel tie); only
            the factories here set it, so a custom kernel is never mistaken for PyTorch's.
    """

    name: str
    radius: float
    fn: KernelFn
    interpolating: bool
    deriv: KernelFn | None = None
    partition_of_unity: bool = False
    window: WindowFn | None = None
    formula: tuple[str, tuple[float, ...]] | None = None
    grid_sample_mode: str | None = None

    def __call__(self, d: Tensor) -> Tensor:
        return self.fn(d)


def _nearest(d: Tensor) -> Tensor:
    # Closed interval: a sample exactly half-way gets a tap (F.grid_sample rounds half to even;
    # which neighbour wins there is a convention, not a property worth matching). ``+ 0 * d``
    # keeps the result in the autograd graph: its gradient is zero, not missing.
    return (d.abs() <= 0.5).to(d.dtype) + 0 * d


def _box(d: Tensor) -> Tensor:
    # Half-open like Pillow's box filter, so adjacent boxes tile the line without overlap.
    return ((d >= -0.5) & (d < 0.5)).to(d.dtype) + 0 * d


def _tent(d: Tensor) -> Tensor:
    return (1 - d.abs()).clamp(min=0)


def _keys_cubic(d: Tensor, a: float) -> Tensor:
    """Keys (1981) cubic convolution; ``a`` is the slope parameter."""
    x = d.abs()
    inner = ((a + 2) * x - (a + 3)) * x * x + 1
    outer = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x <= 1, inner, torch.where(x < 2, outer, 0.0))


def _lanczos(d: Tensor, lobes: int) -> Tensor:
    # sinc(d)·sinc(d/n) = n·sin(πd)·sin(πd/n) / (πd)², written out because torch.sinc is
    # several times slower than sin on CPU; d = 0 is patched to the limit 1.
    pd = math.pi * torch.where(d == 0, 1.0, d)
    value = lobes * torch.sin(pd) * torch.sin(pd / lobes) / (pd * pd)
    return torch.where(d.abs() < lobes, torch.where(d == 0, 1.0, value), 0.0)


def _gaussian(d: Tensor, sigma: float, radius: float) -> Tensor:
    # Shifted down by its value at the radius so that truncation leaves no jump: a jump would
    # make the sampler discontinuous in the grid, and the grid gradient would miss it.
    # Peak 1, not unit area: samplers normalise the discrete weights anyway.
    edge = math.exp(-0.5 * (radius / sigma) ** 2)
    g = (torch.exp(-0.5 * (d / sigma) ** 2) - edge) / (1 - edge)
    return torch.where(d.abs() < radius, g, 0.0)


def _zero_deriv(d: Tensor) -> Tensor:
    return torch.zeros_like(d)


def _tent_deriv(d: Tensor) -> Tensor:
    return torch.where(d.abs() < 1, -torch.sign(d), 0.0)


def _keys_cubic_deriv(d: Tensor, a: float) -> Tensor:
    x = d.abs()
    inner = (3 * (a + 2) * x - 2 * (a + 3)) * x
    outer = (3 * a * x - 10 * a) * x + 8 * a
    dx = torch.where(x <= 1, inner, torch.where(x < 2, outer, 0.0))
    return dx * torch.sign(d)


# Below this |d| the Lanczos derivative's closed form cancels to noise (its three terms
# are each ~πd and sum to ~d³); its Taylor term is exact there to ~1e-12.
_LANCZOS_TAYLOR = 1e-4


def _lanczos_slope_near_zero(d: Tensor, lobes: int) -> Tensor:
    """k'(d) ≈ −π²/3 · (1 + 1/n²) · d, the first Taylor term of sinc(d)·sinc(d/n)."""
    return -(math.pi**2 / 3) * (1 + 1 / lobes**2) * d


def _lanczos_deriv(d: Tensor, lobes: int) -> Tensor:
    # d/dd of n·sin(πd)·sin(πd/n) / (πd)²; its limit at d = 0 is 0.
    pd = math.pi * torch.where(d == 0, 1.0, d)
    s1, s2 = torch.sin(pd), torch.sin(pd / lobes)
    c1, c2 = torch.cos(pd), torch.cos(pd / lobes)
    value = math.pi * (lobes * c1 * s2 + s1 * c2 - 2 * lobes * s1 * s2 / pd) / (pd * pd)
    value = torch.where(d.abs() < _LANCZOS_TAYLOR, _lanczos_slope_near_zero(d, lobes), value)
    return torch.where(d.abs() < lobes, value, 0.0)


def _gaussian_deriv(d: Tensor, sigma: float, radius: float) -> Tensor:
    edge = math.exp(-0.5 * (radius / sigma) ** 2)
    value = -d / sigma**2 * torch.exp(-0.5 * (d / sigma) ** 2) / (1 - edge)
    return torch.where(d.abs() < radius, value, 0.0)


def _polynomial_window(fn: KernelFn, radius: float, degree: int) -> WindowFn:
    """Window of a kernel that is one polynomial of degree ``degree`` per tap and offset.

    With ``e = d − (radius − 1)`` in ``[0, 1)``, tap ``t`` sits at ``u = e + radius − 1 − t``,
    which stays inside one polynomial piece of a kernel whose pieces break at ``|u| ∈ ½ℤ``
    aligned with ``radius`` (nearest, box, bilinear, Keys cubic). Its coefficients in ``e``
    are fitted once, in float64, at interior points (away from the breaks).
    """
    taps = support_taps(radius)
    e = (torch.arange(degree + 1, dtype=torch.float64) + 0.5) / (degree + 1)
    u = e.view(-1, 1) + (radius - 1) - torch.arange(taps, dtype=torch.float64)
    vandermonde = e.view(-1, 1) ** torch.arange(degree + 1, dtype=torch.float64)
    coeffs = torch.linalg.solve(vandermonde, fn(u))  # (degree + 1, T), lowest power first

    def window(d: Tensor) -> tuple[Tensor, Tensor]:
        c = coeffs.to(d.device, d.dtype)
        e = (d - (radius - 1)).unsqueeze(-1)
        w, dw = c[degree].expand(*d.shape, taps), torch.zeros_like(c[0]).expand(*d.shape, taps)
        for p in range(degree - 1, -1, -1):  # Horner, value and derivative together
            dw = torch.addcmul(w, dw, e)
            w = torch.addcmul(c[p], w, e)
        if degree == 0:  # constant weights: still NaN for a NaN d, as fn's ``+ 0 * d``
            w = w + 0 * e
        return w, dw

    return window


def _lanczos_window(lobes: int) -> WindowFn:
    """Lanczos window from four sines and cosines per sample instead of six per tap.

    Tap ``t`` sits at ``u = e + k_t`` with ``e`` in ``[0, 1)`` and ``k_t`` an integer, so
    ``sin(πu) = ±sin(πe)``, and ``sin(πu/n)`` follows by angle addition from ``e`` reduced to
    ``[−½, ½)``, so that the tap nearest the sample keeps full relative precision as
    ``u → 0`` (the derivative's terms cancel there).
    """
    n, taps = lobes, 2 * lobes
    k = (lobes - 1) - torch.arange(taps, dtype=torch.float64)
    # Per tap: (−1)^k, and cos, sin of πj/n for j = k (e < ½) and j = k + 1 (e ≥ ½).
    consts = torch.stack(
        [1 - 2 * (k % 2), k]
        + [f(math.pi * (k + r) / n) for r in (0, 1) for f in (torch.cos, torch.sin)]
    )

    def window(d: Tensor) -> tuple[Tensor, Tensor]:
        sign, kt, cos0, sin0, cos1, sin1 = consts.to(d.device, d.dtype)
        e = (d - (lobes - 1)).unsqueeze(-1)
        up = e >= 0.5
        er = e - up.to(d.dtype)  # u = er + j, j = k + up
        pe = math.pi * er
        flip = 1 - 2 * up.to(d.dtype)  # sin(πe) = (−1)^up sin(π·er)
        s1, c1 = sign * (flip * torch.sin(pe)), sign * (flip * torch.cos(pe))
        sn, cn = torch.sin(pe / n), torch.cos(pe / n)
        cos_j, sin_j = torch.where(up, cos1, cos0), torch.where(up, sin1, sin0)
        s2 = sn * cos_j + cn * sin_j
        c2 = cn * cos_j - sn * sin_j
        u = e + kt
        centre = u == 0  # the limits there: k = 1, k' = 0
        pu = math.pi * torch.where(centre, 1.0, u)
        value = n * s1 * s2 / (pu * pu)
        slope = math.pi * (n * c1 * s2 + s1 * c2 - 2 * value * pu) / (pu * pu)
        slope = torch.where(u.abs() < _LANCZOS_TAYLOR, _lanczos_slope_near_zero(u, n), slope)
        return torch.where(centre, 1.0, value), slope

    return window


@dataclass(frozen=True)
class NoParams:
    """A kernel without parameters."""


@dataclass(frozen=True)
class BicubicParams:
    a: float = option(-0.75, "Keys' a: -0.75 as PyTorch and OpenCV, -0.5 as Pillow")


@dataclass(frozen=True)
class GaussianParams:
    sigma: float = option(0.5, "standard deviation in input pixels")
    truncate: float = option(3.0, "support = max(truncate · sigma, 1) pixels")


def _build(factory: Callable[..., Kernel], params: object) -> Kernel:
    return factory(**{f.name: getattr(params, f.name) for f in fields(params)})


# name -> factory(**params), filled where each factory is defined and never mutated after.
KERNELS: Registry[Callable[..., Kernel]] = Registry("kernel", make=_build)


@KERNELS.register("nearest", NoParams)
def _make_nearest() -> Kernel:
    window = _polynomial_window(_nearest, 0.5, 0)
    formula = ("nearest", ())
    return Kernel("nearest", 0.5, _nearest, True, _zero_deriv, True, window, formula, "nearest")


@KERNELS.register("box", NoParams)
def _make_box() -> Kernel:
    window = _polynomial_window(_box, 0.5, 0)
    return Kernel("box", 0.5, _box, True, _zero_deriv, True, window, ("box", ()))


@KERNELS.register("bilinear", NoParams)
def _make_bilinear() -> Kernel:
    window = _polynomial_window(_tent, 1.0, 1)
    return Kernel("bilinear", 1.0, _tent, True, _tent_deriv, True, window, ("tent", ()), "bilinear")


@KERNELS.register("bicubic", BicubicParams)
def _make_bicubic(a: float = BicubicParams.a) -> Kernel:
    name = "bicubic" if a == -0.75 else f"bicubic(a={a})"
    fn, deriv = partial(_keys_cubic, a=a), partial(_keys_cubic_deriv, a=a)
    window = _polynomial_window(fn, 2.0, 3)
    mode = "bicubic" if a == -0.75 else None  # F.grid_sample's bicubic is Keys with a = −0.75
    return Kernel(name, 2.0, fn, True, deriv, True, window, ("keys", (a,)), mode)


@KERNELS.register("bicubic_pil", NoParams)
def _make_bicubic_pil() -> Kernel:
    a = -0.5
    fn, deriv = partial(_keys_cubic, a=a), partial(_keys_cubic_deriv, a=a)
    window = _polynomial_window(fn, 2.0, 3)
    return Kernel("bicubic_pil", 2.0, fn, True, deriv, True, window, ("keys", (a,)))


def _make_lanczos(lobes: int) -> Callable[[], Kernel]:
    def make() -> Kernel:
        fn, deriv = partial(_lanczos, lobes=lobes), partial(_lanczos_deriv, lobes=lobes)
        window = _lanczos_window(lobes)
        return Kernel(
            f"lanczos{lobes}",
            float(lobes),
            fn,
            True,
            deriv=deriv,
            window=window,
            formula=("lanczos", (float(lobes),)),
        )

    return make


@KERNELS.register("gaussian", GaussianParams)
def _make_gaussian(
    sigma: float = GaussianParams.sigma, truncate: float = GaussianParams.truncate
) -> Kernel:
    if not sigma > 0:
        raise ValueError(f"gaussian kernel: sigma must be > 0, got {sigma}")
    if not truncate > 0:
        raise ValueError(f"gaussian kernel: truncate must be > 0, got {truncate}")
    # At least one pixel of support, so every sampling window holds a tap with nonzero weight
    # (a narrower window can fall between two pixels and leave nothing to normalise).
    radius = max(truncate * sigma, 1.0)
    fn = partial(_gaussian, sigma=float(sigma), radius=radius)
    deriv = partial(_gaussian_deriv, sigma=float(sigma), radius=radius)
    edge = math.exp(-0.5 * (radius / sigma) ** 2)
    return Kernel(
        f"gaussian(sigma={sigma:g})",
        radius,
        fn,
        interpolating=False,
        deriv=deriv,
        formula=("gaussian", (float(sigma), edge)),
    )


KERNELS.register("lanczos2", NoParams)(_make_lanczos(2))
KERNELS.register("lanczos3", NoParams)(_make_lanczos(3))


def kernel_names() -> list[str]:
    """Names accepted by :func:`get_kernel`, in registry order."""
    return list(KERNELS)


def get_kernel(name: str | Kernel, **params: float) -> Kernel:
    """Build the kernel ``name`` with its parameters.

    Parameters: ``bicubic`` takes ``a`` (default −0.75 as PyTorch and OpenCV;
    ``bicubic_pil`` is ``a = −0.5`` as Pillow); ``gaussian`` takes ``sigma`` (default 0.5)
    and ``truncate`` (support = ``max(truncate · sigma, 1)``, default 3; the Gaussian is
    shifted down to reach 0 continuously at the support edge). A :class:`Kernel`
    passes through unchanged (parameters are then an error).

    Raises:
        ValueError: unknown name or parameter (``OptionsError``: the message names the
            closest and the valid ones) or a bad value.
    """
    if isinstance(name, Kernel):
        if params:
            raise ValueError(f"kernel {name.name!r} is already built; got extra params {params}")
        return name
    return KERNELS.build(KERNELS.check_name(name), params)


def support_taps(radius: float) -> int:
    """Taps per axis that cover any window ``(x − radius, x + radius]``: ``ceil(2 · radius)``."""
    return max(1, math.ceil(2 * radius - 1e-9))
