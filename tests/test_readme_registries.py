"""README's "Adding a dataset", "Adding a network" and "Adding a report figure" examples,
run as written: one module (registered where it is defined) plus one preset each, composed
over their schemas; one entry in the report's table of figures, drawn from records."""

import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from PIL import Image
from readme_blocks import ROOT, readme_block
from report_records import make_record, write_all

from experiments.schemas import register_schemas
from experiments.sections import section_settings
from stn.data.prepare import DatasetSpec, prepare_data
from stn.data.sources import SOURCES
from stn.networks import NETWORKS, build_classifier
from stn.options import OptionsError
from stn.report import figure_table
from stn.report.document import write_report


def _run_module(name: str, first_line: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(readme_block("python", first_line), module.__dict__)  # noqa: S102
    return module


def _compose(tmp_path: Path, group: str, preset: str, *overrides: str) -> dict:
    (tmp_path / group).mkdir(exist_ok=True)
    (tmp_path / group / f"{preset}.yaml").write_text(
        readme_block("yaml", f"# conf/{group}/{preset}")
    )
    register_schemas()  # now with the example's schema, where it has one
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[f"{group}={preset}", f"hydra.searchpath=[file://{tmp_path}]", *overrides],
        )
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def stripes():
    yield _run_module("stripes", "# stn/data/stripes.py")
    SOURCES.unregister("stripes")


@pytest.fixture
def tiny():
    yield _run_module("tiny", "# stn/networks/tiny.py")
    NETWORKS.unregister("tiny")


def test_the_readme_dataset_loads_through_its_preset_onto_canvases(stripes, tmp_path):
    section = _compose(tmp_path, "dataset", "stripes_96")["dataset"]
    assert section["source"] == "stripes" and section["options"] == {"count": 400}
    spec = section_settings(DatasetSpec, section, "dataset")
    data = prepare_data(spec, seed=0, batch_size=8)
    assert len(data.train.images) + len(data.test.images) == 400
    assert data.num_classes == 2 and data.train.input_shape == (1, 96, 96)
    horizontal = stripes.load_stripes(None, count=2, size=6)[0].images[0, 0]
    assert np.array_equal(horizontal[:, 0], [0, 0, 0, 255, 255, 255]) and (horizontal[0] == 0).all()


def test_the_readme_dataset_refuses_a_mistyped_option(stripes):
    with pytest.raises(OptionsError, match=r"'cuont' \(did you mean 'count'\?\)"):
        DatasetSpec(source="stripes", options={"cuont": 4})
    with pytest.raises(OptionsError, match=r"unknown dataset source 'stripse' \(did you mean"):
        DatasetSpec(source="stripse")


def test_the_readme_network_builds_from_its_preset(tiny, tmp_path):
    section = _compose(tmp_path, "classifier", "tiny")["classifier"]
    assert section["kind"] == "tiny" and section["width"] == 16
    options = {k: v for k, v in section.items() if k not in ("kind", "checkpoint", "frozen")}
    network = build_classifier("tiny", 1, 10, (48, 48), **options)
    assert isinstance(network, tiny.TinyNet) and network.head.in_features == 16
    assert network(torch.zeros(2, 1, 48, 48)).shape == (2, 10)
    with pytest.raises(ConfigCompositionException):
        _compose(tmp_path, "classifier", "tiny", "classifier.widht=4")


@pytest.fixture
def by_seed(monkeypatch):
    """The README's figure added to the table for one test (the module's own namespace
    copied, so the example reads FigureData, figures, ... as the module does)."""
    namespace = dict(vars(figure_table))
    exec(readme_block("python", "# stn/report/figure_table.py"), namespace)  # noqa: S102
    monkeypatch.setattr(figure_table, "FIGURES", namespace["FIGURES"])
    return namespace["FIGURES"][-1]


def test_the_readme_figure_is_drawn_where_it_applies_and_left_out_elsewhere(by_seed, tmp_path):
    assert by_seed.name == "accuracy_by_seed" and by_seed not in figure_table.FIGURES[:-1]
    records = [make_record(r, s, 0.8 + s / 100) for r in ("resize", "pool") for s in (0, 1)]
    records.append(make_record("resize", 0, 0.8, classifier="mlp"))  # one seed: left out
    write_all(records, tmp_path)
    report = write_report(tmp_path)
    caption = "Test accuracy of each run by seed (digits_96, cnn)"
    assert report.figures[caption] == tmp_path / "figures" / "accuracy_by_seed_digits_96_cnn.png"
    with Image.open(report.figures[caption]) as image:
        assert image.size == (800, 500)  # figures.PLOT_SIZE at figures.DPI
    assert not [c for c in report.figures if c.startswith("Test accuracy") and "mlp" in c]
    assert "(figures/accuracy_by_seed_digits_96_cnn.png)" in report.path.read_text()
    assert "curves_digits_96_mlp.png" in {p.name for p in report.figures.values()}
