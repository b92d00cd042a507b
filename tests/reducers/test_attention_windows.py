"""Learned window selection (issue 18): the windows, both estimators, the reducer kind."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from scipy import integrate, stats

from stn.measure.train import ReducedClassifier
from stn.reducers.attention_sampling import (
    AttentionWindows,
    gumbel_topk,
    perturbed_topk,
    sampling_weights,
)
from stn.reducers.base import ReducerConfigError
from stn.reducers.registry import build_reducer
from stn.reducers.windows import WindowGrid, WindowSampler
from stn.sampling.grid import affine_grid, grid_sample

# --------------------------------------------------------------------------- estimator A


def ordered_draws(a: np.ndarray, k: int) -> list[tuple[tuple[int, ...], float]]:
    """Every ordered draw of k of len(a) items without replacement, with its probability
    under sequential sampling (each draw from the rest, renormalised)."""
    draws = []
    for seq in itertools.permutations(range(len(a)), k):
        p, left = 1.0, 1.0
        for i in seq:
            p *= a[i] / left
            left -= a[i]
        draws.append((seq, p))
    return draws


def test_sampling_estimator_is_unbiased_in_value_and_gradient():
    """Enumerating all 60 ordered draws of 3 of 5 windows: E[Σ_k w_k f_{i_k}] equals
    Σ_i a_i f_i, and E[∇ of it] equals ∇ Σ_i a_i f_i w.r.t. the attention logits and f."""
    gen = torch.Generator().manual_seed(0)
    p, k, classes = 5, 3, 2
    logits = torch.randn(p, generator=gen, dtype=torch.float64).mul(1.5).requires_grad_()
    f = torch.randn(p, classes, generator=gen, dtype=torch.float64).requires_grad_()
    a = torch.softmax(logits, 0)
    exact = (a.unsqueeze(1) * f).sum(0)  # (classes,)
    grad_exact = torch.autograd.grad(exact.sum() + 2 * exact[0], (logits, f))

    draws = ordered_draws(a.detach().numpy(), k)
    assert sum(prob for _, prob in draws) == pytest.approx(1.0)
    seqs = torch.tensor([seq for seq, _ in draws])  # (60, K)
    probs = torch.tensor([prob for _, prob in draws], dtype=torch.float64)

    def expectation(weights_fn):
        log_a = torch.log_softmax(logits, 0).expand(len(seqs), p)
        w = weights_fn(log_a, seqs)  # (60, K)
        estimates = (w.unsqueeze(-1) * f[seqs]).sum(1)  # (60, classes)
        value = (probs.unsqueeze(1) * estimates).sum(0)  # E over draws, probs held fixed
        return value, torch.autograd.grad(value.sum() + 2 * value[0], (logits, f))

    value, grad = expectation(sampling_weights)
    torch.testing.assert_close(value, exact, rtol=1e-12, atol=1e-12)
    for g, ref in zip(grad, grad_exact, strict=True):
        torch.testing.assert_close(g, ref, rtol=1e-10, atol=1e-12)

    # Without the q/⊥q factor (no score-function term) the value is still unbiased but the
    # gradient w.r.t. the attention is not: the enumeration can tell them apart.
    value, grad = expectation(_plain_weights)
    torch.testing.assert_close(value, exact, rtol=1e-12, atol=1e-12)
    assert (grad[0] - grad_exact[0]).abs().max() > 1e-2


def _plain_weights(log_a: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
    """The estimator's weights without q/⊥(q), written out in plain loops."""
    a = log_a.exp()
    rows = []
    for n in range(len(seqs)):
        seq = seqs[n].tolist()
        k = len(seq)
        w = []
        for pos, i in enumerate(seq):
            remaining = 1 - sum(a[n, j] for j in seq[:pos])
            w.append((remaining + (k - 1 - pos) * a[n, i]) / k)
        rows.append(torch.stack(w))
    return torch.stack(rows)


