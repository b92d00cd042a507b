"""One sample per seed: what makes two runs the same experiment, and what the report and a
relaunched sweep do with two records of one."""

import dataclasses

import pytest
from report_records import make_record, write_all

from experiments.schemas import RunConfig
from stn.report.document import write_report
from stn.report.figures_scale import accuracy_by_object_scale, object_scale_frame
from stn.results.collect import runs_frame
from stn.results.duplicates import merge_duplicates, mixed_cells
from stn.results.identity import (
    EXPERIMENT_KEYS,
    LOGGING_KEYS,
    TIMING_KEYS,
    config_differences,
    experiment_id,
)
from stn.results.record import run_id_for
from stn.results.store import is_ok, write_record
from stn.results.variants import row_names

CONFIG = {
    "seed": 1,
    "dataset": {"name": "digits_96"},
    "reducer": {"name": "pool_avg", "kind": "pool"},
    "classifier": {"name": "cnn"},
    "trainer": {"epochs": 8, "progress": True},
    "output_size": [48, 48],
    "mode": "train",
    "device": "auto",
    "threads": 1,
    "throughput": {"rounds": 1, "contention_retries": 2},
    "results_dir": "results/compare",
    "sweep": "compare",
    "logger": {"enabled": True},
}


def test_every_run_option_is_declared_once():
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    declared = [EXPERIMENT_KEYS, TIMING_KEYS, LOGGING_KEYS]
    for name in fields:
        assert sum(name in keys for keys in declared) == 1, name
    assert not (EXPERIMENT_KEYS & TIMING_KEYS) and not (TIMING_KEYS & LOGGING_KEYS)


def test_timing_and_logging_settings_do_not_change_a_run_id():
    # make main's reference records were written with contention_retries 2; the preset
    # now says 0. Before, that made every run id new and every seed count twice.
    timed_otherwise = {
        **CONFIG,
        "throughput": {"rounds": 3, "contention_retries": 0},
        "threads": 2,
        "results_dir": "results/main",
        "logger": {"enabled": False},
        "trainer": {"epochs": 8, "progress": False},
        "quiet_pass": {"enabled": False},
        "reference_dir": "results/compare",
    }
    assert run_id_for(timed_otherwise) == run_id_for(CONFIG) == experiment_id(CONFIG)
    for key, value in [("seed", 2), ("trainer", {"epochs": 9}), ("device", "cpu")]:
        assert experiment_id({**CONFIG, key: value}) != experiment_id(CONFIG), key


def test_in_a_throughput_run_the_timing_settings_are_the_experiment():
    timed = {**CONFIG, "mode": "throughput"}
    assert experiment_id({**timed, "threads": 2}) != experiment_id(timed)
    assert experiment_id({**timed, "throughput": {"rounds": 5}}) != experiment_id(timed)
    assert experiment_id({**timed, "results_dir": "elsewhere"}) == experiment_id(timed)


def test_an_unknown_option_counts_as_part_of_the_experiment():
    assert experiment_id({**CONFIG, "my_option": 1}) != experiment_id(CONFIG)


def test_an_option_added_later_keeps_older_runs_ids_only_at_the_value_they_ran_with():
    stn = {**CONFIG, "reducer": {"name": "stn_candidates", "kind": "stn"}}
    for key, old_value, other in [
        ("glimpses", 1, 2),
        ("zoom_schedule", [], [0.5]),
        ("sampler_input", "raw", "standardized"),
    ]:
        with_it = {**stn, "reducer": {**stn["reducer"], key: old_value}}
        assert experiment_id(with_it) == experiment_id(stn), key
        changed = {**stn, "reducer": {**stn["reducer"], key: other}}
        assert experiment_id(changed) != experiment_id(stn), key
    # equal but not the same value: True is not one glimpse
    odd = {**stn, "reducer": {**stn["reducer"], "glimpses": True}}
    assert experiment_id(odd) != experiment_id(stn)


