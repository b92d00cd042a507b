"""One sample per experiment and seed: records of the same run merged into one.

Two records of the same experiment (``stn.results.identity``: same data, reducer,
network, training, seed, ...) are the same run written twice: by an older code whose run
ids also hashed timing settings, by a sweep relaunched with other timing settings, or
copied in from another folder. Counting both would count a seed twice and narrow every
interval. ``merge_duplicates`` keeps one record per experiment (an ``ok`` one first, then
the latest to finish) and says what it merged and whether the accuracies agree.

The report's accuracy table goes one step further: its sample is one seed of a row
(dataset, reducer, classifier). A preset name run with other options is one row per
option set (``stn.results.variants``); records of one seed that differ only in options
some of them predate are averaged into one sample, and ``mixed_cells`` names them with
the keys that differ.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from stn.results.identity import config_differences
from stn.results.record import Record
from stn.results.variants import RowName, row_names

CellKey = tuple[object, object, object, object, object]


def cell_key(record: Record, row: RowName | None = None) -> CellKey:
    """(dataset, reducer, classifier, seed, mode) of a record, names as built, else as
    configured; ``row``: the names of the row its options make
    (``stn.results.variants.row_names``)."""
    return (
        row.dataset if row else record.name_of("dataset"),
        row.reducer if row else record.name_of("reducer"),
        record.name_of("classifier"),
        record.seed,
        record.mode,
    )


@dataclass(frozen=True)
class Merge:
    """The records of one experiment: ``kept`` is the sample, ``dropped`` the others."""

    kept: Record
    dropped: list[Record]

    @property
    def key(self) -> CellKey:
        return cell_key(self.kept)

    @property
    def accuracies(self) -> list[float | None]:
        """Test accuracy of the kept record, then of each dropped one."""
        return [r.metrics.test_accuracy for r in (self.kept, *self.dropped)]

    @property
    def accuracy_spread(self) -> float | None:
        """Largest minus smallest test accuracy of the ``ok`` records (0.0: they agree
        exactly); ``None`` with fewer than two ``ok`` records with an accuracy."""
        return _spread([self.kept, *self.dropped])


def merge_duplicates(records: list[Record]) -> tuple[list[Record], list[Merge]]:
    """One record per experiment (``Record.experiment_id``), in the order of
    ``records``, and the merges.

    The kept record of an experiment with several: an ``ok`` one before any other
    status, then the one that finished last (``timing.finished_at``; unknown counts as
    earliest), then the last in ``records``.
    """
    groups: dict[str, list[tuple[int, Record]]] = defaultdict(list)
    for position, record in enumerate(records):
        groups[record.experiment_id].append((position, record))
    kept_positions: set[int] = set()
    merges = []
    for members in groups.values():
        position, kept = max(
            members,
            key=lambda item: (
                item[1].status == "ok",
                item[1].timing.finished_at or float("-inf"),
                item[0],
            ),
        )
        kept_positions.add(position)
        if len(members) > 1:
            merges.append(Merge(kept, [r for p, r in members if p != position]))
    return [r for p, r in enumerate(records) if p in kept_positions], merges


@dataclass(frozen=True)
class MixedCell:
    """Several experiments under one (dataset, reducer, classifier, seed) of a training
    sweep: the report averages them into one sample of that seed."""

    key: CellKey
    records: list[Record]

    @property
    def differences(self) -> list[str]:
        """Experiment keys in which any record's config differs from the first's."""
        first = self.records[0].config
        keys = {k for r in self.records[1:] for k in config_differences(first, r.config)}
        return sorted(keys)

    @property
    def accuracy_spread(self) -> float | None:
        return _spread(self.records)


def mixed_cells(records: list[Record]) -> list[MixedCell]:
    """The ``ok`` training cells (``cell_key`` of each record's row) holding more than
    one experiment: a row's variants are rows of their own, so what is left are records
    that predate an option the others set."""
    cells: dict[CellKey, list[Record]] = defaultdict(list)
    for record, row in zip(records, row_names(records), strict=True):
        if record.status == "ok" and record.mode == "train":
            cells[cell_key(record, row)].append(record)
    return [MixedCell(key, members) for key, members in cells.items() if len(members) > 1]


def _spread(records: list[Record]) -> float | None:
    values = [
        r.metrics.test_accuracy
        for r in records
        if r.status == "ok" and r.metrics.test_accuracy is not None
    ]
    return max(values) - min(values) if len(values) > 1 else None
