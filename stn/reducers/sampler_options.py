"""Option groups shared by the reducers that sample the input on a learned grid.

The spatial transformer (``stn.reducers.transformer``) and the saliency sampler
(``stn.reducers.saliency``) both look at a cheap low-resolution copy with a small conv net
(:class:`LocalisationOptions`) and sample the input with any kernel of
``stn.sampling.kernels`` (:class:`SamplingOptions`). Each option is declared once here;
a kind's config inherits the groups it uses::

    @dataclass(frozen=True)
    class StnConfig(SamplingOptions, LocalisationOptions, LearnedReducerConfig): ...

Every group runs its own checks in ``__post_init__`` and calls ``super().__post_init__()``,
so a kind's config runs the checks of all its groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from stn.options import option
from stn.reducers.base import ReducerConfig, ReducerConfigError, require_choice
from stn.sampling.kernels import Kernel, get_kernel, kernel_names

LOC_NORMS = ("none", "standardize")


@dataclass(frozen=True)
class SamplingOptions(ReducerConfig):
    """How the input is sampled on the reducer's grid (``stn.sampling.grid``)."""

    kernel: str = option("bilinear", f"sampling kernel: {', '.join(kernel_names())}")
    antialias: bool = option(
        False, "widen the kernel by the local sampling step (Pillow's rule, any affine grid)"
    )
    kernel_params: dict[str, float] = option({}, "the kernel's parameters, e.g. {sigma: 0.5}")

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("kernel", self.kernel, kernel_names())
        try:
            self.sampling_kernel()
        except (ValueError, TypeError) as err:
            raise ReducerConfigError(str(err)) from err

    def sampling_kernel(self) -> Kernel:
        """The kernel these options name, built: a reducer builds it once, in its
        constructor, and samples every batch with it."""
        return get_kernel(self.kernel, **self.kernel_params)


@dataclass(frozen=True)
class LocalisationOptions(ReducerConfig):
    """The low-resolution copy a small conv net looks at to decide where to sample."""

    loc_size: int = option(32, "side of the low-resolution copy the localisation net sees")
    loc_channels: tuple[int, ...] = option(
        (16, 32), "localisation net: channels of each (conv–pool) stage; each halves the copy"
    )
    loc_norm: str = option(
        "none",
        "none or standardize: zero mean, unit variance per low-res copy, so the "
        "localisation features do not start alike for every image",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("loc_norm", self.loc_norm, LOC_NORMS)
