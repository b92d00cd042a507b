"""Issue 31's report: the accuracy each reducer keeps of a frozen network's, beside the same
reducers trained from scratch, on synthetic records made with the record-writing helpers."""

import math

import pytest
from scipy import stats as scipy_stats

from stn.report.document import write_report
from stn.report.frozen_kept import PCA_NOTE, SECTION, kept_families
from stn.results.collect import runs_frame
from stn.results.store import write_record
from stn_bench.report import main as report_main
from tests.report_records import make_record

# The frozen sweep: fixed reducers read the same on every seed, a learned one varies.
FROZEN = {
    "oracle_crop": [0.95, 0.95, 0.95],
    "resize_bilinear": [0.80, 0.80, 0.80],
    "resize_nearest": [0.70, 0.70, 0.70],
    "pool_adaptive": [0.78, 0.78, 0.78],
    "stn_bilinear": [0.85, 0.88, 0.91],
}
# The same canvas with the network trained from scratch (as results/compare): another order.
SCRATCH = {
    "oracle_crop": [0.98, 0.985, 0.99],
    "resize_bilinear": [0.94, 0.95, 0.93],
    "resize_nearest": [0.95, 0.96, 0.945],
    "stn_bilinear": [0.92, 0.93, 0.91],
    "stn_blob": [0.96, 0.96, 0.97],  # scratch only: not in the frozen table
}
KINDS = {"stn_bilinear": "stn", "stn_blob": "stn", "oracle_crop": "oracle_crop"}


def write_sweep(folder, rows, frozen, dataset="digits_96"):
    for reducer, accuracies in rows.items():
        for seed, accuracy in enumerate(accuracies):
            record = make_record(
                reducer, seed, accuracy, dataset, kind=KINDS.get(reducer, "resize")
            )
            record.reducer.oracle = reducer == "oracle_crop"
            if frozen:
                record.classifier.frozen = True
                record.classifier.checkpoint = "results/frozen_checkpoint/checkpoints/cnn.pt"
                record.config["classifier"]["frozen"] = True
            write_record(record, folder)


@pytest.fixture
def sweeps(tmp_path):
    frozen, scratch = tmp_path / "results" / "frozen", tmp_path / "results" / "compare"
    write_sweep(frozen, FROZEN, frozen=True)
    write_sweep(
        frozen, {"oracle_crop": [0.9] * 3, "resize_bilinear": [0.45] * 3}, True, "digits_276"
    )
    write_sweep(scratch, SCRATCH, frozen=False)
    return frozen, scratch


def scratch_frame(folder):
    from stn.results.store import load_records

    return runs_frame(load_records(folder)[0])


def test_kept_fraction_is_the_accuracy_over_the_frozen_oracle_of_the_same_canvas(sweeps):
    frozen, scratch = sweeps
    from stn.results.store import load_records

    families = kept_families(
        runs_frame(load_records(frozen)[0]), [(scratch, scratch_frame(scratch))]
    )
    by_canvas = {f.dataset: f for f in families}
    family = by_canvas["digits_96"]
    assert family.oracle == "oracle_crop" and family.oracle_accuracy == pytest.approx(0.95)
    table = family.table.set_index("reducer")
    assert "oracle_crop" not in table.index  # the reference itself is not a row
    assert table.loc["resize_bilinear", "kept_mean"] == pytest.approx(0.80 / 0.95)
    assert table.loc["resize_nearest", "kept_mean"] == pytest.approx(0.70 / 0.95)
    # a learned reducer: the mean of the per-seed fractions, with the t interval over seeds
    kept = [a / 0.95 for a in FROZEN["stn_bilinear"]]
    half = scipy_stats.t.ppf(0.975, 2) * scipy_stats.tstd(kept) / math.sqrt(3)
    assert table.loc["stn_bilinear", "kept_mean"] == pytest.approx(sum(kept) / 3)
    assert table.loc["stn_bilinear", "kept_ci95"] == pytest.approx(half)
    assert table.loc["resize_bilinear", "kept_ci95"] == pytest.approx(0.0)  # fixed: no spread
    assert table.loc["resize_bilinear", "frozen_accuracy"] == pytest.approx(0.80)
    # groups from the report's paired tests: two fixed reducers that differ on every seed
    # are told apart; the learned one's spread keeps it in a shared letter
    assert set(table.loc["resize_bilinear", "group"]).isdisjoint(
        table.loc["resize_nearest", "group"]
    )
    # the scratch side: accuracy, and over that sweep's own oracle
    assert table.loc["resize_nearest", "scratch_mean"] == pytest.approx(0.951666, abs=1e-5)
    assert table.loc["resize_nearest", "scratch_vs_oracle"] == pytest.approx(
        0.951666 / 0.985, abs=1e-5
    )


