"""The compiled sampler: ``stn/csrc/sampler.cpp`` built on first use, called through ctypes.

The general path of :func:`stn.sampling.grid_sample` in pure torch materialises every tap's
weight and value as tensors; the compiled sampler computes each sample's window in
registers, forward and backward in one pass per sample. It has no torch headers and a
plain C ABI, so it builds with the system C++ compiler in seconds (no ninja, no
pybind), once per source version, into a cache folder:
``$STN_BENCH_CACHE`` or ``$XDG_CACHE_HOME/stn-bench`` or ``~/.cache/stn-bench``.

A read-only cache folder falls back to the temp folder. Where it cannot be built at all
(no compiler), :func:`native_sampler` returns ``None`` with the reason in
:func:`native_sampler_status`, and sampling runs the torch path.
CPU tensors of float32/float64 only; CUDA tensors always use the torch path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

SOURCE = Path(__file__).with_name("csrc") / "sampler.cpp"
# -fno-math-errno: nothing reads errno, and it lets floor/sqrt inline. On x86-64, the
# 2009-era baseline (SSE4.2) inlines floor as one instruction (~8 % on Lanczos windows).
_FLAGS = ["-O3", "-fno-math-errno", "-shared", "-fPIC", "-pthread", "-std=c++17"]
if platform.machine().lower() in ("x86_64", "amd64"):
    _FLAGS.insert(1, "-march=x86-64-v2")
_ABI_VERSION = 1
# Closed forms the compiled sampler knows (stn/csrc/sampler.cpp's Kind).
_KINDS = {"nearest": 0, "box": 1, "tent": 2, "keys": 3, "lanczos": 4, "gaussian": 5}
_DTYPES = {torch.float32: "f32", torch.float64: "f64"}


class Spec(ctypes.Structure):
    """Mirror of ``Spec`` in sampler.cpp."""

    _fields_ = [
        ("kind", ctypes.c_int32),
        ("normalize", ctypes.c_int32),
        ("zeros", ctypes.c_int32),
        ("tx", ctypes.c_int32),
        ("ty", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("radius", ctypes.c_double),
        ("p0", ctypes.c_double),
        ("p1", ctypes.c_double),
    ]


def cache_dir() -> Path:
    """Where built libraries live: ``$STN_BENCH_CACHE``, else the XDG cache folder."""
    if os.environ.get("STN_BENCH_CACHE"):
        return Path(os.environ["STN_BENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stn-bench"


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def build(source: Path = SOURCE, folder: Path | None = None) -> Path:
    """Compile ``source`` into ``folder`` (default :func:`cache_dir`) unless already there.

    The file name hashes the source, compiler and flags, so an edited source rebuilds
    and concurrent runs (a joblib sweep) never load a half-written library: each
    compiles to a temporary name and renames it into place.

    Raises:
        RuntimeError: no C++ compiler, or it failed (its message included).
    """
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
    folder = Path(folder) if folder is not None else cache_dir()
    digest = hashlib.sha256(
        source.read_bytes() + " ".join([compiler, *_FLAGS]).encode()
    ).hexdigest()[:16]
    target = folder / f"stn_sampler_{digest}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run(
            [compiler, *_FLAGS, str(source), "-o", scratch],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed on {source}:\n{done.stderr.strip()[-2000:]}")
        os.replace(scratch, target)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return target


class NativeSampler:
    """The loaded library's entry points, typed."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        if lib.stn_sampler_abi_version() != _ABI_VERSION:
            raise RuntimeError(f"{path}: ABI version mismatch; delete it to rebuild")
        ptr, i64 = ctypes.c_void_p, ctypes.c_int64
        self.forward, self.backward = {}, {}
        for suffix in _DTYPES.values():
            fwd = getattr(lib, f"stn_sample_forward_{suffix}")
            fwd.argtypes = [ptr, i64, i64, i64, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr]
            fwd.restype = None
            bwd = getattr(lib, f"stn_sample_backward_{suffix}")
            bwd.argtypes = [ptr, i64, i64, i64, i64, i64, ptr, ptr, ptr, ptr, ptr] + [ptr] * 6
            bwd.restype = None
            self.forward[suffix], self.backward[suffix] = fwd, bwd
        self.path = path