def test_gumbel_top_k_draws_follow_sampling_without_replacement():
    """Frequencies of 40,000 ordered Gumbel-top-2 draws of 5 windows against the exact
    sequential probabilities: a chi-square statistic far below its 1e-6 quantile (fixed
    seed: it cannot flake), while the same draws reject a wrong law (p ∝ a_i a_j)."""
    a = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
    draws = ordered_draws(a, 2)
    gen = torch.Generator().manual_seed(1)
    log_a = torch.tensor(np.log(a)).expand(40_000, 5)
    picked = gumbel_topk(log_a, 2, gen)
    assert (picked[:, 0] != picked[:, 1]).all()  # without replacement
    codes = (picked[:, 0] * 5 + picked[:, 1]).numpy()
    observed = np.bincount(codes, minlength=25)[[i * 5 + j for (i, j), _ in draws]]
    expected = np.array([prob for _, prob in draws]) * len(codes)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    bound = stats.chi2.ppf(1 - 1e-6, df=len(draws) - 1)
    assert chi2 < bound
    wrong = np.array([a[i] * a[j] for (i, j), _ in draws])
    wrong = wrong / wrong.sum() * len(codes)
    assert ((observed - wrong) ** 2 / wrong).sum() > 10 * bound
    # Inclusion frequencies agree with the enumeration too (each window drawn at all).
    inclusion = np.array([sum(prob for seq, prob in draws if i in seq) for i in range(5)])
    seen = np.bincount(picked.flatten().numpy(), minlength=5) / len(codes)
    np.testing.assert_allclose(seen, inclusion, atol=0.01)


# --------------------------------------------------------------------------- windows


def test_windows_lie_inside_the_canvas_on_whole_pixels_spread_edge_to_edge():
    grid = WindowGrid((100, 90), (16, 40, 90), (4, 5))
    boxes = grid.boxes(torch.arange(grid.count))
    assert grid.count == 3 * 20 and boxes.shape == (60, 4)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 90).all() and (boxes[:, 3] <= 100).all()
    assert torch.equal(boxes, boxes.round())
    sides = boxes[:, 2] - boxes[:, 0]
    assert torch.equal(sides, boxes[:, 3] - boxes[:, 1])
    assert sides.tolist() == [16.0] * 20 + [40.0] * 20 + [90.0] * 20
    small = boxes[:20]  # first and last windows of a size touch the canvas edges
    assert small[:, 0].min() == 0 and small[:, 2].max() == 90
    assert small[:, 1].min() == 0 and small[:, 3].max() == 100
    # index order is (scale, row, col): index 1 is one column to the right of index 0
    assert boxes[1, 0] > boxes[0, 0] and boxes[1, 1] == boxes[0, 1]


