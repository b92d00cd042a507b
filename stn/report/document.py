"""``report.md`` of a sweep folder: what was run, tables, figures, what failed or is missing.

Reads the records (and the per-run example pictures, when present) and never re-runs
anything; works on a partial sweep and on records with fields it does not know.

Layout written under the sweep folder::

    report.md                 the report (links to everything below)
    tables/summary.{md,tex,csv}
    figures/*.png
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stn.measure.plateau import PLATEAU_CONDITION, PLATEAU_RULE, stalled_counts
from stn.report.figure_table import figure_plan
from stn.report.frozen_kept import frozen_records, kept_section
from stn.report.glimpse_table import GLIMPSE_NOTE, glimpse_markdown, glimpse_table
from stn.report.markdown import markdown_table
from stn.report.merged import merged_section
from stn.report.reproduction import Reproduction, compare_with_reference, reproduction_section
from stn.report.stats import (
    GROUPING_TEST,
    SIGNIFICANCE_TEST,
    BaselineChoice,
    Family,
    baseline_preference,
    summary,
)
from stn.report.tables import STALLED_MARK, TABLE_STEM, to_markdown, write_tables
from stn.report.throughput_table import (
    THROUGHPUT_NOTE,
    comparable_runs,
    format_throughput_markdown,
    row_throughput,
    spread_line,
    throughput_table,
    trained_runs,
    with_row_throughput,
)
from stn.report.verdict import verdict_section
from stn.results.atomic import write_text_atomically
from stn.results.collect import Completeness, completeness, runs_frame
from stn.results.duplicates import merge_duplicates, mixed_cells
from stn.results.record import Record
from stn.results.store import SkippedRecord, load_records

log = logging.getLogger(__name__)

REPORT_NAME = "report.md"
# What the people who ran a sweep know and the records cannot say (why a run stalled or
# failed): written by hand beside the records, copied into the report as it is.
NOTES_NAME = "notes.md"
FIGURES_SUBDIR = "figures"
TABLES_SUBDIR = "tables"
ENVIRONMENT_VERSIONS = ("python", "torch", "numpy", "stn_bench", "git_commit")
ENVIRONMENT_MACHINE = ("cpu", "cpu_count", "torch_threads", "device", "gpu", "cuda")


@dataclass(frozen=True)
class Report:
    path: Path
    table: pd.DataFrame  # stn.report.stats.summarise: one row per (dataset, reducer, classifier)
    table_markdown: str
    runs: pd.DataFrame  # one row per readable record
    failed: pd.DataFrame  # runs whose status is not ok, with their error
    skipped: list[SkippedRecord]
    completeness: Completeness
    summary_line: str
    tables: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)  # caption → PNG
    throughput_markdown: str = ""
    # Outputs that could not be written (an unwritable tables/ or figures/): what → why.
    unwritten: dict[str, str] = field(default_factory=dict)
    frozen: bool = False  # some record is of a network kept frozen (its README block differs)


THROUGHPUT_ONLY = "Throughput only (`mode=throughput`): no run trained, so no accuracy table."


def comparison_table(
    runs: pd.DataFrame, baseline: BaselineChoice = None
) -> tuple[pd.DataFrame, list[Family]]:
    """Accuracy statistics over seeds, the comparisons (baseline, best, letters) and the
    throughput each row may use (figures timed alone where there are any), with the
    families they come from. ``runs``: every record's row, timed-only ones included."""
    labelled = _label_oracles(runs)
    table, families = summary(trained_runs(labelled), baseline)
    return with_row_throughput(table, row_throughput(labelled)), families


def _label_oracles(runs: pd.DataFrame) -> pd.DataFrame:
    if "oracle" in runs:
        # An oracle sees the ground truth: labelled so no one reads it as a contender.
        oracle = runs["oracle"].fillna(False).astype(bool)
        runs = runs.assign(reducer=runs["reducer"].where(~oracle, runs["reducer"] + " (oracle)"))
    return runs


