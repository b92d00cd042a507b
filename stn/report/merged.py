"""The report's account of records read as one sample (``stn.results.duplicates``)."""

from __future__ import annotations

import pandas as pd

from stn.results.duplicates import Merge, MixedCell


def merged_section(merges: list[Merge], mixed: list[MixedCell]) -> list[str]:
    """Markdown lines naming every merge and every seed averaged over configurations;
    nothing when there are none."""
    if not merges and not mixed:
        return []
    lines = ["## Records read as one sample", ""]
    if merges:
        lines += [
            f"{len(merges)} experiment(s) had more than one record (the same data, reducer, "
            "network, training and seed; they differ only in how they were timed or logged, "
            "or in where they were written). Each counts once: the record kept is an ok one, "
            "the latest to finish.",
            "",
            _table(
                [
                    {
                        **_names(m.key),
                        "kept": m.kept.run_id,
                        "merged": ", ".join(r.run_id for r in m.dropped),
                        "statuses": ", ".join(r.status for r in (m.kept, *m.dropped)),
                        "test accuracies": _accuracies(m.accuracies),
                        "agree": _agreement(m.accuracy_spread),
                    }
                    for m in merges
                ]
            ),
            "",
        ]
    if mixed:
        lines += [
            f"{len(mixed)} seed(s) of a row hold runs of different configurations under the "
            "same names (options added since, or overridden): the seed is one sample, the "
            "mean of its runs.",
            "",
            _table(
                [
                    {
                        **_names(c.key),
                        "runs": ", ".join(r.run_id for r in c.records),
                        "config differs in": ", ".join(c.differences),
                        "agree": _agreement(c.accuracy_spread),
                    }
                    for c in mixed
                ]
            ),
            "",
        ]
    return lines


def _names(key: tuple[object, ...]) -> dict[str, object]:
    dataset, reducer, classifier, seed, mode = key
    return {
        "dataset": dataset,
        "reducer": reducer,
        "classifier": classifier,
        "seed": seed,
        "mode": mode,
    }


def _accuracies(values: list[float | None]) -> str:
    return ", ".join("—" if v is None else f"{100 * v:.2f} %" for v in values)


def _agreement(spread: float | None) -> str:
    if spread is None:
        return "—"
    return "identical" if spread == 0 else f"differ by {100 * spread:.2f} points"


def _table(rows: list[dict[str, object]]) -> str:
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