@pytest.mark.parametrize("kernel,antialias", [("bilinear", True), ("bicubic_pil", True)])
def test_a_window_reduced_equals_a_crop_resized_with_torch_antialias(kernel, antialias):
    """Interior windows of 96 and 64 px (2× and 1.33× to 48) against F.interpolate on a crop
    with a margin (so its taps read the same neighbours), trimmed back to the window."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 170, 160, generator=gen, dtype=torch.float64)
    grid = WindowGrid((170, 160), (96, 64), (3, 3))
    sampler = WindowSampler(grid, (48, 48), kernel, antialias)
    mode = "bilinear" if kernel == "bilinear" else "bicubic"
    margin = 12  # input px; 12·48/96 = 6 and 12·48/64 = 9 output px: whole pixels
    checked = set()
    for index in range(grid.count):
        x0, y0, x1, y1 = (int(v) for v in grid.boxes(torch.tensor(index)))
        if min(x0, y0) < margin or x1 > 160 - margin or y1 > 170 - margin:
            continue  # the reference must not read past the canvas
        side = x1 - x0
        crop = x[:, :, y0 - margin : y1 + margin, x0 - margin : x1 + margin]
        out = (side + 2 * margin) * 48 // side
        ref = F.interpolate(crop, size=(out, out), mode=mode, antialias=antialias)
        trim = margin * 48 // side
        ref = ref[..., trim : trim + 48, trim : trim + 48]
        got = sampler.extract(x, torch.tensor([0, 1]), torch.tensor([index, index]))
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)
        checked.add(side)
    assert checked == {96, 64}  # the centre window of each size


def test_a_window_reduced_with_lanczos3_equals_pillow_resizing_that_box():
    """Pillow's resize with ``box`` reads the neighbours of the box as anti-aliased
    sampling of the canvas does (interior windows)."""
    rng = np.random.default_rng(0)
    image = rng.random((150, 140)).astype(np.float32)
    grid = WindowGrid((150, 140), (96,), (3, 3))
    sampler = WindowSampler(grid, (48, 48), "lanczos3", True)
    x = torch.from_numpy(image)[None, None]
    index = 4  # the centre window, 22 px from every edge: Pillow's taps stay inside
    x0, y0, x1, y1 = (int(v) for v in grid.boxes(torch.tensor(index)))
    assert min(x0, y0, 140 - x1, 150 - y1) >= 3 * 2 + 1
    pil = Image.fromarray(image, mode="F").resize((48, 48), Image.LANCZOS, box=(x0, y0, x1, y1))
    got = sampler.extract(x, torch.tensor([0]), torch.tensor([index]))[0, 0].numpy()
    np.testing.assert_allclose(got, np.asarray(pil), atol=2e-5)


@pytest.mark.parametrize(
    "kernel,antialias,params",
    [("bilinear", False, {}), ("lanczos3", True, {}), ("gaussian", True, {"sigma": 0.7})],
)
def test_crops_equal_sampling_the_whole_canvas_and_mixes_equal_mixed_windows(
    kernel, antialias, params
):
    """Sampling crops (what the reducer does) equals grid_sample of the whole canvas with
    the window's θ, edge windows included; mixing windows equals mixing their reductions,
    and its gradient w.r.t. the weights is right wherever a weight is non-zero."""
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 2, 70, 64, generator=gen, dtype=torch.float64)
    grid = WindowGrid((70, 64), (12, 30, 64), (4, 3))
    sampler = WindowSampler(grid, (10, 10), kernel, antialias, params)
    indices = torch.randint(0, grid.count, (3, 5), generator=gen)
    theta = grid.theta(indices, torch.float64)
    reference = torch.stack(
        [
            grid_sample(x, affine_grid(theta[:, k], (10, 10)), kernel, antialias, **params)
            for k in range(5)
        ],
        1,
    )
    torch.testing.assert_close(sampler.extract_selected(x, indices), reference)

    weights = torch.rand(3, 2, grid.count, generator=gen, dtype=torch.float64)
    weights = (weights * (weights < 0.15)).requires_grad_()
    every = sampler.extract_selected(x, torch.arange(grid.count).expand(3, -1))
    mixed, expected = sampler.mix(x, weights), torch.einsum("nkp,npchw->nkchw", weights, every)
    torch.testing.assert_close(mixed, expected)
    upstream = torch.randn(mixed.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((mixed * upstream).sum(), weights)
    used = weights.detach() != 0
    torch.testing.assert_close(grad[used], torch.einsum("nkchw,npchw->nkp", upstream, every)[used])


# --------------------------------------------------------------------------- estimator B


def top2_of_3_expectation(s: np.ndarray, sigma: float) -> np.ndarray:
    """Exact E[indicators] (2, 3) of the top 2 of 3 perturbed scores, slots sorted by
    index: the top 2 are all but the argmin e, P(argmin = e) by one integral."""
    out = np.zeros((2, 3))
    for e in range(3):
        others = [j for j in range(3) if j != e]

        def density(z, e=e, others=others):
            return stats.norm.pdf(z) * np.prod(
                [stats.norm.sf((s[e] - s[j]) / sigma + z) for j in others]
            )

        p = integrate.quad(density, -10, 10, epsabs=1e-12)[0]
        out[0, others[0]] += p
        out[1, others[1]] += p
    return out


def test_perturbed_top_k_forward_matches_the_exact_expectation_and_a_numpy_reference():
    s = np.array([0.3, 0.0, 0.5])
    sigma, samples = 0.4, 200_000
    gen = torch.Generator().manual_seed(3)
    scores = torch.tensor(s).unsqueeze(0)
    got = perturbed_topk(scores, 2, samples, sigma, gen)[0].numpy()
    np.testing.assert_allclose(got.sum(1), 1.0)  # each slot holds exactly one window
    np.testing.assert_allclose(got, top2_of_3_expectation(s, sigma), atol=5e-3)
    # the same noise through numpy: argsort, keep the top 2, sort by index, count
    noise = torch.randn(
        (1, samples, 3), generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    perturbed = s + sigma * noise[0].numpy()
    top = np.sort(np.argsort(-perturbed, axis=1)[:, :2], axis=1)
    counts = np.stack([np.bincount(top[:, k], minlength=3) for k in range(2)]) / samples
    np.testing.assert_allclose(got, counts, atol=1e-12)


def test_perturbed_top_k_backward_matches_finite_differences_of_the_expectation():
    s = np.array([0.3, 0.0, 0.5])
    sigma, eps = 0.4, 1e-4
    upstream = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.2]])
    step = eps * np.eye(3)
    # (2, 3, 3): d E[I_kd] / d s_e by central differences of the exact expectation
    jacobian = np.stack(
        [
            top2_of_3_expectation(s + step[e], sigma) - top2_of_3_expectation(s - step[e], sigma)
            for e in range(3)
        ],
        -1,
    ) / (2 * eps)
    expected = np.einsum("kd,kde->e", upstream, jacobian)
    scores = torch.tensor(s).unsqueeze(0).requires_grad_()
    indicators = perturbed_topk(scores, 2, 400_000, sigma, torch.Generator().manual_seed(4))
    (grad,) = torch.autograd.grad((indicators * torch.tensor(upstream)).sum(), scores)
    np.testing.assert_allclose(grad[0].numpy(), expected, atol=0.03)
    assert np.abs(expected).max() > 0.3  # a gradient worth checking


# --------------------------------------------------------------------------- the reducer


def build(canvas=(96, 96), **options) -> AttentionWindows:
    spec = {"kind": "attention_windows", "window_sizes": [16, 32], "view_size": 32}
    spec |= {"antialias": True, **options}
    return build_reducer(spec, 1, canvas, (16, 16))


@pytest.mark.parametrize("estimator", ["sampling", "perturbed_topk"])
def test_the_reducer_returns_k_windows_per_image_and_pools_them(estimator):
    torch.manual_seed(0)
    reducer = build(estimator=estimator, windows=3)
    x = torch.rand(4, 1, 96, 96)
    assert reducer.candidates == 3 and reducer.grid.count == 2 * 4 * 4
    model = ReducedClassifier(
        reducer, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 5))
    )
    for training in (True, False):
        model.train(training)
        logits = model(x)
        assert logits.shape == (4, 5) and torch.isfinite(logits).all()
    loss = model.train()(x).logsumexp(1).mean()
    loss.backward()
    assert reducer.attention.head.weight.grad.abs().sum() > 0  # the attention learns

    # Evaluation reads the K most attended windows: the reducer's output is those windows.
    reducer.eval()
    indices, boxes, weights = reducer.chosen_windows(x)
    assert indices.shape == (4, 3) and boxes.shape == (4, 3, 4)
    torch.testing.assert_close(weights.sum(1), torch.ones(4))
    out = reducer(x).view(4, 3, 1, 16, 16)
    torch.testing.assert_close(out, reducer.sampler.extract_selected(x, indices))
    top, theta = reducer.forward_with_theta(x)
    torch.testing.assert_close(top, out[:, 0])
    torch.testing.assert_close(theta, reducer.grid.theta(indices))  # all K, most attended first


def test_sampling_pool_needs_the_weights_of_its_own_forward():
    reducer = build()
    with pytest.raises(RuntimeError, match="weights of a forward on the same batch"):
        reducer.pool_candidates(torch.zeros(2, 4, 10))


def test_entropy_regulariser_is_an_auxiliary_loss_of_training_steps_only():
    reducer = build(entropy_weight=0.1)
    x = torch.rand(2, 1, 96, 96)
    reducer.train()(x)
    loss = reducer.auxiliary_loss(torch.zeros(2, dtype=torch.long))
    # −0.1 × entropy, and the entropy of a distribution over 32 windows is at most ln 32
    assert -0.1 * math.log(32) <= loss.item() < 0
    assert reducer.auxiliary_loss(torch.zeros(2, dtype=torch.long)) is None  # used once
    reducer.eval()(x)
    assert reducer.auxiliary_loss(torch.zeros(2, dtype=torch.long)) is None


def test_confidence_prior_ranks_drawn_windows_as_the_classifier_is_confident():
    """confidence_weight: CE between the classifier's label probability over the K drawn
    windows (a stop-gradient target) and the attention renormalised over them; its
    gradient raises the attention of the window the classifier reads the label on."""
    reducer = build(confidence_weight=0.5, windows=2)
    scores = torch.randn(3, reducer.grid.count, generator=torch.Generator().manual_seed(5))
    scores.requires_grad_()
    reducer.attention_logits = lambda x: scores  # the test drives the attention directly
    reducer.train()(torch.rand(3, 1, 96, 96))
    drawn = reducer._drawn.clone()
    labels = torch.tensor([1, 0, 2])
    window_logits = torch.zeros(3, 2, 4, requires_grad=True)
    with torch.no_grad():
        window_logits[torch.arange(3), 0, labels] = 10.0  # first drawn window shows the label
        window_logits[torch.arange(3), 1, (labels + 1) % 4] = 10.0  # the second, another
    reducer.pool_candidates(window_logits)
    loss = reducer.auxiliary_loss(labels)
    # the same loss in numpy
    log_p = torch.log_softmax(window_logits.detach(), 2).numpy()[np.arange(3), :, labels.numpy()]
    target = np.exp(log_p) / np.exp(log_p).sum(1, keepdims=True)
    picked = scores.detach().numpy()[np.arange(3)[:, None], drawn.numpy()]
    ranked = picked - np.log(np.exp(picked).sum(1, keepdims=True))
    assert loss.item() == pytest.approx(-0.5 * (target * ranked).sum(1).mean(), rel=1e-5)
    loss.backward()
    assert window_logits.grad is None  # the target is a stop-gradient
    # d/d scores of −0.5·mean Σ t log â is 0.5·(â − t)/N on the drawn windows, 0 elsewhere
    grad = scores.grad[np.arange(3)[:, None], drawn].numpy()
    np.testing.assert_allclose(grad, 0.5 * (np.exp(ranked) - target) / 3, atol=1e-6)
    assert scores.grad.abs().sum() == pytest.approx(np.abs(grad).sum())
    assert (target[:, 0] > 0.99).all() and (grad[:, 0] < 0).all()  # descent raises window 0


@pytest.mark.parametrize(
    "options,canvas,message",
    [
        ({"window_sizes": [16, 128]}, (96, 96), "window size 128 px is larger than the 96×96"),
        ({"windows": 40}, (96, 96), "cannot choose 40 windows per image: the grid offers 32"),
        ({"view_size": 30}, (96, 96), "view_size 30 must be a multiple of 2\\*\\*3 = 8"),
        ({"estimator": "gumbel"}, (96, 96), "estimator 'gumbel' is not one of"),
        ({"kernel": "lanczos"}, (96, 96), "kernel 'lanczos' is not one of"),
        ({"entropy_weight": -0.1}, (96, 96), "entropy_weight must be >= 0"),
        ({"estimator": "perturbed_topk", "attention_smoothing": 0.1}, (96, 96), "smoothing"),
        ({"attention_smoothing": 1.0}, (96, 96), "attention_smoothing must be in \\[0, 1\\)"),
        ({"topk_sigma_decay": True}, (96, 96), "topk_sigma_decay decays perturbed_topk"),
        ({"selection_warmup": 1.0}, (96, 96), "selection_warmup must be in \\[0, 1\\)"),
        ({"estimator": "perturbed_topk", "confidence_weight": 1.0}, (96, 96), "confidence_w"),
        ({"window_sizes": []}, (96, 96), "window_sizes is empty"),
    ],
)
def test_configurations_that_cannot_work_are_clear_errors(options, canvas, message):
    with pytest.raises(ReducerConfigError, match=message):
        build(canvas, **options)


# --------------------------------------------------------------------------- learning scale


def fine_signal(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """32² canvases whose class is the phase of a 1-px checkerboard in the top-left 8×8
    corner: an 8-px window there shows it at 1:1, a 32-px window averages it to grey."""
    y = torch.randint(0, 2, (n,), generator=gen)
    checker = (torch.arange(8).view(8, 1) + torch.arange(8)) % 2
    patch = torch.where(y.view(-1, 1, 1) == 1, checker, 1 - checker).float()
    x = torch.zeros(n, 1, 32, 32)
    x[:, 0, :8, :8] = patch
    return x, y


def coarse_signal(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """32² canvases whose class is whether the left half is brighter than the right, on a
    random level shared by both: a whole-canvas window shows the difference; an 8-px window
    sees one level, almost independent of the class."""
    y = torch.randint(0, 2, (n,), generator=gen)
    level = torch.rand(n, generator=gen) * 6 - 3
    sign = (2 * y - 1).float()
    x = torch.empty(n, 1, 32, 32)
    x[..., :16] = (level + 0.3 * sign).view(-1, 1, 1, 1)
    x[..., 16:] = (level - 0.3 * sign).view(-1, 1, 1, 1)
    return x, y


@pytest.mark.parametrize("estimator", ["sampling", "perturbed_topk"])
@pytest.mark.parametrize("signal,scale", [(fine_signal, 0), (coarse_signal, 1)])
def test_attention_learns_the_window_size_that_holds_the_signal(estimator, signal, scale):
    """Windows of 8 and 32 px on 32² canvases, 2×2 cells, K = 2 of 8 windows, a linear
    classifier on 8×8: after 150 steps the attention's top window has the informative size
    on every test canvas, starting from an attention whose top window had the other."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    options = {"topk_sigma": 0.5} if estimator == "perturbed_topk" else {}
    spec = {
        "kind": "attention_windows",
        "estimator": estimator,
        "window_sizes": [8, 32],
        "windows": 2,
        "view_size": 8,
        "attention_channels": [4, 4],
        **options,
    }
    reducer = build_reducer(spec, 1, (32, 32), (8, 8))
    # Start from an attention that prefers the wrong size (a test's starting point, not
    # the reducer's: it starts from its random initialisation), so the test sees it move.
    with torch.no_grad():
        reducer.attention.head.weight.zero_()
        reducer.attention.head.bias.copy_(torch.tensor([0.0, 0.0]))
        reducer.attention.head.bias[1 - scale] = 1.0
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    model = ReducedClassifier(reducer, classifier)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    test_x, _ = signal(200, gen)

    def share_at_scale() -> float:
        indices, _, _ = reducer.chosen_windows(test_x)
        return (reducer.grid.scale_of(indices[:, 0]) == scale).float().mean().item()

    assert share_at_scale() == 0.0
    model.train()
    for _ in range(150):
        x, y = signal(32, gen)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert share_at_scale() == 1.0
    if estimator == "sampling":
        reducer.eval()
        assert reducer.scale_mass(test_x)[:, scale].mean() > 0.8


