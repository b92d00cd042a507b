"""Learned resizer, anti-aliased pooling and the oracle crop: shapes, parameters,
gradients, and agreement with independent references."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn.data.canvas import CanvasSpec, render_canvases
from stn.measure.train import ReducedClassifier, TrainSettings, make_optimizer
from stn.reducers.base import ReducerConfigError, reduce_batch
from stn.reducers.registry import build_reducer


def learned_resizer_parameters(c, n, r):
    """Conv weights + biases and BN affine pairs, counted from the paper's diagram."""
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    head = conv(c, n, 7) + conv(n, n, 1) + 2 * n
    block = 2 * (conv(n, n, 3) + 2 * n)
    tail = conv(n, n, 3) + 2 * n + conv(n, c, 7)
    return head + r * block + tail


@pytest.mark.parametrize("channels,filters,blocks", [(1, 16, 1), (3, 8, 2)])
def test_learned_resizer_shape_parameters_and_gradients(channels, filters, blocks):
    spec = {"kind": "learned_resizer", "filters": filters, "res_blocks": blocks}
    reducer = build_reducer(spec, channels, (96, 96))
    assert reducer.learned
    assert reducer.num_parameters() == learned_resizer_parameters(channels, filters, blocks)
    x = torch.rand(2, channels, 96, 96, requires_grad=True)
    out = reducer(x)
    assert out.shape == (2, channels, 48, 48)
    out.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in reducer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_learned_resizer_skip_is_the_bilinear_resize():
    reducer = build_reducer({"kind": "learned_resizer"}, 1, (96, 96))
    with torch.no_grad():
        reducer.to_image.weight.zero_()
        reducer.to_image.bias.zero_()
    x = torch.rand(2, 1, 96, 96)
    expected = F.interpolate(x, size=(48, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(reducer(x), expected)


@pytest.mark.parametrize("channels", [1, 3])
def test_learned_resizer_in_channels_last_order_computes_the_plain_layouts_maths(channels):
    """Its weights are kept channels-last for speed; a twin with the same weights in the
    default layout gives the same output and the same gradients."""
    torch.manual_seed(0)
    fast = build_reducer({"kind": "learned_resizer", "res_blocks": 1}, channels, (96, 96))
    assert fast.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = build_reducer({"kind": "learned_resizer", "res_blocks": 1}, channels, (96, 96))
    plain.load_state_dict(fast.state_dict())
    plain.to(memory_format=torch.contiguous_format)
    x = torch.rand(4, channels, 96, 96)
    outputs = [m(x) for m in (fast, plain)]
    # float32 rounding differs between the two convolution paths (~1e-5 after batch norm);
    # a layout mistake would move values by O(1)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)
    assert outputs[0].shape == (4, channels, 48, 48)
    for out in outputs:
        out.square().mean().backward()
    for (name, a), (_, b) in zip(fast.named_parameters(), plain.named_parameters(), strict=True):
        # float32 sums over every pixel: compare against the gradient's own scale
        assert (a.grad - b.grad).abs().max() <= 5e-3 * b.grad.abs().max() + 1e-5, name


def test_learned_resizer_trains_at_its_lr_multiplier():
    spec = {"kind": "learned_resizer", "lr_multiplier": 0.1}
    reducer = build_reducer(spec, 1, (96, 96))
    model = ReducedClassifier(reducer, torch.nn.Linear(1, 1))
    groups = make_optimizer(model, TrainSettings(lr=1e-3)).param_groups
    assert groups[1]["lr"] == pytest.approx(1e-4)
    assert sum(p.numel() for p in groups[1]["params"]) == reducer.num_parameters()


def test_blur_pool_at_factor_two_is_zhangs_four_tap_blurpool():
    x = torch.rand(2, 3, 96, 96)
    reducer = build_reducer({"kind": "pool_blur"}, 3, (96, 96))
    assert reducer.taps == (3, 3)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = (torch.outer(taps, taps) / 64).expand(3, 1, 4, 4)
    # Zhang's BlurPool(filt_size=4, stride=2): reflect pad (1, 2), depthwise, stride 2.
    expected = F.conv2d(F.pad(x, (1, 2, 1, 2), mode="reflect"), kernel, stride=2, groups=3)
    torch.testing.assert_close(reducer(x), expected, rtol=1e-5, atol=1e-6)


def test_blur_pool_removes_the_frequency_that_aliases_at_276_to_48():
    checker = (torch.arange(276)[:, None] + torch.arange(276)[None, :]) % 2
    x = checker.float().expand(1, 1, 276, 276)
    reducer = build_reducer({"kind": "pool_blur"}, 1, (276, 276))
    assert reducer.taps == (11, 11)  # 2·ceil(5.75) − 1
    out = reducer(x)
    assert out.shape == (1, 1, 48, 48)
    torch.testing.assert_close(out, torch.full_like(out, 0.5), rtol=0, atol=1e-5)
    aliased = F.interpolate(x, size=(48, 48), mode="bilinear", align_corners=False)
    assert (aliased - 0.5).abs().max() > 0.2  # what the blur prevents


def test_blur_pool_keeps_constants_and_has_no_parameters():
    reducer = build_reducer({"kind": "pool_blur", "taps": 5}, 2, (128, 100))
    x = torch.full((1, 2, 128, 100), 0.3)
    torch.testing.assert_close(reducer(x), torch.full((1, 2, 48, 48), 0.3))
    assert reducer.num_parameters() == 0 and not reducer.learned


def test_blur_pool_rejects_a_filter_wider_than_the_image():
    with pytest.raises(ReducerConfigError, match="taps=201"):
        build_reducer({"kind": "pool_blur", "taps": 201}, 1, (96, 96))


def per_image_crop(x, boxes):
    """Reference: crop and resize one image at a time."""
    out = []
    for image, (x0, y0, x1, y1) in zip(x, boxes.long().tolist(), strict=True):
        crop = image[None, :, y0:y1, x0:x1]
        out.append(
            F.interpolate(crop, size=(48, 48), mode="bilinear", align_corners=False, antialias=True)
        )
    return torch.cat(out)


def test_oracle_crop_equals_cropping_each_image_alone():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(12, 2, 96, 96, generator=generator)
    sides = torch.tensor([20, 36, 20, 64, 48, 36, 20, 30, 30, 70, 64, 25])
    corner = (torch.rand(12, 2, generator=generator) * (96 - sides[:, None])).floor()
    boxes = torch.cat([corner, corner + sides[:, None]], dim=1)
    boxes[3, 2] -= 9  # a non-square box
    reducer = build_reducer({"kind": "oracle_crop"}, 2, (96, 96))
    torch.testing.assert_close(reduce_batch(reducer, x, boxes), per_image_crop(x, boxes))


def test_oracle_crop_shows_the_digit_placed_on_the_canvas():
    rng = np.random.default_rng(0)
    digits = np.zeros((4, 1, 28, 28), dtype=np.uint8)
    for d in digits:  # a blocky glyph with structure at several scales
        d[0, 4:24, 6:10] = 255
        d[0, 4:8, 6:22] = 255
        d[0, 12:16, 10:18] = rng.integers(100, 255)
    canvas, boxes = render_canvases(
        digits, np.arange(4), CanvasSpec(size=96, object_size=(20, 36)), 0
    )
    reducer = build_reducer({"kind": "oracle_crop"}, 1, (96, 96))
    out = reduce_batch(reducer, canvas, boxes)
    digit = torch.from_numpy(digits).float() / 255.0
    expected = F.interpolate(digit, size=(48, 48), mode="bilinear", antialias=True)
    # Two resamplings (28 → side → 48) blur the edges a little; the glyph is all there.
    assert (out - expected).abs().mean() < 0.05
    for got, want in zip(out, expected, strict=True):
        assert torch.corrcoef(torch.stack([got.flatten(), want.flatten()]))[0, 1] > 0.95


def test_oracle_crop_is_labelled_and_refused_without_boxes():
    reducer = build_reducer({"kind": "oracle_crop", "name": "oracle_crop"}, 1, (96, 96))
    assert reducer.describe()["oracle"] is True and reducer.uses_boxes
    with pytest.raises(ReducerConfigError, match="needs ground-truth object boxes"):
        reduce_batch(reducer, torch.rand(2, 1, 96, 96), None)
    with pytest.raises(ValueError, match="is empty inside"):
        reduce_batch(reducer, torch.rand(1, 1, 96, 96), torch.tensor([[10.0, 10.0, 10.0, 30.0]]))


def test_report_labels_the_oracle():
    import pandas as pd

    from stn.report.document import comparison_table

    frame = pd.DataFrame(
        {
            "status": ["ok", "ok"],
            "dataset": ["d", "d"],
            "reducer": ["oracle_crop", "pca"],
            "classifier": ["cnn", "cnn"],
            "seed": [0, 0],
            "oracle": [True, False],
            "test_accuracy": [0.9, 0.5],
            "tp_reducer_images_per_s": [1.0, 2.0],
        }
    )
    assert list(comparison_table(frame)[0]["reducer"]) == ["oracle_crop (oracle)", "pca"]
