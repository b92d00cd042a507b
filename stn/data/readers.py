"""Readers for dataset files users already have, in one import.

Each reader lives in its own module (one format each); this module only gathers them.
Nothing here downloads: a missing file raises :class:`DatasetNotFoundError` saying where
to get it, a damaged one :class:`DatasetFormatError` naming it.
"""

from stn.data.cifar import load_cifar10, load_cifar100
from stn.data.embedded import DatasetNotFoundError
from stn.data.files import DatasetFormatError
from stn.data.folder import load_image_folder
from stn.data.gtsrb import load_gtsrb
from stn.data.idx import load_fashion_mnist, load_idx_folder, load_idx_pair, read_idx
from stn.data.svhn import load_svhn

__all__ = [
    "DatasetFormatError",
    "DatasetNotFoundError",
    "load_cifar10",
    "load_cifar100",
    "load_fashion_mnist",
    "load_gtsrb",
    "load_idx_folder",
    "load_idx_pair",
    "load_image_folder",
    "load_svhn",
    "read_idx",
]
