"""What the learned window selectors share: their option group and training's progress.

``attention_windows`` (``stn.reducers.attention_sampling``) and ``ips``
(``stn.reducers.ips``) both choose, per image, ``windows`` of the multi-scale candidates
of a :class:`stn.reducers.windows.WindowGrid` (sides ``window_sizes``). Both can start
with a **selection warm-up**: for the first ``selection_warmup`` share of the training
steps the windows are drawn uniformly at random, so the classifier first learns what an
object looks like in a window before the selector commits to its own ranking (a
selector that starts from a random ranking reads mostly clutter and may never leave the
chance plateau). :class:`TrainingProgress` keeps the fraction of training done, from the
trainer's ``Reducer.on_step_start`` hook, for that warm-up and for schedules such as
perturbed top-K's σ decay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from stn.options import option
from stn.reducers.base import ReducerConfig, ReducerConfigError


@dataclass(frozen=True)
class WindowChoiceOptions(ReducerConfig):
    """Which windows a selector may read and how many: shared by the selector kinds."""

    window_sizes: tuple[int, ...] = option(
        [32, 64, 128], "window sides in input pixels; the selector chooses among them"
    )
    windows: int = option(4, "windows read per image (one classifier pass each)")
    selection_warmup: float = option(
        0.0,
        "share of the training steps, at the start, during which windows are drawn "
        "uniformly at random (the classifier learns to read windows first; 0: none)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.windows < 1:
            raise ReducerConfigError(f"windows must be >= 1, got {self.windows}")
        if not 0 <= self.selection_warmup < 1:
            raise ReducerConfigError(
                f"selection_warmup must be in [0, 1) (a share of the training steps), got "
                f"{self.selection_warmup}"
            )


class TrainingProgress:
    """The fraction of training done, ``step / total_steps`` of the step about to run
    (0 before the first step; evaluation and code outside the trainer see the last value,
    or 0). ``update`` is what ``Reducer.on_step_start`` calls."""

    def __init__(self) -> None:
        self.fraction = 0.0

    def update(self, step: int, total_steps: int) -> None:
        if total_steps < 1 or not 0 <= step < total_steps:
            raise ValueError(f"step {step} of {total_steps}: need 0 <= step < total_steps")
        self.fraction = step / total_steps

    def in_warmup(self, warmup: float) -> bool:
        """Whether the step about to run lies in the first ``warmup`` share of training."""
        return self.fraction < warmup

    def linear_decay(self, start: float) -> float:
        """``start`` falling linearly to 0 over training: ``start · (1 − fraction)``."""
        return start * (1.0 - self.fraction)


def uniform_choice(images: int, count: int, k: int, device: torch.device) -> Tensor:
    """``(N, K)`` long: K distinct windows of ``count`` per image, uniformly at random (the
    top K of i.i.d. uniform keys)."""
    return torch.rand(images, count, device=device).topk(k, dim=1).indices


def attention_pool(name: str, weights: Tensor | None, logits: Tensor) -> Tensor:
    """``(N, K, classes) → (N, classes)``: ``Σ_k w_k f_k`` with ``weights`` ``(N, K)``, the
    attention a selector's forward kept for this batch; a clear error when it is missing
    or belongs to another batch (the reducer, the classifier, then this, once per batch)."""
    if weights is None or weights.shape != logits.shape[:2]:
        raise RuntimeError(
            f"{name}: pool_candidates needs the weights of a forward on the same "
            f"batch; got logits {tuple(logits.shape)} and weights "
            f"{None if weights is None else tuple(weights.shape)} (call the reducer, then "
            "the classifier, then pool_candidates, once per batch)"
        )
    return (weights.unsqueeze(-1) * logits).sum(1)
