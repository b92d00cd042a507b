"""From a sweep's records to what a report needs: the runs frame, curves, completeness.

``runs_frame`` reads the typed records (``stn.results.record.Record``) once into the
frame every table and figure uses; nothing downstream looks at a record again. Built for
records not seen yet: every field is optional. A failed run whose reducer never got
built has no recorded reducer; its names then come from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stn.measure.plateau import plateau_verdict
from stn.results.record import Record
from stn.results.variants import row_names

GRID_KEYS = ["dataset", "reducer", "classifier", "seed"]
# Frame column → key of the run's plateau verdict (stn.measure.plateau.plateau_verdict).
PLATEAU_COLUMNS = {
    "ended_on_plateau": "ended_on_plateau",
    "left_plateau_at_epoch": "left_at_epoch",
    "final_train_loss": "final_train_loss",
    "final_train_accuracy": "final_train_accuracy",
    "chance_loss": "chance_loss",
}
PLATEAU_FLAGS = ("ended_on_plateau", "left_plateau_at_epoch")
THROUGHPUT_PREFIX = "tp_"
# Frame column → key of the run's glimpse summary (stn.measure.glimpse.summarise_glimpses):
# where a learned sampler looked on the test images; NaN for reducers without a transform.
GLIMPSE_COLUMNS = {
    "glimpse_zoom": "zoom_mean",
    "glimpse_side_px": "glimpse_side_px_mean",
    "object_side_px": "object_side_px_mean",
    "glimpse_distance_rel": "centre_distance_rel_mean",
    "glimpse_in_box": "centre_in_box",
}


def runs_frame(records: list[Record]) -> pd.DataFrame:
    """One row per record, in the order of ``records``, with every column the tables and
    figures use.

    Columns: run_id, sweep, status (``unknown`` where missing), error, dataset and
    reducer (the row's names: the configured ones, with the options that tell a variant
    from the others under that name, ``stn.results.variants``), preset (the reducer's
    name alone),
    reducer_kind, classifier (as built, else as configured), learned, reducer_params,
    oracle, seed, mode (train/throughput), test_accuracy, test_loss, train_seconds;
    every ``throughput.<figure>.<stat>`` number flattened as ``tp_<figure>_<stat>``,
    ``tp_device`` and ``tp_comparable`` (``False``: taken beside other runs); ``kernel``
    and ``antialias`` (from ``config.reducer``; STN presets set them); the plateau
    verdict (``PLATEAU_COLUMNS``; ``ended_on_plateau`` is ``None`` where unknown); where
    the reducer looked (``GLIMPSE_COLUMNS``, NaN where not measured); and
    ``object_scale`` (the mean of ``config.dataset.object_scale``, ``None`` when unset).
    """
    if not records:
        return pd.DataFrame(columns=["run_id", "status", "error", *GRID_KEYS, "test_accuracy"])
    frame = pd.DataFrame([_row(r) for r in records])
    rows = row_names(records)
    frame["preset"] = frame["reducer"]
    frame["dataset"] = [row.dataset for row in rows]
    frame["reducer"] = [row.reducer for row in rows]
    frame["kernel"] = [r.configured("reducer", "kernel") for r in records]
    frame["antialias"] = [bool(r.configured("reducer", "antialias")) for r in records]
    verdicts = [record_plateau(r) or {} for r in records]
    for column, key in PLATEAU_COLUMNS.items():
        values = pd.Series([v.get(key) for v in verdicts], dtype=object)
        # The flag and the epoch keep None (unknown / never left); the figures are floats.
        frame[column] = values if column in PLATEAU_FLAGS else pd.to_numeric(values)
    frame["object_scale"] = pd.Series([r.object_scale for r in records], dtype=float)
    for column, key in GLIMPSE_COLUMNS.items():
        frame[column] = pd.Series(
            [(r.metrics.glimpse or {}).get(key) for r in records], dtype=float
        )
    frame["status"] = frame["status"].fillna("unknown")
    return frame


def _row(record: Record) -> dict[str, Any]:
    """The record's scalar columns, then its throughput numbers."""
    reducer = record.reducer
    row = {
        "run_id": record.run_id,
        "sweep": record.sweep,
        "status": record.status,
        "error": record.error,
        "dataset": record.name_of("dataset"),
        # A run that failed before building its reducer still names it, from its config.
        "reducer": reducer.name or record.configured("reducer", "name"),
        "reducer_kind": reducer.kind
        if reducer.kind is not None
        else record.configured("reducer", "kind"),
        "learned": reducer.learned,
        "reducer_params": reducer.parameters,
        "oracle": bool(reducer.oracle or False),
        "classifier": record.name_of("classifier"),
        "seed": record.seed,
        "mode": record.mode,
        "test_accuracy": record.metrics.test_accuracy,
        "test_loss": record.metrics.test_loss,
        "train_seconds": record.metrics.train_seconds,
    }
    return row | _throughput_columns(record.throughput)


