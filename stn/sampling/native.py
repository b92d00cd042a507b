"""The compiled sampler: ``csrc/sampler.cpp`` built on first use, called through ctypes.

The general path of :func:`stn.sampling.grid.grid_sample` in pure torch materialises every tap's
weight and value as tensors; the compiled sampler computes each sample's window in
registers, forward and backward in one pass per sample. It has no torch headers and a
plain C ABI, so it builds with the system C++ compiler in seconds (no ninja, no
pybind), once per source version, into a cache folder:
``$STN_BENCH_CACHE`` or ``$XDG_CACHE_HOME/stn-bench`` or ``~/.cache/stn-bench``.

Loading a library runs its code, so the cache is private: the folder is created with mode
0700, and before every load the folder and the library must belong to this user and be
writable by no one else (the library a regular file, opened without following symlinks
and loaded from that descriptor). A read-only cache folder falls back to
``<tmp>/stn-bench-<uid>``, checked the same way. Nothing is loaded from a folder or
library that fails a check: a refused folder is passed over (for the temp folder's, then
for a fresh private temp folder), a refused library, or one that does not load or lacks
the expected ABI, is replaced by a fresh build; one :class:`NativeCacheWarning` per
process says why. Scratch files of a compile that was killed are removed on the next
start. Where it cannot be built at all (no compiler), :func:`native_sampler` returns
``None`` with the reason in :func:`native_sampler_status`, and sampling runs the torch
path. CPU tensors of float32/float64 only; CUDA tensors always use the torch path.
"""

from __future__ import annotations

import _ctypes
import ctypes
import errno
import functools
import hashlib
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
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
# Closed forms the compiled sampler knows (stn/sampling/csrc/sampler.cpp's Kind).
_KINDS = {"nearest": 0, "box": 1, "tent": 2, "keys": 3, "lanczos": 4, "gaussian": 5}
_DTYPES = {torch.float32: "f32", torch.float64: "f64"}
# A compile is killed after 300 s (build's timeout), so a scratch file older than twice
# that is left over from a process that died mid-build (SIGKILL), not one still writing.
STALE_SCRATCH_S = 600
# Scratch names: build's, and those of versions before it (mkstemp's "tmp" + 8 chars).
_SCRATCH = re.compile(r"\.stn_sampler_[0-9a-f]{16}\.so\.[a-z0-9_]+\.tmp|tmp[a-z0-9_]{8}\.so")


class NativeCacheWarning(UserWarning):
    """The compiled sampler's cache was refused or rebuilt; the message says why."""


class UnsafeCacheError(RuntimeError):
    """A cache folder or library that someone other than this user could have written."""


class LibraryError(RuntimeError):
    """A library that loads but is not a compiled sampler of this version (ABI)."""


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


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _ours(st: os.stat_result) -> bool:
    uid = _uid()
    return uid is None or st.st_uid == uid


