"""Issue 31's report: how much of a frozen network's accuracy each reducer keeps, beside the
same reducers with the network trained from scratch.

A frozen sweep (``experiment=frozen``: ``classifier.frozen`` records) puts every reducer in
front of one network trained on native 48×48 objects and kept fixed. On each canvas its
reference is the ``oracle_crop`` row of the same canvas in the same sweep: the true box cut
out and resized, the network's native input. A reducer's *kept fraction* on a seed is its
accuracy over the oracle's on that seed (over the oracle's mean where the oracle lacks the
seed). The fractions go through the report's own statistics
(``stn.report.stats.summary``: one sample per seed, a Student-t interval, paired tests per
pair, one weighted Holm correction per family, compact letters), so intervals and groups
mean what they mean in every other table.

Beside each row: the same reducer on the same canvas with the network trained from scratch
together with it, from the first scratch sweep folder that holds that canvas (by default
the frozen sweep's siblings ``frozen_scratch``, ``compare`` and ``question``), its
accuracy, interval and group in that sweep's own family, its accuracy over that sweep's
oracle, and the two ranks, so a reader sees whether the ranking changes when the network
cannot adapt. A reducer the scratch folders do not hold is named, not guessed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy import stats as scipy_stats

from stn.report.markdown import markdown_cell
from stn.report.stats import GROUP_KEYS, WITHOUT_STALLED, accuracy_by_seed, aggregate, summary
from stn.results.collect import runs_frame
from stn.results.duplicates import merge_duplicates
from stn.results.record import Record
from stn.results.store import load_records

# Sibling folders of the frozen sweep read as the scratch side when none are given:
# experiment=frozen_scratch (digits_96, every frozen row), the main job (digits_96, its
# eight rows: for folders without frozen_scratch) and the question (digits_276, question_276).
DEFAULT_SCRATCH = ("frozen_scratch", "compare", "question")
SECTION = "## Accuracy kept by the frozen network"
KEPT_NOTE = (
    "Kept: the frozen network's accuracy behind each reducer over its accuracy on its native "
    "48×48 inputs (the `oracle_crop` row of the same canvas in this sweep), per seed; mean "
    "over seeds ± half-width of the 95 % Student-t interval; `group`: the report's letters "
    "(paired tests on the kept fractions, one weighted Holm correction per canvas): reducers "
    "sharing a letter keep amounts not significantly different. A fixed reducer (resize, "
    "pooling) in front of a fixed network reads the same test canvases the same way on every "
    "seed: its interval is 0 and its differences from other fixed reducers are exact for "
    "this test set (the seed varies only what learns). From scratch: the same reducer with "
    "the network trained together with it, from the scratch sweep named per canvas (its own "
    "trainer), accuracy with its interval and its group in that sweep's own family, and "
    "`÷ oracle`: over that sweep's `oracle_crop`. `rank`: among the reducers both sides "
    "have, best first; `change`: places gained (+) or lost (−) when the network is frozen."
)
PCA_NOTE = (
    "PCA is left out: a network trained on images cannot read PCA coefficients laid out as "
    "an image (its first layer expects pixels where PCA puts the largest components), so a "
    "frozen PCA row would measure the mismatch, not the reducer."
)
NO_ORACLE = (
    "no `oracle_crop` run of this canvas in the frozen sweep: nothing to divide by "
    "(run it: reducer=oracle_crop)"
)


@dataclass
class KeptFamily:
    """One canvas (and network) of the frozen sweep, with its scratch counterpart."""

    dataset: str
    classifier: str
    oracle: str | None  # the reference row's name
    oracle_accuracy: float
    table: pd.DataFrame  # one row per reducer (see ``kept_families``)
    scratch_dir: Path | None
    missing: list[str] = field(default_factory=list)  # reducers with no scratch row
    tau: float = math.nan  # Kendall's τ between the two rankings

    @property
    def moves(self) -> list[str]:
        moved = self.table[self.table["rank_change"].fillna(0) != 0]
        return [
            f"{r.reducer} {_ordinal(r.rank_scratch)} → {_ordinal(r.rank_frozen)}"
            for r in moved.sort_values("rank_frozen").itertuples()
        ]


def is_frozen(record: Record) -> bool:
    frozen = record.classifier.frozen
    if frozen is None:
        frozen = record.configured("classifier", "frozen")
    return bool(frozen)


def frozen_records(records: Sequence[Record]) -> list[Record]:
    """The records of ``records`` whose network was kept frozen."""
    return [r for r in records if is_frozen(r)]


def scratch_sides(folders: Sequence[Path]) -> list[tuple[Path, pd.DataFrame]]:
    """``(folder, runs)`` of each scratch folder: its ok trained runs of unfrozen
    networks (an empty frame for a folder that does not exist)."""
    return [(folder, _scratch_runs(folder)) for folder in folders]


def default_scratch_dirs(sweep_dir: str | os.PathLike) -> list[Path]:
    """The frozen sweep's sibling folders of ``DEFAULT_SCRATCH``."""
    parent = Path(sweep_dir).parent
    return [parent / name for name in DEFAULT_SCRATCH]


