"""The classifier section's ``checkpoint`` and ``frozen`` options, and ``save_checkpoint``.

``classifier.checkpoint: PATH`` loads trained weights into the configured network;
``classifier.frozen: true`` keeps them as loaded (no gradient, not optimised, batch norm
in evaluation mode): the reducer in front learns to feed a network it cannot change.
Every problem a checkpoint can have is raised before training: what needs no data
(missing file, unreadable or unsafe file, not a state dict, saved for another input size
or network) before the data is read (:func:`check_checkpoint_options`), the rest (channels,
classes, keys and shapes) as soon as the network is built (:func:`load_configured_weights`).

``save_checkpoint: PATH`` (a top-level option) writes the trained network with the
metadata those checks read (:func:`save_trained_network`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from stn.measure.checkpoint import (
    CheckpointError,
    check_meta,
    file_digest,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)

OPTION = "classifier.checkpoint"


def frozen_options(section: Mapping[str, Any]) -> tuple[str | None, bool]:
    """``(checkpoint, frozen)`` of a classifier section, checked; a frozen network
    without weights to keep is an error (a random fixed network measures nothing)."""
    checkpoint, frozen = section.get("checkpoint"), section.get("frozen", False)
    if not isinstance(frozen, bool):
        raise CheckpointError(f"classifier.frozen takes true or false, got {frozen!r}")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
        raise CheckpointError(f"{OPTION} must be a file path or null, got {checkpoint!r}")
    if frozen and checkpoint is None:
        raise CheckpointError(
            "classifier.frozen=true needs classifier.checkpoint=PATH: a frozen network keeps "
            "its weights, and a randomly initialised one would measure nothing. Make one "
            "with experiment=frozen_checkpoint (README 'When your network is already "
            "trained'), or set classifier.frozen=false"
        )
    return checkpoint, frozen


def network_identity(section: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint's meta must agree with about the network itself."""
    if section.get("_target_") is not None:
        return {"target": section["_target_"]}
    return {"kind": section.get("kind")}


def check_checkpoint_options(section: Mapping[str, Any], input_size: Sequence[int]) -> None:
    """Before any data: the options, the file, and what its meta says about the network
    and its input size. Does nothing when no checkpoint is set."""
    checkpoint, _ = frozen_options(section)
    if checkpoint is None:
        return
    _, meta = read_checkpoint(checkpoint, OPTION)
    check_meta(meta, {**network_identity(section), "input_size": list(input_size)}, OPTION)


def load_configured_weights(
    section: Mapping[str, Any],
    network: nn.Module,
    in_channels: int,
    num_classes: int,
    input_size: Sequence[int],
) -> dict[str, Any]:
    """Load the section's checkpoint into ``network`` (and freeze it if asked).

    Returns the record's facts (``checkpoint``, ``checkpoint_sha256``, ``frozen``), or
    ``{}`` when the section loads nothing."""
    checkpoint, frozen = frozen_options(section)
    if checkpoint is None:
        return {}
    # Digest first: the bytes read next are the bytes the record names.
    digest = file_digest(checkpoint)
    state, meta = read_checkpoint(checkpoint, OPTION)
    expected = {
        **network_identity(section),
        "input_size": list(input_size),
        "in_channels": int(in_channels),
        "num_classes": int(num_classes),
    }
    check_meta(meta, expected, OPTION)
    load_weights(network, state, OPTION)
    if frozen:
        freeze(network)
    return {"checkpoint": checkpoint, "checkpoint_sha256": digest, "frozen": frozen}


def freeze(network: nn.Module) -> None:
    """No gradient for any parameter, batch norm (and dropout) in evaluation mode.

    ``ReducedClassifier(frozen_classifier=True)`` keeps it in evaluation mode when the
    model is switched to training."""
    network.requires_grad_(False)
    network.eval()


def save_trained_network(
    path: str,
    network: nn.Module,
    section: Mapping[str, Any],
    in_channels: int,
    num_classes: int,
    input_size: Sequence[int],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``network`` to ``path`` with the meta a loading run checks, plus
    ``provenance`` (run id, dataset, reducer, accuracy); returns path and digest."""
    meta = {
        **network_identity(section),
        "input_size": [int(s) for s in input_size],
        "in_channels": int(in_channels),
        "num_classes": int(num_classes),
        "classifier": {k: v for k, v in section.items() if k not in ("checkpoint", "frozen")},
        **provenance,
    }
    written = save_checkpoint(path, network, meta)
    return {"path": str(Path(path)), "sha256": file_digest(written)}
