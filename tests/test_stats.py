import math

import pandas as pd
import pytest
from report_records import make_record
from scipy import stats as scipy_stats

from stn.collect import completeness, runs_frame
from stn.stats import NEEDS_SEEDS, aggregate, compare_to_baseline, summarise, t_interval_halfwidth


def _runs(spec):
    """spec: {reducer: [accuracy per seed 0, 1, ...]}"""
    records = [
        make_record(reducer, seed, accuracy, images_per_s=100.0 * (seed + 1))
        for reducer, accuracies in spec.items()
        for seed, accuracy in enumerate(accuracies)
    ]
    return runs_frame(records)


def test_aggregate_matches_a_hand_computed_example():
    table = aggregate(_runs({"pool_avg": [0.80, 0.84, 0.88]}))
    row = table.iloc[0]
    # mean 0.84; std (ddof 1) 0.04; t(0.975, df=2) = 4.302653; half = 4.302653 * 0.04 / √3
    assert row["n"] == 3
    assert row["accuracy_mean"] == pytest.approx(0.84)
    assert row["accuracy_std"] == pytest.approx(0.04)
    assert row["accuracy_ci95"] == pytest.approx(0.0993655, abs=1e-6)
    assert row["accuracy_ci_low"] == pytest.approx(0.84 - 0.0993655, abs=1e-6)
    assert row["tp_reducer_images_per_s"] == 200.0  # median of 100, 200, 300


def test_one_seed_has_no_interval():
    row = aggregate(_runs({"pool_avg": [0.7]})).iloc[0]
    assert row["n"] == 1 and row["accuracy_mean"] == pytest.approx(0.7)
    assert math.isnan(row["accuracy_ci95"]) and math.isnan(row["accuracy_std"])
    assert math.isnan(t_interval_halfwidth([0.5]))


def test_failed_runs_do_not_enter_the_statistics():
    records = [make_record("pool_avg", 0, 0.5), make_record("pool_avg", 1, None, status="failed")]
    row = aggregate(runs_frame(records)).iloc[0]
    assert row["n"] == 1 and row["accuracy_mean"] == pytest.approx(0.5)


def _verdicts(spec):
    table = compare_to_baseline(_runs(spec))
    return table.set_index("reducer")


def test_a_consistent_gain_over_the_baseline_is_significant():
    baseline = [0.80, 0.81, 0.82, 0.83, 0.84]
    better = [0.90, 0.905, 0.93, 0.925, 0.945]
    worse = [b - d for b, d in zip(baseline, [0.05, 0.06, 0.04, 0.05, 0.055], strict=True)]
    verdicts = _verdicts({"resize_bilinear": baseline, "stn_lanczos": better, "pool_max": worse})
    row = verdicts.loc["stn_lanczos"]
    differences = [a - b for a, b in zip(better, baseline, strict=True)]
    assert row["p_value"] == pytest.approx(scipy_stats.ttest_1samp(differences, 0).pvalue)
    assert row["p_value"] < 0.05 and row["vs_baseline"].startswith("better")
    assert row["n_pairs"] == 5 and row["delta_vs_baseline"] == pytest.approx(0.101)
    assert verdicts.loc["pool_max", "vs_baseline"].startswith("worse")
    assert verdicts.loc["resize_bilinear", "vs_baseline"] == "baseline"


def test_noise_around_the_baseline_is_not_significant():
    baseline = [0.80, 0.81, 0.82, 0.83, 0.84]
    noisy = [b + d for b, d in zip(baseline, [0.05, -0.04, 0.03, -0.05, 0.02], strict=True)]
    row = _verdicts({"resize_bilinear": baseline, "pool_avg": noisy}).loc["pool_avg"]
    assert row["p_value"] > 0.05
    assert row["vs_baseline"].startswith("no significant difference")


