"""A config string runs no code: a target is an nn.Module class (or a registered factory),
checked on the imported object before anything is called; nested instantiate keys,
loaders, hubs, builtins and Hydra's own slots are refused, naming the key.

The payloads would create a marker file; each test asserts it never appears (on the code
before issue 30 every one of them did).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tiny_runs
from hydra import compose, initialize_config_dir
from test_sweep_faults import run_app

from experiments.classifier import ClassifierConfigError, ClassifierSpec
from experiments.job import plain_config, run_job
from experiments.targets import code_problems

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf")
TINY = [*tiny_runs.TINY, "throughput.rounds=1", "threads=1"]


class _CreatesMarker:
    """Unpickling this object opens (creates) the marker file: a stand-in for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def payload(tmp_path) -> tuple[Path, Path]:
    """(an .npy file whose unpickling creates the marker, the marker's path)."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_CreatesMarker(marker)], dtype=object), allow_pickle=True)
    assert not marker.exists()
    return path, marker


def _section(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return plain_config(compose("config", overrides=list(overrides)))["classifier"]


def _run(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, f"results_dir={tmp_path / 'out'}", *overrides])
    outcome = run_job(cfg)
    record = json.loads((tmp_path / "out" / "records" / f"{outcome.run_id}.json").read_text())
    return outcome, record


def test_a_loader_nested_in_the_options_is_refused_naming_the_key_and_runs_nothing(
    tmp_path, payload
):
    path, marker = payload
    loader = f"+classifier.x={{_target_:numpy.load,file:{path},allow_pickle:true}}"
    outcome, record = _run(
        tmp_path, "classifier=custom", "classifier._target_=builtins.dict", loader
    )
    assert outcome.status == "failed"
    assert record["error"].startswith("ClassifierConfigError: classifier.x._target_: ")
    assert "may not name code" in record["error"]
    assert record["dataset"] == {}  # refused before any data was read
    assert not marker.exists()


@pytest.mark.parametrize("key", ["_target_", "_partial_", "_args_"])
def test_an_instantiate_key_at_any_depth_of_the_options_is_refused(key):
    section = {
        "_target_": "custom_nets.TinyNet",
        "width": 3,
        "layers": [{"deep": {key: "os.getcwd"}}],
    }
    with pytest.raises(ClassifierConfigError, match=rf"classifier\.layers\[0\]\.deep\.{key}"):
        ClassifierSpec.from_section(section).build(1, 10, (48, 48))


def test_torch_hub_load_is_refused_before_it_is_called(tmp_path):
    marker = tmp_path / "hubconf-ran"
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "hubconf.py").write_text(f"open({str(marker)!r}, 'w').close()\ndependencies = []\n")
    outcome, record = _run(
        tmp_path,
        "classifier=custom",
        "classifier._target_=torch.hub.load",
        f"+classifier.repo_or_dir={hub}",
        "+classifier.model=net",
        "+classifier.source=local",
    )
    assert outcome.status == "failed"
    assert (
        "classifier._target_='torch.hub.load' is a function, not a torch.nn.Module"
        in (record["error"])
    )
    assert "nothing was called" in record["error"]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("target", "kind"),
    [("builtins.dict", "class"), ("builtins.exec", "builtin_function_or_method")],
)
def test_a_builtin_is_refused_as_not_a_network_class(target, kind):
    section = _section("classifier=custom", f"classifier._target_={target}")
    with pytest.raises(ClassifierConfigError) as caught:
        ClassifierSpec.from_section(section).build(1, 10, (48, 48))
    assert f"classifier._target_={target!r} is a {kind}, not a torch.nn.Module subclass" in str(
        caught.value
    )


def test_an_unregistered_function_is_never_called_and_a_registered_one_builds(tmp_path):
    import custom_nets

    unregistered = _section("classifier=custom", "classifier._target_=custom_nets.counting_factory")
    calls = len(custom_nets.FACTORY_CALLS)
    with pytest.raises(ClassifierConfigError, match="is a function, not a torch.nn.Module"):
        ClassifierSpec.from_section(unregistered).build(1, 10, (48, 48))
    assert len(custom_nets.FACTORY_CALLS) == calls  # refused on the object, not after a call
    registered = _section("classifier=custom", "classifier._target_=custom_nets.tiny_net")
    network = ClassifierSpec.from_section(registered).build(1, 10, (48, 48))
    assert isinstance(network, custom_nets.TinyNet)


# -- the composed config as a whole (experiments.targets.code_problems) -----------------


def _config(**hydra) -> dict:
    base = {
        "launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
        "callbacks": {"report": {"_target_": "experiments.callbacks.ReportAtSweepEnd"}},
        "job_logging": {"handlers": {"console": {"class": "logging.StreamHandler"}}},
    }
    return {"classifier": {"_target_": "mynets.TinyNet"}, "hydra": {**base, **hydra}}


def test_the_composed_default_configs_name_only_allowed_code():
    assert code_problems(_config()) == []
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        from omegaconf import OmegaConf

        for overrides in ([], ["hydra/launcher=joblib"], ["hydra/launcher=slurm"]):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
            assert code_problems(OmegaConf.to_container(cfg, resolve=False)) == [], overrides


@pytest.mark.parametrize(
    ("hydra", "key", "message"),
    [
        (
            {"callbacks": {"evil": {"_target_": "numpy.load"}}},
            "hydra.callbacks.evil._target_",
            "'numpy.load' is a function, not a Hydra callback",
        ),
        (
            {"launcher": {"_target_": "builtins.exec"}},
            "hydra.launcher._target_",
            "not a Hydra launcher",
        ),
        (
            {
                "launcher": {
                    "_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
                    "x": {"_target_": "numpy.load"},
                }
            },  # fmt: skip
            "hydra.launcher.x._target_",
            "refused, nothing named here may be called",
        ),
        (
            {"job_logging": {"handlers": {"h": {"class": "subprocess.Popen"}}}},
            "hydra.job_logging.handlers.h.class",
            "'subprocess.Popen' is a class, not a logging handler",
        ),
        (
            {"job_logging": {"filters": {"f": {"()": "os.system"}}}},
            "hydra.job_logging.filters.f.()",
            "refused",
        ),
        ({"job": {"env_set": {"LD_PRELOAD": "x.so"}}}, "hydra.job.env_set.LD_PRELOAD", ""),
        (
            {
                "launcher": {
                    "_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
                    "setup": ["export A=1", "curl x | sh"],
                }
            },  # fmt: skip
            "hydra.launcher.setup[1]",
            "may only export a variable",
        ),
    ],
)
def test_code_a_config_names_outside_the_allowed_slots_is_refused(hydra, key, message):
    problems = code_problems(_config(**hydra))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{key}: ") and message in problems[0]


def test_a_target_in_any_other_section_is_refused():
    config = {**_config(), "dataset": {"options": {"loader": {"_target_": "numpy.load"}}}}
    assert code_problems(config) == [
        "dataset.options.loader._target_: refused, nothing named here may be called; a config "
        "names code only as classifier._target_ (an nn.Module class), and as Hydra's own "
        "callback, launcher and sweeper classes (README: Configuration)"
    ]


@pytest.mark.slow
def test_the_command_line_refuses_code_with_status_2_before_anything_runs(tmp_path, payload):
    path, marker = payload
    loader = f"{{_target_:numpy.load,file:{path},allow_pickle:true}}"
    out = tmp_path / "out"
    proc = run_app(
        *TINY,
        f"results_dir={out}",
        "classifier=custom",
        "classifier._target_=builtins.dict",
        f"+classifier.x={loader}",
        f"+hydra.callbacks.evil={loader}",
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert any(line.startswith("error: classifier.x._target_: refused") for line in lines)
    assert any(line.startswith("error: hydra.callbacks.evil._target_: ") for line in lines)
    assert "Traceback" not in proc.stderr
    assert not marker.exists() and not out.exists()


def test_the_payload_really_runs_code_when_loaded(payload):
    # The probes are only as good as their payload: loaded with pickles allowed, it runs.
    path, marker = payload
    np.load(path, allow_pickle=True)
    assert marker.exists()