def kept_families(
    frozen: pd.DataFrame, scratch: Sequence[tuple[Path, pd.DataFrame]]
) -> list[KeptFamily]:
    """The kept fractions of each (dataset, classifier) of ``frozen`` (a runs frame of the
    frozen sweep's records) and, per canvas, the first ``(folder, runs)`` of ``scratch``
    holding that canvas and network.

    Each table row: ``reducer``, ``kept_mean``, ``kept_ci95``, ``group``, ``stalled``,
    ``frozen_accuracy``, ``n``, ``rank_frozen``; ``scratch_mean``, ``scratch_ci95``,
    ``scratch_group``, ``scratch_stalled``, ``scratch_vs_oracle``, ``rank_scratch`` (NaN
    where the scratch side lacks it), ``rank_change`` (``rank_scratch − rank_frozen``).
    """
    ok = _trained_ok(frozen)
    families = []
    for (dataset, classifier), runs in ok.groupby(["dataset", "classifier"], sort=True):
        oracles = runs[runs["oracle"].fillna(False).astype(bool)] if "oracle" in runs else None
        if oracles is None or oracles.empty:
            families.append(
                KeptFamily(str(dataset), str(classifier), None, math.nan, pd.DataFrame(), None)
            )
            continue
        oracle_name = str(oracles["reducer"].iloc[0])
        reference = accuracy_by_seed(oracles)
        others = runs[~runs["reducer"].isin(set(oracles["reducer"]))]
        table = _kept_table(others, reference)
        source = next(
            ((folder, r) for folder, r in scratch if _has(r, dataset, classifier)), (None, None)
        )
        family = KeptFamily(
            str(dataset), str(classifier), oracle_name, float(reference.mean()), table, source[0]
        )
        _join_scratch(family, source[1])
        families.append(family)
    return families


def kept_section(
    records: list[Record],
    sweep_dir: str | os.PathLike,
    scratch_dirs: Sequence[str | os.PathLike] | None = None,
) -> list[str]:
    """Markdown lines of the section (none when no record is of a frozen network).
    ``scratch_dirs``: sweep folders of the same reducers trained from scratch, first
    match per canvas (default ``default_scratch_dirs(sweep_dir)``)."""
    frozen = frozen_records(records)
    if not frozen:
        return []
    if scratch_dirs is None:
        scratch_dirs = default_scratch_dirs(sweep_dir)
    folders = [Path(d) for d in scratch_dirs]
    scratch = scratch_sides(folders)
    lines = [SECTION, "", KEPT_NOTE, "", PCA_NOTE, ""]
    shown = ", ".join(f"`{f}`" for f in folders) or "none"
    for family in kept_families(runs_frame(frozen), scratch):
        lines += [f"### {family.dataset}, {family.classifier}", ""]
        if family.oracle is None:
            lines += [f"No kept fractions: {NO_ORACLE}.", ""]
            continue
        lines += [
            f"Reference: the frozen network on its native 48×48 inputs, `{family.oracle}` of "
            f"this canvas, {100 * family.oracle_accuracy:.1f} %. From scratch: "
            + (
                f"`{family.scratch_dir}`."
                if family.scratch_dir is not None
                else f"no scratch folder holds {family.dataset} (looked in {shown}); "
                "its sweep has not been run or its folder was not given (--scratch)."
            ),
            "",
            _markdown(family),
            "",
        ]
        lines += _ranking_lines(family)
    return lines


