"""Hydra entry points: compose a config, call the ``stn`` library, write one record."""
