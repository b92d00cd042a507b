"""Bring your own network: classifier._target_ through Hydra's composition and a real run."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_runs
from custom_nets import TinyNet
from hydra import compose, initialize_config_dir

from experiments.classifier import ClassifierConfigError, ClassifierSpec
from experiments.job import plain_config, run_job
from stn.networks import count_parameters
from stn.networks.models import MLP

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf")
CUSTOM = ["classifier=custom"]
TINY = [*tiny_runs.TINY, "throughput.rounds=1", "threads=1"]


def section(*overrides: str) -> dict:
    """The classifier section as a run sees it: composed by Hydra, resolved, plain."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return plain_config(compose("config", overrides=list(overrides)))["classifier"]


def run(tmp_path: Path, *overrides: str) -> tuple[str, dict]:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, f"results_dir={tmp_path}", *overrides])
    outcome = run_job(cfg)
    record = json.loads((tmp_path / "records" / f"{outcome.run_id}.json").read_text())
    return outcome.status, record


def test_a_network_from_a_test_module_trains_and_the_record_names_it(tmp_path):
    status, record = run(
        tmp_path, *CUSTOM, "classifier._target_=custom_nets.TinyNet", "+classifier.width=3"
    )
    assert status == "ok", record.get("error")
    # Digits: 1 channel, 10 classes; width=3 reached the constructor (the default is 4).
    expected = count_parameters(TinyNet(1, 10, (48, 48), width=3))
    assert expected != count_parameters(TinyNet(1, 10, (48, 48)))
    assert record["classifier"] == {
        "name": "TinyNet",
        "target": "custom_nets.TinyNet",
        "parameters": expected,
    }
    assert record["config"]["classifier"]["name"] == "TinyNet"  # what the report groups by
    assert 0 <= record["metrics"]["test_accuracy"] <= 1


def test_the_run_passes_its_arguments_and_the_section_its_options():
    spec = section(
        *CUSTOM,
        "classifier._target_=custom_nets.TinyNet",
        "+classifier.width=5",
        "classifier.name=mine",
    )
    net = ClassifierSpec.from_section(spec).build(3, 7, [40, 44])
    assert isinstance(net, TinyNet) and net.input_size == (40, 44)
    assert net.features[0].in_channels == 3 and net.features[0].out_channels == 5
    assert net.head.out_features == 7
    assert ClassifierSpec.from_section(spec).describe() == {
        "name": "mine",
        "target": "custom_nets.TinyNet",
    }
    # The dummy forward ran in eval mode: training mode is back, batch-norm stats untouched.
    norm = net.features[1]
    assert net.training and int(norm.num_batches_tracked) == 0
    assert float(norm.running_mean.abs().sum()) == 0.0


def test_a_predefined_kind_still_builds_its_network():
    spec = section("classifier=mlp")
    assert isinstance(ClassifierSpec.from_section(spec).build(1, 10, (48, 48)), MLP)
    assert ClassifierSpec.from_section(spec).describe() == {"name": "mlp", "kind": "mlp"}


@pytest.mark.parametrize(
    ("target", "messages"),
    [
        (
            "custom_nets_nowhere.TinyNet",
            ["cannot import module 'custom_nets_nowhere'", "PYTHONPATH"],
        ),
        ("custom_nets.TinyNett", ["has no attribute 'TinyNett'", "defines: FlatOnly"]),
        (
            "custom_nets.NoRunArguments",
            [
                "does not accept in_channels, input_size as keyword",
                "__init__(self, in_channels: int, num_classes: int, input_size",
            ],
        ),
        ("custom_nets.WrongShape", ["returned shape (2, 11)", "(N, num_classes) = (2, 10)"]),
    ],
)
def test_a_bad_target_fails_its_run_with_a_clear_error(tmp_path, target, messages):
    status, record = run(tmp_path, *CUSTOM, f"classifier._target_={target}")
    assert status == "failed" and record["status"] == "failed"
    assert record["error"].startswith("ClassifierConfigError: ")
    for message in messages:
        assert message in record["error"]
    # The failed record is still named after the class it asked for.
    assert record["config"]["classifier"]["name"] == target.rsplit(".", 1)[1]


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (
            ["+classifier._target_=custom_nets.TinyNet"],  # on the default preset, with kind
            ["sets both kind=", "classifier=custom classifier._target_=package.module.Class"],
        ),
        (CUSTOM, ["classifier._target_ is not set", "classifier=custom classifier._target_="]),
        ([*CUSTOM, "classifier._target_=TinyNet"], ["is not a dotted path"]),
        (
            [*CUSTOM, "classifier._target_=custom_nets.TinyNet", "+classifier.widht=3"],
            ["has no parameter widht", "~classifier.widht"],
        ),
        (
            [*CUSTOM, "classifier._target_=custom_nets.FlatOnly"],
            ["forward on a dummy batch of shape (2, 1, 48, 48)", "raised RuntimeError"],
        ),
        (
            [*CUSTOM, "classifier._target_=custom_nets.not_a_module"],
            ["is a function, not a torch.nn.Module subclass; nothing was called"],
        ),
        (
            [*CUSTOM, "classifier._target_=custom_nets.registered_not_a_module"],
            ["returned a builtins.dict, not a torch.nn.Module"],
        ),
    ],
)
def test_a_bad_section_or_network_is_a_clear_error(overrides, messages):
    with pytest.raises(ClassifierConfigError) as caught:
        ClassifierSpec.from_section(section(*overrides)).build(1, 10, (48, 48))
    for message in messages:
        assert message in str(caught.value)


def test_a_module_that_fails_to_import_is_told_apart_from_a_missing_one(tmp_path, monkeypatch):
    (tmp_path / "broken_nets.py").write_text("import a_package_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = section(*CUSTOM, "classifier._target_=broken_nets.Net")
    with pytest.raises(ClassifierConfigError, match="importing module 'broken_nets' raised"):
        ClassifierSpec.from_section(spec).check()


def readme_example() -> tuple[str, list[str]]:
    """The module and the first command of README's "Bring your own network" section."""
    text = (ROOT / "README.md").read_text()
    part = text.split("## Bring your own network", 1)[1].split("\n## ", 1)[0]
    module = re.search(r"```python\n(.*?)```", part, re.S).group(1)
    commands = re.search(r"```bash\n(.*?)```", part, re.S).group(1)
    first = commands.splitlines()[0].split("#")[0]
    return module, shlex.split(first)


@pytest.mark.slow
def test_the_readme_example_runs_from_the_working_directory(tmp_path):
    module, command = readme_example()
    assert command[:2] == ["stn-bench", "run"]
    (tmp_path / "mynets.py").write_text(module)
    out = tmp_path / "out"
    # PYTHONPATH: this checkout's experiments/; the working directory supplies mynets.
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "stn_bench", *command[1:], *TINY, f"results_dir={out}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = (out / "records").glob("*.json")
    record = json.loads(path.read_text())
    target = next(a.split("=", 1)[1] for a in command if a.startswith("classifier._target_="))
    assert record["status"] == "ok"
    assert record["classifier"]["target"] == target
    assert record["classifier"]["name"] == target.rsplit(".", 1)[1]
