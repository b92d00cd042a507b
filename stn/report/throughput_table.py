"""The throughput of a report: figures measured side by side, as ratios, and which runs'
figures a row may use.

A run timed beside other runs (a parallel launcher, or other processes busy while it was
timed) is flagged not comparable in its record. After a parallel sweep a quiet pass times
each reducer configuration alone (``experiments.quiet_pass``: ``mode=throughput``
records in the same folder). Wherever a row has comparable figures, the report uses those
alone; where it has none it uses the others and says so (``tp_comparable``).
"""

from __future__ import annotations

import pandas as pd

from stn.report.markdown import markdown_table
from stn.report.stats import GROUP_KEYS, WITHOUT_STALLED

THROUGHPUT_COLUMNS = {
    "reducer_img_s": "tp_reducer_images_per_s",
    "inference_img_s": "tp_inference_images_per_s",
    "train_img_s": "tp_train_step_images_per_s",
    "reducer_vs_floor": "tp_ratios_reducer_vs_memory_floor",
    "reducer_vs_interp_aa": "tp_ratios_reducer_vs_interpolate_aa",
    "floor_gb_s": "tp_memory_floor_gb_per_s",
    "threads": "tp_reducer_threads",
}
# A row is a cell: runs that differ only in seed (the sweep's passes) share it; a sweep
# over batch sizes gets a row per batch, and one over downstream networks a row per
# network (inference and training step time it), instead of a median across them.
THROUGHPUT_KEYS = ["device", "channels", "height", "width", "batch", "classifier", "reducer"]


def _coefficient_of_variation(values: pd.Series) -> float:
    return values.std() / values.mean() if values.count() > 1 else float("nan")


SPREAD_COLUMNS = {
    "reducer_vs_floor_cv": ("reducer_vs_floor", _coefficient_of_variation),
    "reducer_vs_interp_aa_cv": ("reducer_vs_interp_aa", _coefficient_of_variation),
    "floor_gb_s_min": ("floor_gb_s", "min"),
    "floor_gb_s_max": ("floor_gb_s", "max"),
}


THROUGHPUT_NOTE = (
    "Where a cell has figures taken alone (runs of the basic launcher, or the quiet pass "
    "that times each reducer configuration alone after a parallel sweep), the row uses "
    "those only. "
    "Images/s are medians over timed steps after warm-up; the ratios compare the reducer "
    "with a plain read of the same batch (memory floor) and with F.interpolate(bilinear, "
    "antialias=True), both measured in the same process just before it; every timed call "
    "starts from memory (the cache is flushed first; `throughput.flush_cache`). Each row "
    "is the median over its *runs* (seeds: separate passes of the sweep); *±* after a "
    "ratio is how much it varied between those runs (coefficient of variation). *others' "
    "cores*: CPU other processes used while timing (near 0: a quiet machine). "
    "*comparable: no*: taken under a parallel launcher beside other runs, or *(contended)* "
    "other processes kept more than `throughput.contention_cores` busy while a figure was "
    "timed, still after `throughput.contention_retries` re-timings (the record's "
    "`throughput.not_comparable_reason` names the figures)."
)

# How far apart, in spreads between runs, two sweeps' medians of one cell fell on the
# 2-core VM: worst 2.1× (5 passes, CV 9.8 %) and 2.8× (13 passes, CV 10.2 %).
NOISE_SPREADS = 3


