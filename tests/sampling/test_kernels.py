"""Kernel registry: names, errors, support, interpolation and partition-of-unity properties."""

import math

import pytest
import torch

from stn.sampling.kernels import KERNELS, Kernel, get_kernel, kernel_names, support_taps

F64 = torch.float64

ALL = kernel_names()
INTERPOLATING = ["nearest", "bilinear", "bicubic", "bicubic_pil", "lanczos2", "lanczos3", "box"]


def test_registry_lists_every_required_kernel():
    assert set(ALL) == {
        "nearest",
        "bilinear",
        "bicubic",
        "bicubic_pil",
        "lanczos2",
        "lanczos3",
        "gaussian",
        "box",
    }
    assert list(KERNELS) == ALL
    for name in ALL:
        assert isinstance(get_kernel(name), Kernel)


def test_unknown_kernel_error_lists_valid_names():
    with pytest.raises(ValueError, match="unknown kernel 'hamming'.*bilinear.*lanczos3"):
        get_kernel("hamming")


def test_bad_params_are_value_errors():
    with pytest.raises(ValueError, match="unknown kernel 'bilinear' option 'sigma'; valid: none"):
        get_kernel("bilinear", sigma=1.0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        get_kernel("gaussian", sigma=0.0)


@pytest.mark.parametrize("name", ALL)
def test_zero_outside_support(name):
    k = get_kernel(name)
    d = torch.linspace(k.radius + 1e-6, k.radius + 5, 50, dtype=torch.float64)
    assert torch.all(k(d) == 0) and torch.all(k(-d) == 0)
    inside = torch.linspace(-k.radius * 0.99, k.radius * 0.99, 101, dtype=torch.float64)
    assert k(inside).abs().max() > 0


@pytest.mark.parametrize("name", INTERPOLATING)
def test_interpolating_kernels_are_one_at_zero_and_zero_at_other_integers(name):
    k = get_kernel(name)
    assert k.interpolating
    n = torch.arange(-4, 5, dtype=torch.float64)
    # sin(π n) is ~1e-16, not 0, in floating point: Lanczos is interpolating to rounding.
    torch.testing.assert_close(k(n), (n == 0).to(torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["nearest", "bilinear", "bicubic", "bicubic_pil", "box"])
def test_partition_of_unity(name):
    # Σ_m k(x − m) = 1 for every x: sampling a constant returns it without normalising.
    k = get_kernel(name)
    x = torch.rand(200, dtype=torch.float64) * 10
    m = torch.arange(-5, 16, dtype=torch.float64)
    total = k(x[:, None] - m[None, :]).sum(1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-12)


def test_keys_cubic_values_match_closed_form():
    for name, a in (("bicubic", -0.75), ("bicubic_pil", -0.5)):
        k = get_kernel(name)
        for d in (0.25, 0.5, 1.5, 1.75):
            x = abs(d)
            want = (
                (a + 2) * x**3 - (a + 3) * x**2 + 1
                if x <= 1
                else a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
            )
            assert k(torch.tensor(d, dtype=torch.float64)).item() == pytest.approx(want, abs=1e-14)
    assert get_kernel("bicubic", a=-0.5)(torch.tensor(0.5)).item() == pytest.approx(0.5625)


@pytest.mark.parametrize("lobes", [2, 3])
def test_lanczos_values(lobes):
    k = get_kernel(f"lanczos{lobes}")
    assert k.radius == lobes
    for d in (0.3, 1.2, lobes - 0.1):
        want = (
            math.sin(math.pi * d)
            / (math.pi * d)
            * math.sin(math.pi * d / lobes)
            / (math.pi * d / lobes)
        )
        assert k(torch.tensor(d, dtype=torch.float64)).item() == pytest.approx(want, abs=1e-14)


def test_gaussian_sigma_sets_width_and_support():
    narrow, wide = get_kernel("gaussian", sigma=0.5), get_kernel("gaussian", sigma=2.0)
    assert (narrow.radius, wide.radius) == (1.5, 6.0)
    assert get_kernel("gaussian", sigma=0.1).radius == 1.0  # at least one pixel
    d = torch.tensor(1.0, dtype=torch.float64)
    # Shifted by the value at the support edge (3σ) so truncation is continuous.
    edge = math.exp(-4.5)
    assert narrow(d).item() == pytest.approx((math.exp(-2.0) - edge) / (1 - edge))
    assert wide(d).item() == pytest.approx((math.exp(-0.125) - edge) / (1 - edge))
    assert narrow(torch.tensor(1.5 - 1e-9, dtype=torch.float64)).item() < 1e-8
    assert not narrow.interpolating
    assert "sigma=0.5" in narrow.name


@pytest.mark.parametrize(
    "name", ["bilinear", "bicubic", "bicubic_pil", "lanczos2", "lanczos3", "gaussian"]
)
def test_kernels_are_differentiable_in_d(name):
    k = get_kernel(name)
    # Away from kinks (integers) so the finite differences see a smooth function.
    d = (torch.tensor([-2.6, -1.3, -0.4, 0.2, 0.7, 1.45, 2.2], dtype=torch.float64)).clamp(
        -k.radius + 0.05, k.radius - 0.05
    )
    assert torch.autograd.gradcheck(k.fn, (d.requires_grad_(),))


def test_support_taps_covers_window():
    assert support_taps(0.5) == 1
    assert support_taps(1.0) == 2
    assert support_taps(2.0) == 4
    assert support_taps(5.75) == 12
    assert support_taps(2.0 * (1 + 1e-12)) == 4  # float noise does not add a tap


def test_kernel_instance_passes_through():
    k = get_kernel("lanczos3")
    assert get_kernel(k) is k
    with pytest.raises(ValueError, match="already built"):
        get_kernel(k, sigma=1.0)


@pytest.mark.parametrize("name", ALL)
def test_analytic_derivative_matches_autograd(name):
    # Samplers use Kernel.deriv instead of autograd through fn: they must agree.
    k = get_kernel(name)
    assert k.deriv is not None
    d = torch.rand(400, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 0.5
    d = (d * 2 * (k.radius + 0.5)).requires_grad_()
    (want,) = torch.autograd.grad(k.fn(d).sum(), d)
    torch.testing.assert_close(k.deriv(d.detach()), want, rtol=0, atol=1e-12)
    zero = torch.zeros(1, dtype=torch.float64)
    assert torch.isfinite(k.deriv(zero)).all()


def test_partition_of_unity_flag_is_true_only_where_it_holds():
    x = torch.rand(300, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 10
    m = torch.arange(-5, 16, dtype=torch.float64)
    for name in ALL:
        k = get_kernel(name)
        total = k(x[:, None] - m[None, :]).sum(1)
        exact = bool(torch.allclose(total, torch.ones_like(total), rtol=0, atol=1e-12))
        assert k.partition_of_unity == exact, name


@pytest.mark.parametrize("name", [n for n in kernel_names() if get_kernel(n).window is not None])
def test_window_matches_kernel_and_derivative(name):
    # The fast unstretched window must equal fn and deriv at each tap, d − t, for offsets d
    # across [radius − 1, radius): random ones and ones next to the Lanczos singularity.
    k = get_kernel(name)
    taps = support_taps(k.radius)
    d = (k.radius - 1) + torch.rand(2000, generator=torch.Generator().manual_seed(0), dtype=F64)
    d = torch.cat([d, k.radius - 1 + torch.tensor([0.0, 0.5, 1e-3, 1 - 1e-3], dtype=F64)])
    w, dw = k.window(d)
    u = d.unsqueeze(-1) - torch.arange(taps, dtype=F64)
    assert w.shape == dw.shape == (d.shape[0], taps)
    torch.testing.assert_close(w, k.fn(u), rtol=0, atol=1e-13)
    # Away from kinks (exact integers, where one-sided conventions may differ).
    smooth = (u - u.round()).abs() > 1e-9
    torch.testing.assert_close(dw[smooth], k.deriv(u)[smooth], rtol=0, atol=1e-9)