def test_a_whole_number_is_one_experiment_as_int_or_float_but_not_as_bool():
    def with_sharpness(value):
        return {**CONFIG, "reducer": {"name": "stn_blob", "kind": "stn", "sharpness": value}}

    assert experiment_id(with_sharpness(60)) == experiment_id(with_sharpness(60.0))
    assert experiment_id(with_sharpness(60.5)) != experiment_id(with_sharpness(60))
    assert experiment_id(with_sharpness(1)) != experiment_id(with_sharpness(True))


def test_config_differences_name_the_experiment_keys_only():
    other = {
        **CONFIG,
        "reducer": {"name": "pool_avg", "kind": "pool", "glimpses": 2},
        "threads": 4,
        "seed": 3,
    }
    assert config_differences(CONFIG, other) == ["reducer.glimpses", "seed"]


def _old_style(record, run_id, **throughput):
    """A record as an older version wrote it: another run id (its hash covered the
    timing settings) and, here, other timing settings."""
    record.run_id = run_id
    record.config["throughput"] = {"contention_retries": 2, **throughput}
    return record


def test_a_relaunch_skips_an_experiment_whose_older_record_is_ok(tmp_path):
    old = _old_style(make_record("pool_avg", 0, 0.8), "0123456789abcdef")
    write_record(old, tmp_path)
    relaunched = {**old.config, "throughput": {"contention_retries": 0}}
    assert is_ok(tmp_path, run_id_for(relaunched))
    assert not is_ok(tmp_path, run_id_for({**relaunched, "seed": 1}))
    failed = _old_style(make_record("pool_max", 0, None, status="failed"), "fedcba9876543210")
    write_record(failed, tmp_path)
    assert not is_ok(tmp_path, run_id_for(failed.config))


def test_two_records_of_one_experiment_are_one_sample(tmp_path):
    records = []
    for seed in range(3):
        for reducer, accuracy in (("resize_bilinear", 0.80), ("stn_blob", 0.90)):
            new = make_record(reducer, seed, accuracy + seed / 100)
            new.timing.finished_at = 2.0
            old = _old_style(
                make_record(reducer, seed, accuracy + seed / 100), f"old{seed}{reducer}"
            )
            old.timing.finished_at = 1.0
            records += [new, old]
    records[1].metrics.test_accuracy += 0.001  # one older record does not quite agree
    write_all(records, tmp_path)
    report = write_report(tmp_path, with_figures=False)
    table = report.table.set_index("reducer")
    assert table.loc["stn_blob", "n"] == 3 and table.loc["resize_bilinear", "n"] == 3
    # One-sample intervals: 3 seeds, not 6 (t(2) · 0.01 / √3 = 2.5 points).
    assert table.loc["stn_blob", "accuracy_ci95"] == pytest.approx(0.0248, abs=1e-4)
    text = report.path.read_text()
    assert "6 duplicate record(s) merged" in text and "## Records read as one sample" in text
    assert "differ by 0.10 points" in text and text.count("| identical") == 5
    assert "12 record(s) read" in text and report.completeness.ok == 6


def test_the_kept_record_is_ok_then_the_latest():
    ok_old = make_record("pool_avg", 0, 0.8)
    ok_old.timing.finished_at = 1.0
    ok_new = _old_style(make_record("pool_avg", 0, 0.81), "newer")
    ok_new.timing.finished_at = 2.0
    failed = _old_style(make_record("pool_avg", 0, None, status="failed"), "failed")
    failed.config = dict(ok_old.config)
    failed.timing.finished_at = 3.0
    kept, (merge,) = merge_duplicates([ok_old, failed, ok_new])
    assert kept == [ok_new] and merge.kept is ok_new
    assert merge.accuracy_spread == pytest.approx(0.01)


def test_seeds_run_under_one_name_with_other_options_are_named():
    a, b = make_record("stn_blob", 0, 0.8), make_record("stn_blob", 0, 0.8)
    b.config["reducer"]["glimpses"] = 2
    (cell,) = mixed_cells([a, b])
    assert cell.differences == ["reducer.glimpses"] and cell.accuracy_spread == 0.0


