"""The reducer interface, its option set and the registry every kind adds itself to.

A reducer is a ``torch.nn.Module`` mapping ``(N, C, H, W)`` float images to
``(N·K, C, h, w)`` (``h, w`` = ``output_size``, 48×48 by default; ``K = candidates``, 1
for all but a multi-glimpse STN). Each kind is a :class:`Reducer` subclass with its own
frozen :class:`ReducerConfig` subclass, declared together in the kind's module::

    @dataclass(frozen=True)
    class ResizeConfig(ReducerConfig):
        mode: str = option("bilinear", "...")

    @register_reducer("resize", ResizeConfig)
    class Resize(Reducer): ...

Reducers that need data first (PCA) set ``needs_fit`` and implement ``fit``; reducers
that need the ground-truth object box (the oracle crop) set ``uses_boxes`` and take
``forward(x, boxes)``. Build one from a preset with
``stn.reducers.registry.build_reducer(spec, in_channels, input_size, output_size)``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from torch import Tensor, nn

from stn.options import OptionsError, describe_options, option
from stn.registry import Registry

if TYPE_CHECKING:
    import torch

    from stn.data.stream import BatchStream

Size = tuple[int, int]


class NonFiniteLossError(RuntimeError):
    """Training diverged: the loss (or a learned transform) stopped being finite. Raised by
    the trainer (``stn.measure.train``) and by learned reducers whose transform blew up."""


class ReducerConfigError(OptionsError):
    """A reducer preset that cannot be built; the message names the fix."""


def require_choice(label: str, value: str, choices: Collection[str]) -> None:
    """A ReducerConfigError ``<label> 'x' is not one of a, b`` unless ``value`` is a choice."""
    if value not in choices:
        raise ReducerConfigError(f"{label} {value!r} is not one of {', '.join(choices)}")


REDUCER_OPTIMIZERS = ("adam", "sgd")  # what may train a learned reducer (stn.measure.train)


@dataclass(frozen=True)
class ReducerConfig:
    """Options every reducer kind has; each kind's config adds its own."""

    name: str = option("", "label in tables and run ids (empty: the kind)")
    kind: str = option(
        "", "which registered reducer builds this (set by its schema, reducer/base_<kind>)"
    )

    def __post_init__(self) -> None:
        """Cross-option checks; a kind's config (or shared option group) adds its own and
        calls ``super().__post_init__()``, so every group's checks run."""


@dataclass(frozen=True)
class LearnedReducerConfig(ReducerConfig):
    """Options of reducers trained jointly with the downstream network."""

    lr_multiplier: float = option(1.0, "the reducer trains at trainer.lr × this (same schedule)")
    optimizer: str = option("adam", "adam (with the classifier's AdamW) or sgd (momentum 0.9)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lr_multiplier >= 0:
            raise ReducerConfigError(f"lr_multiplier must be >= 0, got {self.lr_multiplier}")
        require_choice("optimizer", self.optimizer, REDUCER_OPTIMIZERS)


class Reducer(nn.Module):
    """Base class: ``(N, C, H, W) → (N·K, C, *output_size)``, ``K = candidates``.

    ``candidates`` is 1 for every reducer but an STN that offers several glimpses per
    image (image-major); :class:`stn.measure.train.ReducedClassifier` pools the
    classifier's logits over them. ``lr_multiplier``, ``optimizer`` and
    ``on_epoch_start`` are the hooks the trainer calls; learned kinds override them.
    """

    kind: ClassVar[str] = "reducer"
    config_type: ClassVar[type[ReducerConfig]] = ReducerConfig
    learned: bool = False
    needs_fit: bool = False
    uses_boxes: bool = False
    candidates: int = 1

    def __init__(
        self, config: ReducerConfig, in_channels: int, input_size: Size, output_size: Size
    ) -> None:
        super().__init__()
        self.config = config
        self.name = config.name or self.kind
        self.in_channels = int(in_channels)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.output_size = (int(output_size[0]), int(output_size[1]))

    @property
    def lr_multiplier(self) -> float:
        """The reducer's parameters train at ``trainer.lr ×`` this (1 for a fixed kind)."""
        learned = isinstance(self.config, LearnedReducerConfig)
        return self.config.lr_multiplier if learned else LearnedReducerConfig.lr_multiplier

    @property
    def optimizer(self) -> str:
        """What trains the reducer's parameters: one of ``REDUCER_OPTIMIZERS``."""
        learned = isinstance(self.config, LearnedReducerConfig)
        return self.config.optimizer if learned else LearnedReducerConfig.optimizer

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before each epoch (0-based); curricula set up here."""

    def on_step_start(self, step: int, total_steps: int) -> None:
        """Called by the trainer before each training step: ``step`` (0-based) of
        ``total_steps`` in the whole run. Schedules that follow training's progress (a
        noise decayed to 0, a warm-up) read it here; evaluation is never a step."""

    def pool_candidates(self, logits: Tensor) -> Tensor:
        """``(N, K, classes) → (N, classes)``: one reading per image from its K glimpses'
        logits (called when ``candidates > 1``). Default: each class keeps its largest
        logit (multiple-instance max-pooling: the most convincing glimpse decides)."""
        return logits.amax(1)

    def auxiliary_loss(self, labels: Tensor) -> Tensor | None:
        """A term the trainer adds to the loss it optimises (not the loss it reports) after
        each training step's forward and ``pool_candidates``; ``labels`` ``(N,)`` are the
        batch's classes. Default ``None``: nothing (learned kinds add a regulariser here)."""
        return None

    def described_options(self) -> dict[str, Any]:
        """Every option of the config but name and kind, JSON-ready."""
        return describe_options(self.config, leave_out=("name", "kind"))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def fit(self, train: BatchStream, device: torch.device | str | None = None) -> dict[str, Any]:
        """Fit on the training split (never test data), computing on ``device`` where the
        reducer can (``None``: the CPU); returns facts for the record."""
        return {}

    def describe(self) -> dict[str, Any]:
        """The record's ``reducer`` section: what the report groups and labels by. The
        options themselves are in the record's ``config.reducer``; kinds whose tables
        show some add them with ``self.described_options()``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "learned": self.learned,
            "parameters": self.num_parameters(),
            "output_size": list(self.output_size),
        }


# kind → reducer class, filled by @register_reducer where each kind is defined;
# stn.reducers.registry imports every kind's module, so the table is complete there.
REDUCERS: Registry[type[Reducer]] = Registry("reducer kind", ReducerConfigError)

R = TypeVar("R", bound=type[Reducer])


def register_reducer(kind: str, config_type: type[ReducerConfig]) -> Callable[[R], R]:
    """Class decorator: ``kind`` in presets builds this class from a ``config_type``."""
    return REDUCERS.register(kind, config_type)


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
