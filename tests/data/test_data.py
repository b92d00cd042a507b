import numpy as np
import pytest
import torch

from stn.data.canvas import CanvasSpec, render_canvases
from stn.data.embedded import load_embedded_digits
from stn.data.images import ImageSet, stratified_split
from stn.data.stream import BatchStream


@pytest.fixture(scope="module")
def digits():
    return load_embedded_digits()


def test_embedded_digits_are_real_mnist(digits):
    assert digits.images.shape == (5000, 1, 28, 28)
    assert digits.images.dtype == np.uint8
    assert np.bincount(digits.labels).tolist() == [500] * 10
    assert digits.images.max() == 255


def test_split_is_deterministic_disjoint_and_stratified(digits):
    train, test = stratified_split(digits.labels, 0.2, seed=3)
    again_train, again_test = stratified_split(digits.labels, 0.2, seed=3)
    other_train, _ = stratified_split(digits.labels, 0.2, seed=4)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert not np.array_equal(np.sort(train), np.sort(other_train))
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == 5000
    assert np.bincount(digits.labels[test]).tolist() == [100] * 10


def test_split_rejects_bad_fraction(digits):
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\)"):
        stratified_split(digits.labels, 1.0, seed=0)


def test_canvases_repeat_from_seed_index_epoch(digits):
    spec = CanvasSpec(size=96, object_size=(20, 36), clutter=6)
    idx = np.arange(10, 26)
    a, boxes_a = render_canvases(digits.images, idx, spec, seed=5, epoch=2)
    b, boxes_b = render_canvases(digits.images, idx, spec, seed=5, epoch=2)
    c, _ = render_canvases(digits.images, idx, spec, seed=5, epoch=3)
    assert torch.equal(a, b) and torch.equal(boxes_a, boxes_b)
    assert not torch.equal(a, c)
    # A canvas depends on its own index only, not on the batch it is rendered in.
    single, _ = render_canvases(digits.images, idx[3:4], spec, seed=5, epoch=2)
    assert torch.equal(single[0], a[3])


@pytest.mark.parametrize("size", [60, 96, 128, 276])
def test_box_holds_the_whole_digit(digits, size):
    spec = CanvasSpec(size=size, object_size=(20, 40), clutter=0)
    idx = np.arange(0, 5000, 250)
    canvases, boxes = render_canvases(digits.images, idx, spec, seed=0)
    assert canvases.shape == (len(idx), 1, size, size)
    assert 0.0 <= canvases.min() and canvases.max() <= 1.0
    for canvas, (x0, y0, x1, y1) in zip(canvases[:, 0], boxes.long().tolist(), strict=True):
        assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
        assert 20 <= x1 - x0 <= 40 and x1 - x0 == y1 - y0
        inside = canvas[y0:y1, x0:x1].sum()
        assert inside > 0 and torch.isclose(inside, canvas.sum())


def test_clutter_adds_ink_outside_the_box(digits):
    spec = CanvasSpec(size=128, object_size=(28, 28), clutter=8)
    canvases, boxes = render_canvases(digits.images, np.arange(32), spec, seed=0)
    outside = canvases.clone()
    for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        outside[i, :, y0:y1, x0:x1] = 0
    assert (outside.flatten(1).sum(1) > 0).float().mean() > 0.9


def test_object_scale_sets_size_relative_to_canvas(digits):
    spec = CanvasSpec(size=200, object_scale=(0.5, 0.5))
    _, boxes = render_canvases(digits.images, np.arange(4), spec, seed=0)
    assert torch.all(boxes[:, 2] - boxes[:, 0] == 100)


def test_object_larger_than_canvas_is_refused(digits):
    with pytest.raises(ValueError, match="do not fit a 48 px canvas"):
        render_canvases(digits.images, np.arange(2), CanvasSpec(size=48, object_size=(50, 60)), 0)


def test_stream_batches_cover_the_split_once_per_epoch(digits):
    small = digits.subset(np.arange(50))
    stream = BatchStream(small, batch_size=16, canvas=CanvasSpec(size=64), seed=1)
    labels = torch.cat([b.y for b in stream.batches(epoch=0, shuffle=True)])
    assert len(stream) == 4 and len(labels) == 50
    assert sorted(labels.tolist()) == sorted(small.labels.tolist())
    assert stream.input_shape == (1, 64, 64)


def test_stream_rejects_zero_batch(digits):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BatchStream(digits, batch_size=0, canvas=None, seed=0)


def test_imageset_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        ImageSet(np.zeros((2, 1, 4, 4), np.uint8), np.array([0, 3]), num_classes=3, name="x")
