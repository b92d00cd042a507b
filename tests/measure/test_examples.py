import numpy as np
import pytest
import torch
from torch import nn

from stn.data.stream import Batch
from stn.reducers.base import Reducer, ReducerConfig
from stn.reducers.registry import build_reducer
from stn.results.examples import examples_path, load_examples, save_examples, try_save_examples


def _batch(n=8, size=96, boxes=True):
    x = torch.rand(n, 1, size, size)
    y = torch.arange(n)
    b = torch.tensor([[10.0, 12.0, 38.0, 40.0]]).repeat(n, 1) if boxes else None
    return Batch(x, y, b)


def test_examples_hold_inputs_outputs_and_labels(tmp_path):
    reducer = build_reducer({"kind": "resize", "mode": "area", "name": "area"}, 1, (96, 96))
    batch = _batch()
    path = save_examples(reducer, batch, examples_path(tmp_path, "abc"), count=6)
    assert path == tmp_path / "examples" / "abc.npz"
    assert [p.name for p in path.parent.iterdir()] == ["abc.npz"]  # no temp file left
    arrays = load_examples(path)
    assert arrays["inputs"].dtype == np.uint8 and arrays["inputs"].shape == (6, 1, 96, 96)
    np.testing.assert_array_equal(
        arrays["inputs"], (batch.x[:6] * 255).round().to(torch.uint8).numpy()
    )
    expected = torch.nn.functional.avg_pool2d(batch.x[:6], 2).numpy()
    np.testing.assert_allclose(arrays["outputs"], expected, atol=1e-6)
    assert arrays["labels"].tolist() == list(range(6))
    assert arrays["boxes"].shape == (6, 4) and "theta" not in arrays


class FakeSTN(nn.Module):
    """Crops the centre half: θ = diag(0.5, 0.5), output via affine_grid."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward_with_theta(self, x):
        theta = torch.zeros(len(x), 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = self.scale
        grid = torch.nn.functional.affine_grid(theta, (len(x), x.shape[1], 48, 48), False)
        return torch.nn.functional.grid_sample(x, grid, align_corners=False), theta

    def forward(self, x):
        return self.forward_with_theta(x)[0]


def test_reducers_with_theta_store_it_and_keep_their_mode(tmp_path):
    stn = FakeSTN().train()
    path = save_examples(stn, _batch(boxes=False), tmp_path / "s.npz", count=3)
    arrays = load_examples(path)
    assert arrays["theta"].shape == (3, 2, 3)
    assert arrays["theta"][0].tolist() == [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]
    assert arrays["outputs"].shape == (3, 1, 48, 48) and "boxes" not in arrays
    assert stn.training  # put back in training mode after eval-mode examples


@pytest.mark.parametrize("kind", ["ips", "attention_windows"])
def test_window_selectors_store_every_window_read_and_its_weight(tmp_path, kind):
    spec = {"kind": kind, "window_sizes": [16, 32], "windows": 3}
    spec |= {"cells": 4} if kind == "ips" else {"view_size": 32}
    torch.manual_seed(0)
    reducer = build_reducer(spec, 1, (96, 96), (16, 16))
    batch = _batch()
    arrays = load_examples(save_examples(reducer, batch, tmp_path / "w.npz", count=4))
    indices, _, weights = reducer.chosen_windows(batch.x[:4])
    assert arrays["theta"].shape == (4, 3, 2, 3) and arrays["weights"].shape == (4, 3)
    np.testing.assert_allclose(arrays["theta"], reducer.grid.theta(indices).numpy())
    np.testing.assert_allclose(arrays["weights"], weights.numpy(), rtol=1e-6)
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, rtol=1e-5)


def test_a_broken_reducer_only_warns(tmp_path, caplog):
    class Broken(Reducer):
        def forward(self, x):
            raise RuntimeError("boom")

    assert (
        try_save_examples(
            Broken(ReducerConfig(name="broken"), 1, (96, 96), (48, 48)),
            _batch(),
            tmp_path / "b.npz",
        )
        is None
    )
    assert "boom" in caplog.text and not (tmp_path / "b.npz").exists()


def test_missing_or_corrupt_files_read_as_none(tmp_path):
    assert load_examples(tmp_path / "none.npz") is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert load_examples(tmp_path / "bad.npz") is None


def test_bad_batch_is_refused_with_the_shape(tmp_path):
    reducer = build_reducer({"kind": "resize", "mode": "area"}, 1, (96, 96))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        save_examples(reducer, Batch(torch.rand(96, 96), torch.zeros(1), None), tmp_path / "x")
