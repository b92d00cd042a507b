"""Issue 4: every STN recipe option runs and changes what it claims to change."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn.data.canvas import CanvasSpec, render_canvases
from stn.data.embedded import load_embedded_digits
from stn.data.stream import BatchStream
from stn.measure.train import ReducedClassifier, TrainSettings, fit, make_optimizer
from stn.networks import build_classifier
from stn.reducers.base import ReducerConfigError
from stn.reducers.registry import build_reducer
from stn.reducers.transformer import compose_params, theta_from_params


def stn(size: int = 64, **options):
    return build_reducer({"kind": "stn", "name": "stn", **options}, 1, (size, size))


def blob_canvas(n: int = 4, size: int = 64) -> torch.Tensor:
    """Dim noise with one bright 16×16 square at a different place per image."""
    x = 0.1 * torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))
    for i in range(n):
        y0, x0 = 4 + 10 * i, 40 - 10 * i
        x[i, :, y0 : y0 + 16, x0 : x0 + 16] = 1.0
    return x


def test_standardize_gives_each_low_res_copy_zero_mean_unit_variance():
    x = blob_canvas() * torch.tensor([1.0, 0.2, 3.0, 0.5]).view(4, 1, 1, 1)
    plain = stn(loc_norm="none").low_resolution(x)
    normed = stn(loc_norm="standardize").low_resolution(x)
    torch.testing.assert_close(plain, F.adaptive_avg_pool2d(x, 32))
    torch.testing.assert_close(normed.mean((1, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        normed.std((1, 2, 3), unbiased=False), torch.ones(4), atol=1e-3, rtol=0
    )
    # Images that differ only in contrast look the same to the localisation net.
    brighter = stn(loc_norm="standardize").low_resolution(x[:1] * 7)[0]
    torch.testing.assert_close(normed[0], brighter, atol=1e-3, rtol=0)


@pytest.mark.parametrize("loc_head", ["regression", "heatmap"])
def test_small_head_init_differs_across_images_at_step_zero_and_zeros_does_not(loc_head):
    x = blob_canvas()
    torch.manual_seed(0)
    _, theta_zeros = stn(loc_head=loc_head, loc_head_init="zeros").forward_with_theta(x)
    _, theta_small = stn(loc_head=loc_head, loc_head_init="small").forward_with_theta(x)
    assert torch.equal(theta_zeros, theta_zeros[:1].expand_as(theta_zeros))
    assert (theta_small - theta_small[:1]).abs().amax() > 0


@pytest.mark.parametrize("options", [{}, {"loc_head": "heatmap"}, {"transform": "affine"}])
def test_init_scale_starts_zoomed_in_on_the_centre(options):
    x = blob_canvas()
    _, theta = stn(init_scale=0.4, **options).forward_with_theta(x)
    expected = torch.tensor([[0.4, 0.0, 0.0], [0.0, 0.4, 0.0]]).expand(4, 2, 3)
    torch.testing.assert_close(theta, expected, atol=1e-6, rtol=0)


def test_heatmap_head_starts_uniform_and_its_soft_argmax_finds_a_bright_blob():
    reducer = stn(loc_head="heatmap", loc_size=64, loc_channels=[8])
    x = blob_canvas()
    weights = reducer.localisation.attention_map(x)
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / weights[0].numel()))
    # A heatmap that scores "bright" (a 1×1 conv reading the mean feature of a
    # brightness-detecting conv) moves each glimpse onto its own blob.
    loc = reducer.localisation
    with torch.no_grad():
        conv = loc.features[0]
        conv.weight.fill_(1.0 / 25)
        conv.bias.zero_()
        loc.heatmap.weight.fill_(40.0)
    params = reducer.params(x)
    blob_centre_x = torch.tensor([48.0, 38.0, 28.0, 18.0])  # x0 + 8 in pixels
    blob_centre_y = torch.tensor([12.0, 22.0, 32.0, 42.0])
    to_norm = lambda px: (2 * px) / 64 - 1  # noqa: E731 - pixel edge coordinate → [-1, 1]
    cell = 2 / 32  # the map has 32 cells per side
    torch.testing.assert_close(params[:, 1], to_norm(blob_centre_x), atol=cell, rtol=0)
    torch.testing.assert_close(params[:, 2], to_norm(blob_centre_y), atol=cell, rtol=0)


def test_heatmap_zoom_is_bounded_and_gradients_reach_both_heads():
    reducer = stn(loc_head="heatmap", loc_head_init="small")
    with torch.no_grad():
        reducer.localisation.zoom.bias.fill_(1e4)
    assert reducer.params(blob_canvas())[:, 0].max() <= 2.0
    with torch.no_grad():
        reducer.localisation.zoom.bias.zero_()
    reducer(blob_canvas()).pow(2).sum().backward()
    loc = reducer.localisation
    assert loc.heatmap.weight.grad.abs().sum() > 0 and loc.zoom.weight.grad.abs().sum() > 0


def test_zoom_schedule_fixes_the_zoom_per_epoch_then_hands_over():
    reducer = stn(init_scale=0.5, zoom_schedule=[0.2, 0.3])
    x = blob_canvas()
    scales = []
    for epoch in range(3):
        reducer.on_epoch_start(epoch)
        scales.append(reducer.params(x)[:, 0])
    torch.testing.assert_close(scales[0], torch.full((4,), 0.2))
    torch.testing.assert_close(scales[1], torch.full((4,), 0.3))
    torch.testing.assert_close(scales[2], torch.full((4,), 0.5))


def test_fit_calls_the_reducer_curriculum_hook_at_every_epoch_start():
    digits = load_embedded_digits()
    canvas = CanvasSpec(size=64)
    train = BatchStream(digits.subset(np.arange(0, 5000, 500)), 5, canvas, 0)
    test = BatchStream(digits.subset(np.arange(3, 5000, 1000)), 5, canvas, 1)
    reducer = stn(init_scale=0.5, zoom_schedule=[0.25])
    seen = []
    original = reducer.on_epoch_start
    reducer.on_epoch_start = lambda epoch: (seen.append(epoch), original(epoch))
    model = ReducedClassifier(reducer, build_classifier("cnn", 1, 10, (48, 48)))
    settings = TrainSettings(epochs=2, max_steps_per_epoch=1, progress=False)
    fit(model, train, test, settings, torch.device("cpu"))
    assert seen == [0, 1]
    assert reducer.fixed_zoom is None  # epoch 2 is past the schedule: the zoom is learned


def test_two_glimpses_start_where_one_does_and_train_both_nets():
    x = blob_canvas()
    torch.manual_seed(0)
    one = stn(loc_head="heatmap", init_scale=0.5)
    two = stn(loc_head="heatmap", init_scale=0.5, glimpses=2)
    torch.testing.assert_close(two.params(x), one.params(x))
    two.localisation.heatmap.weight.data.normal_(0, 1.0)  # move the first glimpse off-centre
    two(x).pow(2).sum().backward()
    assert two.refinement.zoom.weight.grad.abs().sum() > 0
    assert two.localisation.heatmap.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("transform", ["attention", "affine"])
def test_composed_transform_equals_applying_both_in_turn(transform):
    g = torch.Generator().manual_seed(1)
    k = 3 if transform == "attention" else 6
    outer, inner = torch.rand(5, k, generator=g), torch.rand(5, k, generator=g)
    point = torch.rand(5, 2, 1, dtype=torch.float32, generator=g)

    def apply(params, p):
        theta = theta_from_params(params, transform)
        return theta[:, :, :2] @ p + theta[:, :, 2:]

    composed = compose_params(outer, inner, transform)
    torch.testing.assert_close(apply(composed, point), apply(outer, apply(inner, point)))


@pytest.mark.parametrize("antialias", [False, True])
def test_recipes_train_without_errors_and_move_the_transform(antialias):
    digits = load_embedded_digits()
    canvas = CanvasSpec(size=96, clutter=4)
    train = BatchStream(digits.subset(np.arange(0, 5000, 100)), 25, canvas, 0)
    test = BatchStream(digits.subset(np.arange(3, 5000, 500)), 10, canvas, 1)
    for options in [
        {"loc_head": "heatmap", "loc_norm": "standardize", "glimpses": 2},
        {"loc_batch_norm": True, "loc_head_init": "small", "init_scale": 0.5},
    ]:
        torch.manual_seed(0)
        reducer = stn(96, antialias=antialias, lr_multiplier=1.0, **options)
        before = reducer.params(test.batch_of(np.arange(4)).x).detach()
        model = ReducedClassifier(reducer, build_classifier("cnn", 1, 10, (48, 48)))
        settings = TrainSettings(epochs=1, max_steps_per_epoch=2, lr=3e-3, progress=False)
        fit(model, train, test, settings, torch.device("cpu"))
        reducer.eval()
        after = reducer.params(test.batch_of(np.arange(4)).x).detach()
        assert torch.isfinite(after).all() and not torch.equal(before, after)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"loc_head": "heatmap", "transform": "affine"}, "use transform=attention"),
        ({"loc_head": "argmax"}, "regression, heatmap"),
        ({"loc_norm": "whiten"}, "none, standardize"),
        ({"init_scale": 0.0}, r"init_scale must lie in \(0, 2\)"),
        ({"init_scale": 2.0}, r"init_scale must lie in \(0, 2\)"),
        ({"glimpses": 3}, "glimpses must be 1 or 2"),
        ({"zoom_schedule": [0.5], "transform": "affine"}, "use transform=attention"),
        ({"zoom_schedule": [0.5, -1]}, "must be > 0"),
    ],
)
def test_bad_recipe_options_say_what_to_change(options, message):
    with pytest.raises(ReducerConfigError, match=message):
        stn(**options)


def test_describe_records_every_recipe_option():
    facts = stn(
        loc_head="heatmap",
        loc_norm="standardize",
        loc_batch_norm=True,
        loc_head_init="small",
        init_scale=0.3,
        glimpses=2,
        zoom_schedule=[0.3],
        lr_multiplier=1.0,
    ).describe()
    assert facts["loc_head"] == "heatmap" and facts["loc_norm"] == "standardize"
    assert facts["loc_batch_norm"] is True and facts["loc_head_init"] == "small"
    assert (facts["init_scale"], facts["glimpses"], facts["zoom_schedule"]) == (0.3, 2, [0.3])


def test_blob_prior_puts_the_first_glimpse_on_the_object():
    """loc_head_init=blob: before any training the glimpse centre lies in the digit's box
    on most cluttered canvases (the uniform zeros init always looks at the centre)."""
    images = load_embedded_digits().images[:200]
    canvases, boxes = render_canvases(images, np.arange(32), CanvasSpec(128, clutter=8), seed=0)

    def hits(head_init: str) -> float:
        reducer = build_reducer(
            {
                "kind": "stn",
                "loc_head": "heatmap",
                "loc_head_init": head_init,
                "loc_norm": "standardize",
                "init_scale": 0.35,
            },
            1,
            (128, 128),
        )
        with torch.no_grad():
            params = reducer.params(canvases)
        centre = (params[:, 1:] + 1) / 2 * 128  # (x, y) in canvas pixels
        inside = (centre >= boxes[:, :2]) & (centre < boxes[:, 2:])
        return inside.all(1).float().mean().item()

    assert hits("blob") >= 0.8
    assert hits("zeros") <= 0.3


def test_blob_prior_needs_the_heatmap_head():
    with pytest.raises(ReducerConfigError, match="loc_head=heatmap"):
        build_reducer({"kind": "stn", "loc_head_init": "blob"}, 1, (128, 128))


@pytest.mark.parametrize("size", [64, 128])
def test_glimpse_size_fixes_the_window_in_input_pixels_whatever_the_canvas(size):
    reducer = stn(size, loc_head="heatmap", loc_head_init="blob", glimpse_size=16)
    x = blob_canvas(size=size)
    params = reducer.params(x)
    torch.testing.assert_close(params[:, 0], torch.full((4,), 16 / size))
    # The shift still follows the blob: the window moves, its size does not.
    assert params[:, 1].unique().numel() == 4
    reducer.on_epoch_start(5)  # no schedule ends it
    assert torch.allclose(reducer.params(x)[:, 0], torch.tensor(16 / size))
    assert reducer.describe()["glimpse_size"] == 16


def test_glimpse_size_gives_the_shift_a_gradient_and_the_zoom_none():
    reducer = stn(64, loc_head="heatmap", loc_head_init="blob", glimpse_size=16)
    reducer(blob_canvas()).pow(2).sum().backward()
    loc = reducer.localisation
    assert loc.heatmap.weight.grad.abs().sum() > 0
    assert loc.zoom.weight.grad is None or loc.zoom.weight.grad.abs().sum() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"glimpse_size": 0}, ">= 1 pixel"),
        ({"glimpse_size": 16, "transform": "affine"}, "transform=attention"),
        ({"glimpse_size": 16, "zoom_schedule": [0.3]}, "drop zoom_schedule"),
        ({"blob_sharpness": 0.0}, "blob_sharpness must be > 0"),
    ],
)
def test_bad_glimpse_and_sharpness_options_say_what_is_wrong(options, message):
    with pytest.raises(ReducerConfigError, match=message):
        stn(64, **options)


def test_blob_sharpness_concentrates_the_first_heatmap():
    """A sharper prior puts more of the softmax weight on the brightest cell."""
    x = blob_canvas()

    def peak(sharpness: float) -> torch.Tensor:
        reducer = stn(64, loc_head="heatmap", loc_head_init="blob", blob_sharpness=sharpness)
        with torch.no_grad():
            return reducer.localisation.attention_map(x).flatten(1).max(1).values

    assert (peak(60.0) > peak(5.0)).all()


def test_warm_up_freezes_the_localisation_then_lets_it_train_unless_its_lr_is_zero():
    def trains_at(reducer, epoch: int) -> bool:
        reducer.on_epoch_start(epoch)
        return all(p.requires_grad for p in reducer.parameters())

    warm = stn(loc_warmup_epochs=2, lr_multiplier=0.5)
    assert [trains_at(warm, e) for e in range(3)] == [False, False, True]
    frozen = stn(lr_multiplier=0.0)
    assert [trains_at(frozen, e) for e in range(3)] == [False, False, False]


def test_a_warmed_up_localisation_is_in_the_optimiser_and_a_zero_rate_one_is_not():
    def reducer_groups(reducer) -> int:
        model = ReducedClassifier(reducer, build_classifier("cnn", 1, 10, (48, 48)))
        return len(make_optimizer(model, TrainSettings()).param_groups) - 1

    assert reducer_groups(stn(loc_warmup_epochs=2, lr_multiplier=0.5)) == 1
    assert reducer_groups(stn(lr_multiplier=0.0)) == 0


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_localisation_net_steps_with_its_own_optimiser(optimizer):
    # First steps differ by kind: SGD moves by −lr·g (its momentum buffer starts at g),
    # Adam by −lr·g/(|g| + eps). The classifier takes Adam's step either way.
    reducer = stn(optimizer=optimizer, lr_multiplier=0.5, loc_head_init="small")
    model = ReducedClassifier(reducer, build_classifier("cnn", 1, 10, (48, 48)))
    optimizer_ = make_optimizer(model, TrainSettings(lr=0.01))
    assert reducer.describe()["optimizer"] == optimizer
    before = [p.detach().clone() for p in model.parameters()]
    loss = F.cross_entropy(model(blob_canvas()), torch.tensor([1, 2, 3, 4]))
    optimizer_.zero_grad()
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    optimizer_.step()
    loc = {id(p) for p in reducer.parameters()}
    for param, start, grad in zip(model.parameters(), before, grads, strict=True):
        moved = param.detach() - start
        rate = 0.005 if id(param) in loc else 0.01
        if id(param) in loc and optimizer == "sgd":
            torch.testing.assert_close(moved, -rate * grad)
        else:
            adam_first_step = -rate * grad / (grad.abs() + 1e-8)
            torch.testing.assert_close(moved, adam_first_step, atol=1e-6, rtol=1e-4)


def test_an_unknown_localisation_optimiser_names_the_valid_ones():
    with pytest.raises(ReducerConfigError, match="adam, sgd"):
        stn(optimizer="rmsprop")


@pytest.mark.parametrize(("canvas", "side"), [(276, 96), (128, 44), (60, 20)])
def test_loc_downscale_gives_the_detector_the_same_pixel_scale_on_any_canvas(canvas, side):
    reducer = stn(canvas, loc_head="heatmap", loc_downscale=2.875)
    x = torch.rand(2, 1, canvas, canvas)
    assert reducer.low_resolution(x).shape == (2, 1, side, side)
    assert reducer.params(x).shape == (2, 3)
    assert reducer.describe()["loc_downscale"] == 2.875
    assert reducer.low_resolution_side((8, 8)) == 4  # never below one cell per stage


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loc_downscale": 2.0}, "loc_head=heatmap"),
        ({"loc_downscale": 0.5, "loc_head": "heatmap"}, "loc_downscale must be >= 1"),
    ],
)
def test_bad_loc_downscale_says_what_to_do(options, message):
    with pytest.raises(ReducerConfigError, match=message):
        stn(64, **options)


def three_blob_canvas(size: int = 96) -> torch.Tensor:
    """Two images of three bright squares of sides 14, 10 and 6 (ink mass decreasing),
    at different places per image, on dim noise: ``(2, 1, size, size)``."""
    x = 0.05 * torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(1))
    places = [[(8, 10), (60, 14), (40, 70)], [(66, 64), (10, 70), (12, 8)]]
    for i, corners in enumerate(places):
        for (y0, x0), side in zip(corners, (14, 10, 6), strict=True):
            x[i, :, y0 : y0 + side, x0 : x0 + side] = 1.0
    return x


def candidate_stn(size: int = 96, k: int = 3):
    return stn(
        size, loc_head="heatmap", loc_head_init="blob", loc_norm="standardize",
        loc_size=64, loc_channels=[1, 1], glimpse_size=24, candidates=k, lr_multiplier=0.0,
    )  # fmt: skip


def test_candidates_put_one_glimpse_on_each_blob_strongest_first():
    x = three_blob_canvas()
    reducer = candidate_stn()
    with torch.no_grad():
        params = reducer.candidate_params(x)  # (2, 3, 3)
    assert params.shape == (2, 3, 3)
    torch.testing.assert_close(params[..., 0], torch.full((2, 3), 24 / 96))
    centres = (params[..., 1:] + 1) / 2 * 96  # (x, y) in pixels
    blobs = torch.tensor(
        [[(17, 15), (19, 65), (73, 43)], [(71, 73), (75, 15), (11, 15)]], dtype=torch.float32
    )  # (x, y) centres of the 14-, 10- and 6-px squares
    assert (centres - blobs).abs().max() < 8


def test_candidates_output_k_glimpses_per_image_image_major():
    x = three_blob_canvas()
    reducer = candidate_stn()
    with torch.no_grad():
        out = reducer(x)
        first, theta = reducer.forward_with_theta(x)
    assert out.shape == (6, 1, 48, 48) and theta.shape == (2, 2, 3)
    torch.testing.assert_close(out[0::3], first)  # glimpse 0 of each image: the top peak
    assert not torch.allclose(out[0], out[1])  # the others look elsewhere
    assert reducer.describe()["candidates"] == 3


def test_classifier_keeps_each_class_best_logit_over_the_candidates():
    x = three_blob_canvas()
    reducer = candidate_stn()
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48 * 48, 10))
    model = ReducedClassifier(reducer, classifier)
    with torch.no_grad():
        logits = model(x)
        per_glimpse = classifier(reducer(x)).view(2, 3, 10)
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, per_glimpse.amax(1))
    # The pooled logits train the classifier through the winning glimpses.
    model(x).logsumexp(1).sum().backward()
    assert classifier[1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"candidates": 0}, "candidates must be >= 1"),
        ({"candidates": 2, "loc_head": "heatmap"}, "glimpse_size"),
        ({"candidates": 2, "glimpse_size": 16}, "loc_head=heatmap"),
    ],
)
def test_bad_candidates_say_what_is_needed(options, message):
    with pytest.raises(ReducerConfigError, match=message):
        stn(64, **options)