def _kept_table(runs: pd.DataFrame, reference: pd.Series) -> pd.DataFrame:
    fallback = float(reference.mean())
    kept = runs.assign(
        test_accuracy=[
            float(a) / float(reference.get(s, fallback))
            for a, s in zip(runs["test_accuracy"], runs["seed"], strict=True)
        ]
    )
    table, _ = summary(kept)
    table = table[~table["reducer"].str.endswith(WITHOUT_STALLED)]
    accuracy = aggregate(runs).set_index(GROUP_KEYS)["accuracy_mean"]
    out = pd.DataFrame(
        {
            "reducer": table["reducer"].astype(str),
            "kept_mean": table["accuracy_mean"],
            "kept_ci95": table["accuracy_ci95"],
            "group": table["group"],
            "stalled": table["stalled"],
            "n": table["n"],
            "frozen_accuracy": [
                accuracy.get((d, r, c), math.nan)
                for d, r, c in zip(
                    table["dataset"], table["reducer"], table["classifier"], strict=True
                )
            ],
        }
    ).reset_index(drop=True)
    return out


def _join_scratch(family: KeptFamily, runs: pd.DataFrame | None) -> None:
    table = family.table
    for column in (
        "scratch_mean", "scratch_ci95", "scratch_group", "scratch_stalled", "scratch_vs_oracle",
    ):  # fmt: skip
        table[column] = math.nan if column != "scratch_group" else None
    if runs is not None:
        mine = runs[(runs["dataset"] == family.dataset) & (runs["classifier"] == family.classifier)]
        theirs, _ = summary(mine)
        theirs = theirs[~theirs["reducer"].astype(str).str.endswith(WITHOUT_STALLED)]
        oracle = theirs[theirs["oracle"].fillna(False).astype(bool)]
        oracle_mean = float(oracle["accuracy_mean"].iloc[0]) if not oracle.empty else math.nan
        by_name = theirs.set_index(theirs["reducer"].astype(str))
        for i, reducer in enumerate(table["reducer"]):
            if reducer not in by_name.index:
                continue
            row = by_name.loc[reducer]
            table.loc[i, "scratch_mean"] = row["accuracy_mean"]
            table.loc[i, "scratch_ci95"] = row["accuracy_ci95"]
            table.loc[i, "scratch_group"] = row["group"]
            table.loc[i, "scratch_stalled"] = row["stalled"]
            table.loc[i, "scratch_vs_oracle"] = row["accuracy_mean"] / oracle_mean
    both = table["scratch_mean"].notna()
    family.missing = list(table.loc[~both, "reducer"])
    table["rank_frozen"] = table["kept_mean"].where(both).rank(ascending=False, method="min")
    table["rank_scratch"] = table["scratch_mean"].where(both).rank(ascending=False, method="min")
    table["rank_change"] = table["rank_scratch"] - table["rank_frozen"]
    if both.sum() >= 2:
        tau = scipy_stats.kendalltau(table.loc[both, "kept_mean"], table.loc[both, "scratch_mean"])
        family.tau = float(tau.statistic)
    family.table = table.sort_values(
        ["kept_mean", "reducer"], ascending=[False, True], ignore_index=True
    )


