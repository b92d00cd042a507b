"""The compiled sampler (stn/csrc/sampler.cpp) against the torch path it replaces on CPU,
gradcheck, threads, the build and its failures, and the backend switch."""

import ctypes
from pathlib import Path

import pytest
import torch

from stn import native
from stn.kernels import Kernel, get_kernel, kernel_names, support_taps
from stn.sampling import _grid_sample_general, affine_grid, grid_sample

F64 = torch.float64


@pytest.fixture(scope="module")
def sampler() -> native.NativeSampler:
    built = native.native_sampler()
    # CI has a C++ compiler: a missing one is a failure here, never a skip.
    assert built is not None, native.native_sampler_status()
    return built


def problem(seed: int, dtype=F64, scale=(0.6, 1.9)):
    """Input (2, 3, 11, 13) and a rotated, scaled, shifted, slightly non-affine grid: some
    samples fall outside (padding), scales up to 1.9 make the anti-aliasing stretch act."""
    gen = torch.Generator().manual_seed(seed)
    inp = torch.randn(2, 3, 11, 13, generator=gen, dtype=dtype)
    a = (torch.rand(2, generator=gen, dtype=F64) * 2 - 1) * 0.5
    s = scale[0] + torch.rand(2, generator=gen, dtype=F64) * (scale[1] - scale[0])
    theta = torch.zeros(2, 2, 3, dtype=F64)
    theta[:, 0, 0], theta[:, 0, 1] = s * torch.cos(a), -s * torch.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = s * torch.sin(a), s * torch.cos(a)
    theta[:, :, 2] = (torch.rand(2, 2, generator=gen, dtype=F64) * 2 - 1) * 0.3
    grid = affine_grid(theta, (5, 6)) + 0.01 * torch.randn(2, 5, 6, 2, generator=gen, dtype=F64)
    return inp, grid.to(dtype)


def value_and_grads(inp, grid, kern, antialias, padding, align, sampler, seed=1):
    inp = inp.detach().clone().requires_grad_()
    grid = grid.detach().clone().requires_grad_()
    out = _grid_sample_general(inp, grid, kern, antialias, padding, align, sampler)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return (out.detach(), *torch.autograd.grad(out, (inp, grid), g))


@pytest.mark.parametrize("kernel", kernel_names())
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("align", [False, True])
def test_compiled_matches_torch_path(sampler, kernel, antialias, padding, align):
    kern = get_kernel(kernel)
    inp, grid = problem(hash((kernel, antialias, padding, align)) % 2**31)
    ours = value_and_grads(inp, grid, kern, antialias, padding, align, sampler)
    ref = value_and_grads(inp, grid, kern, antialias, padding, align, None)
    for a, b, what in zip(ours, ref, ("output", "d/input", "d/grid"), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=what)
    assert ref[0].abs().max() > 0 and ref[1].abs().max() > 0


