"""Presets as Hydra composes them, for the tests that check what a sweep preset expands to."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

CONF = Path(__file__).resolve().parents[1] / "conf"


def composed(*overrides: str):
    """The config ``overrides`` compose to, with Hydra's own section (``cfg.hydra``)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def sweep_values(cfg, key: str) -> list:
    """The values a sweeper parameter expands to, parsed as Hydra parses them."""
    text = f"{key}={cfg.hydra.sweeper.params[key]}"
    override = OverridesParser.create().parse_overrides([text])[0]
    return list(override.sweep_iterator())
