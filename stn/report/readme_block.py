"""The README's opening table: the question's answer, written from a sweep's records.

    stn-bench report results/question --readme README.md     # the report, then this
    python -m stn.report.readme_block results/question --readme README.md   # this alone

Between the two marker lines of the README (``BEGIN`` … ``END``) it writes a short table:
one row per reducer, on each canvas its accuracy (mean over seeds ± the half-width of the
95 % Student-t interval, the report's own figures) with its group letter, and the time of
its training step relative to the family's baseline (the plainest resize present, as in
the report's verdict), then a link to the full report. Every number comes from the same
functions that write ``report.md`` (``stn.report.document.comparison_table``,
``stn.report.verdict``), so the two cannot disagree. A folder without records gives a
block saying the sweep has not been run yet. Nothing outside the markers is touched.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stn.report.document import comparison_table
from stn.report.markdown import markdown_cell
from stn.report.stats import GROUP_KEYS, Family
from stn.report.verdict import _percent, _step_ratio
from stn.results.atomic import write_text_atomically
from stn.results.collect import completeness, runs_frame
from stn.results.duplicates import merge_duplicates
from stn.results.store import load_records, records_dir

BEGIN = "<!-- question-table:begin: generated from the records, do not edit by hand -->"
END = "<!-- question-table:end -->"
# The question's canvases first, in this order; any other dataset of the folder after them.
CANVASES = ("question_276", "digits_276")
CANVAS_LABELS = {
    "question_276": "`question_276` (28–112 px objects)",
    "digits_276": "`digits_276` (28-px digits)",
}
DEFAULT_CLASSIFIER = "cnn"
ORACLE_SUFFIX = " (oracle)"
LETTERS = re.compile(r"^[A-Za-z0-9,]+$")
NOT_RUN = "has not been run yet"


class MarkerError(ValueError):
    """The README lacks the two marker lines (or has them out of order)."""


@dataclass(frozen=True)
class Row:
    """One line of the block: a reducer (and its network, where not the default)."""

    reducer: str  # as in the report's table (an oracle keeps its " (oracle)")
    classifier: str
    cells: dict[str, str]  # dataset → "93.9 ± 1.1 % (a)"
    cost: dict[str, str]  # dataset → "2.7×"

    @property
    def label(self) -> str:
        name = self.reducer.removesuffix(ORACLE_SUFFIX)
        text = f"`{markdown_cell(name)}`"
        if self.classifier != DEFAULT_CLASSIFIER:
            text += f" + {markdown_cell(self.classifier).upper()}"
        return text + (ORACLE_SUFFIX if self.reducer.endswith(ORACLE_SUFFIX) else "")


def has_records(sweep_dir: str | os.PathLike) -> bool:
    folder = records_dir(Path(sweep_dir))
    return folder.is_dir() and any(folder.glob("*.json"))


def build_block(sweep_dir: str | os.PathLike, readme_dir: str | os.PathLike = ".") -> str:
    """The markdown between the markers (without them) for ``sweep_dir``'s records; links
    and commands are written relative to ``readme_dir``, the README's folder."""
    sweep_dir = Path(sweep_dir)
    where = relative_link(sweep_dir, Path(readme_dir))
    command = f"stn-bench report {where} --readme README.md"
    if not has_records(sweep_dir):
        return _pending(where, command)
    records, _ = load_records(sweep_dir)
    records, _ = merge_duplicates(records)
    runs = runs_frame(records)
    trained = runs[runs["mode"] != "throughput"] if "mode" in runs else runs
    table, families = comparison_table(runs)
    if table.empty:
        return _pending(where, command)
    rows = block_rows(table, families)
    datasets = _datasets(table)
    return "\n".join(
        [
            f"**The answer at 276→48** ({completeness(trained).line()}; {_seeds(trained)}). "
            "Test accuracy, mean over seeds ± 95 % interval, and its group: within a canvas "
            "and network, reducers sharing a letter are not significantly different (paired "
            "tests, one Holm correction per family). Training step: its time relative to "
            "the family's baseline (the plainest resize: `resize_bilinear` for the CNN, "
            "`resize_area` for the MLP) on the same canvas"
            + (", timed beside other runs" if not _comparable(table) else "")
            + "."
            + (" †: some runs of the row ended on the chance plateau." if _stalled(table) else ""),
            "",
            _markdown(rows, datasets),
            "",
            f"Full report, with the verdict, every interval and the figures: "
            f"[{where}/report.md]({where}/report.md). Regenerate this table: `{command}`.",
        ]
    )


