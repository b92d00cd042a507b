"""A run's typed sections from its config: what the job and the quiet timing pass share.

Apart from ``experiments.job`` because the schemas import the quiet pass, which needs these
and must not import the job (the job imports the schemas).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from stn.options import checked_options

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