# --------------------------------------------------------------------------- stabilisers


def test_perturbed_top_k_sigma_decays_linearly_to_zero_over_training(monkeypatch):
    """topk_sigma_decay (DPS): the σ each training step perturbs with is
    topk_sigma · (1 − step / total_steps); without it σ stays topk_sigma."""
    import stn.reducers.attention_sampling as module

    used: list[float] = []
    original = module.perturbed_topk

    def recording(scores, k, samples, sigma, generator=None):
        used.append(sigma)
        return original(scores, k, samples, sigma, generator)

    monkeypatch.setattr(module, "perturbed_topk", recording)
    x = torch.rand(2, 1, 96, 96)
    for decay, expected in ((True, [0.2, 0.15, 0.1, 0.02]), (False, [0.2] * 4)):
        reducer = build(estimator="perturbed_topk", topk_sigma=0.2, topk_sigma_decay=decay)
        reducer.train()
        used.clear()
        for step in (0, 5, 10, 18):
            reducer.on_step_start(step, 20)
            assert reducer.current_sigma() == pytest.approx(expected[len(used)])
            reducer(x)
        assert used == pytest.approx(expected)
    with pytest.raises(ValueError, match="need 0 <= step < total_steps"):
        reducer.on_step_start(20, 20)


def test_the_trainer_tells_the_reducer_each_step_of_the_run():
    from stn.data.canvas import CanvasSpec
    from stn.data.embedded import load_embedded_digits
    from stn.data.stream import BatchStream
    from stn.measure.train import TrainSettings, fit
    from stn.networks import build_classifier
    from stn.reducers.resize import Resize, ResizeConfig

    class Listening(Resize):
        def __init__(self) -> None:
            super().__init__(ResizeConfig(kind="resize"), 1, (64, 64), (48, 48))
            self.heard: list[tuple[int, int]] = []

        def on_step_start(self, step, total_steps):
            self.heard.append((step, total_steps))

    digits = load_embedded_digits()
    train = BatchStream(digits.subset(np.arange(0, 5000, 40)), 32, CanvasSpec(size=64), 0)
    test = BatchStream(digits.subset(np.arange(7, 5000, 250)), 32, CanvasSpec(size=64), 9)
    model = ReducedClassifier(Listening(), build_classifier("mlp", 1, 10, (48, 48)))
    settings = TrainSettings(epochs=2, max_steps_per_epoch=3, progress=False)
    fit(model, train, test, settings, torch.device("cpu"))
    assert model.reducer.heard == [(step, 6) for step in range(6)]  # not during evaluation


