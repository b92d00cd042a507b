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
    throughput_markdown: str = ""


def comparison_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, reducer, classifier): mean test accuracy over seeds, n and
    the median reducer images/s, sorted by accuracy (best first)."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(
            columns=["dataset", "reducer", "classifier", "accuracy", "n", "reducer_img_s"]
        )
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


THROUGHPUT_COLUMNS = {
    "batch": "tp_batch_size",
    "reducer_img_s": "tp_reducer_images_per_s",
    "inference_img_s": "tp_inference_images_per_s",
    "train_img_s": "tp_train_step_images_per_s",
    "reducer_vs_floor": "tp_ratios_reducer_vs_memory_floor",
    "reducer_vs_interp_aa": "tp_ratios_reducer_vs_interpolate_aa",
    "floor_gb_s": "tp_memory_floor_gb_per_s",
    "threads": "tp_reducer_threads",
}
THROUGHPUT_KEYS = ["device", "channels", "height", "width", "reducer"]


THROUGHPUT_NOTE = (
    "Images/s are medians over timed steps after warm-up; the ratios compare the reducer "
    "with a plain read of the same batch (memory floor) and with F.interpolate(bilinear, "
    "antialias=True), both measured in the same process just before it. *others' cores*: "
    "CPU other processes used while timing (near 0: a quiet machine). *comparable: no*: "
    "taken under a parallel launcher beside other runs."
)


def throughput_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (device, input shape, reducer) over ok runs that have figures: median
    images/s of the three figures, the reducer's ratios to the memory floor and to
    ``F.interpolate(bilinear, antialias)`` measured beside it, the floor's GB/s, the
    busiest contention seen (``others_cores``: cores other processes kept busy while
    timing) and whether every figure was ``comparable`` (basic launcher)."""
    columns = THROUGHPUT_KEYS + list(THROUGHPUT_COLUMNS) + ["others_cores", "comparable", "n"]
    if frame.empty or "tp_reducer_images_per_s" not in frame:
        return pd.DataFrame(columns=columns)
    ok = frame[(frame["status"] == "ok") & frame["tp_reducer_images_per_s"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    contention = ok.filter(regex=r"^tp_.*_others_cores$")
    shown = pd.DataFrame(
        {
            "device": ok["tp_device"],
            "channels": ok.get("tp_batch_channels"),
            "height": ok.get("tp_batch_height"),
            "width": ok.get("tp_batch_width"),
            "reducer": ok["reducer"],
            **{name: ok.get(col) for name, col in THROUGHPUT_COLUMNS.items()},
            "others_cores": contention.max(axis=1) if not contention.empty else None,
            "comparable": ok["tp_comparable"].fillna(True).astype(bool),
        }
    )
    grouped = shown.groupby(THROUGHPUT_KEYS, dropna=False)
    table = grouped.agg(
        **{name: (name, "median") for name in THROUGHPUT_COLUMNS},
        others_cores=("others_cores", "max"),
        comparable=("comparable", "all"),
        n=("reducer", "size"),
    ).reset_index()
    return table.sort_values(
        ["device", "channels", "height", "reducer_vs_floor"],
        ascending=[True, True, True, False],
        ignore_index=True,
    )


def format_throughput_markdown(table: pd.DataFrame) -> str:
    def number(fmt: str):
        return lambda v: "—" if pd.isna(v) else format(v, fmt)

    shown = pd.DataFrame(
        {
            "device": table["device"],
            "input": [
                "—" if pd.isna(c) else f"{int(c)}×{int(h)}×{int(w)}"
                for c, h, w in zip(table["channels"], table["height"], table["width"], strict=True)
            ],
            "reducer": table["reducer"],
            "batch": table["batch"].map(number(".0f")),
            "reducer img/s": table["reducer_img_s"].map(number(",.0f")),
            "inference img/s": table["inference_img_s"].map(number(",.0f")),
            "train step img/s": table["train_img_s"].map(number(",.0f")),
            "× memory floor": table["reducer_vs_floor"].map(number(".3f")),
            "× interpolate aa": table["reducer_vs_interp_aa"].map(number(".2f")),
            "floor GB/s": table["floor_gb_s"].map(number(".1f")),
            "threads": table["threads"].map(number(".0f")),
            "others' cores": table["others_cores"].map(number(".2f")),
            "comparable": table["comparable"].map(lambda v: "yes" if v else "**no**"),
        }
    )
    return shown.to_markdown(index=False)


def _trained(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop throughput-only runs (ok but no accuracy) from the accuracy table."""
    if "test_accuracy" not in frame:
        return frame
    return frame[(frame["status"] != "ok") | frame["test_accuracy"].notna()]


def write_report(sweep_dir: str | os.PathLike) -> Report:
    """Read every record of ``sweep_dir`` and write ``report.md`` beside them."""
    sweep_dir = Path(sweep_dir)
    records, skipped = load_records(sweep_dir)
    frame = records_to_frame(records)
    if frame.empty:
        frame = pd.DataFrame(columns=["status", "reducer", "dataset", "classifier", "error"])
    table = comparison_table(_trained(frame))
    failed = frame[frame["status"] != "ok"][["reducer", "dataset", "classifier", "error"]]
    speed = throughput_table(frame)
    speed_markdown = format_throughput_markdown(speed) if not speed.empty else ""
    markdown = format_markdown(table) if not table.empty else "(no trained runs)"
    summary = f"{int((frame['status'] == 'ok').sum())} ok, {len(failed)} failed"
    if skipped:
        summary += f", {len(skipped)} unreadable record(s) skipped"
    lines = [f"# Sweep report: {sweep_dir.name}", "", summary, "", markdown, ""]
    if speed_markdown:
        lines += ["## Throughput", "", THROUGHPUT_NOTE, "", speed_markdown, ""]
    if not failed.empty:
        lines += ["## Failed runs", "", failed.to_markdown(index=False), ""]
    if skipped:
        lines += ["## Skipped records", ""] + [f"- `{s.path}`: {s.reason}" for s in skipped]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / REPORT_NAME
    path.write_text("\n".join(lines) + "\n")
    return Report(path, table, markdown, failed, skipped, summary, speed_markdown)
