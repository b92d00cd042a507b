"""Aggregation over seeds, the comparison with the baseline reducer and the grouping.

Input is a runs frame (one row per record: ``stn.results.collect.runs_frame``); output is one
row per (dataset, reducer, classifier) with accuracy statistics over the seeds, the
median of every throughput column ``tp_<figure>_<stat>``, the comparison with the
baseline reducer and a compact-letter-display group.

Comparisons are made within a family: the reducers of one (dataset, classifier). Each
family is fitted as a randomised complete block design (reducers are treatments, seeds
are blocks; ``stn.report.grouping``) on the seeds common to its reducers, and every test uses
that model's pooled residual variance, Holm-corrected over the family.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from stn.measure.plateau import stalled_counts
from stn.report.grouping import (
    BlockFit,
    compact_letter_display,
    fit_block_model,
    holm,
    holm_pairwise,
    largest_separated_set,
    letter_names,
    pairwise_p_values,
)

GROUP_KEYS = ["dataset", "reducer", "classifier"]
FAMILY_KEYS = ["dataset", "classifier"]
BASELINE = "resize_bilinear"
ALPHA = 0.05
CONFIDENCE = 0.95
BLOCK_MODEL = (
    "randomised complete block model (reducers × seeds, runs paired by seed) on the seeds "
    "common to the family's reducers: two-sided t-test of each difference of means on the "
    "pooled residual variance, (R−1)(S−1) degrees of freedom"
)
SIGNIFICANCE_TEST = (
    f"{BLOCK_MODEL}; Holm-corrected over the family's R−1 comparisons with the baseline, "
    f"α = {ALPHA}; verdict on the Holm-adjusted p, raw p also shown"
)
GROUPING_TEST = (
    f"compact letter display: reducers sharing a letter are not significantly different "
    f"(the same block model, Holm-corrected over all R(R−1)/2 pairs of the family, "
    f"α = {ALPHA}); letter a holds the best mean. The letters correct for more comparisons "
    f"than the baseline column, so a reducer can beat the baseline there and still share a "
    f"letter with it: the letters are the stricter reading"
)
NEEDS_SEEDS = "n/a — needs ≥ 2 seeds"
NEEDS_COMMON_SEEDS = "n/a — left out: < 2 seeds in common with the other reducers"
NO_SPREAD = "n/a — same differences on every seed (no spread, t undefined)"
DESCRIBING_COLUMNS = ["reducer_kind", "learned", "reducer_params", "kernel", "antialias"]


def t_interval_halfwidth(values: np.ndarray | list[float], confidence: float = CONFIDENCE) -> float:
    """Half-width of the Student-t confidence interval of the mean; NaN below 2 values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return math.nan
    sem = values.std(ddof=1) / math.sqrt(n)
    return float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1) * sem)


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, reducer, classifier) over the ``ok`` runs.

    Columns: the group keys, the describing columns present (kind, learned, ...),
    ``n``, ``accuracy_mean``, ``accuracy_std`` (ddof 1), ``accuracy_ci95`` (half-width),
    ``accuracy_ci_low``/``_high``, ``test_loss_mean``, ``train_seconds_median`` and the
    median of every ``tp_*`` column.
    ``stalled`` / ``stalled_unknown``: runs that ended on the chance plateau / whose
    verdict is unknown (``stn.measure.plateau``); the accuracy statistics still include them.
    """
    ok = _ok_runs(runs)
    tp_columns = [c for c in runs.columns if c.startswith("tp_")]
    described = [c for c in DESCRIBING_COLUMNS if c in runs.columns]
    columns = [
        *GROUP_KEYS,
        *described,
        "n",
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
        accuracy = group["test_accuracy"].astype(float).to_numpy()
        mean = float(accuracy.mean())
        halfwidth = t_interval_halfwidth(accuracy)
        row = dict(zip(GROUP_KEYS, keys, strict=True))
        for column in described:
            row[column] = group[column].iloc[0]
        row.update(
            n=len(accuracy),
            accuracy_mean=mean,
            accuracy_std=float(accuracy.std(ddof=1)) if len(accuracy) > 1 else math.nan,
            accuracy_ci95=halfwidth,
            accuracy_ci_low=mean - halfwidth,
            accuracy_ci_high=mean + halfwidth,
            test_loss_mean=_mean(group, "test_loss"),
            train_seconds_median=_median(group, "train_seconds"),
        )
        row.update(stalled_counts(group.get("ended_on_plateau", [None] * len(group))))
        for column in tp_columns:
            row[column] = _median(group, column)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Family:
    """The block-model comparison of one (dataset, classifier)'s reducers.

    ``reducers``, ``fit``, ``p_holm`` cover the R reducers in the model (on ``seeds``, S);
    ``left_out`` names the others and why; ``groups`` has a cell for every reducer.
    """

    dataset: object
    classifier: object
    reducers: list[str]  # in the model, best mean (over all its seeds) first
    seeds: list[object]  # the blocks: seeds common to every reducer in the model
    fit: BlockFit | None  # None when no reducer has ≥ 2 seeds
    p_raw: np.ndarray  # (R, R) two-sided p of every pair
    p_holm: np.ndarray  # (R, R) Holm over the R(R−1)/2 pairs
    groups: dict[str, str]  # every reducer of the family → letters or why none
    accuracy: dict[str, pd.Series]  # every reducer of the family → accuracy by seed
    left_out: dict[str, str] = field(default_factory=dict)  # reducer → why not in the model
    separated: list[str] = field(default_factory=list)  # pairwise significantly different

    @property
    def n_letters(self) -> int:
        return len({letter for r in self.reducers for letter in _letters(self.groups[r])})

    def line(self) -> str:
        """One sentence for the report: how many groups the data separate, and how."""
        head = f"**{self.dataset}, {self.classifier}**: "
        left_out = "".join(
            f" Left out: {r} ({why.removeprefix('n/a — ').removeprefix('left out: ')})."
            for r, why in self.left_out.items()
        )
        if self.fit is None or len(self.reducers) < 2:
            return head + "fewer than 2 reducers with ≥ 2 shared seeds: no comparison." + left_out
        seeds = ", ".join(str(s) for s in self.seeds)
        design = f"{len(self.reducers)} reducers on seeds {seeds}"
        if self.fit.no_spread:
            return head + f"{design}; {NO_SPREAD.removeprefix('n/a — ')}." + left_out
        design += f" (residual σ {100 * self.fit.sigma:.1f} points, {self.fit.df} df)"
        letters = self.n_letters
        names = letter_names(letters)
        span = names[0] if letters == 1 else f"{names[0]}–{names[-1]}"
        return (
            head
            + f"{design}: {len(self.separated)} group(s) separated significantly"
            + (f" ({' > '.join(self.separated)})" if len(self.separated) > 1 else "")
            + f"; {letters} letter(s) ({span})."
            + left_out
        )


def compare_families(runs: pd.DataFrame, baseline: str = BASELINE) -> list[Family]:
    """Fit the block model to each (dataset, classifier) family of the ``ok`` runs."""
    ok = _ok_runs(runs)
    return [
        _family(keys, group, baseline)
        for keys, group in ok.groupby(FAMILY_KEYS, dropna=False, sort=True)
    ]


def compare_to_baseline(
    runs: pd.DataFrame, baseline: str = BASELINE, families: list[Family] | None = None
) -> pd.DataFrame:
    """Each reducer against ``baseline`` on the same dataset and classifier, in the
    family's block model (``compare_families``; pass ``families`` to reuse a fit).

    Columns: the group keys, ``n_pairs`` (seeds the comparison rests on),
    ``delta_vs_baseline`` (difference of means over those seeds), ``p_value`` (raw),
    ``p_holm`` (Holm over the family's comparisons with the baseline) and
    ``vs_baseline``, a verdict on the Holm-adjusted p a reader can act on:
    ``better (Holm p=…; raw p=…)``, ``worse (…)``, ``no significant difference (…)``,
    ``baseline``, ``n/a — needs ≥ 2 seeds``, ``n/a — left out: …``,
    ``n/a — no baseline runs``, or, when the differences have no spread (t undefined),
    what they are.
    """
    columns = [*GROUP_KEYS, "n_pairs", "delta_vs_baseline", "p_value", "p_holm", "vs_baseline"]
    families = compare_families(runs, baseline) if families is None else families
    rows = []
    for family in families:
        base = family.accuracy.get(baseline)
        for reducer, values in family.accuracy.items():
            row = {"dataset": family.dataset, "reducer": reducer, "classifier": family.classifier}
            row.update(_verdict(family, reducer, values, base, baseline))
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def group_reducers(
    runs: pd.DataFrame, baseline: str = BASELINE, families: list[Family] | None = None
) -> pd.DataFrame:
    """The compact-letter-display ``group`` of every reducer (``GROUPING_TEST``).

    Columns: the group keys and ``group``: letters (``a`` = the group of the best mean;
    reducers sharing a letter are not significantly different), or why a reducer has
    none (``NEEDS_SEEDS``, ``NEEDS_COMMON_SEEDS``, ``NO_SPREAD``).
    """
    families = compare_families(runs, baseline) if families is None else families
    rows = [
        {"dataset": f.dataset, "reducer": r, "classifier": f.classifier, "group": cell}
        for f in families
        for r, cell in f.groups.items()
    ]
    return pd.DataFrame(rows, columns=[*GROUP_KEYS, "group"])


def summarise(runs: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """``aggregate`` joined with ``compare_to_baseline`` and ``group_reducers``; sorted by
    dataset, classifier, then accuracy (best first)."""
    table = aggregate(runs)
    families = compare_families(runs, baseline)
    verdicts = compare_to_baseline(runs, baseline, families)
    groups = group_reducers(runs, baseline, families)
    table = table.merge(verdicts, on=GROUP_KEYS, how="left").merge(
        groups, on=GROUP_KEYS, how="left"
    )
    return table.sort_values(
        ["dataset", "classifier", "accuracy_mean"],
        ascending=[True, True, False],
        ignore_index=True,
        na_position="last",
    )


def _family(keys: tuple[object, object], runs: pd.DataFrame, baseline: str) -> Family:
    dataset, classifier = keys
    by_seed = _by_reducer(runs)
    members, seeds, left_out = _block_design(by_seed, baseline)
    # Best first by the mean over all of a reducer's seeds: the order of the table's rows.
    members.sort(key=lambda r: (-by_seed[r].mean(), str(r)))
    groups = dict(left_out)
    common = {"dataset": dataset, "classifier": classifier, "accuracy": by_seed}
    if not members:
        empty = np.empty((0, 0))
        return Family(
            **common,
            reducers=[],
            seeds=seeds,
            fit=None,
            p_raw=empty,
            p_holm=empty,
            groups=groups,
            left_out=left_out,
        )
    values = np.array([[by_seed[r].loc[s] for s in seeds] for r in members], dtype=float)
    fit = fit_block_model(values)
    p_raw = pairwise_p_values(fit)
    p_adjusted = holm_pairwise(p_raw)
    different = np.nan_to_num(p_adjusted, nan=1.0) < ALPHA
    if fit.no_spread:
        groups.update({r: NO_SPREAD for r in members})
        separated: list[str] = []
    else:
        letters = compact_letter_display(different)  # members are already best first
        groups.update(dict(zip(members, letters, strict=True)))
        separated = [members[k] for k in largest_separated_set(different)]
    groups = {r: groups[r] for r in sorted(groups, key=lambda r: (-by_seed[r].mean(), str(r)))}
    return Family(
        **common,
        reducers=members,
        seeds=seeds,
        fit=fit,
        p_raw=p_raw,
        p_holm=p_adjusted,
        groups=groups,
        left_out=left_out,
        separated=separated,
    )


def _block_design(
    by_seed: dict[str, pd.Series], baseline: str
) -> tuple[list[str], list[object], dict[str, str]]:
    """Which reducers enter the block model, on which seeds, and why the others do not.

    A reducer with fewer than 2 seeds is left out (``NEEDS_SEEDS``); the rest are fitted
    on the seeds all of them share. When they share fewer than 2, reducers are dropped
    one at a time (``NEEDS_COMMON_SEEDS``), each time the one whose removal leaves the
    most shared seeds — on a tie the baseline last, then the one with fewest seeds.
    """
    left_out = {r: NEEDS_SEEDS for r, values in by_seed.items() if len(values) < 2}
    seed_sets = {r: set(values.index) for r, values in by_seed.items() if len(values) >= 2}

    def shared(reducers: list[str]) -> set[object]:
        return set.intersection(*(seed_sets[r] for r in reducers)) if reducers else set()

    members = sorted(seed_sets, key=str)
    while len(members) > 1 and len(shared(members)) < 2:
        drop = max(
            members,
            key=lambda r: (
                len(shared([m for m in members if m != r])),
                r != baseline,
                -len(seed_sets[r]),
                str(r),
            ),
        )
        left_out[drop] = NEEDS_COMMON_SEEDS
        members.remove(drop)
    return members, sorted(shared(members), key=_seed_key), left_out


def _verdict(
    family: Family, reducer: str, values: pd.Series, base: pd.Series | None, baseline: str
) -> dict[str, object]:
    """The baseline-column entries of one reducer (see ``compare_to_baseline``)."""
    if reducer == baseline:
        return _entry(len(values), 0.0, math.nan, math.nan, "baseline")
    if base is None:
        return _entry(0, math.nan, math.nan, math.nan, "n/a — no baseline runs")
    if reducer not in family.reducers or baseline not in family.reducers:
        seeds = values.index.intersection(base.index)
        delta = float((values.loc[seeds] - base.loc[seeds]).mean()) if len(seeds) else math.nan
        if reducer in family.left_out:
            why = family.left_out[reducer]
        elif family.left_out.get(baseline) == NEEDS_COMMON_SEEDS:
            why = NEEDS_COMMON_SEEDS.replace("left out", "baseline left out")
        else:
            why = NEEDS_SEEDS  # the baseline has a single seed
        return _entry(len(seeds), delta, math.nan, math.nan, why)
    i, b = family.reducers.index(reducer), family.reducers.index(baseline)
    delta = float(family.fit.means[i] - family.fit.means[b])
    n_pairs = len(family.seeds)
    direction = "better" if delta > 0 else "worse"
    if family.fit.no_spread:
        # Every reducer differs from every other by the same amount on every seed: say
        # what the data show instead of a meaningless p.
        identical = math.isclose(delta, 0.0, abs_tol=1e-12)
        verdict = (
            "no difference (identical on every seed)"
            if identical
            else f"{direction} by the same amount on every seed (no spread, no p)"
        )
        return _entry(n_pairs, delta, math.nan, math.nan, verdict)
    others = [k for k in range(len(family.reducers)) if k != b]
    p_raw = family.p_raw[others, b]
    p_adjusted = holm(p_raw)[others.index(i)]
    p_value = float(p_raw[others.index(i)])
    shown = f"(Holm {_format_p(p_adjusted)}; raw {_format_p(p_value)})"
    verdict = f"{direction} {shown}" if p_adjusted < ALPHA else f"no significant difference {shown}"
    return _entry(n_pairs, delta, p_value, float(p_adjusted), verdict)


def _entry(
    n_pairs: int, delta: float, p_value: float, p_holm: float, verdict: str
) -> dict[str, object]:
    return {
        "n_pairs": n_pairs,
        "delta_vs_baseline": delta,
        "p_value": p_value,
        "p_holm": p_holm,
        "vs_baseline": verdict,
    }


def _letters(cell: str) -> list[str]:
    return cell.split(",") if "," in cell else list(cell)


def _seed_key(seed: object) -> tuple[int, object]:
    return (0, seed) if isinstance(seed, numbers.Real) else (1, str(seed))


def _by_reducer(runs: pd.DataFrame) -> dict[str, pd.Series]:
    return {r: _accuracy_by_seed(rows) for r, rows in runs.groupby("reducer", dropna=False)}


def _format_p(p_value: float) -> str:
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"


def _accuracy_by_seed(runs: pd.DataFrame) -> pd.Series:
    """Test accuracy indexed by seed; a seed recorded twice keeps its mean."""
    if runs.empty:
        return pd.Series(dtype=float)
    return runs.groupby("seed")["test_accuracy"].mean().astype(float)


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
