"""Spatial transformer: localisation net → θ → output grid → sampler with any kernel.

Jaderberg et al. 2015 (arXiv 1506.02025). The localisation net looks at a cheap
low-resolution copy of the input (so its cost does not grow with the canvas), predicts
the parameters of a transform family initialised at the identity, and the input is
sampled on the transformed ``output_size`` grid with any registered kernel, optionally
anti-aliased (``stn.sampling.grid``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn.options import option
from stn.reducers.base import (
    LearnedReducerConfig,
    NonFiniteLossError,
    Reducer,
    ReducerConfigError,
    Size,
    register_reducer,
    require_choice,
)
from stn.reducers.layers import conv_stages, standardize
from stn.reducers.sampler_options import LocalisationOptions, SamplingOptions
from stn.sampling.grid import SamplingStepError, affine_grid, grid_sample, sample_axis_aligned
from stn.sampling.kernels import Kernel, get_kernel

# family → number of parameters the localisation net predicts
TRANSFORMS = {"affine": 6, "attention": 3}
HEAD_INITS = ("zeros", "small", "blob")
# Default softmax sharpness of the blob prior: ink mass at the object is ~0.3-0.6 of a
# standardised unit in the pooled map, a fragment's ~0.1, so ×20 puts most weight on the
# object's cells (denser clutter wants more: see ``blob_sharpness``).
BLOB_SHARPNESS = 20.0
LOC_HEADS = ("regression", "heatmap")
SAMPLER_INPUTS = ("raw", "standardized")
ZOOM_MAX = 2.0  # the heatmap head's zoom lies in (0, ZOOM_MAX)


# What a diverged run's error says to do (trainer.lr scales every learning rate; the
# localisation net trains at trainer.lr × reducer.lr_multiplier).
DIVERGED_HINT = "lower trainer.lr or reducer.lr_multiplier"


class TransformerDivergedError(NonFiniteLossError):
    """The localisation net's transform left any usable range: training diverged.

    A :class:`stn.measure.train.NonFiniteLossError`, so a run ends as failed with this reason
    whether the loss, a parameter or the transform gave way first.
    """


class NonFiniteTransformError(TransformerDivergedError):
    """The localisation net produced a non-finite θ."""


def _check_head_init(head_init: str) -> None:
    require_choice("loc_head_init", head_init, HEAD_INITS)


def _check_heatmap_channels(channels: Sequence[int]) -> None:
    if not channels:
        raise ReducerConfigError("loc_head=heatmap needs at least one loc_channels stage")


def _check_divisible(input_size: int, stages: int) -> None:
    shrink = 2**stages
    if input_size % shrink:
        raise ReducerConfigError(
            f"loc_size {input_size} must be divisible by {shrink} "
            f"({stages} conv–pool stages); try 32, 64 or 96"
        )


class LocalisationNet(nn.Module):
    """``(N, C, s, s) → (N, n_params)``: (conv–pool) stages, a hidden layer, a linear head.

    The head starts at ``identity`` (the identity transform, or a zoomed-in start): its
    bias holds those parameters and its weights are zero (``head_init="zeros"``, the STN
    paper: every image gets the same transform at step 0) or small random values
    (``"small"``: the transform already differs a little from image to image).
    """

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        identity: Sequence[float],
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        head_init: str = "zeros",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_head_init(head_init)
        _check_divisible(input_size, len(channels))
        side = input_size // 2 ** len(channels)
        width = channels[-1] if channels else in_channels
        self.features = nn.Sequential(conv_stages(in_channels, channels, batch_norm), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(width * side * side, hidden), nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, len(identity))
        with torch.no_grad():
            if head_init == "zeros":
                self.head.weight.zero_()
            else:
                self.head.weight.normal_(0.0, 1e-3)
            self.head.bias.copy_(torch.tensor(identity, dtype=self.head.bias.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.hidden(self.features(x)))


def cell_centres(n: int, like: Tensor) -> Tensor:
    """``(n,)`` normalised centres of ``n`` cells spanning ``[-1, 1]`` (align_corners=False)."""
    return (torch.arange(n, dtype=like.dtype, device=like.device) * 2 + 1) / n - 1


def soft_argmax(weights: Tensor) -> Tensor:
    """``(N, h, w)`` softmax weights over cells → ``(N, 2)`` their mean cell centre
    ``(t_x, t_y)`` in normalised coordinates."""
    _, h, w = weights.shape
    tx = (weights.sum(1) * cell_centres(w, weights)).sum(1)
    ty = (weights.sum(2) * cell_centres(h, weights)).sum(1)
    return torch.stack([tx, ty], 1)


class HeatmapLocalisation(nn.Module):
    """``(N, C, s, s) → (N, 3)`` attention parameters ``(scale, t_x, t_y)`` without regression.

    Translation-equivariant: (conv–pool) stages, then a 1×1 conv gives one logit per cell of
    the ``s / 2^stages`` map; the translation is the soft-argmax (softmax-weighted mean of
    the cell centres), so a feature that fires on the object moves the glimpse onto it
    wherever the object is. The zoom comes from the globally pooled features, squashed into
    ``(0, 2)`` by a sigmoid. Both heads
    start at zero weight: a uniform heatmap (translation 0, the centre) and ``init_scale``
    for every image. ``head_init="small"`` gives both small random weights instead.
    """

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        init_scale: float,
        channels: Sequence[int] = (16, 32),
        head_init: str = "zeros",
        batch_norm: bool = False,
        blob_sharpness: float = BLOB_SHARPNESS,
    ) -> None:
        super().__init__()
        _check_head_init(head_init)
        _check_heatmap_channels(channels)
        _check_divisible(input_size, len(channels))
        self.features = conv_stages(in_channels, channels, batch_norm)
        self.heatmap = nn.Conv2d(channels[-1], 1, 1)
        self.zoom = nn.Linear(channels[-1], 1)
        with torch.no_grad():
            for layer in (self.heatmap, self.zoom):
                if head_init == "small":
                    layer.weight.normal_(0.0, 1e-3)
                else:
                    layer.weight.zero_()
            self.heatmap.bias.zero_()
            self.zoom.bias.zero_()
        if head_init == "blob":
            init_blob_prior(self.features, self.heatmap, blob_sharpness)
        # The zoom is bounded to (0, 2): an unbounded one flipped or zoomed out of the
        # canvas within a few steps in probes; the logit offset puts step 0 at init_scale.
        self.zoom_offset = math.log(init_scale / (ZOOM_MAX - init_scale))

    def attention_map(self, x: Tensor) -> Tensor:
        """``(N, h, w)`` softmax weights over the cells of the feature map."""
        logits = self.heatmap(self.features(x))  # (N, 1, h, w)
        n, _, h, w = logits.shape
        return logits.view(n, h * w).softmax(1).view(n, h, w)

    def peaks(self, x: Tensor, k: int, radius: int) -> Tensor:
        """``(N, k, 2)`` translations ``(t_x, t_y)`` of the ``k`` strongest separate peaks.

        Greedy non-maximum suppression on the heatmap: each peak is the strongest cell
        left, placed at the soft-argmax of the ``(2·radius + 1)²`` cells around it
        (sub-cell and differentiable, as :meth:`forward`); those cells are then taken
        out. Which cell wins is a hard choice: no gradient moves a peak across the map.
        """
        logits = self.heatmap(self.features(x))[:, 0]  # (N, h, w)
        n, h, w = logits.shape
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        free = logits.detach()
        found = []
        for _ in range(k):
            best = free.reshape(n, -1).argmax(1)
            near = ((rows - (best // w).view(n, 1, 1)).abs() <= radius) & (
                (cols - (best % w).view(n, 1, 1)).abs() <= radius
            )
            weights = logits.masked_fill(~near, -math.inf).view(n, -1).softmax(1).view(n, h, w)
            found.append(soft_argmax(weights))
            free = free.masked_fill(near, -math.inf)
        return torch.stack(found, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x)
        n, _, h, w = features.shape
        weights = self.heatmap(features).view(n, h * w).softmax(1).view(n, h, w)
        zoom_logit = self.zoom(features.mean((2, 3))).squeeze(1) + self.zoom_offset
        scale = ZOOM_MAX * torch.sigmoid(zoom_logit)
        return torch.cat([scale.unsqueeze(1), soft_argmax(weights)], dim=1)


def init_blob_prior(
    features: nn.Sequential, heatmap: nn.Conv2d, sharpness: float = BLOB_SHARPNESS
) -> None:
    """Start a heatmap head as a detector of the largest mass of bright pixels.

    Channel 0 of the first stage averages every input channel over its window; channel 0
    of each later stage averages the previous stage's channel 0; the heatmap reads channel
    0 alone, sharpened by ``sharpness``. At step 0 the soft-argmax therefore points at
    the densest ink at the object's scale (on cluttered canvases: the object, not the
    fragments), so the classifier sees the object from the first step and the glimpse
    has a gradient to follow. The other channels keep their random initialisation.
    """
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for i, conv in enumerate(convs):
            conv.weight[0].zero_()
            conv.bias[0].zero_()
            window = conv.weight[0] if i == 0 else conv.weight[0, 0]
            window.fill_(1.0 / window.numel())
        heatmap.weight.zero_()
        heatmap.bias.zero_()
        heatmap.weight[0, 0] = sharpness


def theta_from_params(params: Tensor, transform: str) -> Tensor:
    """``(N, k)`` transform parameters → affine ``θ`` ``(N, 2, 3)``.

    ``affine``: the six entries row by row. ``attention``: ``(s, t_x, t_y)`` →
    ``[[s, 0, t_x], [0, s, t_y]]`` (isotropic zoom and shift, as in the STN paper).
    """
    if transform == "affine":
        return params.view(-1, 2, 3)
    s, tx, ty = params.unbind(1)
    zero = torch.zeros_like(s)
    return torch.stack([s, zero, tx, zero, s, ty], dim=1).view(-1, 2, 3)


def compose_params(outer: Tensor, inner: Tensor, transform: str) -> Tensor:
    """Parameters of ``x ↦ outer(inner(x))``: ``inner`` refines the region ``outer`` chose.

    ``(N, k)`` each. Attention: ``s = s₁·s₂``, ``t = t₁ + s₁·t₂``; affine: ``A = A₁A₂``,
    ``b = A₁b₂ + b₁``.
    """
    if transform == "attention":
        s1, t1 = outer[:, :1], outer[:, 1:]
        return torch.cat([s1 * inner[:, :1], t1 + s1 * inner[:, 1:]], dim=1)
    a1, b1 = outer.view(-1, 2, 3).split([2, 1], dim=2)
    a2, b2 = inner.view(-1, 2, 3).split([2, 1], dim=2)
    return torch.cat([a1 @ a2, a1 @ b2 + b1], dim=2).reshape(-1, 6)


def identity_params(transform: str, init_scale: float = 1.0) -> tuple[float, ...]:
    """The start transform: the identity, zoomed by ``init_scale`` (< 1 zooms in)."""
    if transform == "affine":
        return (init_scale, 0.0, 0.0, 0.0, init_scale, 0.0)
    return (init_scale, 0.0, 0.0)


IDENTITY = {"affine": identity_params("affine"), "attention": identity_params("attention")}


@dataclass(frozen=True)
class StnConfig(SamplingOptions, LocalisationOptions, LearnedReducerConfig):
    """Options of the spatial transformer; the shared ones come from the option groups."""

    transform: str = option(
        "attention", "affine (6 parameters) or attention (zoom + shift, 3; separable sampling)"
    )
    loc_downscale: float | None = option(
        None,
        "instead of a fixed loc_size, shrink the input by this factor (heatmap head only; "
        "the side is rounded to a multiple of 2^stages), so the detector looks for objects "
        "of the same size in input pixels on any canvas; null: loc_size",
    )
    loc_hidden: int = option(64, "localisation net: width of the regression head's hidden layer")
    loc_batch_norm: bool = option(
        True,
        "localisation net: batch norm after each convolution. On by default: without it the "
        "features of a mostly dark canvas hardly differ between images, the head learns one "
        "shared transform and the STN does not follow the object (docs/stn.md, issue 25)",
    )
    loc_head_init: str = option(
        "zeros",
        "zeros (the STN paper: every image gets the same transform at step 0), small "
        "(small random head weights: the transform already differs a little per image) or "
        "blob (a heatmap head starts as a detector of the largest mass of ink)",
    )
    blob_sharpness: float = option(
        BLOB_SHARPNESS,
        "with loc_head_init=blob, the heatmap's start weight on the ink-mass channel "
        "(softmax sharpness; larger = less pull from runner-up blobs)",
    )
    loc_head: str = option(
        "regression",
        "regression (conv–fc–linear head, the STN paper) or heatmap (soft-argmax over a "
        "translation-equivariant heatmap; attention only)",
    )
    init_scale: float = option(1.0, "zoom at step 0; < 1 starts zoomed in on the centre")
    glimpses: int = option(
        1,
        "1, or 2 for coarse-to-fine: a second localisation net looks at the first "
        "glimpse's region (at loc_size) and refines it, starting at no change",
    )
    zoom_schedule: tuple[float, ...] = option(
        (),
        "a curriculum: the attention zoom of the first epochs, fixed ([0.3, 0.5]: epoch 1 "
        "zooms 0.3, epoch 2 0.5, then the predicted zoom); meanwhile only the shift is "
        "learned. Set init_scale to the last entry for a smooth handover",
    )
    glimpse_size: int | None = option(
        None,
        "fix the attention window to this many input pixels (along the shorter side) for "
        "every epoch, whatever the canvas: zoom = glimpse_size / min(H, W); only the "
        "position is learned. Set it from the objects' size (e.g. 1.5× it); null: learned",
    )
    candidates: int = option(
        1,
        "1, or K > 1 glimpses per image at the heatmap's K strongest separate peaks "
        "(heatmap head with glimpse_size); the classifier keeps each class's largest logit "
        "over them (multiple-instance max-pooling), at K classifier passes per image",
    )
    sampler_input: str = option(
        "raw",
        "raw (the images as they are: the sampler's zero padding is the canvas's black "
        "background) or standardized (the batch shifted to zero mean, unit variance before "
        "sampling, as a pipeline that normalises before the STN: padding then differs from "
        "the background; an ablation, docs/stn.md)",
    )
    loc_warmup_epochs: int = option(
        0,
        "a curriculum: the localisation net stays frozen at its start transform for this "
        "many epochs, so the classifier learns on the plain view first",
    )

    def __post_init__(self) -> None:
        require_choice("transform", self.transform, TRANSFORMS)
        super().__post_init__()
        self._check_head()
        self._check_zoom()
        self._check_glimpses()
        self._check_localisation_input()
        # What the localisation nets check when built, checked here first.
        _check_head_init(self.loc_head_init)
        if self.loc_head == "heatmap":
            _check_heatmap_channels(self.loc_channels)
        _check_divisible(self.loc_size, len(self.loc_channels))

    def _check_head(self) -> None:
        require_choice("loc_head", self.loc_head, LOC_HEADS)
        require_choice("sampler_input", self.sampler_input, SAMPLER_INPUTS)
        if self.loc_head == "heatmap" and self.transform != "attention":
            raise ReducerConfigError(
                "loc_head=heatmap predicts a zoom and a shift only: use transform=attention"
            )
        if self.loc_head_init == "blob" and self.loc_head != "heatmap":
            raise ReducerConfigError(
                "loc_head_init=blob initialises a heatmap: use loc_head=heatmap"
            )
        if self.blob_sharpness <= 0:
            raise ReducerConfigError(f"blob_sharpness must be > 0, got {self.blob_sharpness}")

    def _check_zoom(self) -> None:
        if not 0 < self.init_scale < ZOOM_MAX:
            raise ReducerConfigError(
                f"init_scale must lie in (0, {ZOOM_MAX:g}), got {self.init_scale}"
            )
        if self.glimpses not in (1, 2):
            raise ReducerConfigError(f"glimpses must be 1 or 2, got {self.glimpses}")
        schedule = list(self.zoom_schedule)
        if schedule and self.transform != "attention":
            raise ReducerConfigError(
                "zoom_schedule bounds the attention zoom: use transform=attention"
            )
        if any(not 0 < v for v in schedule):
            raise ReducerConfigError(f"zoom_schedule entries must be > 0, got {schedule}")
        if self.glimpse_size is not None:
            if self.transform != "attention":
                raise ReducerConfigError(
                    "glimpse_size fixes the attention zoom: use transform=attention"
                )
            if schedule:
                raise ReducerConfigError(
                    "glimpse_size fixes the zoom for every epoch: drop zoom_schedule or it"
                )
            if self.glimpse_size < 1:
                raise ReducerConfigError(
                    f"glimpse_size must be >= 1 pixel, got {self.glimpse_size}"
                )

    def _check_glimpses(self) -> None:
        if self.candidates < 1:
            raise ReducerConfigError(f"candidates must be >= 1, got {self.candidates}")
        if self.candidates > 1 and (
            self.loc_head != "heatmap" or self.glimpse_size is None or self.glimpses != 1
        ):
            raise ReducerConfigError(
                "candidates > 1 places fixed-size glimpses at the heatmap's peaks: use "
                "loc_head=heatmap, transform=attention, a glimpse_size and glimpses=1"
            )
        if self.loc_warmup_epochs < 0:
            raise ReducerConfigError(
                f"loc_warmup_epochs must be >= 0, got {self.loc_warmup_epochs}"
            )

    def _check_localisation_input(self) -> None:
        if self.loc_downscale is None:
            return
        if self.loc_head != "heatmap":
            raise ReducerConfigError(
                "loc_downscale needs loc_head=heatmap (a regression head's input size "
                "is fixed by its linear layer): set loc_size instead"
            )
        if not self.loc_downscale >= 1:
            raise ReducerConfigError(f"loc_downscale must be >= 1, got {self.loc_downscale}")


@register_reducer("stn", StnConfig)
class SpatialTransformer(Reducer):
    """Learned reducer ``(N, C, H, W) → (N·K, C, *output_size)`` (``K = candidates``, 1
    unless set); options: :class:`StnConfig`.

    With several ``candidates``, ``forward`` returns the K glimpses of each image
    image-major and :class:`stn.measure.train.ReducedClassifier` pools the classifier's
    logits over them, so the classifier, not the detector, decides which glimpse holds the
    object. ``on_epoch_start`` applies the curricula (``zoom_schedule``,
    ``loc_warmup_epochs``: in probes, a localisation net that moved while the classifier
    was still on its 2.30-loss plateau kept it there). The localisation net trains at
    ``trainer.lr × lr_multiplier`` (the STN paper used 0.1) with its ``optimizer``
    (``sgd``: momentum 0.9, the paper's choice).
    """

    learned = True
    config: StnConfig

    def __init__(
        self, config: StnConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        self.kernel = config.sampling_kernel()  # built once; every batch samples with it
        self.region_kernel = get_kernel("bilinear")  # the refinement's view of a region
        self.candidates = config.candidates
        self._loc_multiple = 2 ** len(config.loc_channels)
        self.fixed_zoom: float | None = config.zoom_schedule[0] if config.zoom_schedule else None
        self.localisation = self._localisation_net(config.init_scale)
        # The refinement starts at "no change", so two glimpses start where one does.
        self.refinement = self._localisation_net(1.0) if config.glimpses == 2 else None
        if config.lr_multiplier == 0:
            # Never trains: no gradient, no backward pass, whoever drives the training step.
            # (A warm-up freezes it per epoch instead: the optimiser must still hold it.)
            self.requires_grad_(False)

    def describe(self) -> dict[str, Any]:
        """Identity and size, and every option: tables and figures group by the kernel."""
        return {**super().describe(), **self.described_options()}

    def _localisation_net(self, start_scale: float) -> nn.Module:
        c = self.config
        if c.loc_head == "heatmap":
            return HeatmapLocalisation(
                self.in_channels, c.loc_size, start_scale, c.loc_channels, c.loc_head_init,
                c.loc_batch_norm, c.blob_sharpness,
            )  # fmt: skip
        return LocalisationNet(
            self.in_channels,
            c.loc_size,
            identity_params(c.transform, start_scale),
            c.loc_channels,
            c.loc_hidden,
            c.loc_head_init,
            c.loc_batch_norm,
        )

    def on_epoch_start(self, epoch: int) -> None:
        """Curriculum hook (``stn.measure.train.fit`` calls it): the fixed zoom of ``epoch``
        (0-based)."""
        schedule = self.config.zoom_schedule
        self.fixed_zoom = schedule[epoch] if epoch < len(schedule) else None
        # Frozen parameters get no gradient, so the optimiser leaves them as they are, and
        # a frozen localisation net (lr_multiplier 0) costs no backward pass at all.
        trains = epoch >= self.config.loc_warmup_epochs and self.lr_multiplier > 0
        for parameter in self.parameters():
            parameter.requires_grad_(trains)

    def low_resolution_side(self, input_hw: Sequence[int]) -> int:
        """Side of the localisation net's copy of an input of ``input_hw`` pixels."""
        downscale = self.config.loc_downscale
        if downscale is None:
            return self.config.loc_size
        multiple = self._loc_multiple
        return max(multiple, round(min(input_hw) / downscale / multiple) * multiple)

    def low_resolution(self, x: Tensor) -> Tensor:
        """The ``(N, C, loc_size, loc_size)`` copy the localisation net sees (normalised
        per image when ``loc_norm="standardize"``)."""
        side = self.low_resolution_side(x.shape[-2:])
        if x.shape[-2:] != (side, side):
            x = F.adaptive_avg_pool2d(x, side)
        return standardize(x) if self.config.loc_norm == "standardize" else x

    def params(self, x: Tensor) -> Tensor:
        c = self.config
        params = self.localisation(self.low_resolution(x))
        if self.refinement is not None:
            # The region the first glimpse chose, at loc_size and anti-aliased (it is a view
            # for the localisation net, not the output), refined by the second net.
            side = (c.loc_size, c.loc_size)
            region = self._sample(x, params, side, self.region_kernel, True)
            region = standardize(region) if c.loc_norm == "standardize" else region
            params = compose_params(params, self.refinement(region), c.transform)
        zoom = self.fixed_zoom
        if c.glimpse_size is not None:
            # The window spans at least glimpse_size input pixels along both axes.
            zoom = c.glimpse_size / min(x.shape[-2:])
        if zoom is not None:
            params = torch.cat([torch.full_like(params[:, :1], zoom), params[:, 1:]], 1)
        return params

    def _sample(
        self, x: Tensor, params: Tensor, size: Size, kernel: Kernel, antialias: bool
    ) -> Tensor:
        # Checked in every mode: evaluation after a diverged step would otherwise score a
        # NaN glimpse (or fail inside the sampler without saying why).
        if not torch.isfinite(params).all():
            raise NonFiniteTransformError(
                f"{self.name}: the transformer diverged: the localisation net produced a "
                f"non-finite transform; {DIVERGED_HINT}"
            )
        transform = self.config.transform
        try:
            if transform == "attention" and (antialias or kernel.grid_sample_mode != "bilinear"):
                # Axis-aligned: separable, two small matrix products per image, any support
                # (only F.grid_sample's own bilinear is cheaper).
                scale, translation = params[:, :1].expand(-1, 2), params[:, 1:]
                return sample_axis_aligned(x, scale, translation, size, kernel, antialias)
            grid = affine_grid(theta_from_params(params, transform), size)
            return grid_sample(x, grid, kernel, antialias)
        except SamplingStepError as err:
            # A finite but huge zoom-out: the anti-aliased window would outgrow memory.
            raise TransformerDivergedError(
                f"{self.name}: the transformer diverged: its sampling step along input "
                f"{err.axis} reached {err.step:.3g} px, beyond the bound of {err.bound:.3g} px "
                f"(a grid spanning 4× the input; anti-aliasing sizes every window by it); "
                f"{DIVERGED_HINT}"
            ) from err

    def sample(self, x: Tensor, params: Tensor) -> Tensor:
        """Sample ``x`` ``(N, C, H, W)`` on the grid of ``params`` ``(N, k)``."""
        if self.config.sampler_input == "standardized":
            x = (x - x.mean()) / (x.std() + 1e-5)
        return self._sample(x, params, self.output_size, self.kernel, self.config.antialias)

    def candidate_params(self, x: Tensor) -> Tensor:
        """``(N, K, 3)`` attention parameters of the ``K = candidates`` glimpses of each
        image, strongest heatmap peak first (suppression radius: half a glimpse)."""
        glimpse_size = self.config.glimpse_size
        side = self.low_resolution_side(x.shape[-2:])
        cells = side // self._loc_multiple
        radius = max(1, round(glimpse_size / 2 / (min(x.shape[-2:]) / cells)))
        shifts = self.localisation.peaks(self.low_resolution(x), self.candidates, radius)
        zoom = torch.full_like(shifts[..., :1], glimpse_size / min(x.shape[-2:]))
        return torch.cat([zoom, shifts], 2)

    def forward_with_theta(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, C, h, w)`` output and the affine ``θ`` ``(N, 2, 3)`` it sampled with
        (with several ``candidates``: the strongest peak's glimpse)."""
        if self.candidates > 1:
            params = self.candidate_params(x)[:, 0]
        else:
            params = self.params(x)
        return self.sample(x, params), theta_from_params(params, self.config.transform)

    def forward(self, x: Tensor) -> Tensor:
        if self.candidates > 1:
            params = self.candidate_params(x)  # (N, K, 3)
            # One sampling call per candidate on the same input (no K-fold copy of the
            # full-size batch), stacked image-major: (N, K, C, h, w) → (N·K, C, h, w).
            glimpses = [self.sample(x, params[:, k]) for k in range(self.candidates)]
            return torch.stack(glimpses, 1).flatten(0, 1)
        return self.sample(x, self.params(x))