def _unsafe(st: os.stat_result, folder: bool) -> str | None:
    """Why a folder or library with this ``stat`` could hold another user's code, or None."""
    if folder and not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if not folder and not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if not _ours(st):
        return f"belongs to uid {st.st_uid}, not to this user (uid {_uid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def private_folder(folder: Path, follow_symlinks: bool = True) -> Path:
    """``folder``, created with mode 0700 where missing, once checked private.

    ``follow_symlinks=False`` refuses a symlink (the shared temp folder, where anyone may
    have made one).

    Raises:
        UnsafeCacheError: it is not a folder, belongs to another user, or the group or
            others may write to it.
        OSError: it cannot be created (``PermissionError`` where its parent is read-only).
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        pass  # something else by that name (a file, a dangling symlink): refused below
    st = os.stat(folder) if follow_symlinks else os.lstat(folder)
    problem = "is a symlink" if stat.S_ISLNK(st.st_mode) else _unsafe(st, folder=True)
    if problem:
        raise UnsafeCacheError(f"{folder} {problem}")
    return folder


def open_library(path: Path) -> int:
    """A read-only descriptor of ``path``, once checked: a regular file (not a symlink),
    this user's, writable by no one else. Loading from the descriptor loads what was checked.

    Raises:
        UnsafeCacheError: it fails a check.
        OSError: it cannot be opened (``FileNotFoundError`` where it does not exist).
    """
    # O_NONBLOCK: a FIFO in its place must not hang the open (the check then refuses it).
    flags = os.O_RDONLY | os.O_NONBLOCK
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeCacheError(f"{path} is a symlink") from None
        raise
    problem = _unsafe(os.fstat(fd), folder=False)
    if problem:
        os.close(fd)
        raise UnsafeCacheError(f"{path} {problem}")
    return fd


def remove_stale_scratch(folder: Path, older_than_s: float = STALE_SCRATCH_S) -> list[Path]:
    """Delete this user's scratch libraries in ``folder`` last written over
    ``older_than_s`` ago (a compile that was killed); returns what was deleted.

    Only for a folder :func:`private_folder` accepted: nothing else is touched.
    """
    removed = []
    now = time.time()
    for entry in os.scandir(folder):
        if not _SCRATCH.fullmatch(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            # Any mode: the linker gives the scratch file the umask's, maybe group-writable.
            if stat.S_ISREG(st.st_mode) and _ours(st) and now - st.st_mtime > older_than_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:
            pass  # another process cleaned it, or its compile finished
    return removed


def library_path(source: Path | None = None, folder: Path | None = None) -> Path:
    """Where :func:`build` puts ``source``'s library: named by a hash of the source,
    compiler and flags, so an edited source rebuilds.

    Raises:
        RuntimeError: no C++ compiler.
    """
    source = SOURCE if source is None else Path(source)
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
    digest = hashlib.sha256(
        source.read_bytes() + " ".join([compiler, *_FLAGS]).encode()
    ).hexdigest()[:16]
    return (Path(folder) if folder is not None else cache_dir()) / f"stn_sampler_{digest}.so"


def build(source: Path | None = None, folder: Path | None = None) -> Path:
    """Compile ``source`` (default :data:`SOURCE`) into ``folder`` (default
    :func:`cache_dir`) unless a build that passes :func:`open_library`'s checks is there.

    The folder must pass :func:`private_folder`. Each build compiles to a private scratch
    name in the folder and renames it into place, so concurrent runs (a joblib sweep)
    never load a half-written library; scratch files a killed compile left are removed.

    Raises:
        UnsafeCacheError: ``folder`` fails :func:`private_folder`'s checks.
        RuntimeError: no C++ compiler, or it failed (its message included).
    """
    source = SOURCE if source is None else Path(source)
    target = library_path(source, folder)
    compiler = _compiler()
    folder = private_folder(target.parent)
    remove_stale_scratch(folder)
    try:
        os.close(open_library(target))
        return target
    except (OSError, UnsafeCacheError):
        pass  # missing, or not to be trusted: replaced below
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
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
        os.chmod(scratch, 0o700)  # the linker recreates the file with the umask's mode
        os.replace(scratch, target)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return target


def _dlclose(lib: ctypes.CDLL) -> None:
    """Unload ``lib``: the loader hands back an already-loaded library by name, so a
    library rebuilt under the same name would not load otherwise."""
    if hasattr(_ctypes, "dlclose"):
        _ctypes.dlclose(lib._handle)


class NativeSampler:
    """The loaded library's entry points, typed.

    Raises:
        UnsafeCacheError: the file fails :func:`open_library`'s checks (it is not loaded).
        LibraryError: it loads but lacks an entry point or has another ABI version.
        OSError: it does not load.
    """

    def __init__(self, path: Path) -> None:
        fd = open_library(path)
        # Loaded through the checked descriptor (Linux), so nothing swapped in between
        # the check and the load is loaded. The descriptor stays open while the library
        # is loaded: the loader matches names, and a reused /proc/self/fd/N would match.
        via_fd = f"/proc/self/fd/{fd}"
        try:
            lib = ctypes.CDLL(via_fd if os.path.exists(via_fd) else str(path))
        except OSError:
            os.close(fd)
            raise
        try:
            self._bind(lib, path)
        except LibraryError:
            _dlclose(lib)
            os.close(fd)
            raise
        self.path, self._fd = path, fd

    def _bind(self, lib: ctypes.CDLL, path: Path) -> None:
        ptr, i64 = ctypes.c_void_p, ctypes.c_int64
        try:
            version = lib.stn_sampler_abi_version
            self.forward, self.backward = {}, {}
            for suffix in _DTYPES.values():
                fwd = getattr(lib, f"stn_sample_forward_{suffix}")
                bwd = getattr(lib, f"stn_sample_backward_{suffix}")
                self.forward[suffix], self.backward[suffix] = fwd, bwd
        except AttributeError as err:
            what = f"{path} is not a compiled sampler of this version ({err})"
            raise LibraryError(what) from None
        version.argtypes, version.restype = [], ctypes.c_int
        if version() != _ABI_VERSION:
            raise LibraryError(f"{path} has ABI version {version()}, expected {_ABI_VERSION}")
        for fwd in self.forward.values():
            fwd.argtypes = [ptr, i64, i64, i64, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr]
            fwd.restype = None
        for bwd in self.backward.values():
            bwd.argtypes = [ptr, i64, i64, i64, i64, i64, ptr, ptr, ptr, ptr, ptr] + [ptr] * 6
            bwd.restype = None


def _cannot_write(err: OSError) -> bool:
    return isinstance(err, PermissionError) or err.errno == errno.EROFS


def _temp_cache() -> Path:
    """The fallback cache folder, ``<tmp>/stn-bench-<uid>``."""
    uid = _uid()
    return Path(tempfile.gettempdir()) / f"stn-bench-{'user' if uid is None else uid}"


def _load_from(folder: Path, notes: list[str]) -> NativeSampler:
    """The sampler from ``folder`` (checked by the caller), rebuilt there where the cached
    library fails a check, does not load or has another ABI (said in ``notes``)."""
    remove_stale_scratch(folder)
    target = library_path(folder=folder)
    if not os.path.lexists(target):
        return NativeSampler(build(folder=folder))
    try:
        return NativeSampler(target)
    except (OSError, UnsafeCacheError, LibraryError) as err:
        notes.append(f"not loading {target}: {err}")
    target.unlink(missing_ok=True)  # missing: another process got there first
    sampler = NativeSampler(build(folder=folder))
    notes.append("replaced it with a fresh build")
    return sampler


def _load_private(notes: list[str]) -> NativeSampler:
    """The sampler built in a fresh private temp folder, deleted once loaded (the library
    stays loaded, and open)."""
    folder = Path(tempfile.mkdtemp(prefix="stn-bench-"))
    try:
        sampler = NativeSampler(build(folder=folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    notes.append("built a private copy in a temp folder instead (deleted once loaded)")
    return sampler


def _load_somewhere(notes: list[str]) -> NativeSampler:
    """The sampler from the cache folder, else (read-only or refused) from the temp folder's
    cache, else built privately. What was refused and why goes to ``notes``."""
    for folder, follow in ((cache_dir(), True), (_temp_cache(), False)):
        try:
            private_folder(folder, follow)
            return _load_from(folder, notes)
        except UnsafeCacheError as err:
            notes.append(
                f"not loading from {folder}: {err} (chmod go-w it if it is yours; else "
                "point STN_BENCH_CACHE at a folder of yours)"
            )
        except OSError as err:
            if not _cannot_write(err):  # read-only: the temp folder, as documented
                notes.append(f"cannot use {folder}: {err}")
    return _load_private(notes)


@functools.cache
def _load() -> tuple[NativeSampler | None, str]:
    if os.environ.get("STN_BENCH_NATIVE", "1") == "0":
        return None, "disabled by STN_BENCH_NATIVE=0"
    notes: list[str] = []
    try:
        sampler = _load_somewhere(notes)
        status = f"compiled ({sampler.path})"
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        sampler, status = None, f"unavailable: {err}"
        if notes:
            notes.append(f"sampling runs in torch ({status})")
    if notes:  # one warning however many steps it took
        warnings.warn("compiled sampler: " + "; ".join(notes), NativeCacheWarning, stacklevel=2)
    return sampler, status


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
