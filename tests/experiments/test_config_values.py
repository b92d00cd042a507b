"""Every value is checked where its option is declared, before any training, and the
message names the option in full: a boolean is true or false, a key no section declares
is refused, a sweep is one folder name, throughput and batch sizes have ranges, the
timing batch must fit before training starts, and records of another schema are named
without contradiction and never overwritten by an older stn-bench."""

import json
from pathlib import Path

import pytest
import tiny_runs
from hydra import compose, initialize_config_dir
from test_sweep_faults import run_app

import experiments.job
import stn.measure.throughput
from experiments.job import run_job
from experiments.overrides import composition_problems
from experiments.schemas import RunConfig, sweep_name_problem
from experiments.sections import section_settings
from stn.measure.throughput import ThroughputSettings
from stn.measure.train import MAX_BATCH_SIZE, TrainSettings
from stn.options import OptionsError, options_from
from stn.results.store import RecordError, read_record, records_dir

ROOT = Path(__file__).resolve().parents[2]
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


def test_an_unknown_top_level_key_fails_the_run_before_any_data(tmp_path):
    # The compose API has no command-line check: the run's own check names the key.
    outcome, out = _run(tmp_path, "+foo=1")
    assert outcome.status == "failed"
    assert "unknown run option 'foo'; valid: seed, sweep" in outcome.reason
    assert read_record(records_dir(out) / f"{outcome.run_id}.json").dataset.name is None


# -- the sweep's name is one folder -----------------------------------------------------


@pytest.mark.parametrize("name", ["../../escape", "..", ".", "", " ", "a/b", "a\\b", "a\nb"])
def test_a_sweep_name_that_is_not_one_folder_is_refused(name):
    assert sweep_name_problem(name).startswith(f"sweep={name!r} is not a folder name")
    with pytest.raises(ValueError, match="is not a folder name"):
        section_settings(RunConfig, {"sweep": name}, "run")


def test_a_bad_sweep_name_among_a_sweeps_values_is_refused_at_composition():
    # Hydra makes each job's folder from its own sweep value, before the job runs.
    (problem,) = composition_problems(_compose(), ["sweep=mine,../escape"])
    assert problem.startswith("sweep='../escape' is not a folder name")


def test_a_job_with_a_bad_sweep_name_writes_nothing(tmp_path):
    outcome, out = _run(tmp_path, "sweep=../escape")
    assert outcome.status == "failed" and "sweep='../escape' is not a folder name" in outcome.reason
    assert not out.exists()


@pytest.mark.slow
def test_a_bad_sweep_name_exits_2_before_any_folder_is_made(tmp_path):
    # results/<sweep> inside tmp_path: sweep=../escape would have written tmp_path/escape.
    proc = run_app(*TINY, "sweep=../escape", f"results_dir={tmp_path}/results/${{sweep}}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: sweep='../escape' is not a folder name")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": -1}, r"seed must lie in \[0, 2\*\*32\)"),
        ({"threads": 0}, "threads must be >= 1 or null"),
    ],
)
def test_top_level_values_out_of_range_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        section_settings(RunConfig, values, "run")


# -- throughput and batch sizes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"warmup": -1}, "throughput.warmup must be >= 0, got -1"),
        ({"min_seconds": -1}, "throughput.min_seconds must be a finite number >= 0, got -1"),
        ({"min_repeats": 0}, "throughput.min_repeats must be >= 1, got 0"),
        (
            {"max_repeats": 0},
            r"throughput.max_repeats must be >= throughput.min_repeats \(5\), got 0",
        ),
        ({"batch_size": MAX_BATCH_SIZE + 1}, "throughput.batch_size must be <= 65536 or null"),
    ],
)
def test_throughput_values_out_of_range_are_named_in_full(values, message):
    with pytest.raises(OptionsError, match=message):
        options_from(ThroughputSettings, values, "throughput")


def test_an_absurd_training_batch_is_refused_with_its_bound():
    with pytest.raises(ValueError, match=r"trainer.batch_size must be <= 65536 \(a bound .*got 10"):
        TrainSettings(batch_size=10**9)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("throughput.max_repeats=0", "throughput.max_repeats must be >= throughput.min_repeats"),
        ("trainer.batch_size=1000000000", "trainer.batch_size must be <= 65536"),
    ],
)
def test_a_bad_timing_or_batch_value_fails_the_run_before_any_data(
    tmp_path, memory_cap, override, message
):
    # memory_cap: before, the billion-image batch trained, then asked for 7.45 GiB to time.
    outcome, out = _run(tmp_path, override)
    assert outcome.status == "failed" and message in outcome.reason
    assert read_record(records_dir(out) / f"{outcome.run_id}.json").dataset.name is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ([], "trainer.batch_size (the timing batch): a timing batch of 16 images"),
        (["throughput.batch_size=4096"], "throughput.batch_size: a timing batch of 4,096 images"),
    ],
)
def test_a_timing_batch_that_cannot_fit_fails_the_run_before_training(
    tmp_path, monkeypatch, overrides, named
):
    # Before: the run trained, then the timing asked for more memory than there was and
    # the trained result was lost. The check needs the input shape: after the data, before fit.
    monkeypatch.setattr(stn.measure.throughput, "available_memory_bytes", lambda device: 2**16)
    fitted = []
    monkeypatch.setattr(experiments.job, "fit", lambda *a, **k: fitted.append(1))
    outcome, out = _run(tmp_path, "trainer.batch_size=16", *overrides)
    assert outcome.status == "failed" and named in outcome.reason, outcome.reason
    assert "set throughput.batch_size to at most" in outcome.reason
    assert not fitted


# -- records of another schema -----------------------------------------------------------


def test_a_schema_version_written_as_a_string_gets_a_message_that_says_so(tmp_path):
    path = tmp_path / "string.json"
    path.write_text(json.dumps({"schema_version": "1", "run_id": "x", "status": "ok"}))
    with pytest.raises(RecordError) as caught:
        read_record(path)
    message = str(caught.value)
    assert "schema version is '1' (a string): schema_version must be an integer" in message
    assert '(1, not "1")' in message


def test_resume_never_overwrites_a_record_a_newer_stn_bench_wrote(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(experiments.job, "_train_and_measure", lambda *a: trained.append(1))
    first, out = _run(tmp_path)
    path = records_dir(out) / f"{first.run_id}.json"
    newer = {**json.loads(path.read_text()), "schema_version": 2, "status": "failed"}
    path.write_text(json.dumps(newer))
    before = path.read_bytes()
    again, _ = _run(tmp_path)
    assert again.run_id == first.run_id and again.status == "failed"
    assert "has schema version 2, newer than this stn-bench writes (1); not overwritten" in (
        again.reason
    )
    assert path.read_bytes() == before and len(trained) == 1
