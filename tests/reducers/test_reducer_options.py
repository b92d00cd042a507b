"""Reducer presets as typed configs: unknown keys and mistyped values are refused for every
kind, the configs load as OmegaConf structured schemas, the learned samplers (stn,
saliency) record every option and build their sampling kernel once."""

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

from stn.options import option_names
from stn.reducers.base import REDUCERS, ReducerConfigError
from stn.reducers.registry import build_reducer, reducer_config, reducer_kinds
from stn.sampling import kernels

KINDS = reducer_kinds()  # importing the registry registers every kind


def test_every_reducer_module_registered_its_kind():
    assert {"resize", "pool", "pca", "stn", "saliency", "learned_resizer"} <= set(REDUCERS)
    assert KINDS == sorted(REDUCERS)


@pytest.mark.parametrize("kind", KINDS)
def test_a_typod_key_fails_for_every_kind_naming_the_closest_and_the_valid_ones(kind):
    valid = option_names(REDUCERS[kind].config_type)
    meant = valid[-1]
    typo = meant + meant[-1]  # "sigma" → "sigmaa"
    with pytest.raises(ReducerConfigError) as err:
        build_reducer({"kind": kind, typo: None}, 1, (96, 96))
    assert str(err.value) == (
        f"unknown reducer kind {kind!r} option {typo!r} (did you mean {meant!r}?); "
        f"valid: {', '.join(valid)}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_config_loads_as_an_omegaconf_schema_and_back(kind):
    # Hydra registers these classes as structured-config schemas: their field types must
    # be ones OmegaConf takes, and its plain form must rebuild the same config.
    config_type = REDUCERS[kind].config_type
    schema = OmegaConf.to_container(OmegaConf.structured(config_type))
    assert list(schema) == option_names(config_type)
    rebuilt = reducer_config({**schema, "kind": kind})
    assert rebuilt == dataclasses.replace(config_type(), name=kind, kind=kind)


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("stn", {"kernel": 3}, "reducer kind 'stn': option 'kernel' takes a string, got 3"),
        ("stn", {"loc_channels": 16}, "option 'loc_channels' takes a list, got 16"),
        ("stn", {"loc_channels": [16, "32"]}, "option 'loc_channels'[1] takes an integer"),
        ("stn", {"glimpse_size": 1.5}, "option 'glimpse_size' takes an integer, got 1.5"),
        ("stn", {"antialias": "false"}, "option 'antialias' takes true or false, got 'false'"),
        ("stn", {"kernel_params": 0.5}, "option 'kernel_params' takes a mapping, got 0.5"),
        ("saliency", {"sigma": "wide"}, "option 'sigma' takes a number, got 'wide'"),
        ("saliency", {"zoom_schedule": [0.3]}, "unknown reducer kind 'saliency' option"),
    ],
)
def test_a_mistyped_value_fails_naming_the_option_and_what_it_takes(kind, options, message):
    with pytest.raises(ReducerConfigError) as err:
        build_reducer({"kind": kind, **options}, 1, (64, 64))
    assert message in str(err.value)


