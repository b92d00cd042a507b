"""From a sweep's records to what a report needs: the runs frame, curves, completeness.

Built for records not seen yet: every field is optional. A failed run whose reducer
never got built has no ``record["reducer"]``; its names then come from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from stn.measure.plateau import record_plateau
from stn.results.store import records_to_frame

# Frame column → where the resolved config keeps the same fact.
CONFIG_FALLBACKS = {
    "dataset": ("dataset", "name"),
    "reducer": ("reducer", "name"),
    "reducer_kind": ("reducer", "kind"),
    "classifier": ("classifier", "name"),
}
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


def _config_value(record: dict[str, Any], section: str, key: str) -> Any:
    value = (record.get("config") or {}).get(section)
    return value.get(key) if isinstance(value, dict) else None


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """``stn.results.store.records_to_frame`` plus the config fields the report groups by.

    Adds ``kernel`` and ``antialias`` (from ``config.reducer``; STN presets set them),
    the plateau verdict (``PLATEAU_COLUMNS``; ``ended_on_plateau`` is ``None`` where
    unknown), fills missing names from the config, and keeps the order of ``records``.
    """
    frame = records_to_frame(records)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "status", "error", *GRID_KEYS, "test_accuracy"])
    for column, (section, key) in CONFIG_FALLBACKS.items():
        from_config = pd.Series([_config_value(r, section, key) for r in records], dtype=object)
        frame[column] = frame[column].astype(object).where(frame[column].notna(), from_config)
    frame["kernel"] = [_config_value(r, "reducer", "kernel") for r in records]
    frame["antialias"] = [bool(_config_value(r, "reducer", "antialias")) for r in records]
    verdicts = [record_plateau(r) or {} for r in records]
    for column, key in PLATEAU_COLUMNS.items():
        values = pd.Series([v.get(key) for v in verdicts], dtype=object)
        # The flag and the epoch keep None (unknown / never left); the figures are floats.
        frame[column] = values if column in PLATEAU_FLAGS else pd.to_numeric(values)
    frame["status"] = frame["status"].fillna("unknown")
    return frame


def curves_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-epoch learning curves of the ``ok`` records, one row per (run, epoch)."""
    rows = []
    for record in records:
        if record.get("status") != "ok":
            continue
        curves = (record.get("metrics") or {}).get("curves") or []
        for entry in curves:
            if isinstance(entry, dict) and "epoch" in entry:
                rows.append(
                    {
                        "dataset": _config_value(record, "dataset", "name"),
                        "reducer": _config_value(record, "reducer", "name"),
                        "classifier": _config_value(record, "classifier", "name"),
                        "seed": (record.get("config") or {}).get("seed"),
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
