"""Tables (and, later, figures) from a sweep's records; never re-runs anything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stn.results import SkippedRecord, load_records, records_to_frame

REPORT_NAME = "report.md"


@dataclass(frozen=True)
class Report:
    path: Path
    table: pd.DataFrame
    table_markdown: str
    failed: pd.DataFrame
    skipped: list[SkippedRecord]
    summary_line: str


def comparison_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, reducer, classifier): mean test accuracy over seeds, n and
    the median reducer images/s, sorted by accuracy (best first)."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(
            columns=["dataset", "reducer", "classifier", "accuracy", "n", "reducer_img_s"]
        )
    if "oracle" in ok:
        # An oracle sees the ground truth: labelled so no one reads it as a contender.
        ok = ok.assign(reducer=ok["reducer"].where(~ok["oracle"], ok["reducer"] + " (oracle)"))
    grouped = ok.groupby(["dataset", "reducer", "classifier"], dropna=False)
    table = grouped.agg(
        accuracy=("test_accuracy", "mean"),
        n=("test_accuracy", "size"),
        reducer_img_s=("tp_reducer_images_per_s", "median"),
    ).reset_index()
    return table.sort_values("accuracy", ascending=False, ignore_index=True)


def format_markdown(table: pd.DataFrame) -> str:
    shown = table.copy()
    shown["accuracy"] = shown["accuracy"].map(lambda v: f"{100 * v:.1f} %")
    shown["reducer_img_s"] = shown["reducer_img_s"].map(lambda v: f"{v:,.0f}")
    shown = shown.rename(columns={"accuracy": "test accuracy", "reducer_img_s": "reducer images/s"})
    return shown.to_markdown(index=False)


def write_report(sweep_dir: str | os.PathLike) -> Report:
    """Read every record of ``sweep_dir`` and write ``report.md`` beside them."""
    sweep_dir = Path(sweep_dir)
    records, skipped = load_records(sweep_dir)
    frame = records_to_frame(records)
    if frame.empty:
        frame = pd.DataFrame(columns=["status", "reducer", "dataset", "classifier", "error"])
    table = comparison_table(frame)
    failed = frame[frame["status"] != "ok"][["reducer", "dataset", "classifier", "error"]]
    markdown = format_markdown(table) if not table.empty else "(no ok runs yet)"
    summary = f"{int((frame['status'] == 'ok').sum())} ok, {len(failed)} failed"
    if skipped:
        summary += f", {len(skipped)} unreadable record(s) skipped"
    lines = [f"# Sweep report: {sweep_dir.name}", "", summary, "", markdown, ""]
    if not failed.empty:
        lines += ["## Failed runs", "", failed.to_markdown(index=False), ""]
    if skipped:
        lines += ["## Skipped records", ""] + [f"- `{s.path}`: {s.reason}" for s in skipped]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / REPORT_NAME
    path.write_text("\n".join(lines) + "\n")
    return Report(path, table, markdown, failed, skipped, summary)