def _build_somewhere() -> Path:
    """:func:`build` into the cache folder, or the temp folder where that is read-only."""
    try:
        return build()
    except PermissionError:
        user = os.getuid() if hasattr(os, "getuid") else "user"
        return build(folder=Path(tempfile.gettempdir()) / f"stn-bench-{user}")


@functools.cache
def _load() -> tuple[NativeSampler | None, str]:
    if os.environ.get("STN_BENCH_NATIVE", "1") == "0":
        return None, "disabled by STN_BENCH_NATIVE=0"
    try:
        sampler = NativeSampler(_build_somewhere())
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        return None, f"unavailable: {err}"
    return sampler, f"compiled ({sampler.path})"


def native_sampler() -> NativeSampler | None:
    """The compiled sampler, built on first call; ``None`` where it cannot be built."""
    return _load()[0]


def native_sampler_status() -> str:
    """One line for records and error messages: ``compiled (path)`` or why not."""
    return _load()[1]


def loaded_status() -> str:
    """:func:`native_sampler_status` once this process has asked for the sampler, else
    ``"not loaded"``; never builds (for run records)."""
    return _load()[1] if _load.cache_info().currsize else "not loaded"


def supports(input: Tensor, formula: tuple[str, tuple[float, ...]] | None) -> bool:
    """Whether the compiled sampler can take ``input`` with a kernel of this ``formula``."""
    return (
        formula is not None
        and formula[0] in _KINDS
        and input.device.type == "cpu"
        and input.dtype in _DTYPES
    )


def make_spec(
    formula: tuple[str, tuple[float, ...]],
    radius: float,
    taps: tuple[int, int],
    normalize: bool,
    padding_mode: str,
) -> Spec:
    """The C ``Spec`` of a kernel's closed form with its window ``taps`` ``(T_x, T_y)``."""
    kind, params = formula
    p = [float(v) for v in params] + [0.0, 0.0]
    return Spec(
        kind=_KINDS[kind],
        normalize=int(normalize),
        zeros=int(padding_mode == "zeros"),
        tx=taps[0],
        ty=taps[1],
        threads=torch.get_num_threads(),
        radius=float(radius),
        p0=p[0],
        p1=p[1],
    )


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class NativeSample(torch.autograd.Function):
    """``out (N, C, S)`` sampled from ``input (N, C, H, W)`` at positions ``x, y (N, S)``
    in input pixels, with stretches ``sx, sy (N, S)`` or ``None``; differentiable in all."""

    @staticmethod
    def forward(ctx, input, x, y, sx, sy, spec, sampler):  # type: ignore[override]
        input, x, y = input.contiguous(), x.contiguous(), y.contiguous()
        sx = None if sx is None else sx.contiguous()
        sy = None if sy is None else sy.contiguous()
        n, c, h, w = input.shape
        s = x.shape[1]
        out = input.new_empty(n, c, s)
        suffix = _DTYPES[input.dtype]
        sampler.forward[suffix](
            _ptr(input), n, c, h, w, s, _ptr(x), _ptr(y), _ptr(sx), _ptr(sy),
            ctypes.addressof(spec), _ptr(out),
        )  # fmt: skip
        ctx.save_for_backward(input, x, y, sx, sy)
        ctx.spec, ctx.sampler = spec, sampler
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        input, x, y, sx, sy = ctx.saved_tensors
        need_input, need_x, need_y, need_sx, need_sy = ctx.needs_input_grad[:5]
        grad_out = grad_out.contiguous()
        n, c, h, w = input.shape
        s = x.shape[1]
        grad_input = torch.zeros_like(input) if need_input else None
        grads = [
            x.new_empty(n, s) if need and t is not None else None
            for need, t in ((need_x, x), (need_y, y), (need_sx, sx), (need_sy, sy))
        ]
        if need_input or any(g is not None for g in grads):
            ctx.sampler.backward[_DTYPES[input.dtype]](
                _ptr(input), n, c, h, w, s, _ptr(x), _ptr(y), _ptr(sx), _ptr(sy),
                ctypes.addressof(ctx.spec), _ptr(grad_out), _ptr(grad_input),
                *(_ptr(g) for g in grads),
            )  # fmt: skip
        return (grad_input, *grads, None, None)