# A value for every option of each learned sampler: non-default where the options combine.
SAMPLERS = {
    "stn": {
        "name": "stn_all",
        "kernel": "gaussian",
        "kernel_params": {"sigma": 0.7},
        "antialias": True,
        "loc_size": 64,
        "loc_channels": [8, 8],
        "loc_norm": "standardize",
        "lr_multiplier": 0.3,
        "optimizer": "sgd",
        "transform": "attention",
        "loc_downscale": 2.0,
        "loc_hidden": 16,
        "loc_batch_norm": True,
        "loc_head_init": "blob",
        "blob_sharpness": 30.0,
        "loc_head": "heatmap",
        "init_scale": 0.5,
        "glimpses": 1,
        "zoom_schedule": [],
        "glimpse_size": 24,
        "candidates": 2,
        "sampler_input": "standardized",
        "loc_warmup_epochs": 1,
    },
    "saliency": {
        "name": "sal_all",
        "kernel": "lanczos2",
        "kernel_params": {},
        "antialias": True,
        "loc_size": 48,
        "loc_channels": [8],
        "loc_norm": "standardize",
        "lr_multiplier": 0.5,
        "optimizer": "sgd",
        "grid_size": 21,
        "sigma": 2.5,
    },
}


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_describe_records_every_option_of_the_config(kind):
    spec = SAMPLERS[kind]
    options = set(option_names(REDUCERS[kind].config_type))
    assert set(spec) == options - {"kind"}  # the spec above sets every option
    facts = build_reducer({"kind": kind, **spec}, 1, (96, 96)).describe()
    assert options <= set(facts)
    assert {k: facts[k] for k in spec} == spec
    assert facts["kind"] == kind and facts["learned"] is True and facts["parameters"] > 0


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("stn", {"transform": "affine"}),  # F.grid_sample's grid, the general sampler
        ("stn", {"transform": "attention"}),  # the separable axis-aligned sampler
        ("stn", {"transform": "attention", "glimpses": 2, "loc_size": 48}),  # + the region
        ("saliency", {}),
    ],
)
def test_the_sampling_kernel_is_built_with_the_reducer_never_in_forward(
    kind, options, bicubic_builds
):
    spec = {"kind": kind, "kernel": "bicubic", "kernel_params": {"a": -0.5}, **options}
    reducer = build_reducer(spec, 1, (96, 96))
    built = len(bicubic_builds)
    assert built >= 1 and reducer.kernel.name == "bicubic(a=-0.5)"
    _train_and_evaluate(reducer)
    assert len(bicubic_builds) == built


def test_attention_windows_build_their_sampling_kernel_once(bicubic_builds):
    spec = {"kind": "attention_windows", "kernel": "bicubic", "kernel_params": {"a": -0.5}}
    spec |= {"window_sizes": [16, 32], "view_size": 32, "windows": 2}
    reducer = build_reducer(spec, 1, (96, 96), (16, 16))
    built = len(bicubic_builds)
    assert built >= 1 and reducer.sampler.kernel.name == "bicubic(a=-0.5)"
    _train_and_evaluate(reducer)
    assert len(bicubic_builds) == built


@pytest.fixture
def bicubic_builds(monkeypatch) -> list[dict]:
    """Every build of the bicubic kernel from here on. With a = -0.5 it takes the general
    path, whose window fit runs a linalg.solve per build."""
    builds: list[dict] = []
    factory = kernels.KERNELS["bicubic"]

    def counted(**params):
        builds.append(params)
        return factory(**params)

    monkeypatch.setitem(kernels.KERNELS._targets, "bicubic", counted)
    return builds


def _train_and_evaluate(reducer) -> None:
    x = torch.rand(2, 1, 96, 96)
    out = reducer(x)
    if out.requires_grad:  # attention windows learn through pool_candidates instead
        out.sum().backward()
    reducer.eval()
    with torch.no_grad():
        reducer(x)


def _every_config_type() -> list[type]:
    from experiments.schemas import section_schemas

    return [config_type for _, _, config_type in section_schemas()]


@pytest.mark.parametrize("config_type", _every_config_type(), ids=lambda c: c.__name__)
def test_every_option_is_declared_in_exactly_one_class(config_type):
    """An option's default, type and help have one home: no config class re-declares a
    field that a class it extends (a shared option group) already declares."""
    for field in dataclasses.fields(config_type):
        homes = [
            klass.__name__
            for klass in config_type.__mro__
            if field.name in klass.__dict__.get("__annotations__", {})
        ]
        assert len(homes) == 1, f"{config_type.__name__}.{field.name} declared in {homes}"
        assert field.metadata.get("help"), f"{config_type.__name__}.{field.name} has no help"
