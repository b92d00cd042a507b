"""The downstream network's options and the registry every predefined network adds itself to.

A network maps ``(N, C, h, w)`` to ``(N, num_classes)`` logits. Each kind is an
``nn.Module`` built as ``cls(in_channels, num_classes, input_size, **options)``, with a
frozen :class:`ClassifierConfig` subclass holding those options, declared together::

    @dataclass(frozen=True)
    class TinyConfig(ClassifierConfig):
        width: int = option(16, "channels of the one convolution")

    @register_network("tiny", TinyConfig)
    class TinyNet(nn.Module): ...

``conf/classifier/*.yaml`` presets extend the kind's config (Hydra schema
``classifier/base_<kind>``) and only override. ``stn.networks`` imports every module of
this package, so importing it fills :data:`NETWORKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from torch import nn

from stn.options import option
from stn.registry import Registry


@dataclass(frozen=True)
class ClassifierConfig:
    """Options every predefined network's section has; each kind's config adds its own.

    Each kind's config is the one home of its options' defaults, types and help: the
    network's constructor takes its defaults from it, ``conf/classifier/*.yaml`` presets
    extend it (Hydra schema ``classifier/base_<kind>``) and only override.
    """

    name: str = option("", "label in tables and run ids (empty: the kind)")
    kind: str = option(
        "", "which registered network builds this (set by its schema, classifier/base_<kind>)"
    )
    checkpoint: str | None = option(
        None,
        "load the network's weights from this file (a state dict; experiment="
        "frozen_checkpoint writes one), checked against the network before training",
    )
    frozen: bool = option(
        False,
        "keep the network as loaded: no gradient, not optimised, batch norm in evaluation "
        "mode; only the reducer trains (needs checkpoint)",
    )


def network_options(config: ClassifierConfig) -> dict[str, Any]:
    """The constructor's options of ``config``: every field but the shared ones (``name``,
    ``kind``, ``checkpoint``, ``frozen``: the run reads those, not the network)."""
    shared = {f.name for f in fields(ClassifierConfig)}
    return {f.name: getattr(config, f.name) for f in fields(config) if f.name not in shared}


def _make_network(
    cls: type[nn.Module],
    config: ClassifierConfig,
    in_channels: int,
    num_classes: int,
    input_size: Sequence[int],
) -> nn.Module:
    return cls(in_channels, num_classes, input_size, **network_options(config))


# kind → network class, filled by @register_network where each kind is defined.
NETWORKS: Registry[type[nn.Module]] = Registry("classifier kind", make=_make_network)
N = TypeVar("N", bound=type[nn.Module])


def register_network(kind: str, config_type: type[ClassifierConfig]) -> Callable[[N], N]:
    """Class decorator: ``classifier.kind: <kind>`` builds this network, its options
    checked against ``config_type``."""
    return NETWORKS.register(kind, config_type)


def classifier_config(section: Mapping[str, Any]) -> ClassifierConfig:
    """The typed config of a predefined network's section: ``section["kind"]`` picks the
    kind; every other key must be one of that kind's options (an unknown one is an error
    naming the valid ones and the closest)."""
    return NETWORKS.config(NETWORKS.check_name(section.get("kind")), section)


def build_classifier(
    kind: str, in_channels: int, num_classes: int, input_size: Sequence[int], **options: Any
) -> nn.Module:
    """Build a registered network by kind (``cnn``, ``resnet``, ``small_cnn``, ``mlp``);
    ``options`` are the kind's config fields (an unknown or mistyped one is an error)."""
    config = classifier_config({**options, "kind": kind})
    return NETWORKS.build(kind, config, in_channels, num_classes, input_size)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