def throughput_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (device, input shape, batch, classifier, reducer) over ok runs that have
    figures: median images/s of the three figures, the reducer's ratios to the memory floor and to
    ``F.interpolate(bilinear, antialias)`` measured beside it, the floor's GB/s, the
    busiest contention seen (``others_cores``: cores other processes kept busy while
    timing), whether every figure was ``comparable`` (basic launcher, no figure left
    contended) and ``contended_runs``, how many runs kept a figure taken under
    competition after its retries. ``*_cv``: the ratios' coefficient of variation
    (std / mean) over the cell's runs, NaN for one run; ``floor_gb_s_min``/``_max``: the
    floor's range over them."""
    columns = (
        THROUGHPUT_KEYS
        + list(THROUGHPUT_COLUMNS)
        + list(SPREAD_COLUMNS)
        + ["others_cores", "comparable", "contended_runs", "n"]
    )
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
            "batch": ok.get("tp_batch_size"),
            "classifier": ok.get("classifier"),
            "reducer": ok["reducer"],
            **{name: ok.get(col) for name, col in THROUGHPUT_COLUMNS.items()},
            "others_cores": contention.max(axis=1) if not contention.empty else None,
            "comparable": ok["tp_comparable"].fillna(True).astype(bool),
            # Records from before contention was checked have no count: not contended.
            "contended": ok.get("tp_contention_contended", pd.Series(0, index=ok.index))
            .fillna(0)
            .gt(0),
        }
    )
    # A cell with any comparable run keeps only those: figures taken alone are not
    # averaged with figures taken beside other runs.
    has_comparable = shown.groupby(THROUGHPUT_KEYS, dropna=False)["comparable"].transform("any")
    shown = shown[shown["comparable"] | ~has_comparable]
    grouped = shown.groupby(THROUGHPUT_KEYS, dropna=False)
    table = grouped.agg(
        **{name: (name, "median") for name in THROUGHPUT_COLUMNS},
        **SPREAD_COLUMNS,
        others_cores=("others_cores", "max"),
        comparable=("comparable", "all"),
        contended_runs=("contended", "sum"),
        n=("reducer", "size"),
    ).reset_index()
    return table.sort_values(
        ["device", "channels", "height", "classifier", "reducer_vs_floor"],
        ascending=[True, True, True, True, False],
        ignore_index=True,
    )


def _with_spread(values: pd.Series, spreads: pd.Series, fmt: str) -> list[str]:
    """``0.181 ±10%``; the value alone where there is no spread (one run)."""
    return [
        "—" if pd.isna(v) else format(v, fmt) + ("" if pd.isna(cv) else f" ±{cv:.0%}")
        for v, cv in zip(values, spreads, strict=True)
    ]


def spread_line(table: pd.DataFrame) -> str | None:
    """How far to trust the table's ratios, from the spread between a cell's runs; ``None``
    when no cell ran twice."""
    if table.empty or table["reducer_vs_floor_cv"].isna().all():
        return None
    line = (
        "Between runs of a cell the ratio to the memory floor varied by "
        f"{table['reducer_vs_floor_cv'].median():.1%} (median over cells)"
    )
    interp_cv = table["reducer_vs_interp_aa_cv"].median()
    if pd.notna(interp_cv):
        line += f", the ratio to interpolate_aa by {interp_cv:.1%}"
    if table["floor_gb_s_min"].notna().any():
        line += (
            f"; the floor itself read {table['floor_gb_s_min'].min():.1f}–"
            f"{table['floor_gb_s_max'].max():.1f} GB/s"
        )
    return (
        line + f". Ratios closer than about {NOISE_SPREADS}× their spread, here or between "
        "two sweeps, may differ by noise alone: on a shared machine the floor follows the "
        "host's memory traffic, which drifts from one minute to the next, and the ratio to "
        "interpolate_aa is the steadier comparison (docs/throughput.md)."
    )


