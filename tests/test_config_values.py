"""Every value is checked where its option is declared, before any training, and the
message names the option in full: a boolean is true or false, a key no section declares
is refused."""

from pathlib import Path

import pytest
import tiny_runs
from hydra import compose, initialize_config_dir
from test_sweep_faults import run_app

from experiments.job import run_job
from experiments.overrides import composition_problems

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
TINY = [*tiny_runs.TINY, "throughput.rounds=1", "threads=1"]


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _problems(*overrides: str) -> list[str]:
    return composition_problems(_compose(*overrides), overrides)


def _run(tmp_path: Path, *overrides: str):
    out = tmp_path / "out"
    outcome = run_job(_compose(*TINY, f"results_dir={out}", *overrides))
    return outcome, out


# -- the command line: a boolean is a boolean, a key is declared -----------------------


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("reducer.antialias=2", "reducer.antialias takes true or false, got 2"),
        ("resume=1", "resume takes true or false, got 1"),
        ("reducer.antialias=yes", "reducer.antialias takes true or false, got 'yes'"),
        ("+foo=1", "foo: unknown run option 'foo'; valid: seed, sweep, results_dir"),
        ("+trainer.lrr=1", "trainer.lrr: unknown trainer option 'lrr' (did you mean 'lr'?)"),
        (
            "+classifier._target_=custom_nets.TinyNet",
            "classifier._target_: unknown classifier kind 'cnn' option '_target_'",
        ),
    ],
)
def test_a_value_or_key_the_schema_does_not_allow_is_named(override, problem):
    problems = _problems(override)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


@pytest.mark.parametrize(
    "overrides",
    [
        ["reducer=resize_bilinear_aa", "reducer.antialias=false"],
        ["resume=true"],
        ["classifier=custom", "classifier._target_=custom_nets.TinyNet", "+classifier.width=3"],
        ["++trainer.lr=0.1"],
    ],
)
def test_what_the_schema_allows_passes(overrides):
    assert _problems(*overrides) == []


@pytest.mark.slow
def test_a_bad_value_anywhere_in_a_sweep_exits_2_before_any_run(tmp_path):
    out = tmp_path / "out"
    proc = run_app("-m", *TINY, f"results_dir={out}", "seed=0,1", "reducer.antialias=true,2")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: reducer.antialias takes true or false, got 2" in proc.stderr
    assert not out.exists()
