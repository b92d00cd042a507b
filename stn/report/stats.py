"""Aggregation over seeds, the comparison with the baseline, the best set and the letters.

Input is a runs frame (one row per record: ``stn.results.collect.runs_frame``); output is
one row per (dataset, reducer, classifier) with accuracy statistics over its seeds, the
median of every throughput column ``tp_<figure>_<stat>``, the comparison with the family's
baseline, whether it may be the family's best, and a compact-letter-display group.

One sample per seed: a row's seed is one number (the mean of that seed's records, which
``stn.results.duplicates`` has already cut to one per experiment), so a seed recorded
twice never counts twice.

Comparisons are made within a family: the reducers of one (dataset, classifier), paired
by seed, each pair on its own seeds and its own spread, with one weighted Holm
correction over the family (``stn.report.pairwise``). A reducer some of whose runs ended
on the chance plateau gets a second row without those runs (``WITHOUT_STALLED``), tested
like any other row but never against its own runs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from stn.measure.plateau import stalled_counts
from stn.report.grouping import compact_letter_display
from stn.report.pairwise import (
    ALPHA,
    BASELINE_SHARE,
    CONFIDENCE,
    PairedTests,
    adjust,
    best_set,
    paired_tests,
    significant,
)

GROUP_KEYS = ["dataset", "reducer", "classifier"]
FAMILY_KEYS = ["dataset", "classifier"]
# The baseline of a family: the first of these it has (the plainest resizes first), else
# any reducer of kind ``resize``; ``baseline=`` (``stn-bench report --baseline``) puts
# other names in front.
BASELINE_PREFERENCE = (
    "resize_bilinear",
    "resize_bilinear_aa",
    "resize_area",
    "resize_nearest",
    "resize_bicubic",
    "resize_bicubic_aa",
)
BASELINE_KIND = "resize"
WITHOUT_STALLED = " (without stalled runs)"
SIGNIFICANCE_TEST = (
    f"paired t-test of each pair of reducers on the seeds both have and on that pair's own "
    f"spread (n − 1 degrees of freedom), one Holm correction (weighted) over all pairs of "
    f"the family: the comparisons with the baseline share {BASELINE_SHARE:.0%} of "
    f"α = {ALPHA}, the other pairs the rest, so the chance that a family shows any false "
    f"difference stays at α (simulated in docs/reports.md); Δ: mean paired difference in "
    f"points with its {CONFIDENCE:.0%} t interval (per comparison); verdict on the "
    f"adjusted p, raw p also shown"
)
GROUPING_TEST = (
    "compact letter display: reducers sharing a letter are not significantly different "
    "(the same adjusted p as the baseline column); letter a holds the best mean"
)
NEEDS_SEEDS = "n/a — needs ≥ 2 seeds"
NEEDS_COMMON_SEEDS = "n/a — < 2 seeds in common with the other reducers"
NO_SPREAD = "n/a — same differences on every seed (no spread, t undefined)"
NO_BASELINE = "n/a — no resize in this family (choose a baseline: --baseline NAME)"
DESCRIBING_COLUMNS = ["reducer_kind", "learned", "reducer_params", "kernel", "antialias"]
BaselineChoice = str | Sequence[str] | None


def t_interval_halfwidth(values: np.ndarray | list[float], confidence: float = CONFIDENCE) -> float:
    """Half-width of the Student-t confidence interval of the mean; NaN below 2 values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return math.nan
    sem = values.std(ddof=1) / math.sqrt(n)
    return float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1) * sem)


def baseline_preference(baseline: BaselineChoice = None) -> tuple[str, ...]:
    """``BASELINE_PREFERENCE`` with the names in ``baseline`` first."""
    first = (baseline,) if isinstance(baseline, str) else tuple(baseline or ())
    return (*first, *(name for name in BASELINE_PREFERENCE if name not in first))


def choose_baseline(
    reducers: Sequence[str], kinds: dict[str, object], baseline: BaselineChoice = None
) -> str | None:
    """The family's baseline among ``reducers``: the first of ``baseline_preference``
    present, else the first (by name) whose kind is ``resize``, else ``None``."""
    for name in baseline_preference(baseline):
        if name in reducers:
            return name
    resizes = sorted(r for r in reducers if kinds.get(r) == BASELINE_KIND)
    return resizes[0] if resizes else None


