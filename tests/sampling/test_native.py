"""The compiled sampler (stn/sampling/csrc/sampler.cpp) against the torch path it replaces on CPU,
gradcheck, threads, NaN grids, the build and its failures, the private cache (planted
libraries are never loaded), and the backend switch."""

import ctypes
import os
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch

from stn.sampling import native
from stn.sampling.grid import affine_grid, grid_sample, grid_sample_general
from stn.sampling.kernels import Kernel, get_kernel, kernel_names, support_taps

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
    out = grid_sample_general(inp, grid, kern, antialias, padding, align, sampler)
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
@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_compiled_and_torch_path_agree_on_a_nan_grid(sampler, kernel, padding):
    # A diverged transform gives NaN or infinite coordinates. Both paths return NaN for
    # exactly those samples, in every channel (the compiled one returned 0, a plausible
    # black pixel), the same values elsewhere, and the same grid gradients for the samples
    # with finite coordinates (what a NaN sample leaves in the input's gradient differs).
    inp, grid = problem(21)
    grid[0, 0, 0, 0] = float("nan")
    grid[0, 2, 3, 1] = float("nan")
    grid[1, 4, 5] = float("nan")
    grid[1, 1, 2, 0] = float("inf")
    grid[1, 3, 1, 1] = -float("inf")
    bad = ~grid.isfinite().all(-1)  # (N, Ho, Wo)
    kern = get_kernel(kernel)
    ours = value_and_grads(inp, grid, kern, False, padding, False, sampler)
    ref = value_and_grads(inp, grid, kern, False, padding, False, None)
    for out in (ours[0], ref[0]):
        assert torch.equal(out.isnan(), bad.unsqueeze(1).expand_as(out))
    torch.testing.assert_close(ours[0], ref[0], rtol=0, atol=1e-10, equal_nan=True)
    torch.testing.assert_close(ours[2][~bad], ref[2][~bad], rtol=0, atol=1e-10)
    if kernel in ("bilinear", "bicubic") and padding == "zeros":
        # F.grid_sample, the independent reference, agrees (its "border" and "nearest"
        # clamp a NaN coordinate to some pixel instead).
        native_out = torch.nn.functional.grid_sample(inp, grid, kernel, padding, False)
        assert torch.equal(native_out.isnan(), ours[0].isnan())


@pytest.mark.parametrize("kernel", kernel_names())
@pytest.mark.parametrize("antialias", [False, True])
def test_gradcheck_compiled(sampler, kernel, antialias):
    inp, grid = problem(11, scale=(1.6, 1.8))
    inp, grid = inp[:1, :2].requires_grad_(), grid[:1, :3, :4].contiguous().requires_grad_()

    def fn(i, g):
        return grid_sample_general(i, g, get_kernel(kernel), antialias, "zeros", False, sampler)

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
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        p.name for p in (tmp_path / "cache").glob("stn_sampler_*.so")
    )  # no half-written scratch files left behind
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    assert stat.S_IMODE(first.stat().st_mode) & 0o077 == 0
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


# ------------------------------------------------------------------ the private cache

# Entry points with the right names and ABI; they do nothing (the loading is under test).
STUB = """
extern "C" {{
{prelude}
int stn_sampler_abi_version() {{ return {abi}; }}
void stn_sample_forward_f32() {{}}
void stn_sample_forward_f64() {{}}
void stn_sample_backward_f32() {{}}
void stn_sample_backward_f64() {{}}
}}
"""
# What another user would plant: loading it runs its constructor, which leaves a marker.
PLANTED = """
#include <cstdio>
__attribute__((constructor)) static void planted() {{
  if (std::FILE* f = std::fopen("{marker}", "w")) std::fclose(f);
}}
"""


