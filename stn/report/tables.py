"""The summary table as markdown (README, terminals), LaTeX (booktabs) and CSV.

Markdown and LaTeX show a readable subset with the best value of each column marked
(bold) within each (dataset, classifier) block; the CSV holds every column, unformatted,
for further analysis.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from stn.measure.plateau import PLATEAU_CONDITION
from stn.report.markdown import markdown_table
from stn.results.atomic import write_text_atomically

TABLE_STEM = "summary"
STALLED_MARK = "†"  # after a row's accuracy: some of its runs ended on the chance plateau
STALLED_NOTE = (
    f"{STALLED_MARK} k of n runs (column `stalled`) ended on the chance plateau "
    f"({PLATEAU_CONDITION}): the mean mixes failed optimisation with the reducer's effect."
)
UNKNOWN_NOTE = (
    "`?` in `stalled`: runs whose record has no learning curve or no class count, so "
    "whether they left the chance plateau is unknown."
)


# The throughput columns a reader sees in markdown and LaTeX; the CSV keeps every one.
SHOWN_THROUGHPUT = (
    "tp_reducer_images_per_s",
    "tp_ratios_reducer_vs_memory_floor",
    "tp_train_step_images_per_s",
)


def throughput_columns(table: pd.DataFrame) -> list[str]:
    """The ``tp_*`` columns shown in the readable tables, in ``SHOWN_THROUGHPUT`` order."""
    return [c for c in SHOWN_THROUGHPUT if c in table.columns]


def column_label(column: str) -> str:
    """``tp_reducer_images_per_s`` → ``reducer images/s``."""
    label = column.removeprefix("tp_").replace("_images_per_s", " images/s")
    return label.replace("_", " ")


def best_direction(column: str) -> str | None:
    """``max``/``min`` when a column has an obvious better direction, else ``None``."""
    if column in ("accuracy_mean",) or column.endswith("_images_per_s"):
        return "max"
    if column.endswith("_ms_median") or column.endswith("_seconds_median"):
        return "min"
    return None


def best_mask(table: pd.DataFrame, column: str) -> pd.Series:
    """True where ``column`` holds the best value of its (dataset, classifier) block."""
    direction = best_direction(column)
    values = pd.to_numeric(table[column], errors="coerce")
    if direction is None or values.isna().all():
        return pd.Series(False, index=table.index)
    blocks = table[["dataset", "classifier"]].astype(str).agg("|".join, axis=1)
    best = values.groupby(blocks).transform("max" if direction == "max" else "min")
    return (values == best) & values.notna()


def display_frame(
    table: pd.DataFrame, bold: Callable[[str], str], escape: Callable[[str], str] = str
) -> pd.DataFrame:
    """Formatted strings for reading; ``bold`` marks the best value of each column."""
    if table.empty:
        return pd.DataFrame(columns=["dataset", "reducer", "classifier", "test accuracy"])
    shown = pd.DataFrame(index=table.index)
    for key in ("dataset", "reducer", "classifier"):
        shown[key] = table[key].map(lambda v: escape(str(v)))
    accuracy = [
        escape(_percent(m, h))
        for m, h in zip(table["accuracy_mean"], table["accuracy_ci95"], strict=True)
    ]
    shown["test accuracy (95 % CI)"] = _marked(accuracy, best_mask(table, "accuracy_mean"), bold)
    if "group" in table:
        # Next to the accuracy: reducers sharing a letter are not significantly different.
        shown["group"] = table["group"].fillna("").map(lambda v: escape(str(v)))
    shown["std"] = table["accuracy_std"].map(lambda v: _number(100 * v, ".1f"))
    shown["n"] = table["n"].map(lambda v: _number(v, ".0f"))
    if "stalled" in table:
        stalled = table["stalled"].fillna(0) > 0
        shown.loc[stalled, "test accuracy (95 % CI)"] += f" {STALLED_MARK}"
        shown["stalled"] = [
            _stalled(*counts)
            for counts in zip(
                table["stalled"],
                table["stalled_unknown"],
                table["runs"] if "runs" in table else table["n"],
                strict=True,
            )
        ]
    for column in throughput_columns(table):
        spec = ",.0f" if column.endswith("_images_per_s") else ".3f"
        formatted = [_number(v, spec) for v in table[column]]
        shown[column_label(column)] = _marked(formatted, best_mask(table, column), bold)
    if "vs_baseline" in table:
        cells = [
            _versus(*values)
            for values in zip(
                table["delta_vs_baseline"],
                table["delta_ci_low"],
                table["delta_ci_high"],
                table["vs_baseline"],
                strict=True,
            )
        ]
        shown["vs baseline: Δ points (95 % CI)"] = [escape(c) for c in cells]
    return shown.reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    shown = display_frame(table, bold=lambda s: f"**{s}**")
    if shown.empty:
        return "(no trained runs yet)"
    rows = markdown_table(shown, disable_numparse=True)  # a name holding | or a newline
    return "\n\n".join([rows, *table_notes(table)])


def table_notes(table: pd.DataFrame) -> list[str]:
    """The footnotes the table's marks need: ``STALLED_NOTE`` where a row carries
    ``STALLED_MARK``, ``UNKNOWN_NOTE`` where a ``stalled`` cell holds a ``?``."""
    notes = []
    if "stalled" in table and (table["stalled"].fillna(0) > 0).any():
        notes.append(STALLED_NOTE)
    if "stalled_unknown" in table and (table["stalled_unknown"].fillna(0) > 0).any():
        notes.append(UNKNOWN_NOTE)
    return notes


def to_latex(table: pd.DataFrame) -> str:
    """A booktabs ``tabular`` (``\\toprule``/``\\midrule``/``\\bottomrule``)."""
    shown = display_frame(table, bold=lambda s: f"\\textbf{{{s}}}", escape=latex_escape)
    shown.columns = [latex_escape(c) for c in shown.columns]
    # pdflatex without unicode packages chokes on these; a bare < prints ¡ in OT1.
    for symbol, command in (
        ("±", "$\\pm$"),
        ("≥", "$\\geq$"),
        ("—", "---"),
        ("†", "$^\\dagger$"),
        ("<", "$<$"),
        ("Δ", "$\\Delta$"),
    ):
        shown = shown.map(lambda s, a=symbol, b=command: s.replace(a, b))
        shown.columns = [c.replace(symbol, command) for c in shown.columns]
    align = "lll" + "r" * (len(shown.columns) - 3)
    return shown.to_latex(index=False, escape=False, column_format=align[: len(shown.columns)])


def write_tables(table: pd.DataFrame, folder: str | os.PathLike) -> dict[str, Path]:
    """Write ``summary.md``, ``summary.tex`` and ``summary.csv`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / f"{TABLE_STEM}.md",
        "latex": folder / f"{TABLE_STEM}.tex",
        "csv": folder / f"{TABLE_STEM}.csv",
    }
    # Atomically, as records: a table that cannot be written whole (a full disk, a
    # file-size limit) leaves the previous one instead of a truncated file.
    write_text_atomically(paths["markdown"], to_markdown(table) + "\n")
    write_text_atomically(paths["latex"], to_latex(table))
    write_text_atomically(paths["csv"], table.to_csv(index=False))
    return paths


_LATEX_SPECIALS = re.compile(r"([&%$#_{}~^\\])")
_LATEX_REPLACEMENTS = {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def latex_escape(text: str) -> str:
    return _LATEX_SPECIALS.sub(
        lambda m: _LATEX_REPLACEMENTS.get(m.group(1), "\\" + m.group(1)), text
    )


def _marked(values: list[str], mask: pd.Series, bold: Callable[[str], str]) -> list[str]:
    return [bold(v) if best and v else v for v, best in zip(values, mask.tolist(), strict=True)]


def _versus(delta: object, low: object, high: object, verdict: object) -> str:
    """``+31.1 [+21.4, +40.7] better (Holm p=…; raw p=…)``; the verdict alone where there
    is no difference to show (the baseline row, no shared seeds)."""
    verdict = (
        ""
        if verdict is None or (isinstance(verdict, float) and math.isnan(verdict))
        else str(verdict)
    )
    if verdict == "baseline" or _number(delta, ".1f") == "":
        return verdict
    interval = "" if _number(low, ".1f") == "" else f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"{100 * float(delta):+.1f}{interval} {verdict}"


def _stalled(stalled: object, unknown: object, n: object) -> str:
    """``1/3``; ``?`` when no run's verdict is known; ``1/3 (1 ?)`` when some are not."""
    stalled, unknown, n = (_count(v) for v in (stalled, unknown, n))
    if unknown >= n:
        return "?"
    return f"{stalled}/{n}" + (f" ({unknown} ?)" if unknown else "")


def _count(value: object) -> int:
    number = pd.to_numeric(value, errors="coerce")
    return 0 if pd.isna(number) else int(number)


def _number(value: object, spec: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else format(number, spec)


def _percent(mean: float, halfwidth: float) -> str:
    if mean is None or math.isnan(float(mean)):
        return ""
    if halfwidth is None or math.isnan(float(halfwidth)):
        return f"{100 * mean:.1f} %"
    return f"{100 * mean:.1f} ± {100 * halfwidth:.1f} %"
