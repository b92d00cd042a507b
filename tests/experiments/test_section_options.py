"""Every section's options live in one dataclass: typos name the valid options and the
closest (library and command line), the presets' composed values are the dataclasses'
defaults, and presets restate none of them."""

import json
from pathlib import Path

import pytest
import tiny_runs
import yaml
from hydra import compose, initialize_config_dir
from omegaconf.errors import ConfigAttributeError
from test_sweep_faults import run_app

import experiments.schemas as schemas
import stn.reducers.base
import stn.reducers.registry
from experiments.job import plain_config, run_job
from experiments.objective import Objective
from experiments.schemas import RunConfig, section_schemas
from experiments.sections import section_settings
from stn.data.prepare import DatasetSpec
from stn.measure.throughput import ThroughputSettings
from stn.measure.train import TrainSettings
from stn.networks import NETWORKS, build_classifier, classifier_config
from stn.options import OptionsError, describe_options, option_names, options_from

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

SECTIONS = {"trainer": TrainSettings, "throughput": ThroughputSettings, "dataset": DatasetSpec}
# (section, a typo, the option it was meant to be)
TYPOS = [
    ("trainer", "epohcs", "epochs"),
    ("throughput", "min_second", "min_seconds"),
    ("dataset", "jiter", "jitter"),
]


def composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return plain_config(compose("config", overrides=list(overrides)))


@pytest.mark.parametrize(("section", "typo", "meant"), TYPOS)
def test_a_typo_in_a_section_names_the_valid_options_and_the_closest(section, typo, meant):
    cls = SECTIONS[section]
    with pytest.raises(OptionsError) as caught:
        options_from(cls, {typo: 1}, section)
    message = str(caught.value)
    assert f"unknown {section} option {typo!r} (did you mean {meant!r}?)" in message
    assert message.endswith("valid: " + ", ".join(option_names(cls)))
    # The job builds its sections the same way.
    with pytest.raises(OptionsError, match=f"did you mean {meant!r}"):
        section_settings(cls, {typo: 1}, section)


@pytest.mark.parametrize(
    ("kind", "typo", "meant"),
    [
        ("cnn", "dropuot", "dropout"),
        ("small_cnn", "hiden", "hidden"),
        ("resnet", "detph", "depth"),
        ("mlp", "hiden", "hidden"),
    ],
)
def test_a_typo_in_a_classifier_kind_names_its_options(kind, typo, meant):
    with pytest.raises(OptionsError) as caught:
        build_classifier(kind, 1, 10, (48, 48), **{typo: 1})
    message = str(caught.value)
    assert f"unknown classifier kind {kind!r} option {typo!r} (did you mean {meant!r}?)" in message
    assert meant in message.split("valid: ")[1].split(", ")


def test_an_unknown_classifier_kind_names_the_closest():
    with pytest.raises(
        OptionsError, match=r"unknown classifier kind 'cnnn' \(did you mean 'cnn'\?\)"
    ):
        classifier_config({"kind": "cnnn"})


def test_a_mistyped_value_names_the_option_and_the_type():
    with pytest.raises(OptionsError, match=r"trainer: option 'epochs' takes an integer, got 'x'"):
        options_from(TrainSettings, {"epochs": "x"}, "trainer")
    with pytest.raises(OptionsError, match=r"option 'object_size' takes 2 values, got \[20\]"):
        options_from(DatasetSpec, {"object_size": [20]}, "dataset")


def test_lists_become_the_tuples_a_field_asks_for():
    # Before: a fixed-length tuple came back as its element types, (int, int).
    spec = options_from(DatasetSpec, {"object_size": [20, 30], "object_scale": [1, 1]}, "dataset")
    assert spec.object_size == (20, 30) and spec.object_scale == (1.0, 1.0)
    assert isinstance(spec.object_scale[0], float)