def test_the_ranks_side_by_side_show_the_order_a_frozen_network_gives(sweeps):
    frozen, scratch = sweeps
    from stn.results.store import load_records

    families = kept_families(
        runs_frame(load_records(frozen)[0]), [(scratch, scratch_frame(scratch))]
    )
    (family,) = [f for f in families if f.dataset == "digits_96"]
    table = family.table.set_index("reducer")
    # frozen: stn_bilinear > resize_bilinear > resize_nearest; scratch the reverse
    assert list(
        table.loc[["stn_bilinear", "resize_bilinear", "resize_nearest"], "rank_frozen"]
    ) == [1, 2, 3]
    assert list(
        table.loc[["stn_bilinear", "resize_bilinear", "resize_nearest"], "rank_scratch"]
    ) == [3, 2, 1]
    assert list(
        table.loc[["stn_bilinear", "resize_bilinear", "resize_nearest"], "rank_change"]
    ) == [2, 0, -2]
    assert family.tau == pytest.approx(-1.0)
    assert family.moves == ["stn_bilinear 3rd → 1st", "resize_nearest 1st → 3rd"]
    # a reducer the scratch sweep never ran has no rank and is named as missing
    assert math.isnan(table.loc["pool_adaptive", "rank_frozen"])
    assert family.missing == ["pool_adaptive"]


def test_the_frozen_report_has_the_section_and_says_what_is_missing(sweeps):
    frozen, scratch = sweeps
    write_report(frozen, with_figures=False, scratch=[scratch])
    text = (frozen / "report.md").read_text()
    section = text[text.index(SECTION) :]
    assert text.index(SECTION) < text.index("## Results")  # read right after the verdict
    assert PCA_NOTE in section
    kept = [a / 0.95 for a in FROZEN["stn_bilinear"]]
    half = scipy_stats.t.ppf(0.975, 2) * scipy_stats.tstd(kept) / math.sqrt(3)
    assert f"| `stn_bilinear` | {sum(kept) / 3:.3f} ± {half:.3f} |" in section
    assert "| 3rd | +2 |" in section  # stn_bilinear's scratch rank and its change
    assert "| `pool_adaptive` | 0.821 ± 0.000 |" in section
    assert "— (not in the scratch sweep)" in section
    assert "moves when the network cannot adapt" in section and "Kendall's τ = -1.00" in section
    assert f"Not in `{scratch}` (no scratch row): `pool_adaptive`." in section
    # a canvas no scratch folder holds (digits_276 before results/question exists)
    assert "no scratch folder holds digits_276" in section


def test_the_default_scratch_folders_are_the_frozen_sweeps_siblings(sweeps):
    frozen, scratch = sweeps
    assert report_main([str(frozen), "--no-figures"]) == 0
    assert f"From scratch: `{scratch}`." in (frozen / "report.md").read_text()
    other = frozen.parent / "elsewhere"
    write_sweep(other, {"oracle_crop": [0.9] * 3, "resize_bilinear": [0.5, 0.6, 0.7]}, False)
    assert report_main([str(frozen), "--no-figures", "--scratch", str(other)]) == 0
    text = (frozen / "report.md").read_text()
    assert f"From scratch: `{other}`." in text and f"`{scratch}`" not in text
    # experiment=frozen_scratch's folder holds every frozen row: read before compare
    full = frozen.parent / "frozen_scratch"
    write_sweep(full, {**SCRATCH, "pool_adaptive": [0.8] * 3}, False)
    assert report_main([str(frozen), "--no-figures"]) == 0
    text = (frozen / "report.md").read_text()
    assert f"From scratch: `{full}`." in text and "no scratch row" not in text
    write_report(frozen, with_figures=False, scratch=[])  # none given: no scratch side
    assert (
        "no scratch folder holds digits_96 (looked in none)" in (frozen / "report.md").read_text()
    )


def test_a_canvas_without_its_oracle_says_so_and_other_reports_have_no_section(tmp_path):
    frozen = tmp_path / "frozen"
    write_sweep(frozen, {"resize_bilinear": [0.5] * 3, "resize_nearest": [0.4] * 3}, True)
    write_report(frozen, with_figures=False, scratch=[])
    assert (
        "No kept fractions: no `oracle_crop` run of this canvas"
        in (frozen / "report.md").read_text()
    )
    plain = tmp_path / "compare"
    write_sweep(plain, SCRATCH, frozen=False)
    write_report(plain, with_figures=False)
    assert SECTION not in (plain / "report.md").read_text()
