"""A write that fails loses nothing: the sweep stops at once with one line naming the
folder and the OS error, keeps what was written and prints its tally; Hydra's own output
folder errors the same; reports and tables are replaced whole or not at all."""

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_runs
from report_records import make_record, write_all
from test_sweep_faults import app_command, app_env

import stn.results.atomic
from experiments.write_failures import WRITE_FAILED, write_failure
from stn.report.document import write_report
from stn.results.atomic import write_atomically
from stn.results.store import records_dir

ROOT = Path(__file__).resolve().parents[2]
TINY = [*tiny_runs.TINY, "throughput.rounds=1", "threads=1"]


def _with_file_size_limit(limit: int):
    """``ulimit -f``: a write past ``limit`` bytes fails with EFBIG (Python ignores the
    SIGXFSZ that would otherwise end the process)."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def _run_limited(args: list[str], limit: int, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_with_file_size_limit(limit),
    )


def test_a_failed_atomic_write_names_its_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "records" / "abc.json"
    write_atomically(target, lambda handle: handle.write(b"old"))

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(stn.results.atomic.os, "fsync", disk_full)
    with pytest.raises(OSError) as caught:
        write_atomically(target, lambda handle: handle.write(b"new and longer"))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["abc.json"]  # no temporary left
    line = write_failure(caught.value)
    assert line.startswith(
        f"could not write abc.json in {target.parent}: [Errno 28] No space left on device; "
    )


def test_the_line_finds_the_os_error_behind_another_and_names_a_folder_for_a_bare_one():
    try:
        try:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "gone/run.log")
        except OSError as err:
            raise ValueError("Unable to configure handler 'file'") from err
    except ValueError as wrapped:
        assert write_failure(wrapped).startswith("could not write run.log in gone: [Errno 2]")
    bare = OSError(errno.EFBIG, "File too large")
    assert write_failure(bare, "/sweep").startswith("could not write in /sweep: [Errno 27] File")
    assert write_failure(RuntimeError("not a write")) is None


@pytest.mark.slow
def test_a_record_that_cannot_be_written_stops_the_sweep_at_once_with_the_tally(tmp_path):
    # ulimit -f 8: Hydra's config copies (< 5 KiB) fit, a record (~10 KiB) does not.
    # Before: every run trained, every record failed, and a Hydra traceback ended it.
    out = tmp_path / "out"
    proc = _run_limited(app_command("-m", *TINY, "seed=0,1,2", f"results_dir={out}"), 8 * 1024)
    assert proc.returncode == WRITE_FAILED, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith("error: could not write ") and (
        f".json in {records_dir(out)}: [Errno 27] File too large; stopped" in errors[0]
    )
    assert "Traceback" not in proc.stderr
    assert "sweep: 0 ok, 0 failed, 0 skipped, 1 unfinished" in proc.stdout
    assert "stopped: a write failed" in proc.stdout
    (sweep_folder,) = (out / "hydra").iterdir()
    assert sorted(p.name for p in sweep_folder.iterdir() if p.is_dir()) == ["0"]  # at once
    assert list(records_dir(out).iterdir()) == []  # nothing half-written


@pytest.mark.slow
def test_hydras_own_output_errors_stop_the_run_with_one_line(tmp_path):
    out = tmp_path / "out"
    # ulimit -f 4: Hydra's hydra.yaml copy (~4.4 KiB) no longer fits.
    proc = _run_limited(app_command(*TINY, f"results_dir={out}"), 4 * 1024, timeout=120)
    assert proc.returncode == WRITE_FAILED, proc.stderr[-3000:]
    assert proc.stderr.startswith("error: could not write hydra.yaml in "), proc.stderr[-3000:]
    assert "/.hydra: [Errno 27] File too large; stopped" in proc.stderr
    assert "Traceback" not in proc.stderr and not list(records_dir(out).iterdir())
    # A job folder that cannot be made: the sweep folder is under a file.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = subprocess.run(
        app_command("-m", *TINY, f"results_dir={out}", f"hydra.sweep.dir={blocker}/sweep"),
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == WRITE_FAILED, proc.stderr[-3000:]
    assert proc.stderr.startswith(f"error: could not write sweep in {blocker}: [Errno 20]")
    assert "stopped: a write failed" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_report_that_cannot_be_rewritten_leaves_the_previous_one_whole(tmp_path):
    # Before: report.md and tables/summary.csv were truncated at the file-size limit.
    write_all([make_record(r, s, 0.8 + s / 100) for r in ("a", "b") for s in (0, 1)], tmp_path)
    write_report(tmp_path, with_figures=False)
    outputs = [tmp_path / "report.md", *sorted((tmp_path / "tables").iterdir())]
    before = {path: path.read_bytes() for path in outputs}
    assert all(len(data) > 300 for data in before.values())
    write_all([make_record(r, 2, 0.9) for r in ("a", "b")], tmp_path)  # a report that differs
    script = [sys.executable, "-m", "stn_bench", "report", str(tmp_path), "--no-figures"]
    proc = _run_limited(script, 300, timeout=120)
    assert proc.returncode == 4, proc.stderr[-3000:]
    assert {path: path.read_bytes() for path in outputs} == before
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_errors_that_are_no_write_failure_are_left_alone():
    from hydra.errors import MissingConfigException

    # Hydra's missing-config error is an IOError without an errno: not a write that failed.
    assert write_failure(MissingConfigException("no such preset", "reducer/x")) is None
    try:
        try:
            raise FileNotFoundError(errno.ENOENT, "gone", "/x")
        except OSError:
            raise KeyError("raised while handling it, not from it")  # noqa: B904
    except KeyError as unrelated:
        assert write_failure(unrelated) is None