def test_cross_option_checks_keep_their_own_errors():
    # The record says ValueError and names section.option, as before the dataclasses.
    with pytest.raises(ValueError, match=r"^trainer.batch_size must be >= 1, got 0$"):
        section_settings(TrainSettings, {"batch_size": 0}, "trainer")
    with pytest.raises(ValueError, match=r"^throughput.rounds must be >= 1, got 0$"):
        section_settings(ThroughputSettings, {"rounds": 0}, "throughput")


def test_the_composed_default_config_is_the_dataclasses_defaults():
    config = composed()
    assert config["trainer"] == describe_options(TrainSettings())
    assert config["throughput"] == describe_options(ThroughputSettings())
    assert config["dataset"] == describe_options(DatasetSpec())  # digits_96
    run = describe_options(RunConfig(), leave_out=("throughput", "quiet_pass", "objective"))
    run = {k: v for k, v in run.items() if v != "???"}  # the group sections
    run["results_dir"] = "results/default"  # resolved: results/${sweep}
    assert {k: config[k] for k in run} == run
    assert config["objective"] == describe_options(Objective())
    quiet = {"enabled": True, "throughput": describe_options(ThroughputSettings())}
    assert config["quiet_pass"] == quiet
    # comparable and reason are facts of the launch, never options of a run.
    assert not {"comparable", "reason"} & set(config["throughput"])


@pytest.mark.parametrize("preset", ["cnn", "cnn_small", "mlp", "resnet"])
def test_each_classifier_preset_is_its_kinds_defaults(preset):
    section = composed(f"classifier={preset}")["classifier"]
    config_type = NETWORKS.config_type(section["kind"])
    defaults = describe_options(config_type(name=preset, kind=section["kind"]))
    assert section == defaults


def _preset_files() -> list[Path]:
    groups = ["dataset", "trainer", "classifier", "experiment"]
    return [p for g in groups for p in sorted((CONF / g).glob("*.yaml")) if p.stem != "custom"]


def _sections_of(path: Path) -> dict[str, tuple[type, dict]]:
    """section → (its dataclass, the values the preset file sets)."""
    raw = yaml.safe_load(path.read_text()) or {}
    group = path.parent.name
    if group == "classifier":
        kind = raw["defaults"][0].removeprefix("base_")  # the schema sets the kind
        return {"classifier": (NETWORKS.config_type(kind), raw)}
    if group != "experiment":
        return {group: (SECTIONS[group], raw)}
    run = {k: v for k, v in raw.items() if k in option_names(RunConfig) and k not in SECTIONS}
    return {"run": (RunConfig, run)} | {s: (SECTIONS[s], raw.get(s) or {}) for s in SECTIONS}


@pytest.mark.parametrize("path", _preset_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_preset_restates_a_default(path):
    """A value equal to its dataclass default belongs in the dataclass only."""
    for section, (config_type, values) in _sections_of(path).items():
        defaults = describe_options(config_type())
        restated = {
            k: v
            for k, v in values.items()
            if k not in ("defaults", "name", "kind") and k in defaults and defaults[k] == v
        }
        assert not restated, f"{path.name} restates {section} defaults {restated}"


def test_a_key_added_with_plus_fails_the_run_naming_the_valid_options(tmp_path):
    # Hydra lets +trainer.x=... add a key to a schema section; the run's check refuses it.
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config", overrides=[*tiny_runs.TINY, f"results_dir={tmp_path}", "+trainer.lrr=1"]
        )
    outcome = run_job(cfg)
    assert outcome.status == "failed"
    assert "unknown trainer option 'lrr' (did you mean 'lr'?); valid: epochs" in outcome.reason
    record = json.loads((tmp_path / "records" / f"{outcome.run_id}.json").read_text())
    assert record["dataset"] == {}  # refused before any data was read