def compile_library(code: str, out: Path) -> Path:
    """``code`` compiled into the shared library ``out`` with the compiler the build uses."""
    compiler = native._compiler()
    # CI has a C++ compiler: a missing one is a failure here, never a skip.
    assert compiler is not None, "no C++ compiler: these tests need one"
    src = out.with_suffix(".cpp")
    src.write_text(code)
    subprocess.run([compiler, "-shared", "-fPIC", str(src), "-o", str(out)], check=True)
    return out


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """The sampler's source is a stub (compiles in a blink), the cache folder is
    ``tmp_path/cache`` and the temp folder ``tmp_path/tmp``; ``_load`` forgets its result
    before and after."""
    source = tmp_path / "stub.cpp"
    source.write_text(STUB.format(prelude="", abi=native._ABI_VERSION))
    monkeypatch.setattr(native, "SOURCE", source)
    monkeypatch.setenv("STN_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STN_BENCH_NATIVE", raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    native._load.cache_clear()
    yield tmp_path
    native._load.cache_clear()


def load_recording_warnings() -> tuple[native.NativeSampler | None, list[str]]:
    """A fresh ``native_sampler()`` and the messages of the warnings it gave."""
    native._load.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler = native.native_sampler()
    return sampler, [str(w.message) for w in caught if w.category is native.NativeCacheWarning]


def plant(folder: Path, name: str, marker: Path, folder_mode: int, file_mode: int) -> Path:
    """A library that passes for the sampler (right name, entry points and ABI) whose
    constructor writes ``marker``, in ``folder``, with the given modes."""
    folder.mkdir(parents=True, exist_ok=True)
    code = STUB.format(prelude=PLANTED.format(marker=marker), abi=native._ABI_VERSION)
    lib = compile_library(code, folder / name)
    lib.with_suffix(".cpp").unlink()
    lib.chmod(file_mode)
    folder.chmod(folder_mode)
    return lib


class ReadOnlyPath(type(Path())):
    """A cache folder that cannot be created (modes do not stop root, who may run tests)."""

    def mkdir(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied (simulated read-only folder)", str(self))


def test_planted_library_in_writable_cache_folders_is_never_loaded(isolated):
    cache, temp = isolated / "cache", isolated / "tmp" / f"stn-bench-{os.getuid()}"
    marker = isolated / "planted-code-ran"
    name = native.library_path(folder=cache).name
    planted = [plant(folder, name, marker, 0o777, 0o666) for folder in (cache, temp)]
    sampler, warned = load_recording_warnings()
    assert not marker.exists(), "a library another user could write was loaded"
    assert sampler is not None and sampler.path.parent not in (cache, temp)
    assert len(warned) == 1, warned
    assert f"{cache} is writable by other users (mode 777)" in warned[0]
    assert f"{temp} is writable by other users (mode 777)" in warned[0]
    assert "built a private copy" in warned[0]
    assert all(p.exists() for p in planted)  # others' files are left alone
    # The private build's folder is gone once loaded (the library stays open and mapped).
    assert not sampler.path.parent.exists()
    assert [p.name for p in (isolated / "tmp").iterdir()] == [temp.name]


def test_writable_library_in_a_private_folder_is_rebuilt_not_loaded(isolated):
    cache = isolated / "cache"
    marker = isolated / "planted-code-ran"
    target = plant(cache, native.library_path(folder=cache).name, marker, 0o700, 0o666)
    sampler, warned = load_recording_warnings()
    assert not marker.exists()
    assert sampler is not None and sampler.path == target
    assert len(warned) == 1 and "is writable by other users (mode 666)" in warned[0]
    assert "replaced it with a fresh build" in warned[0]
    assert stat.S_IMODE(target.stat().st_mode) & 0o022 == 0


def test_temp_folder_of_another_user_is_refused(isolated, monkeypatch):
    # The cache folder is read-only, so the temp folder is next; someone else made it
    # first. Without root, "someone else" is simulated by this process taking another uid:
    # then nothing on disk is ours, and the only safe outcome is the torch path.
    monkeypatch.setattr(native, "cache_dir", lambda: ReadOnlyPath(isolated / "cache"))
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    temp = isolated / "tmp" / f"stn-bench-{real + 1}"
    marker = isolated / "planted-code-ran"
    name = native.library_path(folder=temp).name
    plant(temp, name, marker, 0o700, 0o700)  # private modes: only the owner is wrong
    sampler, warned = load_recording_warnings()
    assert not marker.exists(), "a library another user could write was loaded"
    assert sampler is None
    assert f"belongs to uid {real}, not to this user (uid {real + 1})" in (
        native.native_sampler_status()
    )
    assert len(warned) == 1 and f"not loading from {temp}" in warned[0]
    assert "sampling runs in torch" in warned[0]


def test_read_only_cache_falls_back_to_a_private_temp_folder(isolated, monkeypatch):
    monkeypatch.setattr(native, "cache_dir", lambda: ReadOnlyPath(isolated / "cache"))
    sampler, warned = load_recording_warnings()
    temp = isolated / "tmp" / f"stn-bench-{os.getuid()}"
    assert sampler is not None and sampler.path.parent == temp
    assert stat.S_IMODE(temp.stat().st_mode) == 0o700
    assert warned == []  # read-only is not suspicious: as documented, no warning


def test_symlinks_are_refused_where_someone_else_could_have_made_them(isolated):
    # A symlinked library (anywhere), or a symlink as the temp folder: never followed.
    real = compile_library(STUB.format(prelude="", abi=native._ABI_VERSION), isolated / "a.so")
    cache = native.private_folder(isolated / "cache")
    (cache / "link.so").symlink_to(real)
    with pytest.raises(native.UnsafeCacheError, match="link.so is a symlink"):
        native.open_library(cache / "link.so")
    (isolated / "tmp" / "stn-bench-link").symlink_to(cache)
    with pytest.raises(native.UnsafeCacheError, match="stn-bench-link is a symlink"):
        native.private_folder(isolated / "tmp" / "stn-bench-link", follow_symlinks=False)
    os.close(native.open_library(real))  # the same file, not through a link, is fine


@pytest.mark.parametrize("abi", ["missing", "wrong version"])
def test_cached_library_without_the_abi_is_rebuilt(isolated, abi):
    cache = isolated / "cache"
    native.private_folder(cache)
    target = native.library_path(folder=cache)
    code = STUB.format(prelude="", abi=99)
    if abi == "missing":
        code = code.replace("int stn_sampler_abi_version() { return 99; }", "")
    compile_library(code, target).with_suffix(".cpp").unlink()
    sampler, warned = load_recording_warnings()  # not an AttributeError
    assert sampler is not None and sampler.path == target
    expected = "not a compiled sampler of this version" if abi == "missing" else "ABI version 99"
    assert len(warned) == 1 and expected in warned[0] and "replaced it" in warned[0]
    again, warned = load_recording_warnings()
    assert again is not None and again.path == target and warned == []  # the cache healed


def test_stale_scratch_of_a_killed_compile_is_removed(isolated, monkeypatch):
    assert native.native_sampler() is not None  # the library is built and cached
    cache = isolated / "cache"
    old = time.time() - native.STALE_SCRATCH_S - 60
    files = {
        "stale": cache / ".stn_sampler_0123456789abcdef.so.k2j4_x9a.tmp",
        "stale, older version's name": cache / "tmpab12cd_9.so",
        "a compile in progress": cache / ".stn_sampler_0123456789abcdef.so.q1w2e3r4.tmp",
        "not ours to judge": cache / "notes.txt",
    }
    for key, path in files.items():
        path.write_bytes(b"half a library")
        if key != "a compile in progress":
            os.utime(path, (old, old))
    native._load.cache_clear()  # the next start finds them
    assert native.native_sampler() is not None
    left = {key for key, path in files.items() if path.exists()}
    assert left == {"a compile in progress", "not ours to judge"}
    # Only this user's files: as another uid, nothing is ours to delete.
    for key in ("stale", "stale, older version's name"):
        files[key].write_bytes(b"half a library")
        os.utime(files[key], (old, old))
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)
    assert native.remove_stale_scratch(cache) == []
    assert files["stale"].exists()


def test_source_ships_with_the_package():
    assert native.SOURCE.exists() and native.SOURCE.parent == Path(native.__file__).parent / "csrc"
