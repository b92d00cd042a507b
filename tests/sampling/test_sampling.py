"""Sampling: the general path against F.grid_sample, gradients, anti-aliasing against
F.interpolate / Pillow / a brute-force reference, the axis-aligned fast path, errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn.sampling.grid import (
    SamplingStepError,
    affine_grid,
    grid_sample,
    grid_sample_general,
    sample_axis_aligned,
)
from stn.sampling.kernels import Kernel, get_kernel, kernel_names

F64 = torch.float64
NATIVE = ["nearest", "bilinear", "bicubic"]


def random_theta(n: int, gen: torch.Generator, scale=(0.6, 1.4), angle=0.4, shift=0.3):
    a = (torch.rand(n, generator=gen, dtype=F64) * 2 - 1) * angle
    s = scale[0] + torch.rand(n, generator=gen, dtype=F64) * (scale[1] - scale[0])
    theta = torch.zeros(n, 2, 3, dtype=F64)
    theta[:, 0, 0], theta[:, 0, 1] = s * torch.cos(a), -s * torch.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = s * torch.sin(a), s * torch.cos(a)
    theta[:, :, 2] = (torch.rand(n, 2, generator=gen, dtype=F64) * 2 - 1) * shift
    return theta


def grads(fn, inp, grid, seed=0):
    inp = inp.detach().clone().requires_grad_()
    grid = grid.detach().clone().requires_grad_()
    out = fn(inp, grid)
    g_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    g_in, g_grid = torch.autograd.grad(out, (inp, grid), g_out)
    return out.detach(), g_in, g_grid


# ----------------------------------------------------------------- general path == native


@pytest.mark.parametrize("mode", NATIVE)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_general_path_matches_native(mode, align_corners, padding_mode):
    gen = torch.Generator().manual_seed(hash((mode, align_corners, padding_mode)) % 2**31)
    inp = torch.randn(3, 2, 9, 11, generator=gen, dtype=F64)
    # Scales up to 1.4 and shifts put samples outside the input: padding is exercised.
    grid = affine_grid(random_theta(3, gen), (7, 8), align_corners)
    grid = grid + 0.02 * torch.randn(grid.shape, generator=gen, dtype=F64)  # not affine
    ours = grads(
        lambda i, g: grid_sample_general(
            i, g, get_kernel(mode), False, padding_mode, align_corners
        ),
        inp,
        grid,
    )
    ref = grads(
        lambda i, g: F.grid_sample(
            i, g, mode=mode, padding_mode=padding_mode, align_corners=align_corners
        ),
        inp,
        grid,
    )
    for a, b, what in zip(ours, ref, ("output", "d/input", "d/grid"), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=what)
    assert ref[0].abs().max() > 0 and ref[1].abs().max() > 0
    if mode != "nearest":
        assert ref[2].abs().max() > 0


def test_public_grid_sample_delegates_native_and_runs_others():
    inp = torch.randn(1, 1, 6, 6, dtype=F64)
    grid = affine_grid(random_theta(1, torch.Generator().manual_seed(1)), (4, 4))
    ref = F.grid_sample(inp, grid, mode="bicubic", align_corners=False)
    assert torch.equal(grid_sample(inp, grid, "bicubic"), ref)
    # bicubic_pil has a = -0.5, a different kernel: close to but not equal to bicubic.
    other = grid_sample(inp, grid, "bicubic_pil")
    assert not torch.allclose(other, ref) and (other - ref).abs().max() < 0.5


KERNEL_CASES = [(k, {}) for k in kernel_names()] + [
    ("bicubic", {"a": -0.75}),  # PyTorch's bicubic, given its parameter
    ("bicubic", {"a": -0.5}),  # another Keys cubic: F.grid_sample does not compute it
    ("gaussian", {"sigma": 0.8}),
]


@pytest.mark.parametrize(("kernel", "params"), KERNEL_CASES)
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("given", ["name", "built"])
def test_grid_sample_delegates_exactly_where_the_kernel_names_a_mode(
    kernel, params, antialias, given, monkeypatch
):
    kern = get_kernel(kernel, **params)
    calls = []
    torch_grid_sample = F.grid_sample

    def spy(*args, **kwargs):
        calls.append(kwargs["mode"])
        return torch_grid_sample(*args, **kwargs)

    monkeypatch.setattr(F, "grid_sample", spy)
    gen = torch.Generator().manual_seed(5)
    inp = torch.randn(2, 2, 9, 11, generator=gen, dtype=F64)
    grid = affine_grid(random_theta(2, gen), (7, 8))
    grid = grid + 0.02 * torch.randn(grid.shape, generator=gen, dtype=F64)  # no exact ties
    if given == "built":
        out = grid_sample(inp, grid, kern, antialias)
    else:
        out = grid_sample(inp, grid, kernel, antialias, **params)
    delegated = not antialias and kern.grid_sample_mode is not None
    assert calls == ([kern.grid_sample_mode] if delegated else [])
    # Either way the values are the kernel's: the general path computes the same.
    general = grid_sample_general(inp, grid, kern, antialias, "zeros", False)
    torch.testing.assert_close(out, general, rtol=0, atol=1e-10)


def test_only_pytorchs_own_kernels_name_a_grid_sample_mode(monkeypatch):
    modes = {k: get_kernel(k).grid_sample_mode for k in kernel_names()}
    assert {k: m for k, m in modes.items() if m} == {
        "nearest": "nearest",
        "bilinear": "bilinear",
        "bicubic": "bicubic",
    }
    # A kernel built by hand is never delegated, even one named and shaped as bilinear.
    plain = get_kernel("bilinear")
    custom = Kernel("bilinear", 1.0, plain.fn, True, plain.deriv, True, plain.window)
    inp = torch.randn(1, 1, 6, 6, dtype=F64)
    grid = affine_grid(random_theta(1, torch.Generator().manual_seed(2)), (4, 4))
    reference = grid_sample(inp, grid, plain)
    monkeypatch.setattr(F, "grid_sample", None)  # any call to it fails
    torch.testing.assert_close(grid_sample(inp, grid, custom), reference, rtol=0, atol=1e-10)


# ----------------------------------------------------------------- gradcheck, every kernel


@pytest.mark.parametrize("kernel", kernel_names())
@pytest.mark.parametrize("antialias", [False, True])
def test_gradcheck_every_kernel(kernel, antialias):
    gen = torch.Generator().manual_seed(7)
    inp = torch.randn(1, 2, 9, 8, generator=gen, dtype=F64, requires_grad=True)
    # Scale ~2 (downscale 9 → 3 pixels over twice the field): stretch s ≈ 5 is active.
    theta = random_theta(1, gen, scale=(1.6, 1.8), angle=0.3, shift=0.1)
    grid = affine_grid(theta, (3, 4)) + 0.01 * torch.randn(1, 3, 4, 2, generator=gen, dtype=F64)
    grid.requires_grad_()

    def fn(i, g):
        return grid_sample_general(i, g, get_kernel(kernel), antialias, "zeros", False)

    assert torch.autograd.gradcheck(fn, (inp, grid), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("kernel", ["bilinear", "lanczos3", "gaussian"])
def test_gradcheck_axis_aligned(kernel):
    gen = torch.Generator().manual_seed(3)
    inp = torch.randn(2, 1, 9, 10, generator=gen, dtype=F64, requires_grad=True)
    scale = torch.tensor([[1.3, 0.9], [0.5, 1.7]], dtype=F64, requires_grad=True)
    # Shifts chosen so no tap sits exactly on a support edge (where box/nearest jump).
    shift = torch.tensor([[0.0937, -0.2113], [0.0311, 0.1071]], dtype=F64, requires_grad=True)

    def fn(i, s, t):
        return sample_axis_aligned(i, s, t, (3, 4), kernel, antialias=True, padding_mode="border")

    assert torch.autograd.gradcheck(fn, (inp, scale, shift), eps=1e-6, atol=1e-7)


# ----------------------------------------------------------------- identity


@pytest.mark.parametrize("kernel", [k for k in kernel_names() if get_kernel(k).interpolating])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("antialias", [False, True])
def test_identity_grid_returns_input(kernel, align_corners, antialias):
    inp = torch.randn(2, 3, 7, 5, dtype=F64)
    theta = torch.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=F64).expand(2, 2, 3)
    grid = affine_grid(theta, (7, 5), align_corners)
    out = grid_sample(inp, grid, kernel, antialias, "zeros", align_corners)
    torch.testing.assert_close(out, inp, rtol=0, atol=1e-12)
    one = torch.ones(2, 2, dtype=F64)
    fast = sample_axis_aligned(inp, one, 0 * one, (7, 5), kernel, antialias, "zeros", align_corners)
    torch.testing.assert_close(fast, inp, rtol=0, atol=1e-12)


# ----------------------------------------------------------------- anti-aliasing


@pytest.mark.parametrize(("kernel", "mode"), [("bilinear", "bilinear"), ("bicubic_pil", "bicubic")])
@pytest.mark.parametrize("size", [(48, 48), (13, 21)])
def test_antialiased_downscale_matches_interpolate(kernel, mode, size):
    # F.interpolate's anti-aliased bicubic uses Pillow's a = -0.5, hence bicubic_pil.
    inp = torch.randn(2, 2, 276, 230, generator=torch.Generator().manual_seed(0), dtype=F64)
    theta = torch.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=F64).expand(2, 2, 3)
    ours = grid_sample(inp, affine_grid(theta, size), kernel, antialias=True)
    fast = sample_axis_aligned(
        inp, torch.ones(2, 2, dtype=F64), torch.zeros(2, 2, dtype=F64), size, kernel, antialias=True
    )
    ref = F.interpolate(inp, size=size, mode=mode, antialias=True, align_corners=False)
    # Pillow and F.interpolate renormalise over inside taps at the border; we pad. The
    # window reaches radius · s ≤ 2 · 276 / 13 ≈ 43 pixels, i.e. 2 output samples.
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    torch.testing.assert_close(ours[inner], ref[inner], rtol=0, atol=1e-12)
    torch.testing.assert_close(fast[inner], ref[inner], rtol=0, atol=1e-12)


def test_interpolate_antialias_bicubic_is_not_a_075():
    inp = torch.randn(1, 1, 60, 60, generator=torch.Generator().manual_seed(1), dtype=F64)
    grid = affine_grid(torch.tensor([[[1.0, 0, 0], [0, 1, 0]]], dtype=F64), (12, 12))
    ref = F.interpolate(inp, size=(12, 12), mode="bicubic", antialias=True)
    ours = grid_sample(inp, grid, "bicubic", antialias=True)  # a = -0.75
    assert (ours - ref)[..., 2:-2, 2:-2].abs().max() > 1e-3


def test_antialiased_bilinear_matches_pillow():
    from PIL import Image

    arr = np.random.default_rng(0).random((120, 150)).astype(np.float32)
    pil = np.asarray(Image.fromarray(arr, mode="F").resize((25, 20), Image.BILINEAR))
    inp = torch.from_numpy(arr.astype(np.float64))[None, None]
    grid = affine_grid(torch.tensor([[[1.0, 0, 0], [0, 1, 0]]], dtype=F64), (20, 25))
    ours = grid_sample(inp, grid, "bilinear", antialias=True)[0, 0].numpy()
    # Pillow computes in float32 and renormalises at the border: compare the interior.
    np.testing.assert_allclose(ours[2:-2, 2:-2], pil[2:-2, 2:-2], rtol=0, atol=1e-5)


def brute_force_antialiased(inp, theta, size, kernel):
    """Per-sample loops over every pixel: weights k((x − m)/s), s from θ, zero padding."""
    k = get_kernel(kernel)
    _, _, h, w = inp.shape
    ho, wo = size
    grid = affine_grid(theta, size)[0]
    # d(pixel x)/d(output j) = θ00 · W / Wo, d(pixel x)/d(output i) = θ01 · W / Ho.
    sx = max(1.0, math.hypot(theta[0, 0, 0] * w / wo, theta[0, 0, 1] * w / ho))
    sy = max(1.0, math.hypot(theta[0, 1, 0] * h / wo, theta[0, 1, 1] * h / ho))
    m = torch.arange(-60, w + 60, dtype=F64)
    n = torch.arange(-60, h + 60, dtype=F64)
    out = torch.zeros(inp.shape[1], ho, wo, dtype=F64)
    padded = torch.zeros(inp.shape[1], len(n), len(m), dtype=F64)
    padded[:, 60 : 60 + h, 60 : 60 + w] = inp[0]
    for i in range(ho):
        for j in range(wo):
            x = ((grid[i, j, 0] + 1) * w - 1) / 2
            y = ((grid[i, j, 1] + 1) * h - 1) / 2
            wx = k((x - m) / sx)
            wy = k((y - n) / sy)
            wx, wy = wx / wx.sum(), wy / wy.sum()
            out[:, i, j] = torch.einsum("cnm,n,m->c", padded, wy, wx)
    return out[None]


@pytest.mark.parametrize("kernel", ["bilinear", "lanczos3", "gaussian"])
def test_antialiased_rotated_grid_matches_brute_force(kernel):
    gen = torch.Generator().manual_seed(5)
    inp = torch.randn(1, 2, 40, 36, generator=gen, dtype=F64)
    theta = random_theta(1, gen, scale=(0.8, 0.9), angle=0.5, shift=0.1)
    ours = grid_sample(inp, affine_grid(theta, (7, 6)), kernel, antialias=True)
    ref = brute_force_antialiased(inp, theta, (7, 6), kernel)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_antialiasing_removes_aliasing_of_fine_stripes():
    # Period-2 stripes downscaled 6×: the true local mean is 0.5 everywhere. Point sampling
    # (bilinear, 2 taps) aliases the stripes into the output; the stretched kernel does not.
    stripes = (torch.arange(96, dtype=F64) % 2).expand(96, 96).clone()[None, None]
    theta = random_theta(1, torch.Generator().manual_seed(2), scale=(0.9, 0.9), angle=0.3)
    theta[:, :, 2] = 0
    grid = affine_grid(theta, (16, 16))
    aliased = grid_sample(stripes, grid, "bilinear", padding_mode="border")
    smooth = grid_sample(stripes, grid, "bilinear", antialias=True, padding_mode="border")
    inner = (..., slice(2, -2), slice(2, -2))  # border padding repeats one stripe outside
    assert (aliased[inner] - 0.5).abs().max() > 0.25
    assert (smooth[inner] - 0.5).abs().max() < 0.05


# ----------------------------------------------------------------- axis-aligned fast path


@pytest.mark.parametrize("kernel", kernel_names())
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize(("align_corners", "padding_mode"), [(False, "zeros"), (True, "border")])
def test_axis_aligned_matches_general(kernel, antialias, align_corners, padding_mode):
    gen = torch.Generator().manual_seed(11)
    inp = torch.randn(3, 2, 17, 14, generator=gen, dtype=F64, requires_grad=True)
    scale = torch.tensor([[0.8, 1.1], [-0.5, 0.7], [1.2, 1.2]], dtype=F64, requires_grad=True)
    shift = torch.tensor([[0.1, -0.2], [0.3, 0.05], [-0.13, 0.2]], dtype=F64, requires_grad=True)
    zero = torch.zeros(3, dtype=F64)
    # θ = [[sx, 0, tx], [0, sy, ty]] built differentiably from scale and shift.
    theta = torch.stack(
        [
            torch.stack([scale[:, 0], zero, shift[:, 0]], 1),
            torch.stack([zero, scale[:, 1], shift[:, 1]], 1),
        ],
        1,
    )
    grid = affine_grid(theta, (6, 5), align_corners)
    general = grid_sample_general(
        inp, grid, get_kernel(kernel), antialias, padding_mode, align_corners
    )
    fast = sample_axis_aligned(
        inp, scale, shift, (6, 5), kernel, antialias, padding_mode, align_corners
    )
    torch.testing.assert_close(fast, general, rtol=0, atol=1e-12)
    g_out = torch.randn(general.shape, generator=gen, dtype=F64)
    want = torch.autograd.grad(general, (inp, scale, shift), g_out)
    got = torch.autograd.grad(fast, (inp, scale, shift), g_out)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_axis_aligned_isotropic_scale_and_float32():
    inp = torch.randn(2, 3, 30, 30)
    s = torch.tensor([0.5, 0.7])
    t = torch.zeros(2, 2)
    out = sample_axis_aligned(inp, s, t, (8, 8), "lanczos2", antialias=True)
    theta = torch.zeros(2, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = s
    ref = grid_sample(inp, affine_grid(theta, (8, 8)), "lanczos2", antialias=True)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 8, 8)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- affine_grid


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")  # size 1 is legal
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(5, 7), (1, 4), (48, 48)])
def test_affine_grid_matches_torch(align_corners, size):
    theta = random_theta(4, torch.Generator().manual_seed(0))
    for dtype, tol in ((F64, 1e-14), (torch.float32, 1e-6)):
        th = theta.to(dtype)
        ref = F.affine_grid(th, (4, 1, *size), align_corners=align_corners)
        torch.testing.assert_close(affine_grid(th, size, align_corners), ref, rtol=0, atol=tol)
        torch.testing.assert_close(
            affine_grid(th, (4, 1, *size), align_corners), ref, rtol=0, atol=tol
        )


# ----------------------------------------------------------------- errors


def test_errors_say_what_is_wrong():
    inp, grid = torch.randn(2, 1, 8, 8), torch.zeros(2, 4, 4, 2)
    with pytest.raises(
        ValueError, match=r"expected input of shape \(N, C, H, W\), got \(1, 8, 8\)"
    ):
        grid_sample(inp[0], grid)
    with pytest.raises(ValueError, match=r"expected grid of shape \(N, H_out, W_out, 2\)"):
        grid_sample(inp, torch.zeros(2, 4, 4, 3))
    with pytest.raises(ValueError, match="grid batch size 1 != input batch size 2"):
        grid_sample(inp, grid[:1])
    with pytest.raises(TypeError, match="grid dtype torch.float64 != input dtype torch.float32"):
        grid_sample(inp, grid.double())
    with pytest.raises(ValueError, match="unknown kernel 'cubic'.*known: bicubic, bicubic_pil"):
        grid_sample(inp, grid, "cubic")
    with pytest.raises(ValueError, match=r"unsupported padding_mode 'reflection'.*zeros.*border"):
        grid_sample(inp, grid, padding_mode="reflection")
    with pytest.raises(TypeError, match="floating-point input"):
        grid_sample(inp.long(), grid)
    for backend in ("native", "torch"):
        with pytest.raises(ValueError, match="NaN or infinite values; pass a finite grid"):
            bad = grid.clone()
            bad[1, 2, 2, 0] = math.nan
            grid_sample(inp, bad, "lanczos3", antialias=True, backend=backend)
    with pytest.raises(ValueError, match=r"expected theta of shape \(N, 2, 3\)"):
        affine_grid(torch.zeros(2, 3, 3), (4, 4))
    with pytest.raises(ValueError, match="expected output_size"):
        affine_grid(torch.zeros(2, 2, 3), (4,))
    with pytest.raises(ValueError, match=r"expected scale of shape \(2, 2\)"):
        sample_axis_aligned(inp, torch.ones(2, 3), torch.zeros(2, 2), (4, 4))
    with pytest.raises(ValueError, match=r"expected translation of shape \(2, 2\)"):
        sample_axis_aligned(inp, torch.ones(2, 2), torch.zeros(3, 2), (4, 4))


def test_chunking_does_not_change_results(monkeypatch):
    # Chunks split the flattened (image, sample) axis; tiny chunks must give the same
    # outputs and gradients as one chunk, including chunks that straddle images.
    import stn.sampling.grid as sampling

    gen = torch.Generator().manual_seed(4)
    inp = torch.randn(3, 2, 20, 18, generator=gen, dtype=F64)
    grid = affine_grid(random_theta(3, gen, scale=(1.2, 1.5)), (5, 7))
    kern = get_kernel("lanczos2")

    def run():
        return grads(lambda i, g: grid_sample_general(i, g, kern, True, "zeros", False), inp, grid)

    whole = run()
    monkeypatch.setattr(sampling, "_CHUNK_ELEMENTS", 1000)  # a few samples per chunk
    for a, b in zip(run(), whole, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def zoom_out(n: int, scale: float) -> torch.Tensor:
    """``(n, 2, 3)`` θ that zooms out by ``scale`` around the centre."""
    return torch.tensor([[scale, 0.0, 0.0], [0.0, scale, 0.0]]).expand(n, 2, 3)


def antialiased(path: str, inp: torch.Tensor, scale: float, size=(4, 4)) -> torch.Tensor:
    """Anti-aliased bilinear sampling of ``inp`` zoomed out by ``scale`` on one path."""
    n = inp.shape[0]
    if path == "axis_aligned":
        s, t = torch.full((n, 2), scale), torch.zeros(n, 2)
        return sample_axis_aligned(inp, s, t, size, "bilinear", antialias=True)
    grid = affine_grid(zoom_out(n, scale), size)
    return grid_sample(inp, grid, "bilinear", antialias=True, backend=path)


@pytest.mark.parametrize("path", ["torch", "native", "axis_aligned"])
def test_antialiasing_refuses_a_step_wider_than_the_input_naming_step_and_bound(path):
    # 8 px input, 4 px output, zoomed out 100×: one output step moves 100 · 8 / 4 = 200 px;
    # the bound, a grid spanning 4× the input, is 4 · 8 / 4 = 8 px. Before the bound every
    # path sampled it with 400-tap windows and said nothing.
    with pytest.raises(
        SamplingStepError, match=r"step along input x reaches 200 px, beyond the bound of 8 px"
    ) as err:
        antialiased(path, torch.rand(1, 1, 8, 8), 100.0)
    assert (err.value.step, err.value.bound, err.value.axis) == (pytest.approx(200), 8, "x")
    # The bound itself is allowed: it refuses only what lies beyond.
    out = antialiased(path, torch.rand(1, 1, 8, 8), 4.0)  # step 8 px
    assert out.shape == (1, 1, 4, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize("path", ["torch", "axis_aligned"])
def test_a_diverged_step_is_refused_before_any_window_is_allocated(path, memory_cap):
    # The step of a diverged STN (3·10⁶ zoom): before the bound, one batch of 16 asked for
    # 37 GB here (the axis-aligned path) and 3.7·10¹⁶ bytes (the general path).
    with pytest.raises(SamplingStepError, match=r"reaches 6e\+06 px, beyond the bound of 8 px"):
        antialiased(path, torch.rand(16, 1, 96, 96), 3e6, size=(48, 48))


def test_axis_aligned_antialiasing_names_a_non_finite_scale():
    # Before: "cannot convert float NaN to integer", from sizing the window.
    scale = torch.tensor([[1.0, 1.0], [math.nan, 1.0]])
    with pytest.raises(ValueError, match="the scale or translation holds NaN or infinite"):
        sample_axis_aligned(
            torch.rand(2, 1, 8, 8), scale, torch.zeros(2, 2), (4, 4), antialias=True
        )
