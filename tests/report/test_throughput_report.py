"""The throughput table copes with throughput-only records, old records and flags."""

import re
import statistics

import pandas as pd
import pytest

from stn.report.document import format_throughput_markdown, throughput_table, write_report
from stn.report.throughput_table import spread_line
from stn.results.collect import runs_frame
from stn.results.record import ClassifierInfo, DatasetInfo, Metrics, ReducerInfo, new_record
from stn.results.store import load_records, write_record


def _record(
    reducer,
    seed,
    reducer_img_s,
    floor_img_s,
    comparable=True,
    accuracy=None,
    batch=64,
    vs_interp=None,
    floor_gb_s=3.0,
    classifier="cnn",
):
    config = {
        "reducer": {"name": reducer},
        "dataset": {"name": "digits_128"},
        "classifier": {"name": classifier},
        "seed": seed,
        "batch": batch,
        "mode": "throughput" if accuracy is None else "train",
    }
    record = new_record(config, "t")
    figure = {"images_per_s": reducer_img_s, "device": "cpu", "threads": 1, "others_cores": 0.1}
    record.status = "ok"
    record.reducer = ReducerInfo(name=reducer)
    record.classifier = ClassifierInfo(name=classifier)
    record.dataset = DatasetInfo(name="digits_128")
    record.metrics = Metrics(test_accuracy=accuracy)
    record.throughput = {
        "reducer": figure,
        "inference": {**figure, "images_per_s": 50.0},
        "train_step": {**figure, "images_per_s": 20.0, "others_cores": 0.7},
        "memory_floor": {"images_per_s": floor_img_s, "gb_per_s": floor_gb_s},
        "ratios": {
            "reducer_vs_memory_floor": reducer_img_s / floor_img_s,
            "reducer_vs_interpolate_aa": vs_interp,
        },
        "batch": {"size": batch, "channels": 3, "height": 128, "width": 128},
        "comparable": comparable,
    }
    return record


def test_one_row_per_reducer_with_median_ratio_and_worst_contention():
    records = [_record("a", s, 100.0 * (s + 1), 1000.0) for s in range(3)]
    records.append(_record("b", 0, 900.0, 1000.0, comparable=False))
    table = throughput_table(runs_frame(records))
    rows = {r["reducer"]: r for r in table.to_dict("records")}
    assert rows["a"]["reducer_vs_floor"] == pytest.approx(0.2) and rows["a"]["n"] == 3
    assert rows["a"]["others_cores"] == pytest.approx(0.7)
    assert rows["a"]["comparable"] and not rows["b"]["comparable"]
    assert list(table["reducer"]) == ["b", "a"]  # best ratio to the floor first
    text = format_throughput_markdown(table)
    assert "3×128×128" in text and "**no**" in text


def test_a_cell_with_a_contended_run_is_not_comparable_and_says_why():
    # Before: every row read "comparable: yes" whatever others' cores said.
    records = [_record("a", s, 100.0, 1000.0) for s in range(2)]
    contended = _record("b", 0, 900.0, 1000.0, comparable=False)
    contended.throughput["contention"] = {"max_cores": 0.25, "retries": 2, "contended": 2}
    launcher = _record("c", 0, 500.0, 1000.0, comparable=False)  # no contention counted
    table = throughput_table(runs_frame([*records, contended, launcher]))
    rows = {r["reducer"]: r for r in table.to_dict("records")}
    assert not rows["b"]["comparable"] and rows["b"]["contended_runs"] == 1
    assert rows["a"]["comparable"] and rows["a"]["contended_runs"] == 0
    text = format_throughput_markdown(table)
    line = {name: next(li for li in text.splitlines() if f"| {name} " in li) for name in "abc"}
    assert line["b"].rstrip(" |").endswith("**no** (contended: 1 of 1 runs)")
    assert line["c"].rstrip(" |").endswith("**no**") and "contended" not in line["c"]
    assert line["a"].rstrip(" |").endswith("yes")


