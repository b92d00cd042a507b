"""The downstream networks that read the reduced images: one registry (``NETWORKS``), the
predefined kinds in ``models``. Importing the package registers every kind."""

from stn.networks import models  # noqa: F401  (registers cnn, resnet, small_cnn, mlp)
from stn.networks.base import (
    NETWORKS,
    ClassifierConfig,
    build_classifier,
    classifier_config,
    count_parameters,
    network_options,
    register_network,
)

__all__ = [
    "NETWORKS",
    "ClassifierConfig",
    "build_classifier",
    "classifier_config",
    "count_parameters",
    "network_options",
    "register_network",
]
