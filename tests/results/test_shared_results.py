"""Results folders shared between people and survived by killed writers (issue 20, items 5
and 6): records follow the umask, an unwritable output folder is named and the report
goes on, the hidden temp file of a killed record writer is cleaned on the next start."""

import errno
import multiprocessing
import os
import signal
import stat
import time
from pathlib import Path

import pytest
from report_records import make_record, write_all, write_examples_for

from stn.report import document as report_module
from stn.report import figures
from stn.results.atomic import STALE_TEMP_SECONDS, write_atomically
from stn.results.store import ensure_writable, load_records, record_path, write_record
from stn_bench import report as report_script


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_records_and_examples_get_the_mode_the_umask_gives(umask, tmp_path, mask, mode):
    umask(mask)
    record = make_record("pool_avg", 0, 0.5)
    path = write_record(record, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    examples = write_examples_for(record, tmp_path)
    assert stat.S_IMODE(examples.stat().st_mode) == mode


def _write_then_die(target: str) -> None:
    """Start a record write and get SIGKILLed halfway, as a killed job would."""

    def half_then_kill(handle) -> None:
        handle.write(b'{"schema_version": 1, "run')
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    write_atomically(target, half_then_kill)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_writers_temp_file_is_removed_on_the_next_start_and_a_fresh_one_kept(
    tmp_path,
):
    record = make_record("pool_avg", 0, 0.5)
    target = record_path(tmp_path, record.run_id)
    target.parent.mkdir(parents=True)
    writer = multiprocessing.get_context("fork").Process(target=_write_then_die, args=(target,))
    writer.start()
    writer.join(30)
    assert writer.exitcode == -signal.SIGKILL
    (stale,) = target.parent.glob(".*.tmp")  # what the killed writer left behind
    _age(stale, STALE_TEMP_SECONDS + 60)
    fresh = target.parent / f".{record.run_id}.0123456789abcdef.tmp"  # a live writer's
    fresh.write_bytes(b"{")
    _age(fresh, 60)
    examples_leftover = tmp_path / "examples" / ".abc.0123456789abcdef.tmp"
    examples_leftover.parent.mkdir()
    examples_leftover.write_bytes(b"PK")
    _age(examples_leftover, STALE_TEMP_SECONDS + 60)
    write_record(record, tmp_path)

    ensure_writable(tmp_path)  # what every sweep and every run calls first

    assert not stale.exists() and not examples_leftover.exists()
    assert fresh.exists() and target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [fresh.name, target.name]
    records, skipped = load_records(tmp_path)
    assert len(records) == 1 and not skipped


def _deny_writes(folder: Path, monkeypatch, module, function: str) -> None:
    """Make ``folder`` refuse writes: by its mode, or, as root (which ignores modes), by
    making ``module.function(_, target)`` (the one that writes there) raise what the OS
    would. CI runs as root: never a silent skip."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return

    def refuse(_, target, *args, **kwargs):
        target = Path(target)  # a file (a figure) or the folder (the tables: .md first)
        refused = target if target.suffix else target / "summary.md"
        raise PermissionError(errno.EACCES, "Permission denied", str(refused))

    monkeypatch.setattr(module, function, refuse)


@pytest.fixture
def sweep(tmp_path):
    reducers = ("resize_bilinear", "pool_avg")
    records = [make_record(r, s, 0.8 + s / 100) for r in reducers for s in (0, 1)]
    write_all(records, tmp_path)
    yield tmp_path
    for folder in (tmp_path / "tables", tmp_path / "figures"):
        if folder.exists():
            folder.chmod(0o755)  # let pytest clean up


def test_an_unwritable_tables_folder_is_named_and_the_report_still_written(
    sweep, monkeypatch, capsys
):
    _deny_writes(sweep / "tables", monkeypatch, report_module, "write_tables")

    code = report_script.main([str(sweep), "--no-figures"])

    assert code == report_script.EXIT_UNWRITTEN
    assert "not written: tables" in capsys.readouterr().err
    text = (sweep / "report.md").read_text()
    assert "1 output(s) not written" in text
    section = text.split("## Outputs that could not be written")[1]
    assert "could not write `tables/summary.md`: Permission denied" in section
    assert "| digits_96 | pool_avg" in text  # the table is in the report all the same
    assert "Also as [markdown]" not in text  # no links to files that were not written


def test_an_unwritable_figures_folder_is_named_and_the_report_still_written(
    sweep, monkeypatch, capsys
):
    _deny_writes(sweep / "figures", monkeypatch, figures, "save_png")

    code = report_script.main([str(sweep)])

    assert code == report_script.EXIT_UNWRITTEN
    text = (sweep / "report.md").read_text()
    section = text.split("## Outputs that could not be written")[1]
    assert 'figure "Accuracy vs reducer throughput (digits_96, cnn)"' in section
    assert "could not write `figures/pareto_digits_96_cnn.png`" in section
    assert "could not write `figures/curves_digits_96_cnn.png`" in section
    assert "Permission denied" in section and "## Figures that could not be drawn" not in text
    assert (sweep / "tables" / "summary.csv").is_file()