def test_uniform_smoothing_keeps_every_window_at_least_eps_over_p():
    reducer = build(attention_smoothing=0.1)
    logits = torch.tensor([[30.0, 0.0, -30.0, 0.0]])
    log_a = reducer.log_attention(logits)
    expected = 0.9 * torch.softmax(logits, 1) + 0.1 / 4
    torch.testing.assert_close(log_a.exp(), expected)
    assert torch.isfinite(log_a).all() and log_a.exp().min() >= 0.1 / 4 - 1e-7
    torch.testing.assert_close(build().log_attention(logits), torch.log_softmax(logits, 1))


@pytest.mark.parametrize("estimator", ["sampling", "perturbed_topk"])
def test_selection_warm_up_draws_windows_uniformly_and_then_lets_the_attention_choose(
    estimator, monkeypatch
):
    """selection_warmup 0.5 of 10 steps: steps 0–4 read uniformly drawn windows, whatever
    the attention says; from step 5 the attention's choice."""
    torch.manual_seed(0)
    reducer = build(estimator=estimator, windows=2, selection_warmup=0.5).train()
    x = torch.rand(64, 1, 96, 96)
    # An attention that wants window 0 above all (and window 1 next).
    logits = torch.full((64, reducer.grid.count), -50.0)
    logits[:, 0], logits[:, 1] = 50.0, 40.0
    monkeypatch.setattr(reducer, "attention_logits", lambda x: logits)
    read: list[torch.Tensor] = []
    monkeypatch.setattr(reducer, "_extract", lambda x, indices: read.append(indices) or x)
    mixed: list[torch.Tensor] = []
    monkeypatch.setattr(reducer.sampler, "mix", lambda x, w: mixed.append(w) or x)
    reducer.on_step_start(4, 10)
    reducer(x)
    assert len(read) == 1 and len(set(read[0].flatten().tolist())) > 10  # spread, not {0, 1}
    assert reducer.auxiliary_loss(torch.zeros(64, dtype=torch.long)) is None
    reducer.on_step_start(5, 10)
    reducer(x)
    if estimator == "sampling":
        assert (
            len(read) == 2
            and (read[1].sort(1).values == torch.tensor([0, 1])).float().mean() > 0.99
        )
    else:
        assert len(read) == 1 and mixed[0][:, :, :2].sum() == pytest.approx(2 * 64)


