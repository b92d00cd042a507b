import math

import numpy as np
import pandas as pd
import pytest
from report_records import make_record
from scipy import stats as scipy_stats

from stn.report.grouping import holm
from stn.report.pairwise import BASELINE_SHARE
from stn.report.stats import (
    NEEDS_COMMON_SEEDS,
    NEEDS_SEEDS,
    NO_BASELINE,
    NO_SPREAD,
    WITHOUT_STALLED,
    aggregate,
    choose_baseline,
    compare_families,
    compare_to_baseline,
    group_reducers,
    summarise,
    summary,
    t_interval_halfwidth,
)
from stn.results.collect import completeness, runs_frame
from stn.results.record import Metrics, ReducerInfo


def _runs(spec, **options):
    """spec: {reducer: [accuracy per seed 0, 1, ...]} (None: no run on that seed)"""
    records = [
        make_record(reducer, seed, accuracy, images_per_s=100.0 * (seed + 1), **options)
        for reducer, accuracies in spec.items()
        for seed, accuracy in enumerate(accuracies)
        if accuracy is not None
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


def test_a_seed_recorded_twice_is_one_sample():
    # Two configurations under one name on seed 1 (an option added since): one sample,
    # their mean; before, n read 3 and the interval narrowed.
    records = [make_record("pool_avg", s, a) for s, a in [(0, 0.80), (1, 0.84), (1, 0.86)]]
    records[-1].config["reducer"]["new_option"] = 1
    row = aggregate(runs_frame(records)).iloc[0]
    assert row["n"] == 2 and row["runs"] == 3  # stalled counts read k of the 3 runs
    assert row["accuracy_mean"] == pytest.approx((0.80 + 0.85) / 2)


def _verdicts(spec, **options):
    return compare_to_baseline(_runs(spec, **options)).set_index("reducer")


def test_each_pair_is_a_paired_t_test_on_its_own_differences():
    baseline = [0.80, 0.81, 0.82, 0.83, 0.84]
    better = [0.90, 0.905, 0.93, 0.925, 0.945]
    worse = [b - d for b, d in zip(baseline, [0.05, 0.06, 0.04, 0.05, 0.055], strict=True)]
    spec = {"resize_bilinear": baseline, "stn_lanczos": better, "pool_max": worse}
    verdicts = _verdicts(spec)
    row = verdicts.loc["stn_lanczos"]
    reference = scipy_stats.ttest_rel(better, baseline)
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    interval = reference.confidence_interval(0.95)
    assert (row["delta_ci_low"], row["delta_ci_high"]) == pytest.approx(
        (interval.low, interval.high), rel=1e-9
    )
    # One weighted Holm over the three pairs: the two comparisons with the baseline share
    # BASELINE_SHARE of α, the third pair (stn_lanczos vs pool_max) the rest.
    p = [
        reference.pvalue,
        scipy_stats.ttest_rel(worse, baseline).pvalue,
        scipy_stats.ttest_rel(better, worse).pvalue,
    ]
    weights = [BASELINE_SHARE / 2, BASELINE_SHARE / 2, 1 - BASELINE_SHARE]
    assert row["p_holm"] == pytest.approx(holm(p, weights)[0], rel=1e-9)
    assert row["p_holm"] < 0.05 and row["vs_baseline"].startswith("better (Holm p")
    assert row["n_pairs"] == 5 and row["delta_vs_baseline"] == pytest.approx(0.101)
    assert verdicts.loc["pool_max", "vs_baseline"].startswith("worse")
    assert verdicts.loc["resize_bilinear", "vs_baseline"] == "baseline"
    assert set(verdicts["baseline"]) == {"resize_bilinear"}


def test_noise_around_the_baseline_is_not_significant():
    baseline = [0.80, 0.81, 0.82, 0.83, 0.84]
    noisy = [b + d for b, d in zip(baseline, [0.05, -0.04, 0.03, -0.05, 0.02], strict=True)]
    row = _verdicts({"resize_bilinear": baseline, "pool_avg": noisy}).loc["pool_avg"]
    assert row["p_value"] > 0.05
    assert row["vs_baseline"].startswith("no significant difference")


# The issue this design answers: digits_276 of results/stn_goal, per seed. ats_sampling
# stalled on two seeds (10 %); its spread made the pooled σ 20 points and put the oracle
# and the resize in one group.
STN_GOAL_DIGITS_276 = {
    "oracle_crop": [0.984, 0.985, 0.986],
    "stn_candidates": [0.957, 0.949, 0.958],
    "ats_topk": [0.957, 0.893, 0.873],
    "stn_blob": [0.881, 0.869, 0.881],
    "resize_bilinear_aa": [0.605, 0.674, 0.653],
    "ats_sampling": [0.955, 0.100, 0.102],
}


def test_a_reducer_that_stalls_hides_no_separation_of_the_others():
    records = [
        make_record(r, s, a, stalled=r == "ats_sampling" and a < 0.2)
        for r, accuracies in STN_GOAL_DIGITS_276.items()
        for s, a in enumerate(accuracies)
    ]
    records[0].reducer.oracle = records[1].reducer.oracle = records[2].reducer.oracle = True
    table = summarise(runs_frame(records)).set_index("reducer")
    assert set(table["baseline"]) == {"resize_bilinear_aa"}
    for better in ("oracle_crop", "stn_candidates", "stn_blob"):
        assert table.loc[better, "vs_baseline"].startswith("better (Holm p"), better
    assert table.loc["ats_topk", "vs_baseline"].startswith("no significant difference")
    assert table.loc["stn_candidates", "vs_best"] == "best"  # the oracle is no contender
    assert table.loc["oracle_crop", "vs_best"] == "oracle: not a contender"
    assert table.loc["stn_blob", "vs_best"].startswith("worse than stn_candidates (Holm p=")
    # The stalled seeds widen only ats_sampling's own comparisons: every other pair has
    # the same p with and without it.
    both = [r for r in STN_GOAL_DIGITS_276 if r not in ("ats_sampling", "resize_bilinear_aa")]
    families = {
        name: compare_families(runs_frame(rs))[0]
        for name, rs in [
            ("with", records),
            ("without", [r for r in records if r.reducer.name != "ats_sampling"]),
        ]
    }
    for a in both:
        for b in both:
            if a < b:
                i, j = (families["with"].index(x) for x in (a, b))
                k, m = (families["without"].index(x) for x in (a, b))
                assert families["with"].tests.p[i, j] == families["without"].tests.p[k, m]
    assert table.loc["ats_sampling", "stalled"] == 2


def test_a_row_without_its_stalled_runs_follows_it_and_is_never_tested_against_it():
    spec = {"resize_bilinear": [0.80, 0.82, 0.81, 0.83], "stn_blob": [0.95, 0.10, 0.96, 0.97]}
    records = [
        make_record(r, s, a, stalled=a < 0.2)
        for r, accuracies in spec.items()
        for s, a in enumerate(accuracies)
    ]
    table, (family,) = summary(runs_frame(records))
    variant = f"stn_blob{WITHOUT_STALLED}"
    assert list(table["reducer"]) == ["resize_bilinear", "stn_blob", variant]
    row = table.set_index("reducer").loc[variant]
    assert row["n"] == 3 and row["accuracy_mean"] == pytest.approx(0.96)
    assert bool(row["without_stalled"]) and row["stalled"] == 0
    assert row["n_pairs"] == 3 and row["vs_baseline"].startswith("better")
    i, j = family.index("stn_blob"), family.index(variant)
    assert np.isnan(family.tests.p[i, j])  # a subset of its own runs: no test
    assert family.variants == {variant: "stn_blob"}
    assert table.set_index("reducer").loc[variant, "vs_best"].startswith("not a contender")


def test_the_baseline_is_the_plainest_resize_present():
    kinds = {"resize_bicubic": "resize", "pool_avg": "pool", "stn_blob": "stn"}
    assert choose_baseline(["stn_blob", "resize_bilinear_aa", "resize_area"], {}) == (
        "resize_bilinear_aa"
    )
    assert choose_baseline(["stn_blob", "resize_bicubic", "pool_avg"], kinds) == "resize_bicubic"
    assert choose_baseline(["stn_blob", "my_resize"], {"my_resize": "resize"}) == "my_resize"
    assert choose_baseline(["stn_blob", "pool_avg"], kinds) is None
    assert choose_baseline(["resize_bilinear", "pool_avg"], kinds, baseline="pool_avg") == (
        "pool_avg"
    )
    # stn_goal's resize is the anti-aliased one: before, every cell read "no baseline runs".
    verdicts = _verdicts({"resize_bilinear_aa": [0.6, 0.7], "stn_blob": [0.9, 0.95]})
    assert verdicts.loc["resize_bilinear_aa", "vs_baseline"] == "baseline"


def test_no_resize_is_said_not_guessed():
    row = _verdicts({"pool_avg": [0.5, 0.6], "stn_blob": [0.7, 0.9]}, kind="pool").loc["pool_avg"]
    assert row["vs_baseline"] == NO_BASELINE


def test_pairs_are_matched_by_seed_and_need_two():
    records = [
        make_record("resize_bilinear", 0, 0.8),
        make_record("resize_bilinear", 1, 0.8),
        make_record("pool_avg", 1, 0.9),
        make_record("pool_avg", 2, 0.9),  # no baseline for seed 2: not a pair
    ]
    runs = runs_frame(records)
    row = compare_to_baseline(runs).set_index("reducer").loc["pool_avg"]
    assert (
        row["n_pairs"] == 1 and row["vs_baseline"] == "n/a — < 2 seeds in common with the baseline"
    )
    groups = group_reducers(runs).set_index("reducer")["group"]
    assert groups.to_dict() == {
        "pool_avg": NEEDS_COMMON_SEEDS,
        "resize_bilinear": NEEDS_COMMON_SEEDS,
    }


def test_a_missing_seed_costs_only_the_pairs_of_its_reducer():
    runs = _clustered_runs({0.9: ["stn_blob"], 0.7: ["pool_avg"], 0.5: ["resize_bilinear"]})
    keep = ~((runs["reducer"] == "pool_avg") & runs["seed"].isin([3, 4]))
    single = runs_frame([make_record("pca", 0, 0.6)])
    verdicts = compare_to_baseline(pd.concat([runs[keep], single])).set_index("reducer")
    assert verdicts.loc["stn_blob", "n_pairs"] == 5 and verdicts.loc["pool_avg", "n_pairs"] == 3
    assert verdicts.loc["pca", "n_pairs"] == 1 and verdicts.loc["pca", "vs_baseline"] == NEEDS_SEEDS
    groups = group_reducers(pd.concat([runs[keep], single])).set_index("reducer")["group"]
    assert groups["pca"] == NEEDS_SEEDS and groups["stn_blob"] == "a"


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
    # t's limit: a difference on every seed rejects at any level, none never does.
    assert verdicts.loc["pool_avg", "p_value"] == 0.0
    assert verdicts.loc["pool_max", "p_value"] == 1.0


def test_a_reducer_paired_with_only_one_classifier_is_not_missing_from_the_other():
    records = [make_record(r, s, 0.5) for r in ("pca", "resize_area") for s in (0, 1)]
    records += [make_record("pca", s, 0.4, classifier="mlp") for s in (0, 1)]
    grid = completeness(runs_frame(records))
    assert grid.expected == 6
    assert grid.missing.to_dict("records") == []
    del records[-1]  # pca + mlp, seed 1
    missing = completeness(runs_frame(records)).missing.to_dict("records")
    assert missing == [{"dataset": "digits_96", "reducer": "pca", "classifier": "mlp", "seed": 1}]


def test_the_correction_can_withdraw_a_raw_verdict():
    # pool_avg gains 1.6 points over the baseline; two other reducers make three
    # comparisons with the baseline and three more pairs: the correction over the six
    # withdraws what its raw p alone would claim.
    baseline = [0.80, 0.82, 0.78, 0.81]
    spec = {
        "resize_bilinear": baseline,
        "pool_avg": [
            b + 0.016 + e for b, e in zip(baseline, [0.01, -0.01, 0.005, -0.005], strict=True)
        ],
        "pool_max": [b + e for b, e in zip(baseline, [0.01, -0.005, -0.01, 0.005], strict=True)],
        "resize_area": [b + e for b, e in zip(baseline, [-0.01, 0.005, 0.005, 0.0], strict=True)],
    }
    row = _verdicts(spec).loc["pool_avg"]
    assert row["p_value"] < 0.05 <= row["p_holm"]
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


def test_identical_reducers_share_a_letter_and_the_table_shows_it():
    runs = _clustered_runs({0.8: ["stn_bilinear"], 0.6: ["resize_bilinear"]})
    copy = runs[runs["reducer"] == "resize_bilinear"].assign(reducer="resize_area")
    table = summarise(pd.concat([runs, copy], ignore_index=True)).set_index("reducer")
    assert table["group"].to_dict() == {
        "stn_bilinear": "a",
        "resize_bilinear": "b",
        "resize_area": "b",
    }
    assert table.loc["resize_area", "vs_baseline"] == "no difference (identical on every seed)"


def test_an_overlapping_middle_reducer_shares_letters_with_both_sides():
    # Ends 6 points apart, the middle 3 from each, ±1.5 points per seed: the ends'
    # differences give p 0.016, each step 0.09; with the baseline's pairs holding 80 % of
    # α, the ends separate and the steps do not: a / ab / b.
    base = np.array([0.80, 0.82, 0.78, 0.81])
    k = 0.015
    spec = {
        "stn_blob": base + 0.06 + k * np.array([1, -1, 1, -1]),
        "pool_avg": base + 0.03 + k * np.array([1, 1, -1, -1]),
        "resize_bilinear": base + k * np.array([-1, 1, 1, -1]),
    }
    groups = group_reducers(_runs(spec)).set_index("reducer")["group"]
    assert groups.to_dict() == {"stn_blob": "a", "pool_avg": "ab", "resize_bilinear": "b"}


def test_each_family_is_corrected_on_its_own():
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
    # Two reducers: one comparison, nothing to correct.
    stn = table[table["reducer"] == "stn_blob"]
    np.testing.assert_allclose(stn["p_holm"], stn["p_value"])


def test_no_spread_between_seeds_gives_no_groups():
    runs = _runs({"resize_bilinear": [0.8, 0.9], "pool_avg": [0.85, 0.95]})
    assert set(group_reducers(runs)["group"]) == {NO_SPREAD}


def test_the_best_set_keeps_what_no_contender_beats():
    spec = {
        "resize_bilinear": [0.80, 0.81, 0.79, 0.80, 0.82],
        "stn_blob": [0.95, 0.96, 0.94, 0.95, 0.96],  # clearly best
        "ats_topk": [0.99, 0.70, 0.98, 0.80, 0.97],  # as good on average? cannot tell
        "pool_avg": [0.85, 0.86, 0.84, 0.85, 0.86],  # clearly below stn_blob
    }
    (family,) = compare_families(_runs(spec))
    assert family.best == "stn_blob" and family.best_set == ["stn_blob", "ats_topk"]
    assert family.beaten_by("pool_avg")[0] == "stn_blob"
    assert family.beaten_by("ats_topk") is None
