"""Every way to reach the small network input, behind one interface.

A reducer is a ``torch.nn.Module`` mapping ``(N, C, H, W)`` float images to
``(N, C, h, w)`` (``h, w`` = ``output_size``, 48×48 by default). Each one reports its
name, kind, parameter count and whether it is learned, so tables can show them.
Reducers that need data first (PCA) set ``needs_fit`` and implement ``fit``; reducers
that need the ground-truth object box (the oracle crop) set ``uses_boxes`` and take
``forward(x, boxes)``.

Build one from a preset's fields with ``build_reducer(spec, in_channels, input_size)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    import torch

    from stn.data.stream import BatchStream

Size = tuple[int, int]


class ReducerConfigError(ValueError):
    """A reducer preset that cannot be built; the message names the fix."""


REDUCER_OPTIMIZERS = ("adam", "sgd")  # what may train a learned reducer (stn.measure.train)


class Reducer(nn.Module):
    """Base class: ``(N, C, H, W) → (N·K, C, *output_size)``, ``K = candidates``.

    ``candidates`` is 1 for every reducer but an STN that offers several glimpses per
    image (image-major); :class:`stn.measure.train.ReducedClassifier` pools the classifier's
    logits over them.
    """

    kind: str = "reducer"
    learned: bool = False
    needs_fit: bool = False
    uses_boxes: bool = False
    candidates: int = 1
    optimizer: str = "adam"  # one of REDUCER_OPTIMIZERS

    def __init__(self, name: str, output_size: Size) -> None:
        super().__init__()
        self.name = name
        self.output_size = (int(output_size[0]), int(output_size[1]))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def fit(self, train: BatchStream, device: torch.device | str | None = None) -> dict[str, Any]:
        """Fit on the training split (never test data), computing on ``device`` where the
        reducer can (``None``: the CPU); returns facts for the record."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "learned": self.learned,
            "parameters": self.num_parameters(),
            "output_size": list(self.output_size),
        }


RESIZE_MODES = ("nearest", "bilinear", "bicubic", "area")
ANTIALIAS_MODES = ("bilinear", "bicubic")


class Resize(Reducer):
    """``F.interpolate`` to the output size; ``antialias`` widens the filter on downscale."""

    kind = "resize"

    def __init__(self, name: str, output_size: Size, mode: str, antialias: bool = False) -> None:
        super().__init__(name, output_size)
        if mode not in RESIZE_MODES:
            raise ReducerConfigError(
                f"resize mode {mode!r} is not one of {', '.join(RESIZE_MODES)}"
            )
        if antialias and mode not in ANTIALIAS_MODES:
            raise ReducerConfigError(
                f"antialias=true needs mode bilinear or bicubic, not {mode!r} "
                "(area already averages every input pixel)"
            )
        self.mode = mode
        self.antialias = antialias

    def forward(self, x: Tensor) -> Tensor:
        align = False if self.mode in ANTIALIAS_MODES else None
        return F.interpolate(
            x, size=self.output_size, mode=self.mode, align_corners=align, antialias=self.antialias
        )


POOL_MODES = ("avg", "max", "adaptive_avg", "adaptive_max")