@pytest.mark.parametrize("kernel", kernel_names())
@pytest.mark.parametrize("antialias", [False, True])
def test_gradcheck_compiled(sampler, kernel, antialias):
    inp, grid = problem(11, scale=(1.6, 1.8))
    inp, grid = inp[:1, :2].requires_grad_(), grid[:1, :3, :4].contiguous().requires_grad_()

    def fn(i, g):
        return _grid_sample_general(i, g, get_kernel(kernel), antialias, "zeros", False, sampler)

    assert torch.autograd.gradcheck(fn, (inp, grid), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("kernel", ["bicubic_pil", "lanczos3", "gaussian"])
def test_compiled_float32_agrees_with_torch_path(sampler, kernel):
    inp, grid = problem(5, dtype=torch.float32)
    kern = get_kernel(kernel)
    for antialias in (False, True):
        ours = value_and_grads(inp, grid, kern, antialias, "zeros", False, sampler)
        ref = value_and_grads(inp, grid, kern, antialias, "zeros", False, None)
        for a, b in zip(ours, ref, strict=True):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_threads_split_images_without_changing_results(sampler):
    inp, grid = problem(3)
    kern = get_kernel("lanczos3")
    x, y = (grid[..., 0] * 6 + 6).reshape(2, -1), (grid[..., 1] * 5 + 5).reshape(2, -1)
    taps = (support_taps(kern.radius),) * 2
    results = []
    for threads in (1, 2):
        spec = native.make_spec(kern.formula, kern.radius, taps, True, "zeros")
        spec.threads = threads
        out = inp.new_empty(2, 3, x.shape[1])
        sampler.forward["f64"](
            inp.data_ptr(), 2, 3, 11, 13, x.shape[1], x.data_ptr(), y.data_ptr(), None, None,
            ctypes.addressof(spec), out.data_ptr(),
        )  # fmt: skip
        results.append(out)
    assert torch.equal(results[0], results[1]) and results[0].abs().max() > 0


def test_public_grid_sample_runs_compiled_on_cpu(sampler):
    inp, grid = problem(4)
    auto = grid_sample(inp, grid, "lanczos2", antialias=True)
    forced = grid_sample(inp, grid, "lanczos2", antialias=True, backend="native")
    torch_path = grid_sample(inp, grid, "lanczos2", antialias=True, backend="torch")
    assert torch.equal(auto, forced)
    torch.testing.assert_close(auto, torch_path, rtol=0, atol=1e-10)
    # bicubic without anti-aliasing: F.grid_sample under "auto", our kernel when forced.
    torch.testing.assert_close(
        grid_sample(inp, grid, "bicubic"), grid_sample(inp, grid, "bicubic", backend="native")
    )


def test_backend_errors_say_what_to_do(sampler):
    inp, grid = problem(0)
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        grid_sample(inp, grid, "bilinear", backend="fast")
    plain = get_kernel("bilinear")
    custom = Kernel("custom tent", 1.0, plain.fn, True, plain.deriv, True)  # no formula
    with pytest.raises(ValueError, match="backend='native' takes.*'custom tent'.*'auto'"):
        grid_sample(inp, grid, custom, backend="native")
    with pytest.raises(ValueError, match="backend='native' takes CPU float32/float64.*float16"):
        grid_sample(inp.half(), grid.half(), "lanczos3", backend="native")
    # "auto" takes a kernel without a formula down the torch path.
    torch.testing.assert_close(
        grid_sample(inp, grid, custom, antialias=True),
        grid_sample(inp, grid, "bilinear", antialias=True),
    )


def test_build_caches_by_source_and_reports_compiler_errors(tmp_path, monkeypatch):
    source = tmp_path / "tiny.cpp"
    source.write_text('extern "C" int stn_sampler_abi_version() { return 1; }\n')
    first = native.build(source, tmp_path / "cache")
    assert first.exists() and native.build(source, tmp_path / "cache") == first
    source.write_text('extern "C" int stn_sampler_abi_version() { return 2; }\n')
    assert native.build(source, tmp_path / "cache") != first  # edited source: a new build
    source.write_text("this is not C++\n")
    with pytest.raises(RuntimeError, match="failed on .*tiny.cpp"):
        native.build(source, tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if p.suffix == ".so") == sorted(
        p.name for p in (tmp_path / "cache").glob("stn_sampler_*.so")
    )  # no half-written scratch files left behind
    monkeypatch.setattr(native, "_compiler", lambda: None)
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        native.build(source, tmp_path / "cache")


def test_disabled_or_unbuildable_sampler_falls_back_to_torch(monkeypatch, tmp_path):
    inp, grid = problem(2)
    expected = grid_sample(inp, grid, "gaussian", backend="torch")
    try:
        native._load.cache_clear()
        monkeypatch.setenv("STN_BENCH_NATIVE", "0")
        assert native.native_sampler() is None
        assert native.native_sampler_status() == "disabled by STN_BENCH_NATIVE=0"
        torch.testing.assert_close(grid_sample(inp, grid, "gaussian"), expected)
        with pytest.raises(RuntimeError, match="compiled sampler is disabled.*'torch'"):
            grid_sample(inp, grid, "gaussian", backend="native")
        native._load.cache_clear()
        monkeypatch.delenv("STN_BENCH_NATIVE")
        monkeypatch.setenv("STN_BENCH_CACHE", str(tmp_path))
        monkeypatch.setattr(native, "_compiler", lambda: None)
        assert native.native_sampler() is None
        assert "no C++ compiler" in native.native_sampler_status()
    finally:
        native._load.cache_clear()


def test_read_only_cache_falls_back_to_the_temp_folder(monkeypatch, tmp_path):
    calls = []

    def build(source=native.SOURCE, folder=None):
        calls.append(folder)
        if folder is None:
            raise PermissionError("[Errno 13] Permission denied: 'read-only cache folder'")
        return tmp_path / "built.so"

    monkeypatch.setattr(native, "build", build)
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(tmp_path))
    assert native._build_somewhere() == tmp_path / "built.so"
    assert calls[0] is None and calls[1].parent == tmp_path
    assert calls[1].name.startswith("stn-bench-")


def test_source_ships_with_the_package():
    assert native.SOURCE.exists() and native.SOURCE.parent == Path(native.__file__).parent / "csrc"
