"""Sweeps that survive: resume after SIGKILL, isolation of failing runs, concurrent
writers, determinism, wandb failures, bad input, and the joblib / submitit launchers."""

import json
import logging
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import joblib
import pytest
import tiny_runs
import torch
from hydra import compose, initialize_config_dir

import experiments.job
from experiments.job import run_job
from experiments.outcomes import JobOutcome, tally_outcomes, write_outcome
from stn.results.record import Metrics, new_record
from stn.results.store import load_records, read_record, records_dir, write_record

ROOT = Path(__file__).resolve().parents[2]

TINY = tiny_runs.TINY


def app_command(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "experiments.run", *overrides]


def app_env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def run_app(
    *overrides: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        app_command(*overrides),
        cwd=ROOT,
        env=env or app_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("*.json")}


def summary_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("sweep: "))


def start_in_own_group(overrides: list[str], capture: bool) -> subprocess.Popen:
    """The app in its own process group: killed whole, or reached by a Ctrl-C as from a
    terminal; ``capture`` keeps its output as text."""
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        app_command(*overrides),
        cwd=ROOT,
        env=app_env(),
        stdout=stream,
        stderr=stream,
        text=True,
        start_new_session=True,
    )


def wait_for_first_record(proc: subprocess.Popen, out: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not list(records_dir(out).glob("*.json")):
        assert proc.poll() is None, "the sweep ended before writing its first record"
        assert time.monotonic() < deadline, f"no record appeared within {seconds:.0f} s"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_sweep_killed_mid_run_resumes_without_losing_or_repeating_work(tmp_path):
    out = tmp_path / "killed"
    sweep = ["-m", *TINY, "threads=1", "seed=0,1,2,3", f"results_dir={out}"]
    proc = start_in_own_group(sweep, capture=False)
    try:
        wait_for_first_record(proc, out)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = snapshot(records_dir(out))
    assert 1 <= len(before) < 4, "the kill should land before the sweep's last run"
    assert all(read_record(records_dir(out) / name).status == "ok" for name in before)

    again = run_app(*sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    after = snapshot(records_dir(out))
    # Every record that was ok is untouched (bytes and mtime); the rest were (re)done.
    assert {name: after[name] for name in before} == before
    records, skipped = load_records(out)
    assert not skipped
    assert sorted(r.config["seed"] for r in records) == [0, 1, 2, 3]
    assert all(r.status == "ok" for r in records)
    assert all(f"{r.run_id}.json" in after for r in records) and len(after) == 4
    line = summary_line(again.stdout)
    assert f"{4 - len(before)} ok, 0 failed, {len(before)} skipped" in line


@pytest.mark.slow
def test_ctrl_c_ends_a_sweep_with_a_message_the_tally_and_exit_code_130(tmp_path):
    # Before: a raw KeyboardInterrupt traceback, no tally line, exit status 1.
    out = tmp_path / "interrupted"
    sweep = ["-m", *TINY, "threads=1", "seed=0,1,2,3", f"results_dir={out}"]
    proc = start_in_own_group(sweep, capture=True)
    try:
        wait_for_first_record(proc, out)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stdout + stderr and "KeyboardInterrupt" not in stdout + stderr
    assert "interrupted (SIGINT)" in stderr and "relaunch the same command" in stderr
    line = summary_line(stdout)
    assert "interrupted" in line
    records, _ = load_records(out)
    ok = sum(r.status == "ok" for r in records)
    assert 1 <= ok < 4 and line.startswith(f"sweep: {ok} ok, 0 failed, 0 skipped")


@pytest.mark.slow
def test_a_raising_and_a_diverging_run_fail_alone_and_the_sweep_exits_non_zero(tmp_path):
    out = tmp_path / "mixed"
    # lr=1e30 makes the loss NaN within two steps; lr=-1 raises while setting up.
    proc = run_app("-m", *TINY, "threads=1", "trainer.lr=0.001,1e30,-1", f"results_dir={out}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    records, _ = load_records(out)
    by_lr = {r.config["trainer"]["lr"]: r for r in records}
    assert len(by_lr) == 3
    assert by_lr[0.001].status == "ok"
    assert by_lr[1e30].status == "failed"
    assert by_lr[1e30].error.startswith("NonFiniteLossError")
    assert by_lr[-1].status == "failed"
    assert "trainer.lr must be > 0" in by_lr[-1].error
    assert "1 ok, 2 failed, 0 skipped" in summary_line(proc.stdout)
    assert "trainer.lr=-1" in proc.stdout  # the failed job is named by its overrides

    # Relaunching keeps the ok run and retries the failed ones, which fail again.
    again = run_app("-m", *TINY, "threads=1", "trainer.lr=0.001,1e30,-1", f"results_dir={out}")
    assert again.returncode == 1
    assert "0 ok, 2 failed, 1 skipped" in summary_line(again.stdout)


def _config(**keys) -> dict:
    names = {section: {"name": "x"} for section in ("dataset", "reducer", "classifier")}
    return {"seed": 0, **names, **keys}


def _write_many(folder: str, writer: str, start: Event, count: int) -> None:
    start.wait()
    for i in range(count):
        metrics = {"test_accuracy": 0.5, "writer": writer, "payload": [i] * 500}
        shared = new_record(_config(i=i, shared=True), sweep="s")
        shared.status, shared.error, shared.metrics = "ok", None, Metrics.from_json(metrics)
        write_record(shared, folder)
        own = new_record(_config(i=i, writer=writer), sweep="s")
        own.status, own.metrics = "ok", Metrics.from_json(metrics)
        write_record(own, folder)


def test_two_processes_writing_records_into_one_folder_never_clobber(tmp_path):
    context = multiprocessing.get_context("fork")
    start = context.Event()
    count = 40
    writers = [
        context.Process(target=_write_many, args=(str(tmp_path), name, start, count))
        for name in ("a", "b")
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    records, skipped = load_records(tmp_path)
    assert not skipped  # every file parses
    # count shared ids (one record each, written by both) + count own ids per writer
    assert len(records) == 3 * count
    for record in records:
        metrics = record.metrics.to_json()
        assert metrics["writer"] in ("a", "b")
        assert metrics["payload"] == [record.config["i"]] * 500
    assert not [p for p in records_dir(tmp_path).iterdir() if p.suffix != ".json"]


def compose_run(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*TINY, "threads=1", *overrides])


def without_timing(metrics: dict) -> dict:
    kept = {k: v for k, v in metrics.items() if k != "train_seconds"}
    kept["curves"] = [{k: v for k, v in c.items() if k != "seconds"} for c in metrics["curves"]]
    return kept


def test_the_same_seed_twice_in_one_process_gives_identical_metrics_on_cpu(tmp_path):
    # One process, as in a basic-launcher sweep: no state may leak from one run to the next.
    first = run_job(compose_run(tmp_path, f"results_dir={tmp_path / 'a'}", "seed=3"))
    second = run_job(compose_run(tmp_path, f"results_dir={tmp_path / 'b'}", "seed=3"))
    assert first.status == second.status == "ok" and first.run_id == second.run_id
    a, b = (read_record(tmp_path / d / "records" / f"{first.run_id}.json") for d in "ab")
    assert without_timing(a.metrics.to_json()) == without_timing(b.metrics.to_json())
    assert a.metrics.steps == 2
    assert a.determinism["repeatable"] is True and a.environment["torch_threads"] == 1
    assert a.determinism["deterministic_algorithms"] is False


def test_record_says_whether_the_general_sampler_ran_compiled(tmp_path):
    # An affine STN with Lanczos-3 runs the general path: compiled on CPU (stn/sampling/native.py).
    out = tmp_path / "affine"
    overrides = ("reducer=stn_affine", "reducer.kernel=lanczos3", f"results_dir={out}")
    done = run_job(compose_run(tmp_path, *overrides))
    record = read_record(out / "records" / f"{done.run_id}.json")
    assert done.status == "ok"
    assert record.environment["compiled_sampler"].startswith("compiled (")


def test_a_diverged_antialiased_stn_fails_its_run_saying_the_transformer_diverged(
    tmp_path, memory_cap
):
    # Before: lr=1e8 blew the zoom up to ~3e7 at the second step and the anti-aliased
    # sampler asked for 195 GB for one batch (here the memory cap refuses it quickly).
    out = tmp_path / "diverged"
    overrides = ("reducer=stn_bilinear_aa", "trainer.lr=1e8", f"results_dir={out}")
    done = run_job(compose_run(tmp_path, *overrides))
    record = read_record(out / "records" / f"{done.run_id}.json")
    assert done.status == record.status == "failed"
    assert record.error.startswith("TransformerDivergedError: stn_bilinear_aa: the transformer")
    assert "beyond the bound of 8 px" in record.error
    assert "lower trainer.lr or reducer.lr_multiplier" in record.error


@pytest.mark.parametrize(
    "override,message",
    [
        # Before: TypeError 'int' object is not iterable / IndexError / a torch error
        # about spatial dimensions; none named output_size.
        ("output_size=48", r"output_size must be \[h, w\], two positive integers .*; got 48$"),
        ("output_size=[48]", r"output_size must be \[h, w\].*; got \[48\]$"),
        ("output_size=[48,48,48]", r"output_size must be \[h, w\].*; got \[48, 48, 48\]$"),
        ("output_size=[48,0]", r"output_size must be \[h, w\].*; got \[48, 0\]$"),
        # Before: ZeroDivisionError: float division by zero, after loading the data.
        (
            "trainer.max_steps_per_epoch=0",
            r"trainer.max_steps_per_epoch must be null \(whole epochs\) or an integer >= 1, got 0",
        ),
    ],
)
def test_a_malformed_setting_fails_the_run_naming_it_and_its_form(tmp_path, override, message):
    out = tmp_path / "bad"
    done = run_job(compose_run(tmp_path, override, f"results_dir={out}"))
    assert done.status == "failed"
    assert re.search(message, done.reason.split(": ", 1)[1]), done.reason
    assert done.reason.startswith("ValueError: ")
    record = read_record(out / "records" / f"{done.run_id}.json")
    assert record.error == done.reason


def test_out_of_memory_fails_one_run_and_the_next_run_in_the_process_is_ok(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    out = tmp_path / "oom"
    with monkeypatch.context() as patch:
        patch.setattr(experiments.job, "fit", out_of_memory)
        failed = run_job(compose_run(tmp_path, f"results_dir={out}", "seed=0"))
    ok = run_job(compose_run(tmp_path, f"results_dir={out}", "seed=1"))
    assert failed.status == "failed" and "OutOfMemoryError" in failed.reason
    assert ok.status == "ok"
    record = read_record(out / "records" / f"{failed.run_id}.json")
    assert record.status == "failed" and "Tried to allocate" in record.error


def test_wandb_dir_that_is_a_file_warns_and_the_record_is_still_written(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    not_a_folder = tmp_path / "wandb-here"
    not_a_folder.write_text("a file, not a folder")
    cfg = compose_run(
        tmp_path, f"results_dir={tmp_path / 'out'}", "logger=wandb", f"logger.dir={not_a_folder}"
    )
    with caplog.at_level(logging.WARNING):
        outcome = run_job(cfg)
    assert outcome.status == "ok"
    assert read_record(tmp_path / "out" / "records" / f"{outcome.run_id}.json").status == "ok"
    assert any(str(not_a_folder) in r.getMessage() for r in caplog.records)


def test_wandb_init_raising_warns_and_the_record_is_still_written(tmp_path, monkeypatch, caplog):
    import wandb

    def no_network(**kwargs):
        raise wandb.errors.CommError("could not reach api.wandb.ai")

    monkeypatch.setattr(wandb, "init", no_network)
    cfg = compose_run(
        tmp_path, f"results_dir={tmp_path / 'out'}", "logger=wandb", "logger.mode=online"
    )
    with caplog.at_level(logging.WARNING):
        outcome = run_job(cfg)
    assert outcome.status == "ok"
    assert read_record(tmp_path / "out" / "records" / f"{outcome.run_id}.json").status == "ok"
    assert any("could not reach api.wandb.ai" in r.getMessage() for r in caplog.records)


def test_an_unwritable_results_folder_fails_at_once_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "results"  # cannot be created, even by root
    proc = run_app("-m", *TINY, "seed=0,1", f"results_dir={out}", timeout=120)
    assert proc.returncode != 0
    assert f"results folder {out} cannot hold records" in proc.stderr
    assert "results_dir=" in proc.stderr
    assert "Launching" not in proc.stdout + proc.stderr  # no job started


def test_an_unknown_override_fails_before_any_run(tmp_path):
    out = tmp_path / "typo"
    proc = run_app("-m", *TINY, "seed=0,1", "trainer.lrr=0.1", f"results_dir={out}", timeout=120)
    assert proc.returncode != 0
    assert "trainer.lrr" in proc.stderr
    assert not records_dir(out).exists()


def test_outcomes_of_one_invocation_are_tallied_and_unfinished_jobs_count(tmp_path):
    write_outcome(tmp_path / "0", JobOutcome("ok", "a", "r0"))
    write_outcome(tmp_path / "1", JobOutcome("skipped", "b", "r1"))
    write_outcome(tmp_path / "2", JobOutcome("failed", "c", "r2", "ValueError: x"))
    (tmp_path / "3").mkdir()  # a job that started and never finished
    (tmp_path / ".submitit").mkdir()  # not a job folder
    tally = tally_outcomes(tmp_path)
    assert [o.run_id for o in tally.ok + tally.skipped + tally.failed] == ["a", "b", "c"]
    assert tally.unfinished == [tmp_path / "3"] and not tally.all_succeeded
    assert tally.line.startswith("sweep: 1 ok, 1 failed, 1 skipped")
    assert "1 unfinished" in tally.line
    with pytest.raises(ValueError, match="status must be one of"):
        JobOutcome("done", "d", "r")
    assert json.loads((tmp_path / "0" / "outcome.json").read_text())["status"] == "ok"


def test_an_interrupted_tally_says_so_and_does_not_count_as_success(tmp_path):
    write_outcome(tmp_path / "0", JobOutcome("ok", "a", "r0"))
    (tmp_path / "1").mkdir()  # the job Ctrl-C stopped
    tally = tally_outcomes(tmp_path, interrupted=True)
    assert tally.line.startswith("sweep: 1 ok, 0 failed, 0 skipped, 1 unfinished")
    assert tally.line.endswith("; interrupted by Ctrl-C (relaunch the same command to resume)")
    assert not tally.all_succeeded
    write_outcome(tmp_path / "1", JobOutcome("ok", "b", "r1"))
    assert tally_outcomes(tmp_path).all_succeeded  # not interrupted: all ok


# The quiet pass after a parallel sweep, as brief as TINY's own timing.
QUICK_QUIET_PASS = [
    "quiet_pass.throughput.warmup=0",
    "quiet_pass.throughput.min_repeats=1",
    "quiet_pass.throughput.min_seconds=0",
    "quiet_pass.throughput.rounds=1",
]


def ok_records_of(out: Path) -> list[dict]:
    records, skipped = load_records(out)
    assert not skipped
    return [r for r in records if r.status == "ok"]


@pytest.mark.slow
def test_a_joblib_sweep_of_two_runs_writes_ok_records_with_one_thread_per_worker(tmp_path):
    out = tmp_path / "joblib"
    # joblib keeps an OMP_NUM_THREADS set by the caller; unset, it picks cores // n_jobs.
    env = {k: v for k, v in app_env().items() if k != "OMP_NUM_THREADS"}
    proc = run_app(
        "-m", *TINY, "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        f"results_dir={out}", *QUICK_QUIET_PASS, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [r for r in ok_records_of(out) if r.mode == "train"]
    assert sorted(r.config["seed"] for r in records) == [0, 1]
    # joblib gives each of n_jobs workers cores // n_jobs threads; the record says so.
    expected = max(joblib.cpu_count() // 2, 1)
    assert [r.environment["torch_threads"] for r in records] == [expected, expected]
    assert "2 ok, 0 failed, 0 skipped" in summary_line(proc.stdout)
    # Timed beside each other, the two runs' configuration was timed again alone, once.
    assert all(r.throughput["comparable"] is False for r in records)
    (alone,) = [r for r in ok_records_of(out) if r.mode == "throughput"]
    assert alone.config["seed"] == 0 and "JoblibLauncher" not in str(alone.throughput)
    assert "quiet pass: 1 configuration(s) timed alone" in proc.stdout


@pytest.mark.slow
def test_a_submitit_local_sweep_of_two_runs_writes_ok_records(tmp_path):
    out = tmp_path / "submitit"
    proc = run_app(
        "-m", *TINY, "threads=1", "seed=0,1", "hydra/launcher=submitit_local",
        f"results_dir={out}", *QUICK_QUIET_PASS,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = [r for r in ok_records_of(out) if r.mode == "train"]
    assert sorted(r.config["seed"] for r in trained) == [0, 1]
    assert "2 ok, 0 failed, 0 skipped" in summary_line(proc.stdout)
