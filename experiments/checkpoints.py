"""The classifier section's ``checkpoint`` and ``frozen`` options, and ``save_checkpoint``.

``classifier.checkpoint: PATH`` loads trained weights into the configured network;
``classifier.frozen: true`` keeps them as loaded (no gradient, not optimised, batch norm
in evaluation mode): the reducer in front learns to feed a network it cannot change.
Every problem a checkpoint can have is raised before training: the options themselves when
the section is read (``experiments.classifier.ClassifierSpec``), what else needs no data
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

from experiments.classifier import CHECKPOINT, ClassifierSpec
from stn.measure.checkpoint import (
    check_meta,
    file_digest,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)


def check_checkpoint_options(spec: ClassifierSpec, input_size: Sequence[int]) -> None:
    """Before any data: the file, and what its meta says about the network and its input
    size (the options were checked when the section was read). Does nothing when no
    checkpoint is set."""
    if spec.checkpoint is None:
        return
    _, meta = read_checkpoint(spec.checkpoint, CHECKPOINT)
    check_meta(meta, {**spec.identity, "input_size": list(input_size)}, CHECKPOINT)


def load_configured_weights(
    spec: ClassifierSpec,
    network: nn.Module,
    in_channels: int,
    num_classes: int,
    input_size: Sequence[int],
) -> dict[str, Any]:
    """Load the spec's checkpoint into ``network`` (and freeze it if asked).

    Returns the record's facts (``checkpoint``, ``checkpoint_sha256``, ``frozen``), or
    ``{}`` when the spec loads nothing."""
    if spec.checkpoint is None:
        return {}
    # Digest first: the bytes read next are the bytes the record names.
    digest = file_digest(spec.checkpoint)
    state, meta = read_checkpoint(spec.checkpoint, CHECKPOINT)
    expected = {
        **spec.identity,
        "input_size": list(input_size),
        "in_channels": int(in_channels),
        "num_classes": int(num_classes),
    }
    check_meta(meta, expected, CHECKPOINT)
    load_weights(network, state, CHECKPOINT)
    if spec.frozen:
        freeze(network)
    return {"checkpoint": spec.checkpoint, "checkpoint_sha256": digest, "frozen": spec.frozen}


def freeze(network: nn.Module) -> None:
    """No gradient for any parameter, batch norm (and dropout) in evaluation mode.

    ``ReducedClassifier(frozen_classifier=True)`` keeps it in evaluation mode when the
    model is switched to training."""
    network.requires_grad_(False)
    network.eval()


def save_trained_network(
    path: str,
    network: nn.Module,
    spec: ClassifierSpec,
    in_channels: int,
    num_classes: int,
    input_size: Sequence[int],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``network`` to ``path`` with the meta a loading run checks, plus
    ``provenance`` (run id, dataset, reducer, accuracy); returns path and digest."""
    meta = {
        **spec.identity,
        "input_size": [int(s) for s in input_size],
        "in_channels": int(in_channels),
        "num_classes": int(num_classes),
        "classifier": spec.settings(),
        **provenance,
    }
    written = save_checkpoint(path, network, meta)
    return {"path": str(Path(path)), "sha256": file_digest(written)}
