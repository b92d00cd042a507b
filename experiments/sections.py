"""A run's config read once into typed objects (:func:`read_run`), and its model built from
them: what the job and the quiet timing pass share.

Apart from ``experiments.job``: the quiet pass (``experiments.quiet_pass``) needs these
and must not import the job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import torch

from experiments.checkpoints import load_configured_weights
from experiments.classifier import ClassifierSpec
from experiments.schemas import RunConfig
from stn.data.prepare import DatasetSpec, PreparedData
from stn.measure.throughput import ThroughputSettings
from stn.measure.train import ReducedClassifier, TrainSettings
from stn.networks import count_parameters
from stn.options import checked_options
from stn.reducers.registry import build_reducer, reducer_config
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


def read_run(config: Mapping[str, Any]) -> RunConfig:
    """A run's config read once, before any data: :class:`RunConfig` with every section
    the run builds from as its typed object, and ``output_size`` as ``(h, w)``.

    ``run.dataset`` is a ``DatasetSpec``, ``run.trainer`` a ``TrainSettings``,
    ``run.throughput`` a ``ThroughputSettings``, ``run.reducer`` the kind's
    ``ReducerConfig``, ``run.classifier`` a :class:`ClassifierSpec`. An unknown key or a
    mistyped value anywhere fails here, naming the option. The ``logger`` section is read
    by the job before this (the tracker opens first, so that a run whose config fails is
    tracked too); ``objective`` and ``quiet_pass`` by the sweep around the runs.
    """
    run = section_settings(RunConfig, config, "run")
    return dataclasses.replace(
        run,
        output_size=output_size_of(run.output_size),
        classifier=ClassifierSpec.from_section(config["classifier"]),
        trainer=section_settings(TrainSettings, config["trainer"], "trainer"),
        throughput=section_settings(ThroughputSettings, config["throughput"], "throughput"),
        dataset=section_settings(DatasetSpec, config["dataset"], "dataset"),
        reducer=reducer_config(config["reducer"]),
    )


def build_model(
    run: RunConfig, data: PreparedData, device: torch.device, record: Record
) -> ReducedClassifier:
    """The reducer (fitted, if it needs data) and network of ``run`` (read by
    :func:`read_run`), with the record's ``reducer`` and ``classifier`` sections filled in."""
    channels, height, width = data.train.input_shape
    reducer = build_reducer(run.reducer, channels, (height, width), run.output_size)
    # Reseed so the classifier starts from the same weights whatever the reducer drew:
    # otherwise its init (and whether it leaves the ln 10 loss plateau) depends on the reducer.
    torch.manual_seed(run.seed)
    # kind: a predefined network; _target_: the user's own (experiments/classifier.py).
    spec: ClassifierSpec = run.classifier
    classifier = spec.build(channels, data.num_classes, run.output_size)
    # classifier.checkpoint / frozen: weights loaded (and kept) before any training.
    loaded = load_configured_weights(spec, classifier, channels, data.num_classes, run.output_size)
    record.classifier = ClassifierInfo.from_json(
        {**spec.describe(), "parameters": count_parameters(classifier), **loaded}
    )
    if reducer.needs_fit:
        record.reducer_fit = reducer.fit(data.train, device=device)
    record.reducer = ReducerInfo.from_json(reducer.describe())
    return ReducedClassifier(reducer, classifier, frozen_classifier=spec.frozen)