def test_pairs_are_matched_by_seed_and_need_two():
    records = [
        make_record("resize_bilinear", 0, 0.8),
        make_record("resize_bilinear", 1, 0.8),
        make_record("pool_avg", 1, 0.9),
        make_record("pool_avg", 2, 0.9),  # no baseline for seed 2: not a pair
    ]
    row = compare_to_baseline(runs_frame(records)).set_index("reducer").loc["pool_avg"]
    assert row["n_pairs"] == 1 and row["vs_baseline"] == NEEDS_SEEDS


def test_no_baseline_runs_is_said_not_guessed():
    row = _verdicts({"pool_avg": [0.5, 0.6]}).loc["pool_avg"]
    assert row["vs_baseline"] == "n/a — no baseline runs"


def test_summary_is_sorted_by_accuracy_within_each_dataset():
    records = [make_record(r, 0, a) for r, a in [("a", 0.5), ("b", 0.9), ("c", 0.7)]]
    records.append(make_record("z", 0, 0.99, dataset="other"))
    table = summarise(runs_frame(records))
    assert list(zip(table["dataset"], table["reducer"], strict=True)) == [
        ("digits_96", "b"),
        ("digits_96", "c"),
        ("digits_96", "a"),
        ("other", "z"),
    ]


def test_completeness_lists_the_missing_grid_cells():
    records = [
        make_record("resize_bilinear", 0, 0.8),
        make_record("resize_bilinear", 1, 0.8),
        make_record("pool_avg", 0, 0.8),
        make_record("pool_max", 0, None, status="failed"),
    ]
    grid = completeness(runs_frame(records))
    assert (grid.ok, grid.failed, grid.expected) == (3, 1, 6)
    missing = set(zip(grid.missing["reducer"], grid.missing["seed"], strict=True))
    assert missing == {("pool_avg", 1), ("pool_max", 1)}
    assert not grid.complete and "3 ok, 1 failed of 6 expected runs (2 missing)" == grid.line()


def test_unknown_and_missing_fields_do_not_break_the_frame():
    record = make_record(
        "stn_lanczos_aa",
        0,
        0.9,
        kind="stn",
        reducer_options={"kernel": "lanczos", "antialias": True},
    )
    record["throughput"]["inference"] = {"images_per_s": 50.0, "note": "text is ignored"}
    record["throughput"]["reducer"]["ratio_to_floor"] = 0.5
    record["something_new"] = {"x": 1}
    bare = make_record("pool_avg", 0, None, status="failed")
    bare.pop("metrics")
    bare["reducer"] = {}  # a run that failed before its reducer was built
    runs = runs_frame([record, bare])
    assert list(runs["reducer"]) == ["stn_lanczos_aa", "pool_avg"]
    assert runs.loc[0, "kernel"] == "lanczos" and bool(runs.loc[0, "antialias"])
    table = summarise(runs)
    assert table.loc[0, "tp_inference_images_per_s"] == 50.0
    assert table.loc[0, "tp_reducer_ratio_to_floor"] == 0.5
    assert isinstance(table, pd.DataFrame) and len(table) == 1


def test_differences_without_spread_are_described_not_tested():
    verdicts = _verdicts(
        {"resize_bilinear": [0.8, 0.9], "pool_avg": [0.85, 0.95], "pool_max": [0.8, 0.9]}
    )
    assert verdicts.loc["pool_avg", "vs_baseline"].startswith("better by the same amount")
    assert verdicts.loc["pool_max", "vs_baseline"] == "no difference (identical on every seed)"
    assert math.isnan(verdicts.loc["pool_avg", "p_value"])


def test_a_reducer_paired_with_only_one_classifier_is_not_missing_from_the_other():
    records = [make_record(r, s, 0.5) for r in ("pca", "resize_area") for s in (0, 1)]
    records += [make_record("pca", s, 0.4, classifier="mlp") for s in (0, 1)]
    grid = completeness(runs_frame(records))
    assert grid.expected == 6
    assert grid.missing.to_dict("records") == []
    del records[-1]  # pca + mlp, seed 1
    missing = completeness(runs_frame(records)).missing.to_dict("records")
    assert missing == [{"dataset": "digits_96", "reducer": "pca", "classifier": "mlp", "seed": 1}]