def test_a_name_run_with_other_options_is_one_row_per_option_set(tmp_path):
    """A sweep over ``reducer.kernel=a,b`` under one preset name: each kernel its own
    row, named by what tells them apart; options some records predate split nothing."""
    records = [
        make_record("ips_windows", seed, acc, reducer_options={"kernel": kernel, "antialias": True})
        for seed in range(3)
        for kernel, acc in (("bilinear", 0.9), ("bicubic", 0.6))
    ]
    # A second seed-0 bilinear run set an option the others predate: same row, one sample.
    later = make_record(
        "ips_windows",
        0,
        0.92,
        reducer_options={"kernel": "bilinear", "antialias": True, "glimpses": 2},
    )
    records += [later] + [make_record("resize_area", seed, 0.5) for seed in range(3)]
    reducers = [row.reducer for row in row_names(records)]
    assert reducers[:2] == ["ips_windows (kernel=bilinear)", "ips_windows (kernel=bicubic)"]
    assert reducers[-4:] == ["ips_windows (kernel=bilinear)"] + ["resize_area"] * 3
    assert {row.dataset for row in row_names(records)} == {"digits_96"}
    write_all(records, tmp_path)
    table = write_report(tmp_path, with_figures=False).table.set_index("reducer")
    assert table.loc["ips_windows (kernel=bilinear)", "n"] == 3
    assert table.loc["ips_windows (kernel=bilinear)", "accuracy_mean"] == pytest.approx(
        0.9 + 0.01 / 3
    )
    assert table.loc["ips_windows (kernel=bicubic)", "accuracy_mean"] == pytest.approx(0.6)
    assert "ips_windows" not in table.index
    (cell,) = mixed_cells(records)
    assert cell.key[1:4] == ("ips_windows (kernel=bilinear)", "cnn", 0)
    assert cell.differences == ["reducer.glimpses"]


def test_variant_names_say_which_section_an_option_is_in():
    a, b = make_record("pool_avg", 0, 0.8, epochs=3), make_record("pool_avg", 0, 0.8, epochs=5)
    assert [row.reducer for row in row_names([a, b])] == [
        "pool_avg (trainer.epochs=3)",
        "pool_avg (trainer.epochs=5)",
    ]
    assert mixed_cells([a, b]) == []


def test_other_data_under_one_name_is_another_block_not_another_row(tmp_path):
    """Records of one dataset name that read other data (``dataset.object_scale`` swept)
    name the dataset by it: each its own block with its own baseline; the reducers keep
    their names."""
    records = []
    for scale, acc in ((0.1, 0.2), (1.0, 0.9)):
        for reducer in ("resize_area", "stn_blob"):
            for seed in range(2):
                record = make_record(reducer, seed, acc + (reducer == "stn_blob") * 0.05)
                record.config["dataset"]["object_scale"] = [scale, scale]
                record.run_id = run_id_for(record.config)
                records.append(record)
    rows = row_names(records)
    assert {row.reducer for row in rows} == {"resize_area", "stn_blob"}
    assert rows[0].dataset == "digits_96 (object_scale=[0.1, 0.1])"
    assert rows[-1].dataset == "digits_96 (object_scale=[1.0, 1.0])"
    write_all(records, tmp_path)
    table = write_report(tmp_path, with_figures=False).table
    small = table[table["dataset"] == "digits_96 (object_scale=[0.1, 0.1])"].set_index("reducer")
    assert small.loc["stn_blob", "accuracy_mean"] == pytest.approx(0.25)
    assert len(table) == 4
    # The scale figure draws one line per preset across the scales.
    lines = accuracy_by_object_scale(object_scale_frame(runs_frame(records)))
    assert lines.groupby("reducer")["object_scale"].nunique().to_dict() == {
        "resize_area": 2,
        "stn_blob": 2,
    }
