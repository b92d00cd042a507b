"""Every command README.md shows works as written (issue 29): parsed from its ``bash``
blocks, so a renamed preset, option or command fails here before a reader meets it.

The runs are small (``trainer=smoke``, a few images, each sweep's first job): what is
checked is that each command composes, runs and writes an ``ok`` record, not accuracy.
The tuning example runs as the 2-trial Optuna sweep it is.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from readme_commands import SMALL, bash_commands, launches_runs, python_lines

from stn.results.store import load_records

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
OLD_INVOCATIONS = ("python -m experiments.run", "scripts/report.py", "scripts.options")


def _env(cwd: Path) -> dict[str, str]:
    # This checkout's packages, tests/ (the runner, tiny_runs) and the working directory
    # (the README's own network module, mynets.py).
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(cwd)])
    return {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def _tuning(command: list[str]) -> bool:
    return any(arg.startswith("hydra/sweeper=") for arg in command)


def test_the_readme_and_docs_name_only_the_stn_bench_command():
    commands = bash_commands(README)
    assert {c[0] for c in commands} == {"run", "report", "options", "list", "folder"}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for old in OLD_INVOCATIONS:
            assert old not in text, f"{path.name} still says {old!r}: use stn-bench"


def test_every_readme_command_runs_as_written(tmp_path):
    """The README's commands in its order, from one working directory, as a reader would
    type them (the network module of "Bring your own network" written where it says)."""
    part = README.split("## Bring your own network", 1)[1]
    (tmp_path / "mynets.py").write_text(re.search(r"```python\n(.*?)```", part, re.S).group(1))
    # The tuning example runs below; Hydra's --help in tests/stn_bench/test_front_door.py.
    commands = [c for c in bash_commands(README) if not _tuning(c) and "--help" not in c]
    assert sum(launches_runs(c) for c in commands) >= 10  # the parse found the runs
    (tmp_path / "README.md").write_text(README)  # a reader types them in the checkout
    for line in python_lines(README):  # the README's set-up lines (a folder of images)
        made = subprocess.run(
            [sys.executable, *shlex.split(line)[1:]],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr[-2000:]
    listing, statuses = tmp_path / "commands.json", tmp_path / "statuses.json"
    listing.write_text(json.dumps(commands))
    proc = subprocess.run(
        [sys.executable, "-m", "readme_commands", str(listing), str(statuses)],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = [
        " ".join(command)
        for command, status in zip(commands, json.loads(statuses.read_text()), strict=True)
        if status != 0
    ]
    assert not failed, f"README commands that failed: {failed}\n{proc.stderr[-3000:]}"
    records = [r for folder in (tmp_path / "results").iterdir() for r in load_records(folder)[0]]
    assert len(records) >= 10 and all(r.status == "ok" for r in records)
    # `stn-bench report results/compare` read what the compare commands wrote.
    assert (tmp_path / "results" / "compare" / "report.md").is_file()
    assert "report: results/compare/report.md" in proc.stdout


def test_the_readme_tuning_example_returns_each_trials_accuracy_to_optuna(tmp_path):
    """The README's tuning command as a 2-trial Optuna sweep on the smallest dataset: each
    trial hands the sweeper its run's test accuracy (a float), and the sweeper's best value
    and parameters land beside the sweep's report."""
    (command,) = [c for c in bash_commands(README) if _tuning(c)]
    sweep = next(a.split("=", 1)[1] for a in command if a.startswith("sweep="))
    small = [*SMALL, "dataset=digits_60", "hydra.sweeper.n_trials=2"]
    keys = {s.split("=", 1)[0] for s in small}
    args = [a for a in command[1:] if a.split("=", 1)[0] not in keys] + small
    proc = subprocess.run(
        [sys.executable, "-m", "stn_bench", "run", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Failed experiment" not in output and "float-castable" not in output
    folder = tmp_path / "results" / sweep
    records, skipped = load_records(folder)
    assert not skipped and len(records) == 2 and all(r.status == "ok" for r in records)
    assert all(r.config["dataset"]["name"] == "digits_60" for r in records)
    assert len({r.config["trainer"]["lr"] for r in records}) == 2  # the sampler chose two
    results = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    best = max(records, key=lambda r: r.metrics.test_accuracy)
    assert isinstance(results["best_value"], float)
    assert results["best_value"] == best.metrics.test_accuracy
    # Two smoke trials may tie on accuracy: the best parameters are those of a best trial.
    best_lrs = {
        r.config["trainer"]["lr"]
        for r in records
        if r.metrics.test_accuracy == results["best_value"]
    }
    assert results["best_params"]["trainer.lr"] in best_lrs
    assert (folder / "report.md").is_file()
    assert f"optimiser: best test_accuracy {results['best_value']}" in proc.stdout
