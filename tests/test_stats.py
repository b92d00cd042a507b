import math

import numpy as np
import pandas as pd
import pytest
from anova_reference import two_way_anova
from report_records import make_record

from stn.report.grouping import holm
from stn.report.stats import (
    NEEDS_COMMON_SEEDS,
    NEEDS_SEEDS,
    NO_SPREAD,
    aggregate,
    compare_families,
    compare_to_baseline,
    group_reducers,
    summarise,
    t_interval_halfwidth,
)
from stn.results.collect import completeness, runs_frame
from stn.results.record import Metrics, ReducerInfo


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
    # Reference: the two-way ANOVA (reducer + seed) by least squares; rows in name order.
    _, _, p = two_way_anova(np.array([worse, baseline, better]))
    assert row["p_value"] == pytest.approx(p[2, 1], rel=1e-8)
    # Holm over the two comparisons with the baseline.
    expected_holm = holm([p[2, 1], p[0, 1]])[0]
    assert row["p_holm"] == pytest.approx(expected_holm, rel=1e-8)
    assert row["p_holm"] < 0.05 and row["vs_baseline"].startswith("better (Holm p")
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
    runs = runs_frame(records)
    row = compare_to_baseline(runs).set_index("reducer").loc["pool_avg"]
    # One seed in common: one of the two must leave the model, and the baseline stays.
    assert row["n_pairs"] == 1 and row["vs_baseline"] == NEEDS_COMMON_SEEDS
    groups = group_reducers(runs).set_index("reducer")["group"]
    assert groups.to_dict() == {"pool_avg": NEEDS_COMMON_SEEDS, "resize_bilinear": "a"}


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
    record.throughput["inference"] = {"images_per_s": 50.0, "note": "text is ignored"}
    record.throughput["reducer"]["ratio_to_floor"] = 0.5
    record.extra["something_new"] = {"x": 1}
    bare = make_record("pool_avg", 0, None, status="failed")
    bare.metrics = Metrics()
    bare.reducer = ReducerInfo()  # a run that failed before its reducer was built
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


def test_holm_can_withdraw_a_raw_verdict():
    # pool_avg gains 1.6 points over the baseline; two other reducers make three
    # comparisons with the baseline, so Holm triples its p.
    baseline = [0.80, 0.82, 0.78, 0.81]
    spec = {
        "resize_bilinear": baseline,
        "pool_avg": [
            b + 0.016 + e for b, e in zip(baseline, [0.01, -0.01, 0.005, -0.005], strict=True)
        ],
        "pool_max": [b + e for b, e in zip(baseline, [0.01, -0.005, -0.01, 0.005], strict=True)],
        "resize_area": [b + e for b, e in zip(baseline, [-0.01, 0.005, 0.005, 0.0], strict=True)],
    }
    rows = _verdicts(spec)
    raw = rows["p_value"].drop("resize_bilinear")
    np.testing.assert_allclose(rows["p_holm"].drop("resize_bilinear"), holm(raw))
    row = rows.loc["pool_avg"]
    assert row["p_value"] < 0.05 <= row["p_holm"]
    assert row["p_holm"] == pytest.approx(3 * row["p_value"])  # the smallest of three
    assert row["vs_baseline"] == (
        f"no significant difference (Holm p={row['p_holm']:.3f}; raw p={row['p_value']:.3f})"
    )


def _clustered_runs(clusters, seeds=5, noise=0.002, rng_seed=0, dataset="digits_96"):
    """clusters: {level: [reducers]}; every reducer = level + seed effect + small noise."""
    rng = np.random.default_rng(rng_seed)
    seed_effect = rng.normal(0, 0.02, size=seeds)
    records = [
        make_record(reducer, s, level + seed_effect[s] + rng.normal(0, noise), dataset=dataset)
        for level, reducers in clusters.items()
        for reducer in reducers
        for s in range(seeds)
    ]
    return runs_frame(records)


def test_three_far_apart_clusters_get_exactly_three_letters():
    clusters = {
        0.9: ["oracle_crop", "stn_blob"],
        0.7: ["pool_avg", "resize_area", "stn_bilinear"],
        0.5: ["resize_bilinear", "pool_max"],
    }
    groups = group_reducers(_clustered_runs(clusters)).set_index("reducer")["group"]
    expected = {r: letter for letter, rs in zip("abc", clusters.values(), strict=True) for r in rs}
    assert groups.to_dict() == expected
    (family,) = compare_families(_clustered_runs(clusters))
    assert family.n_letters == 3 and len(family.separated) == 3
    assert "3 group(s) separated significantly" in family.line()
    assert "7 reducers on seeds 0, 1, 2, 3, 4" in family.line()


