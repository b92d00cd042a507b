"""Fit and evaluate a reducer + downstream network (plain PyTorch), returning metrics."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from stn.data.stream import Batch, BatchStream
from stn.options import option
from stn.reducers.base import NonFiniteLossError, Reducer, reduce_batch

LR_SCHEDULES = ("warmup_cosine", "constant")
# Far above any batch a 48×48 network trains on (the presets use 32-256), far below one
# whose timing copy asks for gigabytes: trainer.batch_size=1000000000 trained (batches
# are capped by the split) and then lost its result when the timing batch did not fit.
MAX_BATCH_SIZE = 2**16


@dataclass(frozen=True)
class TrainSettings:
    """The ``trainer`` section: the one home of each option's default, type and help.

    ``conf/trainer/*.yaml`` presets extend it (Hydra schema ``trainer/base_trainer``) and
    only override; ``stn-bench run --cfg job`` shows every value a run uses.
    """

    epochs: int = option(8, "passes over the training split")
    lr: float = option(0.01, "peak learning rate, reached after the warm-up")
    weight_decay: float = option(1e-4, "AdamW's decoupled decay (0: plain Adam)")
    lr_schedule: str = option(
        "warmup_cosine",
        "warmup_cosine (linear warm-up, half-cosine to 0) or constant",
    )
    warmup_fraction: float = option(0.15, "share of all steps spent warming up")
    grad_clip_norm: float | None = option(1.0, "clip the global gradient norm (null: no clipping)")
    batch_size: int = option(
        64, f"images per training step (and per evaluation batch), 1 to {MAX_BATCH_SIZE}"
    )
    max_steps_per_epoch: int | None = option(
        None, "cap the steps of an epoch (null: the whole split; else >= 1)"
    )
    progress: bool = option(True, "a tqdm bar per epoch")

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"trainer.epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"trainer.lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"trainer.batch_size must be >= 1, got {self.batch_size}")
        if self.batch_size > MAX_BATCH_SIZE:
            raise ValueError(
                f"trainer.batch_size must be <= {MAX_BATCH_SIZE} (a bound far above any "
                f"batch a small network trains on), got {self.batch_size}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"trainer.lr_schedule={self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}"
            )
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(
                f"trainer.warmup_fraction must be in [0, 1), got {self.warmup_fraction}"
            )
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ValueError(
                f"trainer.grad_clip_norm must be > 0 or null (no clipping), "
                f"got {self.grad_clip_norm}"
            )
        steps = self.max_steps_per_epoch
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise ValueError(
                f"trainer.max_steps_per_epoch must be null (whole epochs) or an integer >= 1, "
                f"got {steps!r}"
            )


def lr_factor(step: int, total_steps: int, schedule: str, warmup_fraction: float) -> float:
    """The multiple of every group's base learning rate at optimiser step ``step`` (0-based).

    ``warmup_cosine``: linear warm-up from ``1 / warmup_steps`` to 1 over the first
    ``warmup_fraction`` of the steps, then half a cosine down to 0 at the last step; the
    warm-up keeps batch norm's first, noisy statistics from throwing Adam's first steps
    far, the decay lets the last epochs settle. ``constant``: always 1.
    """
    if schedule == "constant":
        return 1.0
    warmup_steps = max(1, round(warmup_fraction * total_steps))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps + 1) / remaining)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class ReducedClassifier(nn.Module):
    """``reducer`` then ``classifier``: ``(N, C, H, W) → (N, num_classes)`` logits.

    A reducer with ``candidates`` K > 1 gives K glimpses per image; its
    ``pool_candidates`` turns their logits into one reading (by default each class keeps
    its largest logit: the image is read as the class its most convincing glimpse shows).

    ``frozen_classifier``: the network's weights stay as loaded (they need
    ``requires_grad=False``, see ``experiments.checkpoints.freeze``) and it stays in
    evaluation mode whatever ``train()`` asks: its batch norm reads the running
    statistics it was trained with and never updates them.
    """

    def __init__(
        self, reducer: Reducer, classifier: nn.Module, frozen_classifier: bool = False
    ) -> None:
        super().__init__()
        self.reducer = reducer
        self.classifier = classifier
        self.frozen_classifier = frozen_classifier

    def train(self, mode: bool = True) -> ReducedClassifier:
        super().train(mode)
        if self.frozen_classifier:
            self.classifier.eval()
        return self

    def forward(self, x: Tensor, boxes: Tensor | None = None) -> Tensor:
        logits = self.classifier(reduce_batch(self.reducer, x, boxes))
        if self.reducer.candidates > 1:
            logits = self.reducer.pool_candidates(
                logits.view(x.shape[0], self.reducer.candidates, -1)
            )
        return logits


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - code outside stn (e.g. scikit-learn) may use the global RNG
    torch.manual_seed(seed)


SGD_MOMENTUM = 0.9  # the STN paper's localisation nets trained with momentum SGD


class JointOptimizer:
    """Several optimisers stepped as one: the classifier's Adam and a reducer's own."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()


def make_optimizer(
    model: ReducedClassifier, settings: TrainSettings
) -> torch.optim.Optimizer | JointOptimizer:
    """AdamW for the classifier; the reducer's parameters at ``lr × reducer.lr_multiplier``
    with the reducer's ``optimizer``: AdamW (one optimiser) or SGD with momentum 0.9.
    AdamW decays weights apart from the gradient's scale (equal to Adam at
    ``weight_decay=0``).

    The STN paper trains its localisation network at a tenth of the base rate; any
    learned reducer can ask for its own multiple through ``lr_multiplier``.
    """
    # A frozen classifier's parameters have no gradient: they never join a group.
    classifier_params = [p for p in model.classifier.parameters() if p.requires_grad]
    groups = [{"params": classifier_params, "lr": settings.lr}] if classifier_params else []
    reducer_params = [p for p in model.reducer.parameters() if p.requires_grad]
    reducer_lr = settings.lr * model.reducer.lr_multiplier
    # The reducer validated its ``optimizer`` (one of stn.reducers.base.REDUCER_OPTIMIZERS).
    if reducer_params and model.reducer.optimizer == "sgd":
        return JointOptimizer(
            *([torch.optim.AdamW(groups, weight_decay=settings.weight_decay)] if groups else []),
            torch.optim.SGD(
                reducer_params,
                lr=reducer_lr,
                momentum=SGD_MOMENTUM,
                weight_decay=settings.weight_decay,
            ),
        )
    if reducer_params:
        groups.append({"params": reducer_params, "lr": reducer_lr})
    return torch.optim.AdamW(groups, weight_decay=settings.weight_decay)


def _to(batch: Batch, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
    boxes = None if batch.boxes is None else batch.boxes.to(device)
    return batch.x.to(device), batch.y.to(device), boxes


@torch.no_grad()
def evaluate(
    model: ReducedClassifier, stream: BatchStream, device: torch.device
) -> dict[str, float]:
    """Mean cross-entropy and accuracy over every batch of ``stream``."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for batch in stream.batches(epoch=0, shuffle=False):
        x, y, boxes = _to(batch, device)
        logits = model(x, boxes)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return {"loss": total_loss / count, "accuracy": correct / count}


def _check_finite_parameters(model: nn.Module, epoch: int) -> None:
    # A finite loss can hide a diverged weight or transform (e.g. an STN's θ saturating the
    # grid outside the image); the epoch's evaluation would then report garbage silently.
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise NonFiniteLossError(
                f"parameter {name} became non-finite during epoch {epoch + 1}; "
                "lower trainer.lr or the reducer's lr_multiplier"
            )


def fit(
    model: ReducedClassifier,
    train: BatchStream,
    test: BatchStream,
    settings: TrainSettings,
    device: torch.device,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``train`` and evaluate on ``test`` after every epoch.

    Returns the metrics of the record: ``test_accuracy``, ``test_loss``,
    ``train_seconds``, ``steps`` and per-epoch ``curves``. Raises
    ``NonFiniteLossError`` when the loss stops being finite.
    """
    model.to(device)
    if not any(p.requires_grad for p in model.parameters()):
        return _evaluate_only(model, train, test, device)
    optimizer = make_optimizer(model, settings)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    steps_per_epoch = len(train)
    if settings.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, settings.max_steps_per_epoch)
    total_steps = settings.epochs * steps_per_epoch
    curves: list[dict[str, Any]] = []
    steps, train_seconds = 0, 0.0
    for epoch in range(settings.epochs):
        # A reducer with a curriculum (e.g. a zoom bound per epoch) sets it up here.
        model.reducer.on_epoch_start(epoch)
        model.train()
        started = time.perf_counter()
        loss_sum, correct, count = 0.0, 0, 0
        bar = tqdm(
            train.batches(epoch=epoch, shuffle=True),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{settings.epochs}",
            disable=not settings.progress,
            leave=False,
        )
        for step, batch in enumerate(bar):
            if step >= steps_per_epoch:
                break
            x, y, boxes = _to(batch, device)
            model.reducer.on_step_start(steps, total_steps)
            logits = model(x, boxes)
            loss = F.cross_entropy(logits, y)
            if not math.isfinite(loss.item()):
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                    "lower trainer.lr or the reducer's lr_multiplier"
                )
            # A learned reducer's regulariser (Reducer.auxiliary_loss) is optimised, not reported.
            auxiliary = model.reducer.auxiliary_loss(y)
            total = loss if auxiliary is None else loss + auxiliary
            # Nothing to learn this step: a reducer still warming up (frozen for its first
            # epochs) before a frozen network. The step still counts for the schedule.
            if total.requires_grad:
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if settings.grad_clip_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip_norm)
                factor = lr_factor(
                    steps, total_steps, settings.lr_schedule, settings.warmup_fraction
                )
                for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base_lr * factor
                optimizer.step()
            steps += 1
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
            bar.set_postfix(loss=f"{loss_sum / count:.3f}")
        train_seconds += time.perf_counter() - started
        _check_finite_parameters(model, epoch)
        held_out = evaluate(model, test, device)
        entry = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / count,
            "train_accuracy": correct / count,
            "test_loss": held_out["loss"],
            "test_accuracy": held_out["accuracy"],
            "seconds": time.perf_counter() - started,
        }
        curves.append(entry)
        if on_epoch_end is not None:
            on_epoch_end(entry)
    return {
        "test_accuracy": curves[-1]["test_accuracy"],
        "test_loss": curves[-1]["test_loss"],
        "train_seconds": train_seconds,
        "steps": steps,
        "curves": curves,
    }


def _evaluate_only(
    model: ReducedClassifier, train: BatchStream, test: BatchStream, device: torch.device
) -> dict[str, Any]:
    """``fit``'s metrics for a model with nothing to learn (a fixed reducer before a frozen
    network): both splits read once, ``steps`` 0. Epochs would repeat the same numbers."""
    started = time.perf_counter()
    seen = evaluate(model, train, device)
    held_out = evaluate(model, test, device)
    entry = {
        "epoch": 0,
        "train_loss": seen["loss"],
        "train_accuracy": seen["accuracy"],
        "test_loss": held_out["loss"],
        "test_accuracy": held_out["accuracy"],
        "seconds": time.perf_counter() - started,
    }
    return {
        "test_accuracy": held_out["accuracy"],
        "test_loss": held_out["loss"],
        "train_seconds": 0.0,
        "steps": 0,
        "curves": [entry],
    }
