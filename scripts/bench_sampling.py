"""Throughput of every sampling kernel, anti-aliased or not, against PyTorch's natives.

Measures forward and forward+backward (gradients w.r.t. input and θ) images/s of
``stn.sampling.grid`` (general affine path, compiled and torch, and the axis-aligned fast
path) beside
``F.grid_sample`` (bilinear, bicubic) and
``F.interpolate(antialias=True)`` in the same run, and prints one markdown table per
input shape with time ratios to native bilinear and bicubic, each native timed right
before every call of the method (paired; median of the per-call ratios). Example::

    python -m scripts.bench_sampling --batch 128 --threads 1 --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from stn.measure.throughput import busy_cpu_seconds, measure
from stn.sampling.grid import affine_grid, grid_sample_general, sample_axis_aligned
from stn.sampling.kernels import Kernel, get_kernel, kernel_names
from stn.sampling.native import NativeSampler, native_sampler, native_sampler_status

Step = Callable[[Tensor, Tensor], Tensor]


def random_theta(n: int, gen: torch.Generator) -> Tensor:
    """Small rotation (±0.2 rad) and scale (0.9–1.0 of the field) around the centre."""
    a = (torch.rand(n, generator=gen) * 2 - 1) * 0.2
    s = 0.9 + 0.1 * torch.rand(n, generator=gen)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = s * torch.cos(a), -s * torch.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = s * torch.sin(a), s * torch.cos(a)
    theta[:, :, 2] = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.05
    return theta


def _native(x: Tensor, th: Tensor, mode: str, hw: tuple[int, int]) -> Tensor:
    return F.grid_sample(x, affine_grid(th, hw), mode=mode, align_corners=False)


def _resize(x: Tensor, th: Tensor, mode: str, hw: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=hw, mode=mode, antialias=True)


def _general(
    x: Tensor,
    th: Tensor,
    kern: Kernel,
    aa: bool,
    hw: tuple[int, int],
    sampler: NativeSampler | None,
) -> Tensor:
    return grid_sample_general(x, affine_grid(th, hw), kern, aa, "zeros", False, sampler)


def _axis(x: Tensor, th: Tensor, kern: Kernel, aa: bool, hw: tuple[int, int]) -> Tensor:
    return sample_axis_aligned(x, th[:, [0, 1], [0, 1]], th[:, :, 2], hw, kern, aa)


def methods(
    kernels: list[str], aa_kernels: list[str], size: int, sampler: NativeSampler | None
) -> dict[str, Step]:
    """name -> f(input, θ) -> output; each builds its grid from θ inside, as an STN would.

    General rows run compiled (``sampler``, what ``grid_sample`` uses on CPU) and, for
    comparison, the torch path. The axis-aligned rows use θ's diagonal and translation
    only (the rotation is dropped).
    """
    general = {"torch": None} if sampler is None else {"compiled": sampler, "torch": None}
    hw = (size, size)
    out: dict[str, Step] = {
        "F.grid_sample bilinear": partial(_native, mode="bilinear", hw=hw),
        "F.grid_sample bicubic": partial(_native, mode="bicubic", hw=hw),
        "F.interpolate bilinear aa (resize)": partial(_resize, mode="bilinear", hw=hw),
        "F.interpolate bicubic aa (resize)": partial(_resize, mode="bicubic", hw=hw),
    }
    for aa, names in ((False, kernels), (True, aa_kernels)):
        tag = " aa" if aa else ""
        for k in names:
            for path, samp in general.items():
                out[f"general {k}{tag} ({path})"] = partial(
                    _general, kern=get_kernel(k), aa=aa, hw=hw, sampler=samp
                )
        for k in names:
            out[f"axis-aligned {k}{tag}"] = partial(_axis, kern=get_kernel(k), aa=aa, hw=hw)
    return out


def runner(step: Step, x: Tensor, theta: Tensor, backward: bool) -> Callable[[], None]:
    """One call of ``step``: forward only (no grad), or forward + backward to x and θ."""

    def run() -> None:
        if backward:
            xi = x.detach().requires_grad_()
            th = theta.detach().requires_grad_()
            step(xi, th).square().mean().backward()
        else:
            with torch.no_grad():
                step(x, theta)

    return run


def bench(
    step: Step, x: Tensor, theta: Tensor, backward: bool, args, natives: dict[str, Step]
) -> tuple[float, dict[str, float]]:
    """images/s of ``step`` and its time ÷ each native's, the natives timed right before
    every call (paired: a core's speed here changes 2× within seconds)."""
    m = measure(
        runner(step, x, theta, backward), x.shape[0], warmup=args.warmup,
        min_repeats=args.repeats, min_seconds=args.seconds,
        references={k: runner(f, x, theta, backward) for k, f in natives.items()},
    )  # fmt: skip
    return m.images_per_s, {k: 1 / r for k, r in (m.paired or {}).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 276], help="input sides")
    parser.add_argument("--out", type=int, default=48, help="output side")
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--kernels", nargs="+", default=kernel_names(), choices=kernel_names())
    parser.add_argument(
        "--aa-kernels",
        nargs="*",
        default=None,
        choices=kernel_names(),
        help="kernels to also run anti-aliased (default: same as --kernels; none: no aa rows)",
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="bilinear, bicubic, lanczos3 only; one channel; fewer repeats",
    )
    args = parser.parse_args()
    if args.quick:
        args.kernels = args.aa_kernels = ["bilinear", "bicubic", "lanczos3"]
        args.channels = [1]
        args.seconds = 0.2
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    aa_kernels = args.kernels if args.aa_kernels is None else args.aa_kernels
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {args.threads} thread(s), batch {args.batch}, float32\n"
        f"compiled sampler: {native_sampler_status()}\n"
    )
    sampler = native_sampler()
    for size in args.sizes:
        for c in args.channels:
            x = torch.rand(args.batch, c, size, size, generator=gen)
            theta = random_theta(args.batch, gen)
            cpu0, busy0 = os.times(), busy_cpu_seconds()
            wall0 = time.perf_counter()
            print(f"### {size}→{args.out}, C={c}\n")
            print(
                "| method | fwd img/s | fwd+bwd img/s | fwd time ÷ native bilinear | "
                "fwd+bwd time ÷ native bilinear | fwd+bwd time ÷ native bicubic |"
            )
            print("|---|---:|---:|---:|---:|---:|", flush=True)
            rows = methods(args.kernels, aa_kernels, args.out, sampler)
            natives = {
                "bilinear": rows["F.grid_sample bilinear"],
                "bicubic": rows["F.grid_sample bicubic"],
            }
            for name, step in rows.items():
                f, f_vs = bench(step, x, theta, False, args, natives)
                fb, fb_vs = bench(step, x, theta, True, args, natives)
                print(
                    f"| {name} | {f:,.0f} | {fb:,.0f} | {f_vs['bilinear']:.2f}× | "
                    f"{fb_vs['bilinear']:.2f}× | {fb_vs['bicubic']:.2f}× |",
                    flush=True,
                )
            wall = time.perf_counter() - wall0
            cpu, busy1 = os.times(), busy_cpu_seconds()
            own = (cpu.user - cpu0.user) + (cpu.system - cpu0.system)
            others = "" if busy0 is None else f"; other processes used {busy1 - busy0 - own:.1f} s"
            print(f"\n(this process used {own:.1f} s CPU over {wall:.1f} s wall{others})\n")


if __name__ == "__main__":
    main()
