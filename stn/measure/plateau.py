"""Did training leave the chance plateau? A verdict per run, from its learning curve.

A classifier that has learned nothing predicts every class with probability 1/C: its
cross-entropy is ln C (2.303 for 10 classes) and its accuracy about 1/C. A run whose
optimiser never leaves that plateau says nothing about its reducer, yet its test
accuracy (≈ 1/C) would enter the reducer's mean like any other. This module names such
runs so the report can count and mark them.

The rule (``PLATEAU_RULE``): a run **ended on the chance plateau** when its last epoch's
training loss ≥ 0.9·ln C **and** its last epoch's training accuracy < 2/C. Both must
hold: a run that lowered its loss, or that classifies clearly better than chance
(twice the chance rate), learned something. For C = 2 the accuracy bound is 1.0, so
only the loss decides. ``left_at_epoch`` is the first epoch whose training loss fell
below 0.9·ln C (``None``: never). The two need not agree: a run can leave and fall
back (``left_at_epoch`` set, ``ended_on_plateau``), or keep a high loss while it
classifies better than 2/C (``left_at_epoch`` ``None``, not on the plateau).

The training loss and accuracy of an epoch are ``stn.measure.train.fit``'s: means over the
epoch's steps, taken while the weights change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# The two thresholds, in units of the chance level; PLATEAU_RULE states them in words.
PLATEAU_LOSS_FRACTION = 0.9  # of ln C: at or above, the loss has not left the plateau
PLATEAU_ACCURACY_MULTIPLE = 2.0  # of 1/C: below, the accuracy has not left it either
PLATEAU_CONDITION = (
    f"last epoch's training loss ≥ {PLATEAU_LOSS_FRACTION}·ln C and training accuracy "
    f"< {PLATEAU_ACCURACY_MULTIPLE:g}/C, C classes"
)
PLATEAU_RULE = f"ended on the chance plateau: {PLATEAU_CONDITION}"


def chance_loss(num_classes: int) -> float:
    """Cross-entropy of a uniform prediction over ``num_classes`` classes: ln C."""
    _check_classes(num_classes)
    return math.log(int(num_classes))


def plateau_verdict(curves: Sequence[dict[str, Any]], num_classes: int) -> dict[str, Any]:
    """Whether a run ended on the chance plateau, from its per-epoch curves.

    Args:
        curves: ``stn.measure.train.fit``'s ``curves``, one dict per epoch in order, each with
            ``train_loss`` and ``train_accuracy`` (``epoch``, 1-based, if present).
        num_classes: C, the number of classes of the dataset (≥ 2).

    Returns:
        The record's ``metrics["plateau"]``: ``ended_on_plateau`` (bool),
        ``left_at_epoch`` (first epoch with training loss < 0.9·ln C, or ``None``),
        ``final_train_loss``, ``chance_loss`` (ln C), ``final_train_accuracy``,
        ``chance_accuracy`` (1/C) and ``rule`` (``PLATEAU_RULE``).

    Raises:
        ValueError: no epochs, C < 2, or an epoch without a finite training loss and
            accuracy.
    """
    _check_classes(num_classes)
    if not curves:
        raise ValueError("curves is empty: a plateau verdict needs at least one epoch")
    losses = [_number(entry, "train_loss", i) for i, entry in enumerate(curves)]
    final_accuracy = _number(curves[-1], "train_accuracy", len(curves) - 1)
    chance = chance_loss(num_classes)
    loss_bound = PLATEAU_LOSS_FRACTION * chance
    accuracy_bound = PLATEAU_ACCURACY_MULTIPLE / num_classes
    left_at = next(
        (
            int(entry.get("epoch", i + 1))
            for i, entry in enumerate(curves)
            if losses[i] < loss_bound
        ),
        None,
    )
    return {
        "ended_on_plateau": bool(losses[-1] >= loss_bound and final_accuracy < accuracy_bound),
        "left_at_epoch": left_at,
        "final_train_loss": losses[-1],
        "chance_loss": chance,
        "final_train_accuracy": final_accuracy,
        "chance_accuracy": 1.0 / num_classes,
        "rule": PLATEAU_RULE,
    }


def _check_classes(num_classes: int) -> None:
    integer = isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool)
    if not integer or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer ≥ 2 (the dataset's class count), got {num_classes!r}"
        )


def _number(entry: Any, key: str, index: int) -> float:
    value = entry.get(key) if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"curves[{index}] needs a finite number under {key!r} "
            f"(stn.measure.train.fit's per-epoch entry), got {value!r}"
        )
    return float(value)


def stalled_counts(flags: Iterable[Any]) -> dict[str, int]:
    """Count the runs of one table row by their ``ended_on_plateau`` flag.

    Returns ``stalled`` (flag ``True``) and ``stalled_unknown`` (no verdict: ``None``,
    NaN, anything but a boolean); the row's ``n`` holds the rest.
    """
    flags = list(flags)
    known = [bool(f) for f in flags if isinstance(f, (bool, np.bool_))]
    return {"stalled": sum(known), "stalled_unknown": len(flags) - len(known)}