def test_every_reducer_kind_has_a_writable_schema_closed_to_unknown_keys():
    registered = {name: config_type for group, name, config_type in section_schemas()}
    for kind, cls in stn.reducers.base.REDUCERS.items():
        assert registered[f"base_{kind}"] is cls.config_type
    node = schemas.schema_node(stn.reducers.base.REDUCERS["resize"].config_type)
    node.mode = "area"  # writable, though the dataclass is frozen
    with pytest.raises(ConfigAttributeError, match="mdoe"):
        node.mdoe = "area"  # and still closed to unknown keys


def _reducer_presets() -> list[Path]:
    # Ablation rows live one folder down (reducer=ablation/<name>); they obey the same rules.
    return sorted((CONF / "reducer").rglob("*.yaml"))


def _preset_name(path: Path) -> str:
    return path.relative_to(CONF / "reducer").with_suffix("").as_posix()


@pytest.mark.parametrize("path", _reducer_presets(), ids=_preset_name)
def test_every_reducer_preset_extends_its_kinds_schema_and_only_overrides(path):
    """A root preset starts from base_<kind>; every value a preset sets differs from what
    its parent (the schema, or the preset it extends) gives."""
    raw = yaml.safe_load(path.read_text())
    parent = raw["defaults"][0].removeprefix("/reducer/").removesuffix("@_here_")
    section = composed(f"reducer={_preset_name(path)}")["reducer"]
    config_type = stn.reducers.base.REDUCERS[section["kind"]].config_type
    assert set(section) == set(option_names(config_type))  # every option, via the schema
    assert "kind" not in raw  # the schema sets it
    if parent.startswith("base_"):
        assert parent == f"base_{section['kind']}"
        inherited = describe_options(config_type())
    else:
        inherited = composed(f"reducer={parent}")["reducer"]
    own = {k: v for k, v in raw.items() if k not in ("defaults", "name", "kind")}
    restated = {k: v for k, v in own.items() if inherited[k] == v}
    assert not restated, f"{path.name} restates what {parent} gives: {restated}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        *[
            (f"{s}.{typo}=1", f"unknown {s} option {typo!r} (did you mean {m!r}?)")
            for s, typo, m in TYPOS
        ],
        ("classifier.dropuot=0.1", "unknown classifier kind 'cnn' option 'dropuot' (did you mean"),
        ("sede=3", "unknown run option 'sede' (did you mean 'seed'?)"),
    ],
)
def test_a_typo_on_the_command_line_exits_2_naming_the_valid_options(tmp_path, override, message):
    out = tmp_path / "out"
    proc = run_app(override, f"results_dir={out}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    key = override.split("=")[0]
    assert proc.stderr.startswith(f"error: {key}: {message}")
    assert "; valid: " in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_typo_in_a_sweep_exits_2_before_any_run(tmp_path):
    out = tmp_path / "out"
    proc = run_app("-m", "seed=0,1", "trainer.epochs=1,2", "trainer.lr_shedule=constant",
                   f"results_dir={out}")  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "(did you mean 'lr_schedule'?)" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("kind", ["stn", "resize", "pool"])
def test_a_kinds_schema_composes_as_a_preset_and_builds(kind):
    """``reducer=base_<kind>`` (offered by --help) is the kind with its defaults: the schema
    sets the kind and names the section after it."""
    section = composed(f"reducer=base_{kind}")["reducer"]
    assert section["kind"] == section["name"] == kind
    reducer = stn.reducers.registry.build_reducer(section, 1, (96, 96), (48, 48))
    assert reducer.kind == kind and reducer.name == kind


def test_a_mistyped_logger_option_is_refused_naming_the_valid_ones():
    from experiments.run import unknown_option_message

    with pytest.raises(Exception, match="logger.projct") as caught:
        composed("logger.projct=mine")
    message = unknown_option_message(caught.value.__cause__)
    assert message is not None and "(did you mean 'project'?)" in message
    logger = composed("logger=none")["logger"]
    assert logger == {
        "enabled": False,
        "mode": None,
        "project": "stn-bench",
        "entity": None,
        "dir": None,
    }
