"""One row per configuration: a name run with other options is named by them.

A sweep over an option from the command line (``reducer=ips_windows
reducer.kernel=bilinear,bicubic``) records every variant under the preset's name. Read as
one row, the variants would be averaged into one sample per seed and the comparison the
sweep ran would vanish. ``row_names`` gives each record the names of its row:

- the dataset's name where every record of that name read the same data, else the name
  followed by the dataset options that tell its variants apart,
  ``digits_128 (object_scale=[0.1, 0.1])``: other data is another block of the report,
  with its own baseline, never a row to rank against the first;
- the reducer's name where every record of it (same data and network) ran with the same
  options, else the name followed by the options that tell its variants apart,
  ``ips_windows (kernel=bicubic, antialias=false)``; options outside the reducer's
  section carry their section, ``pool_avg (trainer.epochs=20)``.

Only options set on every record of a name separate rows. An option that some records
lack was added to the code after they ran (the record predates it); those records stay in
the row of their other options, and the report names them as one seed's mixed runs
(``stn.results.duplicates.mixed_cells``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stn.results.identity import experiment_config
from stn.results.record import Record

# Neither tells variants apart: the seed is the sample, the mode only says whether the
# run trained or was timed (a timed record belongs to the row its options name).
NOT_A_VARIANT = frozenset({"seed", "mode"})
DATASET = "dataset"


@dataclass(frozen=True)
class RowName:
    """The names a record's row is shown under: ``dataset`` and ``reducer``."""

    dataset: Any
    reducer: Any


def row_names(records: list[Record]) -> list[RowName]:
    """The row names of each record, in the order of ``records`` (a name the record
    lacks stays ``None``)."""
    options = [_options(r) for r in records]
    datasets = _labelled(
        [r.name_of(DATASET) for r in records],
        [{k: v for k, v in o.items() if _section(k) == DATASET} for o in options],
        strip=f"{DATASET}.",
    )
    reducers = _labelled(
        [
            (dataset, r.name_of("reducer"), r.name_of("classifier"))
            for dataset, r in zip(datasets, records, strict=True)
        ],
        [{k: v for k, v in o.items() if _section(k) != DATASET} for o in options],
        strip="reducer.",
        shown=[r.name_of("reducer") for r in records],
    )
    return [RowName(d, r) for d, r in zip(datasets, reducers, strict=True)]


def _labelled(
    groups: list[Any], options: list[dict[str, str]], strip: str, shown: list[Any] | None = None
) -> list[Any]:
    """Each record's name (``shown``, else its group) with the options that vary within
    its group appended; the name alone where nothing varies or the name is missing."""
    shown = groups if shown is None else shown
    members: dict[Any, list[int]] = defaultdict(list)
    for position, group in enumerate(groups):
        members[group].append(position)
    names = list(shown)
    for positions in members.values():
        varying = _varying_keys([options[p] for p in positions])
        for position in positions if varying else []:
            if names[position] is not None:
                names[position] = f"{names[position]} ({_label(options[position], varying, strip)})"
    return names


def _section(key: str) -> str:
    return key.split(".", 1)[0]


def _options(record: Record) -> dict[str, str]:
    """The record's experiment options as dotted keys → comparable text; the seed and the
    mode left out, and so are the timing settings a timed record's id includes."""
    config = {k: v for k, v in record.config.items() if k not in NOT_A_VARIANT}
    return _flatten(experiment_config(config))


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            flat |= _flatten(item, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = json.dumps(item, sort_keys=True, default=str)
    return flat


def _varying_keys(options: list[dict[str, str]]) -> list[str]:
    """Keys every record sets, with more than one value among them, in config order."""
    if len(options) < 2:
        return []
    shared = [k for k in options[0] if all(k in o for o in options[1:])]
    return [k for k in shared if len({o[k] for o in options}) > 1]


def _label(flat: dict[str, str], keys: list[str], strip: str) -> str:
    """``kernel=bicubic, antialias=false``: the section's own options by their name, any
    other section's by its dotted path (``trainer.epochs=20``)."""
    parts = []
    for key in keys:
        value = json.loads(flat[key])
        text = value if isinstance(value, str) else flat[key]
        parts.append(f"{key.removeprefix(strip)}={text}")
    return ", ".join(parts)