def write_report(
    sweep_dir: str | os.PathLike,
    with_figures: bool = True,
    baseline: BaselineChoice = None,
    reference: str | os.PathLike | None = None,
    scratch: list[str | os.PathLike] | None = None,
) -> Report:
    """Read every record of ``sweep_dir`` and write ``report.md``, tables and figures.

    ``baseline``: reducer name(s) to prefer as each family's baseline
    (``stn.report.stats.choose_baseline``). ``reference``: a folder of reference records;
    the report then ends comparing each run with the reference record of its experiment.
    ``scratch``: for a frozen network's sweep, the folders of the same reducers trained
    from scratch (``stn.report.frozen_kept``; default: its siblings frozen_scratch, compare
    and question).
    """
    sweep_dir = Path(sweep_dir)
    records, skipped = load_records(sweep_dir)
    records, merges = merge_duplicates(records)
    mixed = mixed_cells(records)
    runs = runs_frame(records)
    table, families = comparison_table(runs, baseline)
    speed = throughput_table(runs)
    speed_markdown = format_throughput_markdown(speed) if not speed.empty else ""
    grid = completeness(_grid_runs(runs))
    failed = runs[runs["status"] != "ok"]
    table_paths, unwritten = _try_write_tables(table, sweep_dir)
    figure_paths, figure_errors, unwritten_figures = (
        _write_figures(sweep_dir, records, runs, table) if with_figures else ({}, {}, {})
    )
    unwritten.update(unwritten_figures)
    markdown = to_markdown(table)
    throughput_only = table.empty and not runs.empty and (runs.get("mode") == "throughput").all()
    reproduction = _reproduction(records, reference)
    summary_line = grid.line()
    timed_alone, timed_busy = _timed_alone(runs)
    if timed_alone:
        summary_line += f", {timed_alone} configuration(s) timed alone"
    if timed_busy:
        summary_line += (
            f", {timed_busy} configuration(s) timed for throughput on a busy machine "
            "(not comparable)"
        )
    dropped = sum(len(m.dropped) for m in merges)
    if dropped:
        summary_line += f", {dropped} duplicate record(s) merged"
    if skipped:
        summary_line += f", {len(skipped)} record file(s) skipped (unreadable or invalid)"
    if unwritten:
        summary_line += f", {len(unwritten)} output(s) not written"
    if reproduction is not None:
        summary_line += f"; reproduction: {reproduction.line()}"
    summary = summary_line

    lines = [f"# Sweep report: {sweep_dir.name}", "", f"**{summary}.**", ""]
    # What a reader acts on comes first; what was run and the full table follow.
    lines += [] if throughput_only else verdict_section(families, table)
    lines += kept_section(records, sweep_dir, scratch)  # a frozen network's sweep only
    lines += _config_section(records)
    if throughput_only:
        lines += ["## Results", "", THROUGHPUT_ONLY, ""]
    else:
        lines += ["## Results", "", markdown, ""]
        lines += [
            f"Test accuracy: mean over seeds (one sample per seed) ± half-width of the 95 % "
            f"Student-t confidence interval; std and n over seeds; throughput: median over "
            f"the runs timed alone where there are any (else over all, flagged). "
            f"Best value per column in bold (per dataset and classifier). "
            f"`vs baseline`: each family's baseline is its plainest resize (first present of "
            f"{', '.join(baseline_preference(baseline)[:3])}, …); {SIGNIFICANCE_TEST}. "
            f"`group`: {GROUPING_TEST}.",
            "",
            f"`stalled`: how many of the row's n runs ended on the chance plateau "
            f"({PLATEAU_CONDITION}; `?`: unknown); the mean includes them, and the "
            f"accuracy of a row with any carries {STALLED_MARK}; the row "
            f"*(without stalled runs)* below it leaves them out, and its comparisons never "
            f"enter another row's.",
            "",
        ]
        if table_paths:
            lines += [
                "Also as "
                + ", ".join(f"[{k}]({p.relative_to(sweep_dir)})" for k, p in table_paths.items())
                + " (the CSV has every column, unrounded).",
                "",
            ]
    glimpses = glimpse_markdown(glimpse_table(trained_runs(runs)))
    if glimpses:
        lines += ["## Where the learned samplers looked", "", GLIMPSE_NOTE, "", glimpses, ""]
    if speed_markdown:
        lines += ["## Throughput", "", THROUGHPUT_NOTE, "", speed_markdown, ""]
        spread = spread_line(speed)
        lines += [spread, ""] if spread else []
    if figure_paths:
        lines += ["## Figures", ""]
        for caption, path in figure_paths.items():
            lines += [f"### {caption}", "", f"![{caption}]({path.relative_to(sweep_dir)})", ""]
    if figure_errors:
        lines += ["## Figures that could not be drawn", ""]
        lines += [f"- {caption}: {error}" for caption, error in figure_errors.items()] + [""]
    lines += _problems_section(failed, grid, skipped)
    lines += _plateau_section(trained_runs(runs))
    lines += _notes_section(sweep_dir)
    lines += merged_section(merges, mixed)
    lines += _unwritten_section(unwritten)
    lines += reproduction_section(reproduction) if reproduction is not None else []
    lines += [
        "---",
        f"{len(records) + dropped} record(s) read from `{sweep_dir / 'records'}`"
        + (f", {dropped} merged into another" if dropped else "")
        + (f", {len(skipped)} skipped" if skipped else "")
        + ".",
    ]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / REPORT_NAME
    write_text_atomically(path, "\n".join(lines) + "\n")  # the old report stays if this fails
    return Report(
        path=path,
        table=table,
        table_markdown=markdown,
        runs=runs,
        failed=failed,
        skipped=skipped,
        completeness=grid,
        summary_line=summary,
        tables=table_paths,
        figures=figure_paths,
        throughput_markdown=speed_markdown,
        unwritten=unwritten,
        frozen=bool(frozen_records(records)),
    )


