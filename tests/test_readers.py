"""Dataset readers, fed fixtures written at test time in each format's real layout.

The fixture writers below use only the standard library, numpy, Pillow and scipy, never the
readers under test, so a mistake shared by reader and writer cannot hide itself.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from stn.data.embedded import DatasetNotFoundError
from stn.data.files import DatasetFormatError
from stn.data.idx import FASHION_MNIST_DEBIAN_ROOT, load_fashion_mnist, load_idx_folder, read_idx


# --------------------------------------------------------------------------- idx
def write_idx(path: Path, array: np.ndarray, code: int = 0x08, compress: bool = False) -> Path:
    """The idx layout: 00 00 <code> <ndim>, big-endian uint32 dims, big-endian values."""
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_idx_folder(root: Path, n_train: int = 6, n_test: int = 4, compress: bool = True):
    rng = np.random.default_rng(0)
    ext = ".gz" if compress else ""
    arrays = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 5, 7), dtype=np.uint8)
        labels = (np.arange(n) % 3).astype(np.uint8)
        write_idx(root / f"{stem}-images-idx3-ubyte{ext}", images, compress=compress)
        write_idx(root / f"{stem}-labels-idx1-ubyte{ext}", labels, compress=compress)
        arrays[stem] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    arrays = write_idx_folder(tmp_path, compress=compress)
    train, test = load_idx_folder(tmp_path)
    for got, (images, labels) in ((train, arrays["train"]), (test, arrays["t10k"])):
        assert got.images.shape == (len(images), 1, 5, 7) and got.images.dtype == np.uint8
        np.testing.assert_array_equal(got.images[:, 0], images)
        np.testing.assert_array_equal(got.labels, labels)
        assert got.labels.dtype == np.int64 and got.num_classes == 3


def test_idx_other_dtypes_and_emnist_names(tmp_path):
    values = np.array([[-1.5, 2.0], [3.25, 1e6]], dtype=np.float32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f", values, code=0x0D)), values)
    ints = np.array([-70000, 5, 70000], dtype=np.int32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", ints, code=0x0C)), ints)

    # EMNIST: a prefix, "test-" instead of "t10k-", images stored transposed.
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for split in ("train", "test"):
        write_idx(tmp_path / f"emnist-digits-{split}-images-idx3-ubyte", images)
        write_idx(tmp_path / f"emnist-digits-{split}-labels-idx1-ubyte", np.array([0, 9], "u1"))
    train, test = load_idx_folder(tmp_path, prefix="emnist-digits-", transpose=True)
    np.testing.assert_array_equal(test.images[:, 0], images.transpose(0, 2, 1))
    assert train.num_classes == 10


def test_idx_bad_magic_names_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    data = bytearray(path.read_bytes())
    data[0] = 0x89  # e.g. a PNG saved under the idx name
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte.*magic"):
        read_idx(path)


def test_idx_unknown_dtype_code(tmp_path):
    path = write_idx(tmp_path / "x-idx1-ubyte", np.zeros(3, np.uint8), code=0x07)
    with pytest.raises(DatasetFormatError, match=r"x-idx1-ubyte.*dtype code 0x07"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated_names_file(tmp_path, compress):
    images = np.ones((4, 3, 3), np.uint8)
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", *images.shape)
    payload = header + images.tobytes()[:-5]  # a consistent stream, 5 bytes short of the header
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(DatasetFormatError, match=r"t10k-images-idx3-ubyte\.gz: truncated"):
        read_idx(path)


def test_idx_cut_gzip_stream_names_file(tmp_path):
    path = write_idx(tmp_path / "a.gz", np.ones((50, 9, 9), np.uint8), compress=True)
    path.write_bytes(path.read_bytes()[:-20])  # an interrupted copy
    with pytest.raises(DatasetFormatError, match=r"a\.gz: the gzip stream is damaged"):
        read_idx(path)


def test_idx_label_count_mismatch(tmp_path):
    write_idx_folder(tmp_path, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DatasetFormatError, match="different sets"):
        load_idx_folder(tmp_path)


def test_idx_labels_out_of_range_names_file(tmp_path):
    write_idx_folder(tmp_path, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 7], np.uint8))
    with pytest.raises(DatasetFormatError, match=r"t10k-labels-idx1-ubyte: labels must lie in"):
        load_idx_folder(tmp_path, num_classes=3)


def test_idx_missing_files_say_which(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"train-images-idx3-ubyte\[\.gz\]"):
        load_idx_folder(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="dataset.root"):
        load_idx_folder(None)


# ------------------------------------------------------------------ Fashion-MNIST
def test_fashion_mnist_debian_files():
    if not (FASHION_MNIST_DEBIAN_ROOT / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist not installed: apt-get install dataset-fashion-mnist")
    train, test = load_fashion_mnist()
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == np.uint8 and train.num_classes == 10
    np.testing.assert_array_equal(np.bincount(train.labels), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(test.labels), np.full(10, 1000))
    assert train.class_names[9] == "Ankle boot" and train.labels[0] == 9  # the first image


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)
