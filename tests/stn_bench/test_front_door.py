"""The stn-bench command: its subcommands, Hydra's command line behind `run`, and the old
invocations, which name the new command (issue 29)."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from experiments import CONF_DIR
from stn_bench import cli, presets

ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_package_declares_the_command_and_it_is_the_cli():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"stn-bench": "stn_bench.cli:main"}
    # The tests run an Optuna sweep: the dev extra brings the tuning extra.
    extras = project["optional-dependencies"]
    assert "stn-bench[tune]" in extras["dev"]
    assert any(r.startswith("hydra-optuna-sweeper==") for r in extras["tune"])


def test_help_lists_every_command_and_an_unknown_one_names_the_closest(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--help"])
    assert stop.value.code == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("run", "report", "options", "list"))
    assert cli.main(["lsit"]) == 2
    assert "unknown command 'lsit' (did you mean 'list'?)" in capsys.readouterr().err


def test_list_reads_every_preset_from_conf(capsys):
    assert cli.main(["list"]) == 0
    listed = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines()[:8])
    for group in ("classifier", "dataset", "experiment", "logger", "reducer", "trainer"):
        names = {p.relative_to(CONF_DIR / group).with_suffix("").as_posix()
                 for p in (CONF_DIR / group).rglob("*.yaml")}  # fmt: skip
        assert set(listed[group].split(", ")) == names
    assert "ablation/stn_no_batch_norm" in listed["reducer"]
    # Hydra's own groups: this checkout's presets beside the installed plugins'.
    assert {"basic", "joblib", "slurm"} <= set(listed["hydra/launcher"].split(", "))
    assert {"basic", "optuna", "tune"} <= set(listed["hydra/sweeper"].split(", "))


def test_list_of_a_group_gives_each_preset_its_first_comment_line(capsys):
    assert cli.main(["list", "trainer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    smoke = next(line for line in lines if line.startswith("smoke "))
    assert smoke.split(None, 1)[1] == presets.description(CONF_DIR / "trainer" / "smoke.yaml")
    assert "A few steps" in smoke
    assert cli.main(["list", "reducr"]) == 2
    assert "did you mean 'reducer'?" in capsys.readouterr().err


def test_options_lists_the_objective(capsys):
    assert cli.main(["options", "objective"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["metric", "direction"]


@pytest.mark.slow
def test_run_hands_the_command_line_to_hydra():
    proc = _python("-m", "stn_bench", "run", "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stn-bench run is powered by Hydra" in proc.stdout
    assert "== Configuration groups ==" in proc.stdout and "stn-bench list" in proc.stdout
    proc = _python("-m", "stn_bench", "run", "trainer.epohcs=3")
    assert proc.returncode == 2
    assert "unknown trainer option 'epohcs' (did you mean 'epochs'?)" in proc.stderr
    # The module the background sweeps start keeps working.
    proc = _python("-m", "experiments.run", "--cfg", "job", "seed=7")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "seed: 7" in proc.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["scripts/report.py", "results/compare"], "stn-bench report results/compare"),
        (["-m", "scripts.report", "results/compare"], "stn-bench report results/compare"),
        (["-m", "scripts.options", "stn"], "stn-bench options stn"),
    ],
)
def test_an_old_invocation_fails_naming_the_new_command(old, new):
    proc = _python(*old)
    assert proc.returncode == 2
    assert new in proc.stderr


def test_scripts_hold_no_sys_path_inserts():
    for path in sorted((ROOT / "scripts").glob("*.py")):
        assert "sys.path.insert" not in path.read_text(), path.name
