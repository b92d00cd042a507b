"""PCA reducer: agrees with scikit-learn, fits on training data only, caches its fit."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import stn.reducers.pca as pca_module
from stn.data.canvas import CanvasSpec
from stn.data.images import ImageSet, stratified_split
from stn.data.stream import BatchStream
from stn.reducers.base import ReducerConfigError
from stn.reducers.pca import chunk_sizes
from stn.reducers.registry import build_reducer


def low_rank_images(n=240, channels=1, side=16, seed=0):
    """uint8 images with a few strong directions plus noise (a PCA-friendly spectrum)."""
    rng = np.random.default_rng(seed)
    f = side * side
    basis = rng.normal(size=(8, channels * f))
    weights = rng.normal(size=(n, 8)) * np.array([40, 30, 20, 12, 8, 5, 3, 2])
    pixels = 128 + weights @ basis + rng.normal(scale=4, size=(n, channels * f))
    images = np.clip(pixels, 0, 255).astype(np.uint8).reshape(n, channels, side, side)
    labels = rng.integers(0, 10, size=n)
    return ImageSet(images=images, labels=labels, num_classes=10, name="lowrank")


def stream(images, batch_size=32, canvas=None, seed=0):
    return BatchStream(images, batch_size, canvas, seed)


def fitted_pca(train, cache_dir=None, output=(8, 8), **options):
    c, h, w = train.input_shape
    spec = {"kind": "pca", "name": "pca", "cache_dir": cache_dir, **options}
    reducer = build_reducer(spec, c, (h, w), output)
    facts = reducer.fit(train)
    return reducer, facts


def as_matrix(images, channel):
    return images.images[:, channel].reshape(len(images), -1).astype(np.float32) / 255.0


# Not gram with whitening: this data's components 9-20 are a near-degenerate noise bulk
# where two exact solvers' rounding rotates single directions by ~1e-3, and whitening
# scales those coefficients up to unit variance. Whitening is applied after any solver
# (PCAReducer.load_fitted); tests/test_pca_gram.py compares gram with well-posed spectra.
@pytest.mark.parametrize(
    ("solver", "whiten"),
    [("randomized", False), ("randomized", True), ("full", False), ("full", True), ("gram", False)],
)
def test_projection_and_reconstruction_match_sklearn(whiten, solver):
    images = low_rank_images(channels=2)
    train = stream(images)
    reducer, facts = fitted_pca(train, n_components=20, whiten=whiten, solver=solver)
    x = torch.from_numpy(images.images).float() / 255.0
    out = reducer(x)
    assert out.shape == (len(images), 2, 8, 8)
    assert torch.all(out.reshape(len(images), 2, -1)[..., 20:] == 0)  # padding slots
    recon = reducer.reconstruct(out)
    for c in range(2):
        data = as_matrix(images, c)
        exact = "full" if solver == "gram" else solver
        reference = PCA(20, whiten=whiten, svd_solver=exact, random_state=0).fit(data)
        coeff = reference.transform(data)
        np.testing.assert_allclose(
            out[:, c].reshape(len(images), -1)[:, :20].numpy(), coeff, rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(
            recon[:, c].reshape(len(images), -1).numpy(),
            reference.inverse_transform(coeff),
            rtol=1e-4,
            atol=1e-4,
        )
        np.testing.assert_allclose(
            facts["explained_variance_ratio"][c],
            reference.explained_variance_ratio_,
            rtol=1e-4,
        )


def test_chunk_sizes_cover_the_split_and_never_fall_below_k():
    assert chunk_sizes(100, 30, 20) == [30, 30, 40]  # a 10-row tail joins the last chunk
    assert chunk_sizes(100, 30, 5) == [30, 30, 30, 10]
    assert chunk_sizes(25, 30, 20) == [25]
    for n, rows, k in [(4000, 2304, 2304), (1000, 64, 64), (333, 50, 7)]:
        sizes = chunk_sizes(n, rows, k)
        assert sum(sizes) == n and min(sizes) >= k


def test_incremental_agrees_with_full_on_leading_explained_variance():
    train = stream(low_rank_images(n=300))
    _, full = fitted_pca(train, n_components=16, solver="full")
    # A tiny budget forces the smallest chunks (k rows per partial_fit): the hard case.
    reducer, incremental = fitted_pca(train, n_components=16, solver="auto", memory_budget_mb=0.01)
    assert incremental["solver"] == "incremental" and incremental["chunk_rows"] == 16
    leading_full = np.asarray(full["explained_variance_ratio"][0][:5])
    leading_inc = np.asarray(incremental["explained_variance_ratio"][0][:5])
    np.testing.assert_allclose(leading_inc, leading_full, rtol=0.01)


def test_auto_solver_follows_the_memory_budget():
    spec = {"kind": "pca", "n_components": 16, "cache_dir": None}
    roomy = build_reducer({**spec, "memory_budget_mb": 1024}, 1, (16, 16), (8, 8))
    tight = build_reducer({**spec, "memory_budget_mb": 0.05}, 1, (16, 16), (8, 8))
    # More images than pixels: the Gram is no smaller than the data; randomised SVD.
    assert roomy.choose_solver(300)[0] == "randomized"
    assert tight.choose_solver(300)[0] == "incremental"


def test_no_test_image_reaches_the_fit():
    images = low_rank_images(n=200)
    # Make the held-out images unmistakable: any of them in the fit would move the mean.
    train_idx, test_idx = stratified_split(images.labels, 0.25, seed=0)
    poisoned = images.images.copy()
    poisoned[test_idx] = 255
    full = ImageSet(poisoned, images.labels, 10, "split")
    train = stream(full.subset(train_idx))
    reducer, facts = fitted_pca(train, n_components=8)
    assert facts["n_train"] == len(train_idx)
    train_mean = poisoned[train_idx, 0].reshape(len(train_idx), -1).mean(0) / 255.0
    all_mean = poisoned[:, 0].reshape(len(poisoned), -1).mean(0) / 255.0
    np.testing.assert_allclose(reducer.mean[0].numpy(), train_mean, atol=1e-5)
    assert np.abs(all_mean - train_mean).max() > 0.1  # the split would have changed it


def test_canvases_are_fitted_as_rendered_at_epoch_zero():
    images = low_rank_images(n=64, side=16)
    canvas = CanvasSpec(size=32, object_size=(12, 20), clutter=2, clutter_size=4)
    train = BatchStream(images, 16, canvas, seed=3, fresh_canvases=True)
    reducer, _ = fitted_pca(train, n_components=8, output=(16, 16))
    epoch0 = torch.cat([b.x for b in train.batches(epoch=0)]).reshape(64, -1).mean(0)
    epoch1 = torch.cat([b.x for b in train.batches(epoch=1)]).reshape(64, -1).mean(0)
    torch.testing.assert_close(reducer.mean[0], epoch0, atol=1e-5, rtol=0)
    assert not torch.allclose(epoch0, epoch1)


def test_cache_hit_skips_the_fit_and_a_corrupt_entry_is_refitted(tmp_path, monkeypatch):
    train = stream(low_rank_images(n=64))
    first, facts = fitted_pca(train, cache_dir=str(tmp_path), n_components=8)
    assert facts["cache"] == "miss"
    (entry,) = tmp_path.glob("*.npz")

    def no_fit(*args, **kwargs):
        raise AssertionError("a cache hit must not refit")

    with monkeypatch.context() as patch:
        patch.setattr(pca_module, "fit_in_memory", no_fit)
        patch.setattr(pca_module, "fit_gram_stream", no_fit)
        second, facts = fitted_pca(train, cache_dir=str(tmp_path), n_components=8)
    assert facts["cache"] == "hit"
    torch.testing.assert_close(second.components, first.components, rtol=0, atol=0)

    entry.write_bytes(b"not an npz file")
    third, facts = fitted_pca(train, cache_dir=str(tmp_path), n_components=8)
    assert facts["cache"] == "refit"
    torch.testing.assert_close(third.components, first.components, rtol=0, atol=0)
    _, facts = fitted_pca(train, cache_dir=str(tmp_path), n_components=8)
    assert facts["cache"] == "hit"  # the refit replaced the bad entry


def test_cache_key_follows_data_components_and_canvas_seed(tmp_path):
    images = low_rank_images(n=64)
    fitted_pca(stream(images, seed=0), cache_dir=str(tmp_path), n_components=8)
    # Plain images do not depend on the run seed: the same entry serves every seed.
    _, facts = fitted_pca(stream(images, seed=1), cache_dir=str(tmp_path), n_components=8)
    assert facts["cache"] == "hit"
    _, facts = fitted_pca(stream(images), cache_dir=str(tmp_path), n_components=6)
    assert facts["cache"] == "miss"
    other = ImageSet(images.images[::-1].copy(), images.labels[::-1].copy(), 10, "lowrank")
    _, facts = fitted_pca(stream(other), cache_dir=str(tmp_path), n_components=8)
    assert facts["cache"] == "miss"
    canvas = CanvasSpec(size=32, object_size=(16, 16))
    for seed, expected in [(0, "miss"), (0, "hit"), (1, "miss")]:
        _, facts = fitted_pca(
            stream(images, canvas=canvas, seed=seed),
            cache_dir=str(tmp_path),
            n_components=8,
            output=(16, 16),
        )
        assert facts["cache"] == expected


def test_too_few_training_images_names_both_numbers():
    train = stream(low_rank_images(n=30))
    with pytest.raises(ReducerConfigError, match=r"needs at least 40 training images.*has 30"):
        fitted_pca(train, n_components=40)


def test_more_components_than_output_slots_is_refused():
    with pytest.raises(ReducerConfigError, match="at most 64"):
        build_reducer({"kind": "pca", "n_components": 65}, 1, (16, 16), (8, 8))


def test_default_components_fill_the_output_and_use_before_fit_is_an_error():
    reducer = build_reducer({"kind": "pca"}, 1, (96, 96))
    assert reducer.options.n_components == 48 * 48
    assert reducer.num_parameters() == 0 and not reducer.learned
    with pytest.raises(RuntimeError, match="must be fitted"):
        reducer(torch.rand(1, 1, 96, 96))
