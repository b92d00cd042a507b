"""The Gram-matrix PCA solver: agrees with scikit-learn's exact PCA, chunking changes
only rounding, the eigen precision follows its residual check, the record names it."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import stn.reducers.pca_gram as gram_module
from stn.data.images import ImageSet
from stn.data.stream import BatchStream
from stn.reducers.pca_gram import fit_gram, gram_chunk_rows, gram_peak_bytes
from stn.reducers.registry import build_reducer


def spectrum(n, d, channels, decay, seed):
    """``(C, n, d)`` float32 data: per channel, 20 random orthonormal directions whose
    variances fall by ``decay`` each, plus faint white noise, around 0.5 (pixel range).
    With 16 components, decay 0.5 spans 3·10⁴ between the first and last kept variance
    (float32 eigenpairs fail the residual check by ~25x); decay 0.9 spans 5 (they pass
    by ~100x)."""
    rng = np.random.default_rng(seed)
    out = np.empty((channels, n, d), dtype=np.float32)
    for c in range(channels):
        basis = np.linalg.qr(rng.normal(size=(d, 20)))[0].T  # (20, d)
        weights = rng.normal(size=(n, 20)) * np.sqrt(0.05 * decay ** np.arange(20))
        out[c] = 0.5 + weights @ basis + rng.normal(scale=1e-4, size=(n, d))
    return out


# shape (n, d, channels), decay, eigen precision the residual check must pick
CASES = {
    "n<d wide": ((120, 256, 2), 0.5, "float64"),
    "n>d wide": ((300, 64, 1), 0.5, "float64"),
    "n<d gentle": ((120, 256, 1), 0.9, "float32"),
    "n>d gentle": ((300, 64, 2), 0.9, "float32"),
}
K = 16


def matrix_reader(data):
    x = torch.from_numpy(data)
    return lambda a, b: x[:, a:b].clone()


@pytest.mark.parametrize("case", CASES)
def test_gram_agrees_with_sklearn_full_pca(case):
    (n, d, channels), decay, precision = CASES[case]
    data = spectrum(n, d, channels, decay, seed=len(case))
    fitted = fit_gram(matrix_reader(data), n, channels, d, K, chunk_rows=n)
    assert fitted.facts["eigh_dtype"] == [precision] * channels
    for c in range(channels):
        reference = PCA(K, svd_solver="full").fit(data[c])
        ours = fitted.components[c].numpy()
        signs = np.sign((ours * reference.components_).sum(axis=1))
        np.testing.assert_allclose(ours * signs[:, None], reference.components_, atol=1e-4)
        ratio = fitted.explained_variance_ratio[c].numpy()
        np.testing.assert_allclose(ratio, reference.explained_variance_ratio_, rtol=1e-3)
        assert np.abs(ratio - reference.explained_variance_ratio_).max() <= 1e-5
        np.testing.assert_allclose(
            fitted.explained_variance[c].numpy(), reference.explained_variance_, rtol=1e-3
        )
        coeff = (data[c] - fitted.mean[c].numpy()) @ ours.T
        np.testing.assert_allclose(coeff * signs, reference.transform(data[c]), atol=1e-4)
        expected = reference.inverse_transform(reference.transform(data[c]))
        np.testing.assert_allclose(coeff @ ours + fitted.mean[c].numpy(), expected, atol=1e-4)


def images_with_spectrum(n, side, channels, scales, noise, seed):
    """uint8 images: ``len(scales)`` random orthonormal directions with those standard
    deviations (grey levels along each) plus white noise of std ``noise``."""
    rng = np.random.default_rng(seed)
    f = channels * side * side
    basis = np.linalg.qr(rng.normal(size=(f, len(scales))))[0].T  # (len(scales), f)
    weights = rng.normal(size=(n, len(scales))) * np.asarray(scales)
    pixels = 128 + weights @ basis + rng.normal(scale=noise, size=(n, f))
    images = np.clip(pixels, 0, 255).astype(np.uint8).reshape(n, channels, side, side)
    return ImageSet(images, rng.integers(0, 10, size=n), 10, "spectrum")


WIDE = [640, 480, 320, 192, 128, 80, 48, 32]
GENTLE = list(np.linspace(48, 24, 24))


def fit_reducer(images, k, **options):
    train = BatchStream(images, 32, None, 0)
    c, h, w = train.input_shape
    spec = {"kind": "pca", "cache_dir": None, "n_components": k, "solver": "gram", **options}
    reducer = build_reducer(spec, c, (h, w), (8, 8))
    return reducer, reducer.fit(train)


def reader(images):
    x = torch.from_numpy(images.images).float().div(255.0).flatten(2).transpose(0, 1)
    return lambda a, b: x[:, a:b].clone()


@pytest.mark.parametrize("chunk_rows", [1, 37, 100])
def test_chunked_and_one_shot_accumulation_agree(chunk_rows, monkeypatch):
    images = images_with_spectrum(130, 16, 2, GENTLE, 2, 4)
    n, f = len(images), 256
    one_shot = fit_gram(reader(images), n, 2, f, 12, chunk_rows=n)
    # Small pieces, so held blocks, streamed pieces and diagonal pieces all occur.
    monkeypatch.setattr(gram_module, "PIECE_ROWS", 16)
    chunked = fit_gram(reader(images), n, 2, f, 12, chunk_rows=chunk_rows)
    assert one_shot.facts["held_split"] and not chunked.facts["held_split"]
    torch.testing.assert_close(chunked.mean, one_shot.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        chunked.explained_variance, one_shot.explained_variance, rtol=1e-5, atol=0
    )
    torch.testing.assert_close(chunked.components, one_shot.components, rtol=0, atol=1e-5)


def test_zero_variance_directions_get_zero_components():
    # n = k: centring leaves n - 1 directions with variance; the last has none.
    images = images_with_spectrum(24, 8, 1, GENTLE, 2, 5)
    fitted = fit_gram(reader(images), 24, 1, 64, 24, chunk_rows=24)
    assert fitted.facts["zero_variance_components"] == [1]
    components = fitted.components[0].double()
    assert torch.all(components[-1] == 0)
    gram = components[:-1] @ components[:-1].T
    torch.testing.assert_close(gram, torch.eye(23, dtype=torch.float64), rtol=0, atol=1e-5)


def test_float32_eigenpairs_are_redone_in_float64_above_the_tolerance(monkeypatch):
    images = images_with_spectrum(150, 16, 1, GENTLE, 2, 2)
    passed = fit_gram(reader(images), 150, 1, 256, 20, chunk_rows=150)
    residual = passed.facts["eigh_float32_residual"][0]
    assert passed.facts["eigh_dtype"] == ["float32"] and 0 < residual
    monkeypatch.setattr(gram_module, "EIGH_FLOAT32_TOL", residual / 2)
    redone = fit_gram(reader(images), 150, 1, 256, 20, chunk_rows=150)
    assert redone.facts["eigh_dtype"] == ["float64"]
    torch.testing.assert_close(
        redone.explained_variance, passed.explained_variance, rtol=1e-4, atol=0
    )


def test_the_record_names_the_solver_and_why():
    images = images_with_spectrum(120, 16, 1, WIDE, 4, 6)
    _, facts = fit_reducer(images, 60, solver="auto")
    assert facts["solver"] == "gram"
    assert facts["solver_reason"].startswith("auto: gram fits")
    assert "whole split held" in facts["solver_reason"]
    details = facts["fit_details"]
    assert details["device"] == "cpu" and details["chunk_rows"] == 120
    assert set(details["seconds_by_phase"]) == {"read_and_mean", "gram", "eigh", "components"}
    _, facts = fit_reducer(images, 20, solver="full")
    assert facts["solver"] == "full" and facts["solver_reason"] == "solver: full in the preset"


def test_auto_picks_by_memory_and_estimated_flops():
    def choice(n, side, k, budget_mb=2048.0):
        spec = {"kind": "pca", "n_components": k, "memory_budget_mb": budget_mb}
        return build_reducer(spec, 1, (side, side), (48, 48)).choose_solver(n)

    # The suite's case: 2,304 of 4,000 images of 128²: the Gram, split held.
    assert choice(4000, 128, 2304)[:2] == ("gram", 4000)
    # 276²: the split (1.2 GB) and the components (0.7 GB) still fit 2 GB; at 1 GB the
    # Gram streams the split in chunks.
    assert choice(4000, 276, 2304)[:2] == ("gram", 4000)
    solver, rows, reason = choice(4000, 276, 2304, budget_mb=1024)
    assert solver == "gram" and 256 <= rows < 4000 and "images held at a time" in reason
    assert gram_peak_bytes(4000, 1, 276 * 276, 2304, rows) <= 1024 * 2**20
    # Few components of many images: the randomised SVD needs far fewer flops.
    solver, _, reason = choice(4000, 64, 10)
    assert solver == "randomized" and "gram ~" in reason
    # Not even the Gram's minimum fits: incremental.
    assert choice(4000, 128, 2304, budget_mb=100)[0] == "incremental"


def test_gram_chunk_rows_is_the_largest_chunk_within_the_budget():
    n, c, f, k = 1000, 1, 4096, 300
    assert gram_chunk_rows(n, c, f, k, gram_peak_bytes(n, c, f, k, n)) == n
    budget = gram_peak_bytes(n, c, f, k, 600)
    rows = gram_chunk_rows(n, c, f, k, budget)
    assert rows is not None and gram_peak_bytes(n, c, f, k, rows) <= budget
    assert gram_peak_bytes(n, c, f, k, rows + 1) > budget
    assert gram_chunk_rows(n, c, f, k, gram_peak_bytes(n, c, f, k, 256) - 1) is None


def test_cache_key_separates_solvers_but_not_the_gram_chunking(tmp_path, monkeypatch):
    images = images_with_spectrum(120, 16, 1, WIDE, 4, 7)
    common = {"cache_dir": str(tmp_path)}
    _, facts = fit_reducer(images, 12, **common)
    assert (facts["solver"], facts["cache"]) == ("gram", "miss")
    # A budget that streams the split changes the chunking only: the same entry serves.
    monkeypatch.setattr(gram_module, "PIECE_ROWS", 16)
    tight = gram_module.gram_peak_bytes(120, 1, 256, 12, 40) / 2**20
    _, facts = fit_reducer(images, 12, memory_budget_mb=tight, **common)
    assert facts["chunk_rows"] < 120 and facts["cache"] == "hit"
    assert facts["fit_details"] is None  # nothing was fitted
    # An exact SVD is the same subspace to rounding, but its record must not claim the
    # Gram's basis: another solver is another entry.
    _, facts = fit_reducer(images, 12, solver="full", **common)
    assert facts["cache"] == "miss"
