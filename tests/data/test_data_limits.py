"""Data a run cannot use is named before any training: an empty split or a one-class set
names the dataset, the split and the fix; an idx file that would inflate past its cap is
refused naming the file and the cap, before it is inflated."""

import gzip
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_readers import write_idx

import stn.data.idx
from stn.data.files import DatasetFormatError
from stn.data.idx import read_idx
from stn.data.prepare import DatasetSpec, DatasetSplitError, prepare_data


def _folder(root: Path, images_per_class: dict[str, int]) -> Path:
    for name, count in images_per_class.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (8, 8), 40 * i).save(root / name / f"{i}.png")
    return root


def _spec(**values) -> DatasetSpec:
    return DatasetSpec(canvas_size=None, options={"size": 8, "channels": 1}, **values)


def test_a_folder_too_small_to_split_names_the_dataset_the_split_and_the_fix(tmp_path):
    # Before: "tree: the split is empty", naming neither the split nor what to do.
    root = _folder(tmp_path / "tree", {"cat": 2, "dog": 2})
    spec = _spec(name="pets", source="folder", root=str(root))
    with pytest.raises(DatasetSplitError) as caught:
        prepare_data(spec, seed=0, batch_size=4)
    message = str(caught.value)
    assert message.startswith(f"dataset 'pets' (source 'folder', root {root}): the test split")
    assert "is empty: its 4 images (as few as 2 in a class)" in message
    assert "dataset.test_fraction=0.2" in message
    assert "give each class at least 3 images" in message


def test_an_idx_source_with_no_images_names_its_empty_split(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((0, 5, 7), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(0, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, (4, 5, 7), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 0, 1], np.uint8))
    spec = DatasetSpec(name="mine", source="idx", root=str(tmp_path), canvas_size=None)
    with pytest.raises(DatasetSplitError, match="'mine' .*: the train split is empty: the source"):
        prepare_data(spec, seed=0, batch_size=4)


def test_a_one_class_folder_is_refused_before_training(tmp_path):
    # Before: it trained to the end, then failed.
    root = _folder(tmp_path / "tree", {"cat": 10})
    spec = _spec(name="cats", source="folder", root=str(root))
    with pytest.raises(DatasetSplitError) as caught:
        prepare_data(spec, seed=0, batch_size=4)
    message = str(caught.value)
    assert message.startswith("dataset 'cats' (source 'folder', root ")
    assert "the train split holds images of one class only (cat)" in message
    assert "add a sub-folder of images for each further class" in message


def _gzip_idx(path: Path, shape: tuple[int, ...], payload: bytes) -> Path:
    header = bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    path.write_bytes(gzip.compress(header + payload, compresslevel=1))
    return path


def test_a_gzip_idx_declaring_more_than_the_cap_is_refused_naming_it(tmp_path, monkeypatch):
    # The bomb inflated 13.7 MB to 3.1 GB; 4 M 28×28 images declare as much.
    path = _gzip_idx(tmp_path / "train-images-idx3-ubyte.gz", (4_000_000, 28, 28), bytes(64))
    with pytest.raises(DatasetFormatError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: header says shape (4000000, 28, 28) of uint8")
    assert "more than the 2,147,483,648 bytes" in message
    assert "stn.data.idx.MAX_IDX_BYTES" in message
    # The cap is the module's, as Pillow's is: a smaller one refuses a smaller file.
    monkeypatch.setattr(stn.data.idx, "MAX_IDX_BYTES", 100)
    small = _gzip_idx(tmp_path / "small.gz", (2, 10, 10), bytes(200))
    with pytest.raises(DatasetFormatError, match="more than the 100 bytes"):
        read_idx(small)


def test_a_gzip_idx_longer_than_its_header_is_refused_without_inflating_the_rest(tmp_path):
    # 10 images declared, 64 MiB of zeros behind them: a bomb behind a modest header.
    path = _gzip_idx(tmp_path / "bomb.gz", (10, 28, 28), bytes(10 * 28 * 28 + 64 * 2**20))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetFormatError, match=r"bomb\.gz: has trailing bytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the 64 MiB were never inflated