def _throughput_columns(throughput: dict[str, Any]) -> dict[str, Any]:
    columns = {
        f"{THROUGHPUT_PREFIX}device": (throughput.get("reducer") or {}).get("device"),
        f"{THROUGHPUT_PREFIX}comparable": throughput.get("comparable"),
    }
    for figure, stats in throughput.items():
        if isinstance(stats, dict):
            for stat, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    columns[f"{THROUGHPUT_PREFIX}{figure}_{stat}"] = value
    return columns


def record_plateau(record: Record) -> dict[str, Any] | None:
    """A record's plateau verdict: the stored ``metrics.plateau``, else computed from its
    ``metrics.curves`` and ``dataset.num_classes`` (records written before the field
    existed), else ``None`` (unknown: no curves, no class count, or unusable ones).
    """
    stored = record.metrics.plateau
    if isinstance(stored, dict) and isinstance(stored.get("ended_on_plateau"), bool):
        return stored
    num_classes = record.dataset.num_classes
    curves = record.metrics.curves
    if not isinstance(num_classes, (int, np.integer)) or not isinstance(curves, list):
        return None
    try:
        return plateau_verdict(curves, int(num_classes))
    except ValueError:
        return None  # damaged curves: say "unknown" rather than guess


def curves_frame(records: list[Record]) -> pd.DataFrame:
    """Per-epoch learning curves of the ``ok`` records, one row per (run, epoch)."""
    rows = []
    for record, names in zip(records, row_names(records), strict=True):
        if record.status != "ok":
            continue
        for entry in record.metrics.curves or []:
            if isinstance(entry, dict) and "epoch" in entry:
                rows.append(
                    {
                        "dataset": names.dataset,
                        "reducer": names.reducer,
                        "classifier": record.configured("classifier", "name"),
                        "seed": record.seed,
                        **entry,
                    }
                )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Completeness:
    """How much of the grid has records: per (dataset, classifier), the reducers run with
    that pairing × every seed seen."""

    ok: int
    failed: int
    other: int
    expected: int
    missing: pd.DataFrame  # the grid cells with no record at all, columns GRID_KEYS

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.other

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.other == 0 and self.missing.empty

    def line(self) -> str:
        text = f"{self.ok} ok, {self.failed} failed"
        if self.other:
            text += f", {self.other} not finished"
        text += f" of {self.expected} expected runs"
        if not self.missing.empty:
            text += f" ({len(self.missing)} missing)"
        return text


def completeness(runs: pd.DataFrame) -> Completeness:
    """Compare the records with the grid of the swept values seen in them.

    For each (dataset, classifier) pairing: every reducer seen with it × every seed seen
    in the sweep. A sweep still running (or one whose jobs died before writing) shows the
    missing cells.
    """
    status = runs["status"] if "status" in runs else pd.Series(dtype=object)
    ok, failed = int((status == "ok").sum()), int((status == "failed").sum())
    other = len(runs) - ok - failed
    keys = [k for k in GRID_KEYS if k in runs]
    if runs.empty or len(keys) < len(GRID_KEYS):
        return Completeness(ok, failed, other, len(runs), pd.DataFrame(columns=GRID_KEYS))
    # Per dataset and classifier: every reducer run with that pairing × every seed. A
    # sweep that pairs only some reducers with a classifier (PCA with the MLP) is complete.
    grids = []
    for (dataset, classifier), block in runs.groupby(["dataset", "classifier"], dropna=True):
        reducers = sorted(block["reducer"].dropna().unique().tolist(), key=str)
        seeds = sorted(runs["seed"].dropna().unique().tolist(), key=str)
        grids += [(dataset, r, classifier, s) for r in reducers for s in seeds]
    grid = pd.DataFrame(grids, columns=["dataset", "reducer", "classifier", "seed"])[GRID_KEYS]
    present = runs[GRID_KEYS].dropna().drop_duplicates()
    merged = grid.merge(present, on=GRID_KEYS, how="left", indicator=True)
    missing = merged[merged["_merge"] == "left_only"][GRID_KEYS].reset_index(drop=True)
    return Completeness(ok, failed, other, max(len(grid), len(runs)), missing)
