"""Issue 4 presets: the recipe reducers build, and the two sweeps expand as documented."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from presets import CONF, composed, sweep_values

from stn.reducers.registry import build_reducer

RECIPES = [
    "stn_candidates",
    "stn_heatmap",
    "stn_heatmap_aa",
    "stn_heatmap_zoomed",
    "stn_coarse_to_fine",
    "stn_regression_tuned",
    "stn_bilinear_sgd",
]


@pytest.mark.parametrize("preset", [*RECIPES, "saliency_sampler"])
def test_recipe_presets_build_and_record_their_options(preset):
    spec = OmegaConf.to_container(composed(f"reducer={preset}").reducer)
    reducer = build_reducer(spec, 1, (276, 276))
    facts = reducer.describe()
    assert facts["name"] == preset and facts["learned"] is True
    for key in ("loc_size", "lr_multiplier", "antialias"):
        assert facts[key] == spec[key]
    if preset != "saliency_sampler":  # every stn_* preset says what trains its localisation
        assert facts["optimizer"] == spec["optimizer"]


@pytest.mark.parametrize("experiment", ["stn_recipes", "object_scale", "stn_goal"])
def test_sweep_presets_name_existing_reducers(experiment):
    cfg = composed(f"experiment={experiment}")
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.sweep == experiment
    reducers = sweep_values(cfg, "reducer")
    available = {p.stem for p in Path(CONF, "reducer").glob("*.yaml")}
    attention = {"stn_heatmap", "stn_blob", "stn_candidates", "ats_sampling"}
    assert set(reducers) <= available and attention & set(reducers)
    assert sweep_values(cfg, "seed")[:2] == [0, 1]  # at least two seeds: a spread


def test_recipe_sweep_covers_both_reduction_factors():
    assert sweep_values(composed("experiment=stn_recipes"), "dataset") == [
        "digits_128",
        "digits_276",
    ]


def test_object_scale_sweep_expands_to_four_scales():
    cfg = composed("experiment=object_scale")
    assert sweep_values(cfg, "dataset.object_scale") == [
        [0.1, 0.1],
        [0.25, 0.25],
        [0.5, 0.5],
        [1.0, 1.0],
    ]


@pytest.mark.parametrize(("canvas", "view"), [(276, 96), (128, 44)])
def test_stn_blob_is_a_frozen_detector_with_a_44_pixel_glimpse_on_any_canvas(canvas, view):
    spec = OmegaConf.to_container(composed("reducer=stn_blob").reducer)
    reducer = build_reducer(spec, 1, (canvas, canvas))
    x = torch.rand(2, 1, canvas, canvas)
    assert reducer.low_resolution(x).shape[-1] == view
    torch.testing.assert_close(reducer.params(x)[:, 0], torch.full((2,), 44 / canvas))
    assert not any(p.requires_grad for p in reducer.parameters())


def test_goal_sweep_pits_the_learned_selectors_against_the_detector_and_the_oracle():
    cfg = composed("experiment=stn_goal")
    assert sweep_values(cfg, "reducer") == [
        "ats_sampling", "ats_topk", "ips_windows", "stn_candidates", "resize_bilinear_aa",
        "oracle_crop",
    ]  # fmt: skip
    assert sweep_values(cfg, "dataset") == ["digits_276", "question_276", "fashion_276"]


@pytest.mark.parametrize(
    ("experiment", "datasets", "seeds"),
    [
        ("stn_paper", None, 3),
        ("stn_ablation", None, 2),
        ("stn_carry", ["digits_276", "question_276"], 3),
    ],
)
def test_issue_25_sweeps_compose_and_every_reducer_builds(experiment, datasets, seeds):
    """The STN reproduction's sweeps name reducer presets that exist (the ablation rows one
    folder down) and compose into a config each, with the seeds they promise."""
    cfg = composed(f"experiment={experiment}")
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.sweep == experiment
    assert len(sweep_values(cfg, "seed")) == seeds
    if datasets is not None:
        assert sweep_values(cfg, "dataset") == datasets
    else:
        assert cfg.dataset.name == "mnist_60" and list(cfg.output_size) == [20, 20]
    reducers = sweep_values(cfg, "reducer")
    assert "stn_bilinear" in reducers
    for reducer in reducers:
        assert Path(CONF, "reducer", f"{reducer}.yaml").is_file(), reducer
        section = composed(f"experiment={experiment}", f"reducer={reducer}")["reducer"]
        assert section["name"] == reducer.rsplit("/", 1)[-1]


def test_every_ablation_row_differs_from_the_default_stn_in_what_its_name_says():
    base = composed("reducer=stn_bilinear")["reducer"]
    changed = {}
    for path in sorted(Path(CONF, "reducer", "ablation").glob("*.yaml")):
        row = composed(f"reducer=ablation/{path.stem}")["reducer"]
        changed[path.stem] = {k for k in base if k != "name" and row[k] != base[k]}
    assert changed["stn_no_batch_norm"] == {"loc_batch_norm"}
    assert changed["stn_loc_rate_1"] == {"lr_multiplier"}
    assert changed["stn_loc_view_16"] == {"loc_size"}
    assert changed["stn_sampler_standardized"] == {"sampler_input"}
    assert all(changed.values()), "an ablation row that changes nothing"


def test_each_stabiliser_row_changes_only_what_its_name_says_from_its_selector():
    """Issue 26's stabiliser rows: one change from the selector each one names."""
    cfg = composed("experiment=selector_stabilisers")
    rows = sweep_values(cfg, "reducer")
    assert len(sweep_values(cfg, "seed")) == 3 and cfg.dataset.name == "digits_276"
    expected = {
        "ips_windows_warmup": ("ips_windows", {"selection_warmup"}),
        "ats_topk_sigma_decay": ("ats_topk", {"topk_sigma_decay"}),
        "ats_topk_warmup": ("ats_topk", {"selection_warmup"}),
        "ats_sampling_regularised": ("ats_sampling", {"entropy_weight", "attention_smoothing"}),
        "ats_sampling_warmup": ("ats_sampling", {"selection_warmup"}),
    }
    assert {r.rsplit("/", 1)[-1] for r in rows if r.startswith("stabilisers/")} == set(expected)
    # Every selector a row changes runs beside it, under the same trainer and seeds.
    assert {selector for selector, _ in expected.values()} <= set(rows)
    for name, (selector, keys) in expected.items():
        base = composed(f"reducer={selector}")["reducer"]
        row = composed("experiment=selector_stabilisers", f"reducer=stabilisers/{name}")["reducer"]
        assert row["name"] == name
        assert {k for k in base if k != "name" and row[k] != base[k]} == keys, name
