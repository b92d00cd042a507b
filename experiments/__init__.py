"""Hydra entry points: compose a config, call the ``stn`` library, write one record."""

from pathlib import Path

# The config groups (conf/ beside this package): every Hydra app and tool composes from here,
# whichever way it was started (`stn-bench run`, `python -m experiments.run`).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