def _markdown(family: KeptFamily) -> str:
    header = [
        "reducer",
        "kept (95 % CI)",
        "group",
        "frozen accuracy",
        "rank",
        "from scratch (95 % CI)",
        "group",
        "÷ oracle",
        "rank",
        "change",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in family.table.itertuples():
        kept = _fraction(r.kept_mean, r.kept_ci95) + stall_mark(r.stalled)
        scratch_missing = pd.isna(r.scratch_mean)
        scratch = (
            "— (not in the scratch sweep)"
            if scratch_missing
            else _percent(r.scratch_mean, r.scratch_ci95) + stall_mark(r.scratch_stalled)
        )
        cells = [
            f"`{markdown_cell(r.reducer)}`",
            kept,
            markdown_cell(str(r.group)),
            f"{100 * r.frozen_accuracy:.1f} %",
            _ordinal(r.rank_frozen),
            scratch,
            "—" if scratch_missing else markdown_cell(str(r.scratch_group)),
            "—" if pd.isna(r.scratch_vs_oracle) else f"{r.scratch_vs_oracle:.3f}",
            _ordinal(r.rank_scratch),
            _change(r.rank_change),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ranking_lines(family: KeptFamily) -> list[str]:
    lines = []
    ranked = int(family.table["rank_frozen"].notna().sum())
    if ranked >= 2:
        moves = family.moves
        text = (
            f"Ranking over the {ranked} reducers both sides have: "
            + (
                "the same order frozen as from scratch"
                if not moves
                else "moves when the network cannot adapt (from scratch → frozen): "
                + "; ".join(moves)
            )
            + (f"; Kendall's τ = {family.tau:.2f}" if not math.isnan(family.tau) else "")
            + "."
        )
        lines.append(text)
    elif family.scratch_dir is not None:
        lines.append("Fewer than two reducers on both sides: no ranking to compare.")
    if family.missing and family.scratch_dir is not None:
        lines.append(
            f"Not in `{family.scratch_dir}` (no scratch row): "
            + ", ".join(f"`{m}`" for m in family.missing)
            + "."
        )
    return [*lines, ""] if lines else []


def _scratch_runs(folder: Path) -> pd.DataFrame:
    if not folder.is_dir():
        return pd.DataFrame(columns=["dataset", "classifier"])
    records, _ = load_records(folder)
    records, _ = merge_duplicates(records)
    return _trained_ok(runs_frame([r for r in records if not is_frozen(r)]))


def _trained_ok(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty or "status" not in runs:
        return runs
    keep = runs["status"] == "ok"
    if "mode" in runs:
        keep &= runs["mode"] != "throughput"
    return runs[keep & pd.to_numeric(runs["test_accuracy"], errors="coerce").notna()]


def _has(runs: pd.DataFrame | None, dataset: object, classifier: object) -> bool:
    if runs is None or runs.empty:
        return False
    return bool(((runs["dataset"] == dataset) & (runs["classifier"] == classifier)).any())


def _fraction(mean: float, half: float) -> str:
    return f"{mean:.3f}" if pd.isna(half) else f"{mean:.3f} ± {half:.3f}"


def _percent(mean: float, half: float) -> str:
    return f"{100 * mean:.1f} %" if pd.isna(half) else f"{100 * mean:.1f} ± {100 * half:.1f} %"


def stall_mark(stalled: object) -> str:
    """The dagger after a cell whose row has runs on the chance plateau (``stalled``: a
    count, or missing), else an empty string."""
    positive = stalled is not None and not pd.isna(stalled) and float(stalled) > 0
    return " †" if positive else ""


def _ordinal(rank: float) -> str:
    if rank is None or pd.isna(rank):
        return "—"
    n = int(rank)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _change(change: float) -> str:
    if change is None or pd.isna(change):
        return "—"
    return "=" if change == 0 else f"{int(change):+d}"