def test_identical_reducers_share_a_letter_and_the_table_shows_it():
    runs = _clustered_runs({0.8: ["stn_bilinear"], 0.6: ["resize_bilinear"]})
    copy = runs[runs["reducer"] == "resize_bilinear"].assign(reducer="resize_area")
    table = summarise(pd.concat([runs, copy], ignore_index=True)).set_index("reducer")
    assert table["group"].to_dict() == {
        "stn_bilinear": "a",
        "resize_bilinear": "b",
        "resize_area": "b",
    }
    assert table.loc["resize_area", "vs_baseline"].startswith("no significant difference")
    assert table.loc["resize_area", "p_value"] == pytest.approx(1.0)


def test_an_overlapping_middle_reducer_shares_letters_with_both_sides():
    # Best and worst 6 points apart, the middle 3 from each, residuals ±1.5 points
    # (σ 1.7 points, 6 df): Holm p 0.008 for the ends, 0.10 for each step: a / ab / b.
    base = np.array([0.80, 0.82, 0.78, 0.81])
    k = 0.015
    spec = {
        "stn_blob": base + 0.06 + k * np.array([1, -1, 1, -1]),
        "pool_avg": base + 0.03 + k * np.array([1, 1, -1, -1]),
        "resize_bilinear": base + k * np.array([-1, 1, 1, -1]),
    }
    groups = group_reducers(_runs(spec)).set_index("reducer")["group"]
    assert groups.to_dict() == {"stn_blob": "a", "pool_avg": "ab", "resize_bilinear": "b"}


def test_a_missing_seed_shrinks_the_blocks_and_one_seed_is_left_out():
    runs = _clustered_runs({0.9: ["stn_blob"], 0.7: ["pool_avg"], 0.5: ["resize_bilinear"]})
    keep = ~((runs["reducer"] == "pool_avg") & runs["seed"].isin([3, 4]))
    single = runs_frame([make_record("pca", 0, 0.6)])
    (family,) = compare_families(pd.concat([runs[keep], single], ignore_index=True))
    assert family.seeds == [0, 1, 2] and family.reducers == [
        "stn_blob",
        "pool_avg",
        "resize_bilinear",
    ]
    assert family.fit.df == (3 - 1) * (3 - 1)
    assert family.groups["pca"] == NEEDS_SEEDS and family.left_out == {"pca": NEEDS_SEEDS}
    assert "Left out: pca (needs ≥ 2 seeds)." in family.line()
    verdicts = compare_to_baseline(pd.concat([runs[keep], single])).set_index("reducer")
    assert verdicts.loc["stn_blob", "n_pairs"] == 3 and verdicts.loc["pca", "n_pairs"] == 1


def test_each_family_is_grouped_and_corrected_on_its_own():
    one = _clustered_runs({0.9: ["stn_blob"], 0.5: ["resize_bilinear"]})
    other = _clustered_runs({0.4: ["stn_blob"], 0.8: ["resize_bilinear"]}, dataset="fashion")
    table = summarise(pd.concat([one, other], ignore_index=True))
    cells = {
        (d, r): g
        for d, r, g in zip(table["dataset"], table["reducer"], table["group"], strict=True)
    }
    assert cells == {
        ("digits_96", "stn_blob"): "a",
        ("digits_96", "resize_bilinear"): "b",
        ("fashion", "resize_bilinear"): "a",
        ("fashion", "stn_blob"): "b",
    }
    # Two reducers: one comparison with the baseline, nothing to correct.
    stn = table[table["reducer"] == "stn_blob"]
    np.testing.assert_allclose(stn["p_holm"], stn["p_value"])


def test_no_spread_between_seeds_gives_no_groups():
    runs = _runs({"resize_bilinear": [0.8, 0.9], "pool_avg": [0.85, 0.95]})
    assert set(group_reducers(runs)["group"]) == {NO_SPREAD}
    (family,) = compare_families(runs)
    assert "no spread, t undefined" in family.line()


def test_reducers_without_the_shared_seeds_leave_the_model_one_at_a_time():
    records = [
        make_record(r, s, 0.5 + s / 50 + k / 10) for k, r in enumerate("AB") for s in range(3)
    ]
    records += [make_record("C", s, 0.9) for s in (3, 4)]
    records += [make_record("resize_bilinear", s, 0.4 + s / 40) for s in (3, 4)]
    (family,) = compare_families(runs_frame(records))
    # Dropping C first leaves the baseline alone with no seed in common with A and B;
    # dropping the two latecomers keeps A and B on three seeds.
    assert family.reducers == ["B", "A"] and family.seeds == [0, 1, 2]
    assert family.left_out == {"C": NEEDS_COMMON_SEEDS, "resize_bilinear": NEEDS_COMMON_SEEDS}
    verdicts = compare_to_baseline(runs_frame(records)).set_index("reducer")["vs_baseline"]
    assert verdicts["A"] == "n/a — baseline left out: < 2 seeds in common with the other reducers"
    assert verdicts["C"] == NEEDS_COMMON_SEEDS
