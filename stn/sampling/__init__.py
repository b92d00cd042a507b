"""Sampling: kernels k(d) with their support, grid sampling with any kernel (general and
native fast paths, anti-aliased), and the compiled sampler those paths call."""

from stn.sampling.grid import affine_grid, grid_sample

__all__ = ["affine_grid", "grid_sample"]