def block_rows(table: pd.DataFrame, families: list[Family]) -> list[Row]:
    """One ``Row`` per (reducer, classifier) of ``table`` (rows without their stalled runs
    are left to the report), default network first, then best mean on the first canvas."""
    shown = table
    if "without_stalled" in table:
        shown = table[~table["without_stalled"].fillna(False).astype(bool)]
    by_family = {(f.dataset, f.classifier): f for f in families}
    indexed = table.set_index(GROUP_KEYS)
    rows: dict[tuple[str, str], Row] = {}
    for record in shown.itertuples():
        key = (str(record.reducer), str(record.classifier))
        row = rows.setdefault(key, Row(key[0], key[1], {}, {}))
        entry = indexed.loc[(record.dataset, record.reducer, record.classifier)]
        row.cells[str(record.dataset)] = _cell(entry)
        family = by_family.get((record.dataset, record.classifier))
        if family is not None:
            row.cost[str(record.dataset)] = _cost(family, indexed, str(record.reducer))
    datasets = _datasets(table)
    means = shown.set_index(GROUP_KEYS)["accuracy_mean"]

    def order(row: Row) -> tuple:
        first = next((d for d in datasets if d in row.cells), None)
        mean = means.get((first, row.reducer, row.classifier), math.nan)
        return (row.classifier != DEFAULT_CLASSIFIER, row.classifier, -_finite(mean))

    return sorted(rows.values(), key=order)


def replace_block(text: str, block: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with everything between the markers ``begin`` … ``end`` replaced by
    ``block``."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < 0 or stop < start:
        raise MarkerError(
            f"the README needs the two marker lines, in this order, where the table goes:\n"
            f"{begin}\n{end}"
        )
    return text[: start + len(begin)] + "\n" + block.strip("\n") + "\n" + text[stop:]


def read_block(text: str, begin: str = BEGIN, end: str = END) -> str:
    """What stands between the markers of ``text`` (stripped of surrounding blank lines)."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < 0 or stop < start:
        raise MarkerError(f"no {begin!r} … {end!r} block")
    return text[start + len(begin) : stop].strip("\n")


def write_block(readme: str | os.PathLike, block: str, begin: str = BEGIN, end: str = END) -> bool:
    """Put ``block`` between the markers of ``readme`` (atomically); returns whether the
    file changed."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    updated = replace_block(text, block, begin, end)
    if updated == text:
        return False
    write_text_atomically(readme, updated)
    return True


def write_readme_block(readme: str | os.PathLike, sweep_dir: str | os.PathLike) -> bool:
    """Rewrite the question's block of ``readme`` from ``sweep_dir``'s records; returns
    whether the file changed."""
    return write_block(readme, build_block(sweep_dir, Path(readme).parent))


def _pending(where: str, command: str) -> str:
    return (
        f"**Not measured yet: the sweep that answers the question {NOT_RUN}.** It trains "
        "the default network behind every reducer family on `question_276` (objects of "
        "28–112 px) and `digits_276` (28-px digits), 3 seeds: "
        "`stn-bench run experiment=question`, then `experiment=question_mlp` "
        f"(PCA with the MLP); `{where}/` holds no records yet. Once it does, `{command}` "
        "writes its table here: each reducer's accuracy on both canvases with its 95 % "
        "interval and group letter, its training-step cost relative to a resize, and a "
        "link to the full report."
    )


def _markdown(rows: list[Row], datasets: list[str]) -> str:
    canvases = [CANVAS_LABELS.get(d, f"`{markdown_cell(d)}`") for d in datasets]
    cost = "training step × resize" + (
        f" ({' / '.join(d.removesuffix('_276') for d in datasets)})" if len(datasets) > 1 else ""
    )
    header = ["reducer", *canvases, cost]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.cells.get(d, "—") for d in datasets]
        costs = " / ".join(row.cost.get(d, "—") for d in datasets)
        lines.append("| " + " | ".join([row.label, *cells, costs]) + " |")
    return "\n".join(lines)


def _cell(entry: pd.Series) -> str:
    group = str(entry.get("group", ""))
    letters = group if LETTERS.match(group) else "—"
    return f"{_percent(entry)} ({letters})"


def _cost(family: Family, indexed: pd.DataFrame, reducer: str) -> str:
    if reducer == family.baseline:
        return "1×"

    def row(name: str) -> pd.Series:
        return indexed.loc[(family.dataset, name, family.classifier)]

    ratio, _ = _step_ratio(family, row, reducer)
    return "—" if ratio is None else f"{ratio:.2g}×"


def _comparable(table: pd.DataFrame) -> bool:
    if "tp_comparable" not in table:
        return True
    return bool(table["tp_comparable"].fillna(True).astype(bool).all())


def _stalled(table: pd.DataFrame) -> bool:
    return "stalled" in table and bool((table["stalled"].fillna(0) > 0).any())


def _datasets(table: pd.DataFrame) -> list[str]:
    present = [str(d) for d in table["dataset"].unique()]
    return [d for d in CANVASES if d in present] + sorted(d for d in present if d not in CANVASES)


def _seeds(runs: pd.DataFrame) -> str:
    seeds = sorted({s for s in runs["seed"].dropna()}, key=str)
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"


def _finite(value: float) -> float:
    return -math.inf if value is None or math.isnan(float(value)) else float(value)


def relative_link(path: Path, start: Path) -> str:
    """``path`` as a link written in a document of folder ``start``."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="the question's sweep, results/question")
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="README to update")
    args = parser.parse_args(argv)
    try:
        changed = write_readme_block(args.readme, args.sweep_dir)
    except (MarkerError, OSError) as err:
        print(f"error: {args.readme}: {err}", file=sys.stderr)
        return 2
    state = "updated" if changed else "already up to date"
    print(f"{args.readme}: the question's table {state} from {args.sweep_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