def accuracy_by_seed(runs: pd.DataFrame) -> pd.Series:
    """Test accuracy indexed by seed, one value per seed: a seed recorded more than once
    (several configurations under one name) is one sample, their mean."""
    if runs.empty:
        return pd.Series(dtype=float)
    return runs.groupby("seed")["test_accuracy"].mean().astype(float)


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, reducer, classifier) over the ``ok`` runs, and one more per
    reducer some of whose runs stalled (``without_stalled``: those runs left out).

    Columns: the group keys, the describing columns present (kind, learned, ...),
    ``oracle``, ``without_stalled``, ``n`` (seeds), ``runs`` (records: more than ``n``
    where a seed ran several configurations), ``accuracy_mean``, ``accuracy_std``
    (ddof 1), ``accuracy_ci95`` (half-width), ``accuracy_ci_low``/``_high``,
    ``test_loss_mean``, ``train_seconds_median`` and the median of every ``tp_*`` column.
    ``stalled`` / ``stalled_unknown``: runs that ended on the chance plateau / whose
    verdict is unknown (``stn.measure.plateau``); the row's statistics include them.
    """
    ok = _ok_runs(runs)
    tp_columns = [c for c in runs.columns if c.startswith("tp_")]
    described = [c for c in DESCRIBING_COLUMNS if c in runs.columns]
    columns = [
        *GROUP_KEYS,
        *described,
        "oracle",
        "without_stalled",
        "n",
        "runs",
        "accuracy_mean",
        "accuracy_std",
        "accuracy_ci95",
        "accuracy_ci_low",
        "accuracy_ci_high",
        "test_loss_mean",
        "train_seconds_median",
        "stalled",
        "stalled_unknown",
        *tp_columns,
    ]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for keys, group in ok.groupby(GROUP_KEYS, dropna=False, sort=True):
        for variant, members in _row_variants(keys, group):
            row = dict(zip(GROUP_KEYS, variant, strict=True))
            for column in described:
                row[column] = group[column].iloc[0]
            row["oracle"] = (
                bool(group["oracle"].fillna(False).any()) if "oracle" in group else False
            )
            row["without_stalled"] = members is not group
            row.update(_accuracy_statistics(members), runs=len(members))
            row.update(stalled_counts(members.get("ended_on_plateau", [None] * len(members))))
            for column in tp_columns:
                row[column] = _median(group, column)
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _row_variants(
    keys: tuple[object, ...], group: pd.DataFrame
) -> list[tuple[tuple[object, ...], pd.DataFrame]]:
    """The row itself, and, when some but not all of its seeds stalled, the row without
    the stalled runs."""
    variants = [(keys, group)]
    if "ended_on_plateau" in group:
        stalled = group["ended_on_plateau"].eq(True)
        if stalled.any() and not stalled.all():
            dataset, reducer, classifier = keys
            variants.append(((dataset, f"{reducer}{WITHOUT_STALLED}", classifier), group[~stalled]))
    return variants


def _accuracy_statistics(runs: pd.DataFrame) -> dict[str, float]:
    accuracy = accuracy_by_seed(runs).to_numpy()
    mean = float(accuracy.mean())
    halfwidth = t_interval_halfwidth(accuracy)
    return {
        "n": len(accuracy),
        "accuracy_mean": mean,
        "accuracy_std": float(accuracy.std(ddof=1)) if len(accuracy) > 1 else math.nan,
        "accuracy_ci95": halfwidth,
        "accuracy_ci_low": mean - halfwidth,
        "accuracy_ci_high": mean + halfwidth,
        "test_loss_mean": _mean(runs, "test_loss"),
        "train_seconds_median": _median(runs, "train_seconds"),
    }


@dataclass(frozen=True)
class Family:
    """The comparisons within one (dataset, classifier).

    ``rows`` are the table's rows of the family, best mean first (a row without its
    stalled runs right after its own); the arrays are indexed like ``rows``.
    """

    dataset: object
    classifier: object
    rows: list[str]
    accuracy: dict[str, pd.Series]  # row → accuracy by seed
    baseline: str | None
    oracles: list[str]  # rows that see the ground truth
    variants: dict[str, str]  # row without stalled runs → its own row
    tests: PairedTests  # (R, R)
    adjusted: np.ndarray  # (R, R) weighted-Holm p of every pair
    groups: dict[str, str] = field(default_factory=dict)  # row → letters or why none
    contenders: list[str] = field(default_factory=list)  # rows that may be picked
    best: str | None = None  # the contender with the best mean
    best_set: list[str] = field(default_factory=list)  # contenders no contender beats

    def index(self, row: str) -> int:
        return self.rows.index(row)

    @property
    def oracle(self) -> str | None:
        """The oracle with the best mean, if the family has one."""
        return self.oracles[0] if self.oracles else None

    def beaten_by(self, row: str) -> tuple[str, float] | None:
        """The contender that beats ``row`` significantly with the smallest adjusted p,
        and that p; ``None`` when none does."""
        i = self.index(row)
        beating = [
            (float(self.adjusted[j, i]), name)
            for j, name in enumerate(self.rows)
            if name in self.contenders and significant(self.adjusted[j, i]) and self._above(j, i)
        ]
        return (min(beating)[1], min(beating)[0]) if beating else None

    def _above(self, j: int, i: int) -> bool:
        return bool(np.nan_to_num(self.tests.mean[j, i]) > 0)


def compare_families(runs: pd.DataFrame, baseline: BaselineChoice = None) -> list[Family]:
    """The comparisons of each (dataset, classifier) family of the ``ok`` runs."""
    ok = _ok_runs(runs)
    return [
        _family(keys, group, baseline)
        for keys, group in ok.groupby(FAMILY_KEYS, dropna=False, sort=True)
    ]


def _family(keys: tuple[object, object], runs: pd.DataFrame, baseline: BaselineChoice) -> Family:
    dataset, classifier = keys
    accuracy: dict[str, pd.Series] = {}
    variants: dict[str, str] = {}
    for reducer, group in runs.groupby("reducer", dropna=False):
        for (_, name, _), members in _row_variants((dataset, reducer, classifier), group):
            accuracy[name] = accuracy_by_seed(members)
            if members is not group:
                variants[name] = reducer
    means = {r: float(v.mean()) for r, v in accuracy.items()}
    own = {r: variants.get(r, r) for r in accuracy}
    # Best first by the mean of the row's own runs; a row without stalled runs follows it.
    rows = sorted(accuracy, key=lambda r: (-means[own[r]], str(own[r]), r in variants))
    by_reducer = runs.groupby("reducer", dropna=False)
    oracle_flags = (
        by_reducer["oracle"].agg(lambda v: bool(v.fillna(False).any())).to_dict()
        if "oracle" in runs
        else {}
    )
    kinds = by_reducer["reducer_kind"].first().to_dict() if "reducer_kind" in runs else {}
    plain = [r for r in rows if r not in variants and not oracle_flags.get(r, False)]
    chosen = choose_baseline(plain, kinds, baseline)
    seeds = sorted({s for v in accuracy.values() for s in v.index}, key=_seed_key)
    values = np.array([[accuracy[r].get(s, np.nan) for s in seeds] for r in rows], dtype=float)
    untested = np.zeros((len(rows), len(rows)), dtype=bool)
    for variant, parent in variants.items():
        i, j = rows.index(variant), rows.index(parent)
        untested[i, j] = untested[j, i] = True
    tests = paired_tests(values, untested)
    b = rows.index(chosen) if chosen is not None else None
    adjusted = adjust(tests, b)
    contenders = [r for r in plain if len(accuracy[r]) >= 2]  # in the order of rows
    best = contenders[0] if contenders else None  # rows are best first
    kept = best_set(tests, adjusted, [r in contenders for r in rows])
    return Family(
        dataset=dataset,
        classifier=classifier,
        rows=rows,
        accuracy=accuracy,
        baseline=chosen,
        oracles=[r for r in rows if oracle_flags.get(r, False) and r not in variants],
        variants=variants,
        tests=tests,
        adjusted=adjusted,
        groups=_groups(rows, accuracy, tests, adjusted),
        contenders=contenders,
        best=best,
        best_set=[r for r, keep in zip(rows, kept, strict=True) if keep],
    )


def _groups(
    rows: list[str], accuracy: dict[str, pd.Series], tests: PairedTests, adjusted: np.ndarray
) -> dict[str, str]:
    """Letters for the rows with ≥ 2 seeds, or why a row has none: fewer seeds, no other
    row it shares 2 seeds with, or no pair with any spread to test."""
    candidates = [i for i, row in enumerate(rows) if len(accuracy[row]) >= 2]
    groups = {rows[i]: NEEDS_SEEDS for i in range(len(rows)) if i not in candidates}
    lettered = [
        i
        for i in candidates
        if len(candidates) == 1 or any(tests.n[i, j] >= 2 for j in candidates if j != i)
    ]
    groups.update({rows[i]: NEEDS_COMMON_SEEDS for i in candidates if i not in lettered})
    if lettered:
        sub = np.ix_(lettered, lettered)
        paired = (tests.n[sub] >= 2) & ~np.eye(len(lettered), dtype=bool)
        if paired.any() and tests.no_spread[sub][paired].all():
            groups.update({rows[i]: NO_SPREAD for i in lettered})
        else:
            letters = compact_letter_display(significant(adjusted[sub]))
            groups.update({rows[i]: cell for i, cell in zip(lettered, letters, strict=True)})
    return {r: groups[r] for r in rows}


def compare_to_baseline(
    runs: pd.DataFrame, baseline: BaselineChoice = None, families: list[Family] | None = None
) -> pd.DataFrame:
    """Each row against its family's baseline (``choose_baseline``).

    Columns: the group keys, ``baseline`` (its name), ``n_pairs`` (seeds the comparison
    rests on), ``delta_vs_baseline`` (mean paired difference over those seeds) and its
    interval ``delta_ci_low``/``_high``, ``p_value`` (raw), ``p_holm`` (adjusted over the
    family) and ``vs_baseline``, a verdict on the adjusted p a reader can act on:
    ``better (Holm p=…; raw p=…)``, ``worse (…)``, ``no significant difference (…)``,
    ``baseline``, or why there is none (``NEEDS_SEEDS``, ``NO_BASELINE``, no spread, ...).
    """
    columns = [
        *GROUP_KEYS,
        "baseline",
        "n_pairs",
        "delta_vs_baseline",
        "delta_ci_low",
        "delta_ci_high",
        "p_value",
        "p_holm",
        "vs_baseline",
    ]
    families = compare_families(runs, baseline) if families is None else families
    rows = []
    for family in families:
        for row in family.rows:
            entry = {"dataset": family.dataset, "reducer": row, "classifier": family.classifier}
            entry.update(baseline=family.baseline, **_verdict(family, row))
            rows.append(entry)
    return pd.DataFrame(rows, columns=columns)


def compare_to_best(families: list[Family]) -> pd.DataFrame:
    """Whether each row may be its family's best: ``vs_best`` reads ``best``, ``may be
    the best (not significantly worse)``, ``worse than <contender> (Holm p=…)``, or why
    it is not judged (an oracle, a row without stalled runs, fewer than 2 seeds)."""
    rows = []
    for family in families:
        for row in family.rows:
            if row == family.best:
                cell = "best"
            elif row in family.best_set:
                cell = "may be the best (not significantly worse)"
            elif row in family.oracles:
                cell = "oracle: not a contender"
            elif row in family.variants:
                cell = "not a contender (its stalled runs left out)"
            elif row not in family.contenders:
                cell = NEEDS_SEEDS
            else:
                winner, p = family.beaten_by(row) or ("?", math.nan)
                cell = f"worse than {winner} (Holm {_format_p(p)})"
            rows.append(
                {"dataset": family.dataset, "reducer": row, "classifier": family.classifier}
                | {"vs_best": cell}
            )
    return pd.DataFrame(rows, columns=[*GROUP_KEYS, "vs_best"])


def group_reducers(
    runs: pd.DataFrame, baseline: BaselineChoice = None, families: list[Family] | None = None
) -> pd.DataFrame:
    """The compact-letter-display ``group`` of every row (``GROUPING_TEST``): letters
    (``a`` = the group of the best mean; rows sharing a letter are not significantly
    different), or why a row has none (``NEEDS_SEEDS``, ``NEEDS_COMMON_SEEDS``,
    ``NO_SPREAD``)."""
    families = compare_families(runs, baseline) if families is None else families
    rows = [
        {"dataset": f.dataset, "reducer": r, "classifier": f.classifier, "group": cell}
        for f in families
        for r, cell in f.groups.items()
    ]
    return pd.DataFrame(rows, columns=[*GROUP_KEYS, "group"])


def summarise(runs: pd.DataFrame, baseline: BaselineChoice = None) -> pd.DataFrame:
    """The summary table of ``summary``."""
    return summary(runs, baseline)[0]


def summary(
    runs: pd.DataFrame, baseline: BaselineChoice = None
) -> tuple[pd.DataFrame, list[Family]]:
    """``aggregate`` joined with the comparisons (baseline, best, letters), and the
    families; rows sorted by dataset, classifier, then accuracy (best first), a row
    without its stalled runs right after its own."""
    table = aggregate(runs)
    families = compare_families(runs, baseline)
    for extra in (
        compare_to_baseline(runs, baseline, families),
        compare_to_best(families),
        group_reducers(runs, baseline, families),
    ):
        table = table.merge(extra, on=GROUP_KEYS, how="left")
    order = {(f.dataset, f.classifier, r): k for f in families for k, r in enumerate(f.rows)}
    rank = [
        order.get((d, c, r), len(order))
        for d, r, c in zip(table["dataset"], table["reducer"], table["classifier"], strict=True)
    ]
    table = table.assign(_rank=rank).sort_values(
        ["dataset", "classifier", "_rank"], ignore_index=True, na_position="last"
    )
    return table.drop(columns="_rank"), families


def _verdict(family: Family, row: str) -> dict[str, object]:
    """The baseline-column entries of one row (see ``compare_to_baseline``)."""
    base = family.baseline
    if row == base:
        return _entry(
            len(family.accuracy[row]), 0.0, (math.nan, math.nan), math.nan, math.nan, "baseline"
        )
    if base is None:
        return _entry(0, math.nan, (math.nan, math.nan), math.nan, math.nan, NO_BASELINE)
    i, b = family.index(row), family.index(base)
    tests = family.tests
    n = int(tests.n[i, b])
    delta = float(tests.mean[i, b]) if n else math.nan
    interval = (float(tests.ci_low[i, b]), float(tests.ci_high[i, b]))
    p_raw, p_adjusted = float(tests.p[i, b]), float(family.adjusted[i, b])
    direction = "better" if delta > 0 else "worse"
    if len(family.accuracy[row]) < 2 or len(family.accuracy[base]) < 2:
        verdict = NEEDS_SEEDS if len(family.accuracy[row]) < 2 else f"{NEEDS_SEEDS} (baseline)"
    elif n < 2:
        verdict = "n/a — < 2 seeds in common with the baseline"
    elif bool(tests.no_spread[i, b]):
        # The same difference on every seed: say what the data show instead of a p.
        verdict = (
            "no difference (identical on every seed)"
            if math.isclose(delta, 0.0, abs_tol=1e-12)
            else f"{direction} by the same amount on every seed (no spread, no p)"
        )
    elif math.isnan(p_raw):
        verdict = "n/a — the baseline's own runs"
    else:
        shown = f"(Holm {_format_p(p_adjusted)}; raw {_format_p(p_raw)})"
        verdict = (
            f"{direction} {shown}"
            if significant(p_adjusted)
            else f"no significant difference {shown}"
        )
    return _entry(n, delta, interval, p_raw, p_adjusted, verdict)


def _entry(
    n_pairs: int,
    delta: float,
    interval: tuple[float, float],
    p_value: float,
    p_holm: float,
    verdict: str,
) -> dict[str, object]:
    return {
        "n_pairs": n_pairs,
        "delta_vs_baseline": delta,
        "delta_ci_low": interval[0],
        "delta_ci_high": interval[1],
        "p_value": p_value,
        "p_holm": p_holm,
        "vs_baseline": verdict,
    }


def _seed_key(seed: object) -> tuple[int, object]:
    return (0, seed) if isinstance(seed, numbers.Real) else (1, str(seed))


def _format_p(p_value: float) -> str:
    if math.isnan(p_value):
        return "p=n/a"
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"


def _ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty or "status" not in runs or "test_accuracy" not in runs:
        return runs.iloc[0:0]
    accuracy = pd.to_numeric(runs["test_accuracy"], errors="coerce")
    return runs[(runs["status"] == "ok") & accuracy.notna()].assign(test_accuracy=accuracy)


def _mean(group: pd.DataFrame, column: str) -> float:
    if column not in group:
        return math.nan
    return float(pd.to_numeric(group[column], errors="coerce").mean())


def _median(group: pd.DataFrame, column: str) -> float:
    if column not in group:
        return math.nan
    return float(pd.to_numeric(group[column], errors="coerce").median())
