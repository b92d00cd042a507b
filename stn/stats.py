"""Aggregation over seeds and the significance test against the baseline reducer.

Input is a runs frame (one row per record: ``stn.collect.runs_frame``); output is one
row per (dataset, reducer, classifier) with accuracy statistics over the seeds, the
median of every throughput column ``tp_<figure>_<stat>`` and the comparison with the
baseline reducer, paired by seed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from stn.plateau import stalled_counts

GROUP_KEYS = ["dataset", "reducer", "classifier"]
BASELINE = "resize_bilinear"
ALPHA = 0.05
CONFIDENCE = 0.95
SIGNIFICANCE_TEST = (
    f"two-sided paired t-test (scipy.stats.ttest_rel) on test accuracy, paired by seed, "
    f"α = {ALPHA}, not corrected for multiple comparisons"
)
NEEDS_SEEDS = "n/a — needs ≥ 2 seeds"
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
    verdict is unknown (``stn.plateau``); the accuracy statistics still include them.
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


def compare_to_baseline(runs: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Each reducer against ``baseline`` on the same dataset and classifier, paired by seed.

    Columns: the group keys, ``n_pairs``, ``delta_vs_baseline`` (mean paired accuracy
    difference), ``p_value`` and ``vs_baseline``, a verdict a reader can act on:
    ``better (p=…)``, ``worse (p=…)``, ``no significant difference (p=…)``,
    ``baseline``, ``n/a — needs ≥ 2 seeds``, ``n/a — no baseline runs``, or, when the
    paired differences have no spread (t undefined), what they are.
    """
    columns = [*GROUP_KEYS, "n_pairs", "delta_vs_baseline", "p_value", "vs_baseline"]
    ok = _ok_runs(runs)
    rows = []
    for (dataset, classifier), group in ok.groupby(["dataset", "classifier"], dropna=False):
        base = _accuracy_by_seed(group[group["reducer"] == baseline])
        for reducer, runs_of_reducer in group.groupby("reducer", dropna=False):
            row = {"dataset": dataset, "reducer": reducer, "classifier": classifier}
            row.update(_paired_verdict(_accuracy_by_seed(runs_of_reducer), base, reducer, baseline))
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def summarise(runs: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """``aggregate`` joined with ``compare_to_baseline``; sorted by dataset, classifier,
    then accuracy (best first)."""
    table = aggregate(runs)
    verdicts = compare_to_baseline(runs, baseline)
    table = table.merge(verdicts, on=GROUP_KEYS, how="left")
    return table.sort_values(
        ["dataset", "classifier", "accuracy_mean"],
        ascending=[True, True, False],
        ignore_index=True,
        na_position="last",
    )


def _paired_verdict(
    values: pd.Series, base: pd.Series, reducer: str, baseline: str
) -> dict[str, object]:
    if reducer == baseline:
        return {
            "n_pairs": len(values),
            "delta_vs_baseline": 0.0,
            "p_value": math.nan,
            "vs_baseline": "baseline",
        }
    if base.empty:
        return {
            "n_pairs": 0,
            "delta_vs_baseline": math.nan,
            "p_value": math.nan,
            "vs_baseline": "n/a — no baseline runs",
        }
    seeds = values.index.intersection(base.index)
    a, b = values.loc[seeds].to_numpy(float), base.loc[seeds].to_numpy(float)
    delta = float((a - b).mean()) if len(seeds) else math.nan
    if len(seeds) < 2:
        return {
            "n_pairs": len(seeds),
            "delta_vs_baseline": delta,
            "p_value": math.nan,
            "vs_baseline": NEEDS_SEEDS,
        }
    differences = a - b
    direction = "better" if delta > 0 else "worse"
    if np.allclose(differences, differences[0]):
        # No spread in the differences: the t statistic is undefined; say what the data
        # show instead of a meaningless p.
        verdict = (
            "no difference (identical on every seed)"
            if differences[0] == 0
            else f"{direction} by the same amount on every seed (no spread, no p)"
        )
        return {
            "n_pairs": len(seeds),
            "delta_vs_baseline": delta,
            "p_value": math.nan,
            "vs_baseline": verdict,
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(scipy_stats.ttest_rel(a, b).pvalue)
    if p_value < ALPHA:
        verdict = f"{direction} ({_format_p(p_value)})"
    else:
        verdict = f"no significant difference ({_format_p(p_value)})"
    return {
        "n_pairs": len(seeds),
        "delta_vs_baseline": delta,
        "p_value": p_value,
        "vs_baseline": verdict,
    }


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