class Pool(Reducer):
    """Non-overlapping pooling (``avg``/``max``) or adaptive pooling to the output size."""

    kind = "pool"

    def __init__(self, name: str, output_size: Size, mode: str, input_size: Size) -> None:
        super().__init__(name, output_size)
        if mode not in POOL_MODES:
            raise ReducerConfigError(f"pool mode {mode!r} is not one of {', '.join(POOL_MODES)}")
        self.mode = mode
        self.factor: Size | None = None
        if mode in ("avg", "max"):
            factors = []
            for axis, (size_in, size_out) in enumerate(
                zip(input_size, self.output_size, strict=True)
            ):
                if size_in % size_out:
                    multiples = ", ".join(str(size_out * k) for k in range(2, 7))
                    raise ReducerConfigError(
                        f"pool_{mode} cannot reach {size_out} from {size_in} on axis {axis}: "
                        f"the input size must be a multiple of the output size ({multiples}, ...). "
                        "Use reducer=pool_adaptive for any size."
                    )
                factors.append(size_in // size_out)
            self.factor = (factors[0], factors[1])

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "avg":
            return F.avg_pool2d(x, self.factor)
        if self.mode == "max":
            return F.max_pool2d(x, self.factor)
        if self.mode == "adaptive_avg":
            return F.adaptive_avg_pool2d(x, self.output_size)
        return F.adaptive_max_pool2d(x, self.output_size)


ReducerFactory = Callable[[str, Mapping[str, Any], int, Size, Size], Reducer]


def _build_resize(
    name: str, spec: Mapping[str, Any], in_channels: int, input_size: Size, output_size: Size
) -> Reducer:
    return Resize(name, output_size, spec["mode"], bool(spec.get("antialias", False)))


def _build_pool(
    name: str, spec: Mapping[str, Any], in_channels: int, input_size: Size, output_size: Size
) -> Reducer:
    return Pool(name, output_size, spec["mode"], input_size)


STN_OPTIONS = (
    "transform",
    "kernel",
    "antialias",
    "loc_size",
    "loc_downscale",
    "loc_channels",
    "loc_hidden",
    "loc_batch_norm",
    "loc_head_init",
    "blob_sharpness",
    "loc_head",
    "loc_norm",
    "init_scale",
    "glimpses",
    "zoom_schedule",
    "glimpse_size",
    "candidates",
    "loc_warmup_epochs",
    "lr_multiplier",
    "optimizer",
    "kernel_params",
)


SALIENCY_OPTIONS = (
    "kernel",
    "antialias",
    "kernel_params",
    "loc_size",
    "loc_channels",
    "loc_norm",
    "grid_size",
    "sigma",
    "lr_multiplier",
)


def _with_options(
    module: str, class_name: str, options: tuple[str, ...], what: str
) -> ReducerFactory:
    """A factory for ``class_name(name, output_size, in_channels, **options)`` that refuses
    keys it does not know, naming the valid ones (the module imports this one, so it is
    resolved on first build)."""

    def build(
        name: str, spec: Mapping[str, Any], in_channels: int, input_size: Size, output_size: Size
    ) -> Reducer:
        unknown = set(spec) - set(options) - {"name", "kind"}
        if unknown:
            raise ReducerConfigError(
                f"unknown {what} option(s) {sorted(unknown)}; valid: {', '.join(options)}"
            )
        cls = getattr(importlib.import_module(module), class_name)
        return cls(name, output_size, in_channels, **{k: spec[k] for k in options if k in spec})

    return build


def _lazy(module: str, factory: str) -> ReducerFactory:
    """A factory from a module that itself imports this one: resolved on first build."""

    def build(*args: Any) -> Reducer:
        return getattr(importlib.import_module(module), factory)(*args)

    return build


# kind → factory. A new reducer kind adds one line here and one preset in conf/reducer/.
REDUCER_KINDS: dict[str, ReducerFactory] = {
    "resize": _build_resize,
    "pool": _build_pool,
    "stn": _with_options("stn.reducers.transformer", "SpatialTransformer", STN_OPTIONS, "STN"),
    "pca": _lazy("stn.reducers.pca", "build_pca"),
    "learned_resizer": _lazy("stn.reducers.learned_resizer", "build_learned_resizer"),
    "pool_blur": _lazy("stn.reducers.blur_pool", "build_blur_pool"),
    "oracle_crop": _lazy("stn.reducers.oracle_crop", "build_oracle_crop"),
    "saliency": _with_options(
        "stn.reducers.saliency", "SaliencySampler", SALIENCY_OPTIONS, "saliency"
    ),
}


def build_reducer(
    spec: Mapping[str, Any], in_channels: int, input_size: Size, output_size: Size = (48, 48)
) -> Reducer:
    """Build the reducer a preset describes.

    Args:
        spec: the preset's fields: ``name``, ``kind`` and the kind's own options.
        in_channels: C of the ``(N, C, H, W)`` input.
        input_size: ``(H, W)`` of the input.
        output_size: ``(h, w)`` of the output.
    """
    kind = spec.get("kind")
    if kind not in REDUCER_KINDS:
        raise ReducerConfigError(
            f"unknown reducer kind {kind!r}; known kinds: {', '.join(sorted(REDUCER_KINDS))}"
        )
    if min(output_size) < 1:
        raise ReducerConfigError(f"output size must be positive, got {tuple(output_size)}")
    if input_size[0] < output_size[0] or input_size[1] < output_size[1]:
        raise ReducerConfigError(
            f"input {tuple(input_size)} is smaller than the output {tuple(output_size)}: "
            "a reducer only shrinks. Use a canvas of at least the output size "
            "(dataset.canvas_size)."
        )
    name = str(spec.get("name", kind))
    return REDUCER_KINDS[kind](name, spec, in_channels, tuple(input_size), tuple(output_size))


def reduce_batch(reducer: Reducer, x: Tensor, boxes: Tensor | None = None) -> Tensor:
    """Call ``reducer`` on ``x``, passing the object boxes ``(N, 4)`` to those that use them."""
    if reducer.uses_boxes:
        if boxes is None:
            raise ReducerConfigError(
                f"reducer {reducer.name!r} needs ground-truth object boxes; "
                "only the cluttered-canvas datasets provide them"
            )
        return reducer(x, boxes)
    return reducer(x)


__all__ = [
    "Reducer",
    "ReducerConfigError",
    "Resize",
    "Pool",
    "REDUCER_KINDS",
    "build_reducer",
    "reduce_batch",
]