def test_perturbed_top_k_entropy_regulariser_pulls_the_attention_apart():
    reducer = build(estimator="perturbed_topk", entropy_weight=0.1).train()
    x = torch.rand(2, 1, 96, 96)
    reducer(x)
    loss = reducer.auxiliary_loss(torch.zeros(2, dtype=torch.long))
    assert -0.1 * math.log(32) <= loss.item() < 0
    loss.backward()
    assert reducer.attention.head.weight.grad.abs().sum() > 0
    reducer.eval()(x)
    assert reducer.auxiliary_loss(torch.zeros(2, dtype=torch.long)) is None


# --------------------------------------------------------------------------- trainer hook


def test_the_trainer_optimises_the_auxiliary_loss_and_reports_the_loss_alone():
    from stn.data.canvas import CanvasSpec
    from stn.data.embedded import load_embedded_digits
    from stn.data.stream import BatchStream
    from stn.measure.train import TrainSettings, fit, seed_everything
    from stn.networks import build_classifier
    from stn.reducers.resize import Resize, ResizeConfig

    class Pulled(Resize):
        """A resize with a parameter that only its auxiliary loss (p − 3)² involves."""

        learned = True

        def __init__(self, pull: bool) -> None:
            super().__init__(ResizeConfig(kind="resize"), 1, (64, 64), (48, 48))
            self.p = torch.nn.Parameter(torch.zeros(()))
            self.pull = pull

        def auxiliary_loss(self, labels):
            return (self.p - 3) ** 2 if self.pull else None

    digits = load_embedded_digits()
    runs = {}
    for pull in (False, True):
        train = BatchStream(digits.subset(np.arange(0, 5000, 40)), 32, CanvasSpec(size=64), 0)
        test = BatchStream(digits.subset(np.arange(7, 5000, 250)), 32, CanvasSpec(size=64), 9)
        seed_everything(0)
        model = ReducedClassifier(Pulled(pull), build_classifier("mlp", 1, 10, (48, 48)))
        settings = TrainSettings(epochs=1, lr=0.01, max_steps_per_epoch=1, progress=False)
        runs[pull] = (fit(model, train, test, settings, torch.device("cpu")), model.reducer.p)
    (plain, p_plain), (pulled, p_pulled) = runs[False], runs[True]
    assert p_plain.item() == 0.0 and p_pulled.item() > 0  # optimised only when it is a loss
    # the first step's reported loss is the cross-entropy alone, not + (0 − 3)² = 9
    assert pulled["curves"][0]["train_loss"] == plain["curves"][0]["train_loss"]


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    "name,estimator", [("ats_sampling", "sampling"), ("ats_topk", "perturbed_topk")]
)
def test_presets_compose_build_on_both_canvases_and_set_only_what_differs(name, estimator):
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from stn.reducers.attention_sampling import AttentionWindowsConfig

    conf = str(Path(__file__).resolve().parents[2] / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        spec = dict(compose("config", overrides=[f"reducer={name}"]).reducer)
    defaults = AttentionWindowsConfig()
    own = yaml.safe_load((Path(conf) / "reducer" / f"{name}.yaml").read_text())
    assert all(own[k] != getattr(defaults, k) for k in own if k not in ("defaults", "name", "kind"))
    for canvas in ((276, 276), (128, 128)):
        reducer = build_reducer(spec, 1, canvas)
        assert reducer.describe()["name"] == name and reducer.estimator == estimator
        assert reducer.grid.boxes(torch.arange(reducer.grid.count))[:, 2:].max() <= canvas[0]
