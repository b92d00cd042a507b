"""README's "Adding a reducer" example, run as written: one module plus one preset."""

import types

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from readme_blocks import ROOT, readme_block

import stn.reducers.base
from experiments.schemas import register_schemas
from stn.reducers.base import ReducerConfigError
from stn.reducers.registry import build_reducer


@pytest.fixture
def centre_crop():
    """The README's module, registered for this test only."""
    module = types.ModuleType("centre_crop")
    exec(readme_block("python", "# stn/reducers/centre_crop.py"), module.__dict__)  # noqa: S102
    yield module
    stn.reducers.base.REDUCERS.unregister("centre_crop")


def test_the_readme_reducer_builds_from_a_spec_and_crops_the_centre(centre_crop):
    x = torch.rand(2, 1, 96, 96)
    reducer = build_reducer({"kind": "centre_crop", "fraction": 0.5}, 1, (96, 96), (48, 48))
    assert isinstance(reducer, centre_crop.CentreCrop) and reducer.name == "centre_crop"
    expected = F.interpolate(
        x[..., 24:72, 24:72], size=(48, 48), mode="bilinear", align_corners=False, antialias=True
    )
    torch.testing.assert_close(reducer(x), expected)
    with pytest.raises(ReducerConfigError, match="'fractoin' \\(did you mean 'fraction'\\?\\)"):
        build_reducer({"kind": "centre_crop", "fractoin": 0.5}, 1, (96, 96), (48, 48))
    with pytest.raises(ReducerConfigError, match=r"fraction must lie in \(0, 1\]"):
        build_reducer({"kind": "centre_crop", "fraction": 1.5}, 1, (96, 96), (48, 48))


def test_the_readme_preset_composes_over_its_schema(centre_crop, tmp_path):
    (tmp_path / "reducer").mkdir()
    preset = readme_block("yaml", "# conf/reducer/centre_crop.yaml")
    (tmp_path / "reducer" / "centre_crop.yaml").write_text(preset)
    register_schemas()  # now with base_centre_crop
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["reducer=centre_crop", f"hydra.searchpath=[file://{tmp_path}]"],
        )
    section = OmegaConf.to_container(cfg.reducer)
    assert section == {"name": "centre_crop", "kind": "centre_crop", "fraction": 0.4}
    reducer = build_reducer(section, 1, (96, 96), (48, 48))
    assert reducer.config.fraction == 0.4
