"""Build any registered reducer from a preset's fields.

Importing this module imports every kind's module, and each registers itself
(``@register_reducer`` in ``stn.reducers.base``): a new kind adds one import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stn.options import closest_match, options_from
from stn.reducers import (  # noqa: F401 - imported for their @register_reducer
    attention_sampling,
    blur_pool,
    learned_resizer,
    oracle_crop,
    pca,
    pool,
    resize,
    saliency,
    transformer,
)
from stn.reducers.base import REDUCERS, Reducer, ReducerConfig, ReducerConfigError, Size


def reducer_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(REDUCERS)


def reducer_config(spec: Mapping[str, Any]) -> ReducerConfig:
    """The typed config of a preset: ``spec["kind"]`` picks the kind; every other key must
    be one of that kind's options (an unknown one is an error naming the valid ones)."""
    kind = spec.get("kind")
    if kind not in REDUCERS:
        near = closest_match(str(kind), reducer_kinds())
        hint = f" (did you mean {near!r}?)" if near else ""
        raise ReducerConfigError(
            f"unknown reducer kind {kind!r}{hint}; known kinds: {', '.join(reducer_kinds())}"
        )
    values = dict(spec)
    values["name"] = str(values.get("name") or kind)
    return options_from(REDUCERS[kind].config_type, values, f"reducer kind {kind!r}")


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
    cls = REDUCERS[config.kind]
    return cls(config, int(in_channels), tuple(input_size), tuple(output_size))
