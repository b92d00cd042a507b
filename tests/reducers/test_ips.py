"""Iterative patch selection (issue 26): the no-gradient pass, the top M, the aggregation."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from stn.measure.train import ReducedClassifier
from stn.reducers.base import ReducerConfigError
from stn.reducers.ips import IpsConfig, IteratedPatchSelection, streamed_top_m
from stn.reducers.registry import build_reducer

CONF = Path(__file__).resolve().parents[2] / "conf"


def build(canvas: int = 64, **options) -> IteratedPatchSelection:
    spec = {"kind": "ips", "window_sizes": [16, 32], "cells": 4, "windows": 2}
    spec |= {"score_size": 8, "score_chunk": 10, **options}
    return build_reducer(spec, 1, (canvas, canvas), (16, 16))


def classifier() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(256, 5))


# --------------------------------------------------------------------------- scoring pass


def graph_and_largest_chunk(reducer: IteratedPatchSelection, x: torch.Tensor) -> tuple[int, int]:
    """One training forward: the elements autograd saved for the backward (the graph's
    size) and the most windows the scorer was given at once."""
    saved, largest = [0], [0]

    def pack(tensor):
        saved[0] += tensor.numel()
        return tensor

    def seen(module, args):
        largest[0] = max(largest[0], args[0].shape[0])

    hook = reducer.scorer.register_forward_pre_hook(seen)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            reducer.train()(x)
    finally:
        hook.remove()
    return saved[0], largest[0]


def test_the_scoring_pass_builds_no_graph_and_its_memory_does_not_grow_with_the_windows():
    """100 or 1,024 candidate windows: the scores carry no graph, the forward saves the same
    tensors for the backward (only the M re-scored windows'), and the scorer never sees
    more than one chunk of windows per image at once."""
    torch.manual_seed(0)
    x = torch.rand(3, 1, 64, 64)
    few = build(window_sizes=[16], cells=10, score_chunk=25)  # 100 windows
    many = build(window_sizes=[16], cells=32, score_chunk=25)  # 1,024 windows
    many.scorer.load_state_dict(few.scorer.state_dict())
    assert (few.grid.count, many.grid.count) == (100, 1024)
    for reducer in (few, many):
        scores = reducer.window_scores(x)
        assert scores.shape == (3, reducer.grid.count) and not scores.requires_grad
        assert scores.grad_fn is None and reducer.select(x).grad_fn is None
    graph_few, chunk_few = graph_and_largest_chunk(few, x)
    graph_many, chunk_many = graph_and_largest_chunk(many, x)
    assert graph_few == graph_many > 0
    assert chunk_few == chunk_many == 3 * 25  # N × score_chunk, whatever the windows


def test_selection_keeps_the_windows_with_the_top_scores_whatever_the_chunk():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 64, 64)
    reducers = [build(windows=3, score_chunk=chunk) for chunk in (1, 7, 32, 1000)]
    for reducer in reducers[1:]:
        reducer.scorer.load_state_dict(reducers[0].scorer.state_dict())
    scores = reducers[0].window_scores(x)
    best = scores.topk(3, dim=1).indices
    for reducer in reducers:
        torch.testing.assert_close(reducer.window_scores(x), scores)
        assert torch.equal(reducer.select(x), best)  # best first


def test_streamed_top_m_equals_the_top_m_of_all_scores():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(5, 103, generator=gen)
    for m, chunk in ((1, 1), (4, 3), (4, 10), (7, 200)):
        values, ids = streamed_top_m(lambda ids: scores[:, ids], 103, m, chunk)
        exact = scores.topk(m, dim=1)
        assert torch.equal(ids, exact.indices) and torch.equal(values, exact.values)


def test_a_window_view_is_its_crop_of_the_resized_canvas():
    """The scorer's view of a window: the canvas resized to score_size / side (anti-aliased),
    cut at the window's origin on that level; views by range equal views by index."""
    reducer = build(canvas=64, window_sizes=[16, 32], cells=4, score_size=8)
    x = torch.rand(2, 1, 64, 64)
    levels = reducer.views.pyramid(x)
    assert [tuple(level.shape[-2:]) for level in levels] == [(32, 32), (16, 16)]
    torch.testing.assert_close(
        levels[0], F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True)
    )
    views = reducer.views.window_range(levels, 0, reducer.grid.count)  # (N, P, C, 8, 8)
    origins = reducer.grid.origins()
    for window in (0, 5, 15, 16, 27, 31):
        scale = window // 16
        x0, y0 = (origins[window] * levels[scale].shape[-1] // 64).tolist()  # whole pixels
        torch.testing.assert_close(views[:, window], levels[scale][..., y0 : y0 + 8, x0 : x0 + 8])
    image = torch.tensor([1, 0, 1])
    window = torch.tensor([3, 20, 31])
    torch.testing.assert_close(reducer.views.gather(levels, image, window), views[image, window])
    torch.testing.assert_close(reducer.views.window_range(levels, 13, 21), views[:, 13:21])


# --------------------------------------------------------------------------- the step


def test_the_top_m_gradient_reaches_the_scorer_through_the_attention():
    torch.manual_seed(0)
    reducer = build(windows=3)
    model = ReducedClassifier(reducer, classifier()).train()
    x = torch.rand(4, 1, 64, 64)
    logits = model(x)
    assert logits.shape == (4, 5)
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    for name, param in reducer.scorer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # ∂L/∂s_m = a_m (⟨g, f_m⟩ − Σ a ⟨g, f⟩): zero when the M windows' logits agree, so the
    # attention learns only from windows the classifier reads differently.
    reducer.scorer.zero_grad()
    model.classifier = nn.Sequential(nn.Flatten(), nn.Linear(256, 5)).requires_grad_(False)
    nn.init.zeros_(model.classifier[1].weight)
    model(x).logsumexp(1).sum().backward()
    assert all(p.grad.abs().max() < 1e-6 for p in reducer.scorer.parameters())


def test_the_windows_read_are_the_selected_ones_weighted_by_the_softmax_of_their_scores():
    torch.manual_seed(0)
    reducer = build(windows=3).eval()
    x = torch.rand(4, 1, 64, 64)
    indices, boxes, weights = reducer.chosen_windows(x)
    assert torch.equal(indices, reducer.select(x)) and boxes.shape == (4, 3, 4)
    expected = torch.softmax(reducer.window_scores(x).gather(1, indices), 1)
    torch.testing.assert_close(weights, expected)
    assert (weights[:, :-1] >= weights[:, 1:]).all()  # best first
    out = reducer(x).view(4, 3, 1, 16, 16)
    torch.testing.assert_close(out, reducer.sampler.extract_selected(x, indices))
    f = torch.randn(4, 3, 5)
    torch.testing.assert_close(reducer.pool_candidates(f), (weights.unsqueeze(-1) * f).sum(1))
    top, theta = reducer.forward_with_theta(x)
    torch.testing.assert_close(top, out[:, 0])
    torch.testing.assert_close(theta, reducer.grid.theta(indices))


def test_evaluation_cuts_and_classifies_only_the_m_selected_windows(monkeypatch):
    torch.manual_seed(0)
    reducer = build(windows=2)
    cut: list[int] = []
    extract = reducer.sampler.extract
    monkeypatch.setattr(
        reducer.sampler, "extract", lambda x, image, window: cut.append(len(window)) or
        extract(x, image, window)
    )  # fmt: skip
    read: list[int] = []
    net = classifier()
    net.register_forward_pre_hook(lambda module, args: read.append(args[0].shape[0]))
    model = ReducedClassifier(reducer, net).eval()
    with torch.no_grad():
        model(torch.rand(5, 1, 64, 64))
    assert cut == [5 * 2] and read == [5 * 2]  # of 32 candidate windows per image


def test_pool_needs_the_attention_of_its_own_forward():
    with pytest.raises(RuntimeError, match="weights of a forward on the same batch"):
        build().pool_candidates(torch.zeros(2, 2, 10))


def test_selection_warm_up_reads_uniform_windows_and_still_trains_the_scorer(monkeypatch):
    torch.manual_seed(0)
    reducer = build(windows=2, selection_warmup=0.25).train()
    x = torch.rand(64, 1, 64, 64)
    best = reducer.select(x)
    read: list[torch.Tensor] = []
    extract = reducer.sampler.extract_selected
    monkeypatch.setattr(
        reducer.sampler, "extract_selected", lambda x, i: read.append(i) or extract(x, i)
    )
    reducer.on_step_start(2, 10)  # in the warm-up
    reducer(x)
    assert (read[0] == best).all(1).float().mean() < 0.5
    assert reducer._weights.requires_grad  # the scorer learns from the uniform windows too
    reducer.on_step_start(3, 10)
    reducer(x)
    assert torch.equal(read[1], best)


# --------------------------------------------------------------------------- options, presets


@pytest.mark.parametrize(
    "options,message",
    [
        ({"windows": 1}, "ips needs windows >= 2"),
        ({"windows": 40}, "cannot choose 40 windows per image: the grid offers 32"),
        ({"score_size": 0}, "score_size must be >= 1"),
        ({"score_chunk": 0}, "score_chunk must be >= 1"),
        ({"score_channels": []}, "score_channels needs >= 1 stage"),
        ({"window_sizes": [16, 128]}, "window size 128 px is larger than the 64×64"),
        ({"selection_warmup": -0.1}, "selection_warmup must be in"),
    ],
)
def test_configurations_that_cannot_work_are_clear_errors(options, message):
    with pytest.raises(ReducerConfigError, match=message):
        build(**options)


def test_the_preset_composes_builds_at_276_and_128_and_sets_only_what_differs():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        spec = dict(compose("config", overrides=["reducer=ips_windows"]).reducer)
    own = yaml.safe_load((CONF / "reducer" / "ips_windows.yaml").read_text())
    defaults = IpsConfig()
    assert all(own[k] != getattr(defaults, k) for k in own if k not in ("defaults", "name", "kind"))
    for canvas in (276, 128):
        reducer = build_reducer(spec, 1, (canvas, canvas))
        facts = reducer.describe()
        assert facts["name"] == "ips_windows" and facts["windows"] == reducer.candidates == 2
        assert facts["learned"] is True and facts["parameters"] > 0
        x = torch.rand(2, 1, canvas, canvas)
        assert reducer.train()(x).shape == (4, 1, 48, 48)
