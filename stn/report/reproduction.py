"""Did a sweep reproduce a reference? Each run beside the reference record of its experiment.

``make main`` runs the default comparison into a folder of its own and passes the
committed ``results/compare`` as its reference (``reference_dir``); any sweep or report
can do the same (``stn-bench report --reference FOLDER``). Each ``ok`` training run is
matched with the reference record of the same experiment (``stn.results.identity``);
a run with none is matched with the reference run of the same dataset, reducer,
classifier and seed, and the config keys that differ are named. The comparison is exact:
the same test accuracy and loss is *identical*; anything else is given as the difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stn.results.duplicates import CellKey, cell_key
from stn.results.identity import config_differences
from stn.results.record import Record

COLUMNS = [
    "dataset",
    "reducer",
    "classifier",
    "seed",
    "accuracy",
    "reference accuracy",
    "difference (points)",
    "test loss difference",
    "match",
]


@dataclass(frozen=True)
class Reproduction:
    """This sweep's ``ok`` training runs against a reference folder's."""

    reference: Path
    table: pd.DataFrame  # COLUMNS, one row per run of this sweep
    not_rerun: int  # reference training runs with no run here
    reference_runs: int  # ok training runs in the reference folder

    @property
    def compared(self) -> pd.DataFrame:
        return self.table[self.table["match"] != "no reference record"]

    def line(self) -> str:
        """``30 of 30 runs compared: 30 identical``, or the count that differ and by how
        much at most."""
        if not self.reference_runs:
            return f"no reference training runs in {self.reference}"
        compared = self.compared
        identical = int((compared["difference (points)"] == 0).sum())
        differing = compared[compared["difference (points)"] != 0]
        text = f"{len(compared)} of {len(self.table)} runs compared: {identical} identical"
        if not differing.empty:
            largest = differing["difference (points)"].abs().max()
            text += f", {len(differing)} differ in test accuracy (at most {largest:.2f} points)"
        loss_only = compared[
            (compared["difference (points)"] == 0) & (compared["test loss difference"] != 0)
        ]
        if not loss_only.empty:
            text += f" ({len(loss_only)} of the identical accuracies with another test loss)"
        return text


def compare_with_reference(
    records: Iterable[Record], reference: Iterable[Record], folder: str | Path
) -> Reproduction:
    """Match every ``ok`` training run of ``records`` with ``reference`` (both already
    cut to one record per experiment)."""
    ours = [r for r in records if _trained(r)]
    theirs = [r for r in reference if _trained(r)]
    by_experiment = {r.experiment_id: r for r in theirs}
    by_cell: dict[CellKey, Record] = {}
    for record in theirs:
        by_cell.setdefault(cell_key(record), record)
    rows, used = [], set()
    for record in sorted(ours, key=_order):
        match = by_experiment.get(record.experiment_id)
        how = "same experiment"
        if match is None:
            match = by_cell.get(cell_key(record))
            if match is not None:
                keys = config_differences(match.config, record.config)
                how = "same names and seed; config differs in " + ", ".join(keys)
        if match is not None:
            used.add(id(match))
        rows.append(_row(record, match, how))
    table = pd.DataFrame(rows, columns=COLUMNS)
    not_rerun = sum(id(r) not in used for r in theirs)
    return Reproduction(Path(folder), table, not_rerun, len(theirs))


def reproduction_section(reproduction: Reproduction) -> list[str]:
    """The report's closing section: the line, the table, what the reference has beyond."""
    shown = reproduction.table.copy()
    for column in ("accuracy", "reference accuracy"):
        shown[column] = shown[column].map(lambda v: "—" if pd.isna(v) else f"{100 * v:.2f} %")
    shown["difference (points)"] = shown["difference (points)"].map(_signed(".2f"))
    shown["test loss difference"] = shown["test loss difference"].map(_signed(".4f"))
    lines = [
        f"## Reproduction of `{reproduction.reference}`",
        "",
        f"**{reproduction.line()}.** Each training run of this sweep beside the reference "
        "record of the same experiment (same data, reducer, network, training and seed; "
        "timing and logging settings aside); a run without one beside the reference run "
        "of the same names and seed, with the config keys that differ. *identical*: the "
        "same test accuracy and test loss, to the last digit.",
        "",
        shown.to_markdown(index=False, disable_numparse=True),
        "",
    ]
    if reproduction.not_rerun:
        lines += [
            f"{reproduction.not_rerun} reference training run(s) have no run here.",
            "",
        ]
    return lines


def _row(record: Record, match: Record | None, how: str) -> dict[str, object]:
    dataset, reducer, classifier, seed, _ = cell_key(record)
    accuracy = record.metrics.test_accuracy
    row = {
        "dataset": dataset,
        "reducer": reducer,
        "classifier": classifier,
        "seed": seed,
        "accuracy": accuracy,
        "reference accuracy": math.nan,
        "difference (points)": math.nan,
        "test loss difference": math.nan,
        "match": "no reference record",
    }
    if match is None:
        return row
    difference = 100 * (accuracy - match.metrics.test_accuracy)
    loss = _difference(record.metrics.test_loss, match.metrics.test_loss)
    same = difference == 0 and (loss == 0 or math.isnan(loss))
    row.update(
        {
            "reference accuracy": match.metrics.test_accuracy,
            "difference (points)": difference,
            "test loss difference": loss,
            "match": f"{how}: " + ("identical" if same else "differs"),
        }
    )
    return row


def _difference(ours: float | None, theirs: float | None) -> float:
    if ours is None or theirs is None:
        return math.nan
    return float(ours) - float(theirs)


def _trained(record: Record) -> bool:
    return (
        record.status == "ok"
        and record.mode == "train"
        and record.metrics.test_accuracy is not None
    )


def _order(record: Record) -> tuple[str, ...]:
    return tuple(str(v) for v in cell_key(record))


def _signed(spec: str):
    return lambda v: "—" if pd.isna(v) else ("0" if v == 0 else format(v, "+" + spec))
