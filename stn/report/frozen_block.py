"""The README's table for a trained network kept fixed, written from the frozen sweep's
records (issue 31).

    stn-bench report results/frozen --readme README.md

Between its own two marker lines (``BEGIN`` … ``END``) it writes one row per reducer: on
each canvas the fraction of the frozen network's accuracy it keeps (mean over seeds ± the
half-width of the 95 % interval, with its group letter) and, beside it, the same reducer
with the network trained from scratch, as a fraction of that sweep's oracle; then the
reference accuracies, Kendall's τ between the two rankings per canvas, and a link to the
full report. Every number comes from ``stn.report.frozen_kept.kept_families``, the function
that writes the report's "Accuracy kept" section, so the two cannot disagree.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stn.report.frozen_kept import (
    KeptFamily,
    default_scratch_dirs,
    frozen_records,
    kept_families,
    scratch_sides,
    stall_mark,
)
from stn.report.markdown import markdown_cell
from stn.report.readme_block import LETTERS, relative_link, write_block
from stn.results.collect import runs_frame
from stn.results.duplicates import merge_duplicates
from stn.results.store import load_records

BEGIN = "<!-- frozen-table:begin: generated from the records, do not edit by hand -->"
END = "<!-- frozen-table:end -->"
# Canvases by size; any other dataset of the folder after them.
CANVASES = ("digits_96", "digits_276", "question_276")
NOT_RUN = "has not been run yet"


def build_frozen_block(
    sweep_dir: str | os.PathLike,
    readme_dir: str | os.PathLike = ".",
    scratch_dirs: Sequence[str | os.PathLike] | None = None,
) -> str:
    """The markdown between the markers (without them) for ``sweep_dir``'s frozen records;
    ``scratch_dirs`` as in ``stn.report.frozen_kept.kept_section``."""
    sweep_dir, readme_dir = Path(sweep_dir), Path(readme_dir)
    where = relative_link(sweep_dir, readme_dir)
    command = f"stn-bench report {where} --readme README.md"
    records = load_records(sweep_dir)[0] if sweep_dir.is_dir() else []
    frozen = frozen_records(merge_duplicates(records)[0])
    if scratch_dirs is None:
        scratch_dirs = default_scratch_dirs(sweep_dir)
    families: list[KeptFamily] = []
    if frozen:
        sides = scratch_sides([Path(d) for d in scratch_dirs])
        families = [f for f in kept_families(runs_frame(frozen), sides) if f.oracle is not None]
    if not families:
        return (
            f"**Not measured yet: the frozen network's sweep {NOT_RUN}** (`{where}/` holds "
            f"no frozen run with its oracle crop). Once it has, `{command}` writes its "
            "table here."
        )
    families.sort(key=lambda f: (_canvas_order(f.dataset), f.dataset, f.classifier))
    return "\n".join(
        [
            "Kept: the frozen network's accuracy behind each reducer over its accuracy on its "
            "native 48×48 input (the oracle crop), mean over seeds ± 95 % interval, with its "
            "group (reducers sharing a letter keep amounts not significantly different); "
            "from scratch: the same reducer with the network trained together with it, over "
            "that sweep's oracle crop.",
            "",
            _markdown(families),
            "",
            _references(families, readme_dir),
            "",
            f"Full tables, with ranks and the scratch sides' intervals: "
            f"[{where}/report.md]({where}/report.md). Regenerate this table: `{command}`.",
        ]
    )


def _markdown(families: list[KeptFamily]) -> str:
    header = ["reducer"]
    for f in families:
        header += [f"`{_label(f)}` kept", "from scratch"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for reducer in _reducer_order(families):
        cells = [f"`{markdown_cell(reducer)}`"]
        for f in families:
            row = f.table[f.table["reducer"] == reducer]
            if row.empty:
                cells += ["—", "—"]
                continue
            r = row.iloc[0]
            kept = f"{r.kept_mean:.3f}" + ("" if pd.isna(r.kept_ci95) else f" ± {r.kept_ci95:.3f}")
            group = str(r.group) if LETTERS.match(str(r.group)) else "—"  # n/a: the report says why
            cells.append(f"{kept}{stall_mark(r.stalled)} ({group})")
            scratch = "—" if pd.isna(r.scratch_vs_oracle) else f"{r.scratch_vs_oracle:.3f}"
            cells.append(scratch + stall_mark(r.scratch_stalled))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _references(families: list[KeptFamily], readme_dir: Path) -> str:
    native = "; ".join(f"`{_label(f)}` {100 * f.oracle_accuracy:.1f} %" for f in families)
    taus = "; ".join(f"`{_label(f)}` {f.tau:.2f}" for f in families if not math.isnan(f.tau))
    scratch = "; ".join(
        f"`{_label(f)}` `{relative_link(f.scratch_dir, readme_dir)}`"
        if f.scratch_dir is not None
        else f"`{_label(f)}` none"
        for f in families
    )
    text = f"The frozen network on its native input (`oracle_crop`): {native}. "
    text += f"From scratch, read from: {scratch}. "
    if taus:
        text += f"Kendall's τ between the frozen and the from-scratch rankings: {taus}."
    if any(stall_mark(v) for f in families for v in f.table["stalled"]):
        text += (
            " †: some runs of the row read at chance (loss ≥ 0.9·ln C, accuracy < 2/C): a "
            "fixed reducer read once, or a learned one that never left the plateau "
            "(`python -m scripts.frozen_predictions` shows which class the network names)."
        )
    return text.strip()


def _reducer_order(families: list[KeptFamily]) -> list[str]:
    """Best first by the mean kept fraction over the canvases a reducer has (a row missing
    from a canvas, as a selector whose windows do not fit it, is not held against it)."""
    kept: dict[str, list[float]] = {}
    for f in families:
        for r in f.table.itertuples():
            kept.setdefault(str(r.reducer), []).append(float(r.kept_mean))
    return sorted(kept, key=lambda name: (-sum(kept[name]) / len(kept[name]), name))


def _label(family: KeptFamily) -> str:
    name = markdown_cell(family.dataset)
    return name if family.classifier == "cnn" else f"{name}, {markdown_cell(family.classifier)}"


def _canvas_order(dataset: str) -> int:
    return CANVASES.index(dataset) if dataset in CANVASES else len(CANVASES)


def write_frozen_block(
    readme: str | os.PathLike,
    sweep_dir: str | os.PathLike,
    scratch_dirs: Sequence[str | os.PathLike] | None = None,
) -> bool:
    """Rewrite the frozen block of ``readme`` from ``sweep_dir``'s records; returns whether
    the file changed."""
    block = build_frozen_block(sweep_dir, Path(readme).parent, scratch_dirs)
    return write_block(readme, block, BEGIN, END)