def _grid_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the completeness grid counts: a folder with training runs counts those
    (its timed-only records are the quiet pass's), a throughput sweep its own runs."""
    trained = runs[runs["mode"] != "throughput"] if "mode" in runs else runs
    return trained if not trained.empty else runs


def _timed_alone(runs: pd.DataFrame) -> tuple[int, int]:
    """Timed-only records beside training runs: the configurations timed alone, and those
    whose timing found other work on the machine (``throughput.comparable`` false: a
    quiet pass launched while another sweep ran is not alone)."""
    if "mode" not in runs or (runs["mode"] != "throughput").sum() == 0:
        return 0, 0
    timed = (runs["mode"] == "throughput") & (runs["status"] == "ok")
    alone = comparable_runs(runs)
    return int((timed & alone).sum()), int((timed & ~alone).sum())


def _reproduction(
    records: list[Record], reference: str | os.PathLike | None
) -> Reproduction | None:
    if reference is None:
        return None
    theirs, _ = load_records(reference)
    return compare_with_reference(records, merge_duplicates(theirs)[0], reference)


def _try_write_tables(
    table: pd.DataFrame, sweep_dir: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """``write_tables`` into ``tables/``; a folder or file that cannot be written is
    returned as ``{what: why}`` instead of ending the report."""
    folder = sweep_dir / TABLES_SUBDIR
    try:
        return write_tables(table, folder), {}
    except OSError as err:
        log.warning("could not write the tables in %s: %s", folder, err)
        what = f"tables ({TABLES_SUBDIR}/{TABLE_STEM}.md, .tex, .csv)"
        return {}, {what: _write_failure(err, sweep_dir)}


def _write_failure(err: OSError, sweep_dir: Path) -> str:
    """``could not write tables/summary.md: Permission denied`` (path relative to the sweep)."""
    where = Path(err.filename) if err.filename else None
    if where is not None and where.is_relative_to(sweep_dir):
        where = where.relative_to(sweep_dir)
    reason = err.strerror or str(err)
    return f"could not write `{where}`: {reason}" if where else f"could not write: {reason}"


def _unwritten_section(unwritten: dict[str, str]) -> list[str]:
    if not unwritten:
        return []
    lines = ["## Outputs that could not be written", ""]
    lines += [f"- {what}: {why}" for what, why in unwritten.items()]
    note = "Make the folder writable (or report on a copy of the sweep) and rerun the report."
    return [*lines, "", note, ""]


def _config_section(records: list[Record]) -> list[str]:
    if not records:
        return ["No records yet.", ""]
    configs = [r.config for r in records]
    environments = [r.environment for r in records]

    def distinct(values: list[Any]) -> str:
        seen = sorted({_plain(v) for v in values if v is not None}, key=str)
        return ", ".join(f"`{v}`" for v in seen) if seen else "—"

    def section_values(section: str, key: str) -> str:
        return distinct(
            [(c.get(section) or {}).get(key) for c in configs if isinstance(c.get(section), dict)]
        )  # noqa: E501

    lines = ["## What was run", ""]
    lines.append(f"- datasets: {section_values('dataset', 'name')}")
    for key in ("canvas_size", "clutter", "limit_train", "limit_test"):
        if any((c.get("dataset") or {}).get(key) is not None for c in configs):
            lines.append(f"  - {key}: {section_values('dataset', key)}")
    lines.append(f"- reducers: {section_values('reducer', 'name')}")
    lines.append(f"- classifiers: {section_values('classifier', 'name')}")
    lines.append(f"- seeds: {distinct([c.get('seed') for c in configs])}")
    lines.append(f"- output size: {distinct([c.get('output_size') for c in configs])}")
    trainer_keys = sorted({k for c in configs for k in (c.get("trainer") or {})})
    trainer = "; ".join(f"{k} {section_values('trainer', k)}" for k in trainer_keys)
    lines.append(f"- trainer: {trainer or '—'}")
    versions = "; ".join(
        f"{k} {distinct([e.get(k) for e in environments])}" for k in ENVIRONMENT_VERSIONS
    )
    machine = "; ".join(
        f"{k} {distinct([e.get(k) for e in environments])}"
        for k in ENVIRONMENT_MACHINE
        if any(e.get(k) is not None for e in environments)
    )
    lines.append(f"- versions: {versions}")
    lines.append(f"- machine: {machine or '—'}")
    return [*lines, ""]


def _problems_section(
    failed: pd.DataFrame, grid: Completeness, skipped: list[SkippedRecord]
) -> list[str]:
    lines: list[str] = []
    if not failed.empty:
        shown = failed[["dataset", "reducer", "classifier", "seed", "status", "error"]].copy()
        shown["error"] = shown["error"].map(_one_line)
        lines += ["## Failed runs", "", markdown_table(shown), ""]
    if not grid.missing.empty:
        lines += [
            "## Missing runs",
            "",
            "Cells of the grid (every dataset × reducer × classifier × seed seen in the "
            "records) with no record: still running, not launched, or died before writing.",
            "",
            markdown_table(grid.missing),
            "",
        ]
    if skipped:
        lines += ["## Skipped record files", ""]
        # The reason starts with the path already (stn.results.store.RecordError).
        lines += [f"- `{s.path}`: {s.reason.removeprefix(f'{s.path}: ')}" for s in skipped]
        lines += [""]
    return lines


def _plateau_section(runs: pd.DataFrame) -> list[str]:
    """The ok runs that ended on the chance plateau, by reducer and seed, and how many
    ok runs have no verdict (records without curves or class count)."""
    if runs.empty or "ended_on_plateau" not in runs:
        return []
    ok = runs[runs["status"] == "ok"]
    stalled = ok[ok["ended_on_plateau"].eq(True)]
    unknown = stalled_counts(ok["ended_on_plateau"])["stalled_unknown"]
    if stalled.empty and not unknown:
        return []
    lines = [
        "## Runs that ended on the chance plateau",
        "",
        f"Rule: a run {PLATEAU_RULE}. Such runs enter their row's mean, which carries "
        f"{STALLED_MARK}. A stalled run cannot tell a reducer that destroyed the signal from "
        "an optimiser that stalled: every seed of a reducer stalling while others "
        "train points at the reducer; some seeds stalling points at the training.",
        "",
    ]
    if stalled.empty:
        lines += ["None of the runs with a known verdict.", ""]
    else:
        shown = stalled[["dataset", "reducer", "classifier", "seed"]].copy()
        shown["final train loss (ln C)"] = [
            f"{loss:.3f} ({chance:.3f})"
            for loss, chance in zip(
                stalled["final_train_loss"], stalled["chance_loss"], strict=True
            )
        ]
        shown["final train accuracy"] = stalled["final_train_accuracy"].map(lambda v: f"{v:.1%}")
        shown["left plateau at epoch"] = stalled["left_plateau_at_epoch"].map(
            lambda v: "never" if v is None or pd.isna(v) else f"{int(v)}, fell back"
        )
        shown["test accuracy"] = stalled["test_accuracy"].map(lambda v: f"{float(v):.1%}")
        ordered = shown.sort_values(["dataset", "classifier", "reducer", "seed"])
        lines += [markdown_table(ordered), ""]
    if unknown:
        lines += [
            f"{unknown} ok run(s) have no learning curve or class count in their record: "
            "whether they left the chance plateau is unknown (`?` in the table).",
            "",
        ]
    return lines


def _notes_section(sweep_dir: Path) -> list[str]:
    """The sweep folder's hand-written ``notes.md`` under its own heading, marked as such."""
    path = sweep_dir / NOTES_NAME
    if not path.is_file():
        return []
    heading = ["## Notes on this sweep", ""]
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        return heading + [f"`{NOTES_NAME}` could not be read: {_one_line(err)}", ""]
    if not text:
        return []
    origin = (
        f"*Written by hand in `{NOTES_NAME}` beside the records and copied here as it is: "
        "not computed from the records.*"
    )
    return heading + [origin, "", text, ""]


def _write_figures(
    sweep_dir: Path, records: list[Record], runs: pd.DataFrame, table: pd.DataFrame
) -> tuple[dict[str, Path], dict[str, str], dict[str, str]]:
    """Draw every figure the data allows; one that fails is reported, not fatal.

    Returns the figures written (caption → PNG), those that could not be drawn
    (caption → error) and those drawn but not written (``figure <caption>`` → why)."""
    folder = sweep_dir / FIGURES_SUBDIR
    plan = figure_plan(sweep_dir, records, runs, table, folder)
    written: dict[str, Path] = {}
    errors: dict[str, str] = {}
    unwritten: dict[str, str] = {}
    for caption, draw in plan:
        try:
            written[caption] = draw()
        except OSError as err:  # an unwritable figures/ folder or file: say so, go on
            log.warning("figure %r not written: %s", caption, err)
            unwritten[f'figure "{caption}"'] = _write_failure(err, sweep_dir)
        except Exception as err:  # noqa: BLE001 - odd data must not cost the whole report
            log.warning("figure %r failed: %s", caption, err)
            errors[caption] = f"{type(err).__name__}: {err}"
    return written, errors, unwritten


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _one_line(error: Any) -> str:
    text = "" if error is None or (isinstance(error, float) and np.isnan(error)) else str(error)
    return " ".join(text.split()).replace("|", "\\|")
