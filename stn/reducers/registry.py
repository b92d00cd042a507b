"""Build any registered reducer from a preset's fields.

Importing this module imports every module of the ``stn.reducers`` package, and each
kind registers itself where it is defined (``@register_reducer`` in
``stn.reducers.base``): a new kind is one new module here plus one preset in
``conf/reducer/``, with no list to extend.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

import stn.reducers
from stn.reducers.base import REDUCERS, Reducer, ReducerConfig, ReducerConfigError, Size


def _import_every_kind() -> None:
    # Each module's @register_reducer runs on import; importing a module twice is a no-op.
    for module in pkgutil.iter_modules(stn.reducers.__path__):
        importlib.import_module(f"stn.reducers.{module.name}")


_import_every_kind()


def reducer_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(REDUCERS)


def reducer_config(spec: Mapping[str, Any]) -> ReducerConfig:
    """The typed config of a preset: ``spec["kind"]`` picks the kind; every other key must
    be one of that kind's options (an unknown one is an error naming the valid ones)."""
    kind = REDUCERS.check_name(spec.get("kind"))
    return REDUCERS.config(kind, {**spec, "name": str(spec.get("name") or kind)})


def build_reducer(
    spec: Mapping[str, Any] | ReducerConfig,
    in_channels: int,
    input_size: Size,
    output_size: Size = (48, 48),
) -> Reducer:
    """Build the reducer a preset (or a typed config) describes.

    Args:
        spec: the preset's fields (``name``, ``kind`` and the kind's own options), or a
            kind's config.
        in_channels: C of the ``(N, C, H, W)`` input.
        input_size: ``(H, W)`` of the input.
        output_size: ``(h, w)`` of the output.
    """
    config = spec if isinstance(spec, ReducerConfig) else reducer_config(spec)
    if min(output_size) < 1:
        raise ReducerConfigError(f"output size must be positive, got {tuple(output_size)}")
    if input_size[0] < output_size[0] or input_size[1] < output_size[1]:
        raise ReducerConfigError(
            f"input {tuple(input_size)} is smaller than the output {tuple(output_size)}: "
            "a reducer only shrinks. Use a canvas of at least the output size "
            "(dataset.canvas_size)."
        )
    return REDUCERS.build(
        config.kind, config, int(in_channels), tuple(input_size), tuple(output_size)
    )
