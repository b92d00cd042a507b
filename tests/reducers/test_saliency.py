"""The saliency sampler (Recasens et al. 2018): identity at start, magnifies salient cells."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn.reducers.base import ReducerConfigError
from stn.reducers.registry import build_reducer
from stn.reducers.saliency import saliency_grid


def sampler(size: int = 64, **options):
    return build_reducer({"kind": "saliency", "name": "sal", **options}, 1, (size, size))


def reference_grid(saliency: np.ndarray, xs: np.ndarray, sigma: float, radius: int):
    """Brute-force NumPy version of the paper's formula, with replicated-border padding."""
    gh, gw = saliency.shape
    step = xs[1] - xs[0]
    out = np.zeros((gh, gw, 2))
    for i in range(gh):
        for j in range(gw):
            num_x = num_y = den = 0.0
            for di in range(-radius, radius + 1):
                for dj in range(-radius, radius + 1):
                    ii, jj = i + di, j + dj
                    s = saliency[min(max(ii, 0), gh - 1), min(max(jj, 0), gw - 1)]
                    k = np.exp(-0.5 * (di**2 + dj**2) / sigma**2)
                    num_x += s * k * (xs[0] + jj * step)
                    num_y += s * k * (xs[0] + ii * step)
                    den += s * k
            out[i, j] = num_x / den, num_y / den
    return np.clip(out, -1, 1)


def test_grid_matches_a_brute_force_reference():
    rng = np.random.default_rng(0)
    saliency = rng.random((9, 9))
    xs = np.linspace(-0.9, 0.9, 9)
    coords = torch.tensor(xs)
    got = saliency_grid(torch.tensor(saliency)[None], (coords, coords), sigma=1.5)
    np.testing.assert_allclose(got[0].numpy(), reference_grid(saliency, xs, 1.5, 4), atol=1e-12)


def test_uniform_saliency_at_start_is_a_plain_bilinear_resize():
    x = torch.rand(3, 1, 128, 128)
    expected = F.interpolate(x, size=(48, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(sampler(128)(x), expected, atol=1e-4, rtol=0)


def test_a_salient_spot_gets_more_samples():
    saliency = torch.ones(1, 21, 21)
    saliency[0, 5, 15] = 200.0  # row 5 (top), column 15 (right)
    xs = torch.linspace(-1, 1, 21)
    grid = saliency_grid(saliency / saliency.sum(), (xs, xs), sigma=3.0)
    spot = torch.tensor([xs[15], xs[5]])
    # Grid points crowd around the spot: each is closer to it than its uniform position.
    before = (torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1) - spot).norm(dim=-1)
    after = (grid[0] - spot).norm(dim=-1)
    near = (before > 0) & (before < 0.6)  # the spot itself stays put
    assert (after[near] < before[near]).all()


def test_gradients_reach_the_saliency_net():
    reducer = sampler(kernel="lanczos3", antialias=True)
    with torch.no_grad():
        reducer.score.weight.normal_(0, 0.1)
    reducer(torch.rand(2, 1, 64, 64)).pow(2).sum().backward()
    assert reducer.score.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "options,message",
    [
        ({"loc_size": 30}, "divisible by 2"),
        ({"sigma": 0}, "sigma must be > 0"),
        ({"grid_size": 1}, "grid_size must be >= 2"),
        ({"loc_norm": "zca"}, "none, standardize"),
        ({"saliency_net": "big"}, "unknown reducer kind 'saliency' option 'saliency_net'"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ReducerConfigError, match=message):
        sampler(**options)


def test_describe_records_the_settings():
    facts = sampler(sigma=2.0, grid_size=21).describe()
    assert facts["kind"] == "saliency" and facts["learned"] is True
    assert (facts["sigma"], facts["grid_size"]) == (2.0, 21)


def test_the_sampling_grid_is_built_on_the_input_device():
    # The meta device stands in for a GPU: a tensor made on the CPU inside the grid
    # (it failed every saliency_sampler run on CUDA once) raises a device mismatch.
    reducer = sampler().to("meta")
    grid = reducer.grid(torch.empty(2, 1, 64, 64, device="meta"))
    assert grid.device.type == "meta" and grid.shape == (2, 48, 48, 2)
