import pytest
import torch
import torch.nn.functional as F

from stn.reducers.base import ReducerConfigError
from stn.reducers.registry import build_reducer

RESIZE_PRESETS = [
    ("nearest", False),
    ("bilinear", False),
    ("bilinear", True),
    ("bicubic", False),
    ("bicubic", True),
    ("area", False),
]


@pytest.mark.parametrize("mode,antialias", RESIZE_PRESETS)
@pytest.mark.parametrize("size", [96, 100, 276])
def test_resize_matches_interpolate(mode, antialias, size):
    x = torch.rand(3, 2, size, size)
    reducer = build_reducer(
        {"kind": "resize", "mode": mode, "antialias": antialias}, 2, (size, size)
    )
    align = False if mode in ("bilinear", "bicubic") else None
    expected = F.interpolate(x, size=(48, 48), mode=mode, align_corners=align, antialias=antialias)
    out = reducer(x)
    assert out.shape == (3, 2, 48, 48)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "area"])
def test_interpolating_resizers_stay_in_input_range(mode):
    x = torch.rand(4, 1, 144, 144) * 0.5 + 0.25
    out = build_reducer({"kind": "resize", "mode": mode}, 1, (144, 144))(x)
    assert out.min() >= 0.25 - 1e-6 and out.max() <= 0.75 + 1e-6


def test_pool_avg_and_max_match_torch():
    x = torch.rand(2, 3, 96, 144)
    avg = build_reducer({"kind": "pool", "mode": "avg"}, 3, (96, 144))
    mx = build_reducer({"kind": "pool", "mode": "max"}, 3, (96, 144))
    torch.testing.assert_close(avg(x), F.avg_pool2d(x, (2, 3)))
    torch.testing.assert_close(mx(x), F.max_pool2d(x, (2, 3)))
    assert avg(x).shape == mx(x).shape == (2, 3, 48, 48)


def test_adaptive_pool_reaches_any_size():
    x = torch.rand(2, 1, 276, 276)
    out = build_reducer({"kind": "pool", "mode": "adaptive_avg"}, 1, (276, 276))(x)
    torch.testing.assert_close(out, F.adaptive_avg_pool2d(x, 48))


def test_pool_that_cannot_reach_the_output_names_the_alternatives():
    with pytest.raises(ReducerConfigError, match=r"cannot reach 48 from 276.*pool_adaptive"):
        build_reducer({"kind": "pool", "mode": "avg"}, 1, (276, 276))


def test_canvas_smaller_than_output_is_refused():
    with pytest.raises(ReducerConfigError, match="smaller than the output"):
        build_reducer({"kind": "resize", "mode": "bilinear"}, 1, (40, 40))


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(ReducerConfigError, match="known: .*pool.*resize"):
        build_reducer({"kind": "warp"}, 1, (96, 96))


def test_antialias_only_where_interpolate_supports_it():
    with pytest.raises(ReducerConfigError, match="bilinear or bicubic"):
        build_reducer({"kind": "resize", "mode": "nearest", "antialias": True}, 1, (96, 96))


def test_describe_reports_name_kind_parameters():
    reducer = build_reducer({"kind": "resize", "mode": "area", "name": "resize_area"}, 1, (96, 96))
    assert reducer.describe() == {
        "name": "resize_area",
        "kind": "resize",
        "learned": False,
        "parameters": 0,
        "output_size": [48, 48],
    }
