"""A run's typed sections and its model, from its config: what the job and the quiet
timing pass share.

Apart from ``experiments.job`` because the schemas import the quiet pass, which needs these
and must not import the job (the job imports the schemas).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import torch

from experiments.checkpoints import load_configured_weights
from experiments.classifier import build_configured_classifier, describe_classifier
from stn.data.prepare import PreparedData
from stn.measure.train import ReducedClassifier
from stn.networks import count_parameters
from stn.options import checked_options
from stn.reducers.registry import build_reducer
from stn.results.record import ClassifierInfo, Record, ReducerInfo

T = TypeVar("T")


def section_settings(config_type: type[T], section: Mapping[str, Any], what: str) -> T:
    """A section's typed settings (``TrainSettings``, ...): an unknown key or a mistyped
    value is an ``OptionsError`` naming the valid options and the closest; the class's
    own checks raise as they are, their messages naming ``<section>.<option>``."""
    return config_type(**checked_options(config_type, section, what))


def output_size_of(value: Any) -> tuple[int, int]:
    """The config's ``output_size`` as ``(h, w)``, or a ValueError saying what form it takes."""
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(
        f"output_size must be [h, w], two positive integers (e.g. output_size=[48,48]); "
        f"got {value!r}"
    )


def build_model(
    config: Mapping[str, Any],
    data: PreparedData,
    output_size: tuple[int, int],
    seed: int,
    device: torch.device,
    record: Record,
) -> ReducedClassifier:
    """The run's reducer (fitted, if it needs data) and network, with the record's
    ``reducer`` and ``classifier`` sections filled in."""
    channels, height, width = data.train.input_shape
    reducer = build_reducer(config["reducer"], channels, (height, width), output_size)
    # Reseed so the classifier starts from the same weights whatever the reducer drew:
    # otherwise its init (and whether it leaves the ln 10 loss plateau) depends on the reducer.
    torch.manual_seed(seed)
    # kind: a predefined network; _target_: the user's own (experiments/classifier.py).
    classifier = build_configured_classifier(
        config["classifier"], channels, data.num_classes, output_size
    )
    # classifier.checkpoint / frozen: weights loaded (and kept) before any training.
    loaded = load_configured_weights(
        config["classifier"], classifier, channels, data.num_classes, output_size
    )
    record.classifier = ClassifierInfo.from_json(
        {
            **describe_classifier(config["classifier"]),
            "parameters": count_parameters(classifier),
            **loaded,
        }
    )
    if reducer.needs_fit:
        record.reducer_fit = reducer.fit(data.train, device=device)
    record.reducer = ReducerInfo.from_json(reducer.describe())
    return ReducedClassifier(reducer, classifier, frozen_classifier=bool(loaded.get("frozen")))