def _comparable_cell(comparable: bool, contended_runs: int, runs: int) -> str:
    """``yes``, ``**no**`` (a parallel launcher) or ``**no** (contended: 1 of 5 runs)``."""
    if comparable:
        return "yes"
    if contended_runs:
        return f"**no** (contended: {int(contended_runs)} of {int(runs)} runs)"
    return "**no**"


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
            "classifier": table["classifier"],
            "reducer": table["reducer"],
            "batch": table["batch"].map(number(".0f")),
            "reducer img/s": table["reducer_img_s"].map(number(",.0f")),
            "inference img/s": table["inference_img_s"].map(number(",.0f")),
            "train step img/s": table["train_img_s"].map(number(",.0f")),
            "× memory floor": _with_spread(
                table["reducer_vs_floor"], table["reducer_vs_floor_cv"], ".3f"
            ),
            "× interpolate aa": _with_spread(
                table["reducer_vs_interp_aa"], table["reducer_vs_interp_aa_cv"], ".2f"
            ),
            "floor GB/s": table["floor_gb_s"].map(number(".1f")),
            "threads": table["threads"].map(number(".0f")),
            "others' cores": table["others_cores"].map(number(".2f")),
            "runs": table["n"],
            "comparable": [
                _comparable_cell(ok, contended, n)
                for ok, contended, n in zip(
                    table["comparable"], table["contended_runs"], table["n"], strict=True
                )
            ],
        }
    )
    if table["classifier"].nunique(dropna=False) < 2:
        shown = shown.drop(columns="classifier")
    return markdown_table(shown)


def trained_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop throughput-only runs (ok but no accuracy, or failed in mode=throughput: they
    were never to have one) from the accuracy table."""
    if "mode" in frame:
        frame = frame[frame["mode"] != "throughput"]
    if "test_accuracy" not in frame:
        return frame
    return frame[(frame["status"] != "ok") | frame["test_accuracy"].notna()]


SOURCE_ALONE = "timed alone"
SOURCE_BESIDE = "timed beside other runs: not comparable"


def row_throughput(runs: pd.DataFrame) -> pd.DataFrame:
    """The throughput each summary row shows: per (dataset, reducer, classifier), the
    median of every ``tp_*`` figure over the ``ok`` runs (trained or timed only) whose
    figures are comparable, else over all of them.

    Columns: the group keys, the ``tp_*`` medians, ``tp_comparable`` (whether they came
    from comparable runs) and ``tp_source`` (``SOURCE_ALONE`` or ``SOURCE_BESIDE``)."""
    numeric = [
        c for c in runs.columns if c.startswith("tp_") and c not in ("tp_comparable", "tp_device")
    ]
    columns = [*GROUP_KEYS, *numeric, "tp_comparable", "tp_source"]
    if runs.empty or "tp_reducer_images_per_s" not in runs:
        return pd.DataFrame(columns=columns)
    ok = runs[(runs["status"] == "ok") & runs["tp_reducer_images_per_s"].notna()]
    rows = []
    for keys, group in ok.groupby(GROUP_KEYS, dropna=False, sort=True):
        comparable = comparable_runs(group)
        chosen = group[comparable] if comparable.any() else group
        row = dict(zip(GROUP_KEYS, keys, strict=True))
        row.update(
            {c: pd.to_numeric(chosen[c], errors="coerce").median() for c in numeric},
            tp_comparable=bool(comparable.any()),
            tp_source=SOURCE_ALONE if comparable.any() else SOURCE_BESIDE,
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def with_row_throughput(table: pd.DataFrame, speeds: pd.DataFrame) -> pd.DataFrame:
    """``table`` (the summary) with its ``tp_*`` columns replaced by ``row_throughput``'s;
    a row without its stalled runs shows its own row's figures."""
    if speeds.empty:
        return table
    kept = table.drop(columns=[c for c in table.columns if c.startswith("tp_")])
    own = kept["reducer"].astype(str).str.removesuffix(WITHOUT_STALLED)
    keys = kept[GROUP_KEYS].assign(reducer=own)
    merged = keys.merge(speeds, on=GROUP_KEYS, how="left").drop(columns=GROUP_KEYS)
    return pd.concat([kept, merged.set_index(kept.index)], axis=1)


def comparable_runs(runs: pd.DataFrame) -> pd.Series:
    """Per run: its record says its figures compare (records from before the flag: yes)."""
    flags = runs["tp_comparable"] if "tp_comparable" in runs else pd.Series(True, runs.index)
    return flags.map(lambda v: True if v is None or pd.isna(v) else bool(v)).astype(bool)