def test_a_cell_timed_alone_uses_those_figures_only():
    # A parallel sweep's runs (not comparable) and the quiet pass's timing of the same
    # configuration (comparable): the row is the quiet one, never a median of both.
    beside = [_record("b", s, 300.0 + s, 1000.0, comparable=False) for s in range(3)]
    alone = _record("b", 0, 900.0, 1000.0)
    alone.config["mode"] = "throughput"
    table = throughput_table(runs_frame([*beside, alone]))
    (row,) = table.to_dict("records")
    assert row["comparable"] and row["n"] == 1
    assert row["reducer_vs_floor"] == pytest.approx(0.9)


def test_the_spread_between_runs_is_shown_beside_each_ratio_and_summed_up_under_the_table(
    tmp_path,
):
    # Cell "a": ratios 0.09, 0.10, 0.11 to the floor (std/mean 10 %), 2.0 to interpolate_aa
    # every time (0 %); the floor read 2.5 to 4.0 GB/s. Cell "b" ran once: no spread.
    for seed, (rate, gb_s) in enumerate(((90.0, 2.5), (100.0, 3.0), (110.0, 4.0))):
        write_record(_record("a", seed, rate, 1000.0, vs_interp=2.0, floor_gb_s=gb_s), tmp_path)
    write_record(_record("b", 0, 500.0, 1000.0, vs_interp=1.0), tmp_path)
    table = throughput_table(runs_frame(load_records(tmp_path)[0])).set_index("reducer")
    assert table.loc["a", "reducer_vs_floor_cv"] == pytest.approx(0.10)
    assert table.loc["a", "reducer_vs_interp_aa_cv"] == pytest.approx(0.0)
    assert (table.loc["a", "floor_gb_s_min"], table.loc["a", "floor_gb_s_max"]) == (2.5, 4.0)
    assert pd.isna(table.loc["b", "reducer_vs_floor_cv"])
    text = write_report(tmp_path, with_figures=False).path.read_text()
    assert re.search(r"\| a +\|.*\| 0\.100 ±10% +\| 2\.00 ±0% +\|", text)
    assert re.search(r"\| b +\|.*\| 0\.500 +\| 1\.00 +\|", text)
    assert "the ratio to the memory floor varied by 10.0% (median over cells)" in text
    assert "the floor itself read 2.5–4.0 GB/s" in text


def test_the_spread_line_leaves_out_a_ratio_no_record_has():
    records = [_record("a", s, 100.0 + s, 1000.0) for s in range(2)]  # no interpolate_aa
    line = spread_line(throughput_table(runs_frame(records)))
    assert "memory floor varied by" in line and "interpolate_aa by" not in line


def test_no_spread_line_when_every_cell_ran_once():
    table = throughput_table(runs_frame([_record("a", 0, 100.0, 1000.0, vs_interp=1.0)]))
    assert spread_line(table) is None


def test_runs_at_different_batch_sizes_are_rows_of_their_own():
    records = [_record("a", s, 100.0, 1000.0) for s in range(2)]
    records.append(_record("a", 0, 900.0, 1000.0, batch=1024))
    table = throughput_table(runs_frame(records))
    assert sorted(zip(table["batch"], table["n"], strict=True)) == [(64, 2), (1024, 1)]
    assert table.set_index("batch").loc[1024, "reducer_img_s"] == pytest.approx(900.0)


def test_runs_with_different_downstream_networks_are_rows_of_their_own():
    records = [_record("a", 0, 100.0, 1000.0), _record("a", 1, 300.0, 1000.0, classifier="mlp")]
    table = throughput_table(runs_frame(records))
    assert sorted(zip(table["classifier"], table["n"], strict=True)) == [("cnn", 1), ("mlp", 1)]
    assert "| mlp " in format_throughput_markdown(table)
    one_network = throughput_table(runs_frame(records[:1]))
    assert "cnn" not in format_throughput_markdown(one_network)  # no column to tell apart


def test_records_without_figures_give_an_empty_table():
    record = _record("a", 0, 1.0, 1.0, accuracy=0.5)
    record.throughput = {}
    assert throughput_table(runs_frame([record])).empty


