"""The job reads its config once into typed objects (experiments.sections.read_run) and
hands those, not config sections, to the rest: one typed path for the classifier, whether
a predefined kind or your own target."""

from pathlib import Path

import pytest
import tiny_runs
from hydra import compose, initialize_config_dir

import experiments.job as job
from experiments.classifier import ClassifierSpec, classifier_name
from experiments.job import plain_config, run_job
from experiments.schemas import RunConfig
from experiments.sections import read_run
from stn.data.prepare import DatasetSpec
from stn.measure.throughput import ThroughputSettings
from stn.measure.train import TrainSettings
from stn.networks import NETWORKS
from stn.options import OptionsError
from stn.reducers.base import REDUCERS

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf")
CUSTOM = ["classifier=custom", "classifier._target_=custom_nets.TinyNet", "+classifier.width=3"]


def composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        config = plain_config(compose("config", overrides=list(overrides)))
    # Named as run_job names it: what every record's config holds.
    config["classifier"] = {**config["classifier"], "name": classifier_name(config["classifier"])}
    return config


def test_every_section_the_run_builds_from_is_read_into_its_typed_object():
    run = read_run(composed("reducer=stn_bilinear", "classifier=mlp", "output_size=[40,44]"))
    assert isinstance(run, RunConfig)
    assert run.output_size == (40, 44)
    assert isinstance(run.dataset, DatasetSpec) and isinstance(run.trainer, TrainSettings)
    assert isinstance(run.throughput, ThroughputSettings)
    assert (
        isinstance(run.reducer, REDUCERS.config_type("stn")) and run.reducer.name == "stn_bilinear"
    )
    spec = run.classifier
    assert isinstance(spec, ClassifierSpec) and spec.target is None
    assert isinstance(spec.config, NETWORKS.config_type("mlp"))
    assert spec.describe() == {"name": "mlp", "kind": "mlp"}


def test_your_own_network_is_read_into_the_same_spec():
    spec = read_run(composed(*CUSTOM)).classifier
    assert spec.config is None and spec.target == "custom_nets.TinyNet"
    assert spec.options == {"width": 3}
    assert (spec.checkpoint, spec.frozen) == (None, False)
    assert spec.describe() == {"name": "TinyNet", "target": "custom_nets.TinyNet"}


@pytest.mark.parametrize(
    "overrides",
    [
        ["classifier=cnn"],
        ["classifier=cnn_small"],
        ["classifier=mlp"],
        ["classifier=resnet"],
        CUSTOM,
    ],
)
def test_a_saved_checkpoint_describes_the_network_as_its_section_did(overrides):
    """What save_trained_network writes as the meta's classifier: the section as composed
    (named), without the run's checkpoint and frozen, as before the section was typed."""
    section = composed(*overrides)["classifier"]
    expected = {k: v for k, v in section.items() if k not in ("checkpoint", "frozen")}
    assert ClassifierSpec.from_section(section).settings() == expected


def test_a_typo_in_the_reducer_section_fails_when_the_config_is_read():
    config = composed("reducer=stn_bilinear", "+reducer.loc_hiden=8")
    with pytest.raises(OptionsError, match="did you mean 'loc_hidden'"):
        read_run(config)


def test_the_job_hands_the_model_builder_typed_objects(tmp_path, monkeypatch):
    seen = {}

    def capture(run, data, device, record):
        seen["run"] = run
        raise RuntimeError("stop after the build's inputs")

    monkeypatch.setattr(job, "build_model", capture)
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            "config", overrides=[*tiny_runs.TINY, "threads=1", f"results_dir={tmp_path}", *CUSTOM]
        )
    outcome = run_job(cfg)
    assert outcome.status == "failed" and "stop after the build's inputs" in outcome.reason
    run = seen["run"]
    assert isinstance(run.classifier, ClassifierSpec) and run.classifier.target.endswith("TinyNet")
    assert isinstance(run.dataset, DatasetSpec) and run.dataset.limit_train == 32
    assert isinstance(run.reducer, REDUCERS.config_type(run.reducer.kind))
