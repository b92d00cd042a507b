"""The dataset sources a config's ``dataset.source`` names, each with its typed options.

A source is a function ``load(root, **options) -> (train, test or None)`` registered
where it is defined, with the frozen dataclass of its options (``dataset.options``)::

    @dataclass(frozen=True)
    class SvhnOptions:
        extra: bool = option(False, "add the 531,131 extra training digits")

    @register_source("svhn", SvhnOptions)
    def load_svhn(root, extra=SvhnOptions.extra): ...

``test`` is ``None`` where the source has no official split: the run splits ``train``
(``stn.data.prepare``). ``stn.data.catalog`` imports every reader, so the registry is
complete there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from stn.data.images import ImageSet
from stn.registry import Registry

Splits = tuple[ImageSet, ImageSet | None]


@dataclass(frozen=True)
class NoOptions:
    """A source that takes no options."""


def _load(loader: Callable[..., Splits], options: Any, root: str | Path | None) -> Splits:
    return loader(root, **{f.name: getattr(options, f.name) for f in fields(options)})


SOURCES: Registry[Callable[..., Splits]] = Registry("dataset source", make=_load)
L = TypeVar("L", bound=Callable[..., Splits])


def register_source(name: str, options_type: type = NoOptions) -> Callable[[L], L]:
    """Decorator: ``dataset.source: <name>`` reads with this function, its
    ``dataset.options`` checked against ``options_type`` (a dataclass)."""
    return SOURCES.register(name, options_type)