def test_throughput_only_sweep_report_has_no_accuracy_table(tmp_path):
    write_record(_record("a", 0, 100.0, 1000.0), tmp_path)
    report = write_report(tmp_path)
    assert report.table.empty and report.table_markdown == "(no trained runs yet)"
    assert "## Throughput" in report.path.read_text() and "| a " in report.throughput_markdown


def test_a_run_that_failed_before_building_its_reducer_is_named_from_its_config():
    record = new_record({"reducer": {"name": "pool_avg"}, "seed": 0}, "t")
    record.status = "failed"
    record.error = "ReducerConfigError: cannot reach 48 from 276"
    assert runs_frame([record])["reducer"].tolist() == ["pool_avg"]


def test_agreement_compares_two_sweeps_and_the_scatter_between_passes(tmp_path, capsys):
    from scripts.bench_harness import main

    first, second = tmp_path / "first", tmp_path / "second"
    for seed, rate in enumerate((100.0, 110.0, 90.0)):  # three passes of cell "a"
        write_record(_record("a", seed, rate, 1000.0), first)
    write_record(_record("a", 0, 130.0, 1000.0), second)  # median 0.100 → 0.130: 30 % off
    write_record(_record("b", 0, 500.0, 1000.0), first)
    write_record(_record("b", 0, 550.0, 1000.0), second)  # 10 % off
    assert main(["agreement", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "ratio to the memory floor: 1/2 within 15%" in out
    assert "worst 30.0%" in out
    # std/mean of (0.10, 0.11, 0.09) is 10 %; b's single run has no scatter.
    assert "varies by 10.0% (median coefficient of variation, 3 runs per cell)" in out


def test_floor_drift_prints_both_references_per_block_and_their_ranges(capsys):
    from scripts.bench_harness import main

    args = ["floor-drift", "--blocks", "3", "--block-seconds", "0.02", "--size", "96"]
    assert main(args + ["--batch", "2", "--channels", "1"]) == 0
    out = capsys.readouterr().out
    assert "(2, 1, 96, 96) batch on cpu" in out
    blocks = re.findall(
        r"^block \d: memory floor ([\d.]+) GB/s, interpolate_aa ([\d,]+) img/s, stolen by "
        r"the host (\d+ ms|n/a)$",
        out,
        re.M,
    )
    floors = [float(f) for f, _, _ in blocks]
    assert len(blocks) == 3 and all(f > 0 for f in floors)
    summary = re.search(r"memory floor GB/s: median ([\d.]+), range ([\d.]+)–([\d.]+)", out)
    median, low, high = (float(v) for v in summary.groups())
    assert (low, high) == (min(floors), max(floors)) and low <= median <= high
    image_bytes = 96 * 96 * 4
    ratios = [float(i.replace(",", "")) * image_bytes / (float(f) * 1e9) for f, i, _ in blocks]
    ratio = re.search(r"interpolate_aa × memory floor: median ([\d.]+)", out)
    assert float(ratio.group(1)) == pytest.approx(statistics.median(ratios), rel=0.02)


def test_the_summary_and_its_figure_use_the_figures_timed_alone():
    from stn.report.document import comparison_table

    trained = [
        _record(r, s, 300.0, 1000.0, comparable=False, accuracy=a + s / 100)
        for r, a in (("resize_bilinear", 0.8), ("stn_blob", 0.9))
        for s in range(3)
    ]
    table, _ = comparison_table(runs_frame(trained))
    assert not table["tp_comparable"].any()
    assert set(table["tp_source"]) == {"timed beside other runs: not comparable"}
    alone = _record("stn_blob", 0, 120.0, 1000.0)  # the quiet pass: mode=throughput
    table, _ = comparison_table(runs_frame([*trained, alone]))
    rows = table.set_index("reducer")
    assert rows.loc["stn_blob", "tp_reducer_images_per_s"] == 120.0
    assert bool(rows.loc["stn_blob", "tp_comparable"])
    assert rows.loc["resize_bilinear", "tp_reducer_images_per_s"] == 300.0
    assert not bool(rows.loc["resize_bilinear", "tp_comparable"])
    assert len(table) == 2  # the timing run adds no row to the accuracy table
