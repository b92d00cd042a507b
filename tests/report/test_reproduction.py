"""A sweep pointed at a reference folder ends its report with each run beside the
reference record of the same experiment (make main against results/compare)."""

from report_records import make_record, write_all

from stn.report.document import write_report
from stn_bench import report as report_script


def _reference(folder):
    """Records as the committed reference holds them: written when the run id also hashed
    the timing settings (another file name, contention_retries 2)."""
    records = []
    for seed in (0, 1):
        for reducer, accuracy in (("resize_bilinear", 0.80), ("stn_blob", 0.90)):
            record = make_record(reducer, seed, accuracy + seed / 100)
            record.config["throughput"] = {"contention_retries": 2}
            record.run_id = f"old-{reducer}-{seed}"
            records.append(record)
    write_all(records, folder)
    return records


def test_a_rerun_identical_to_its_reference_says_so_at_the_end(tmp_path):
    _reference(tmp_path / "reference")
    rerun = [
        make_record(reducer, seed, accuracy + seed / 100)
        for seed in (0, 1)
        for reducer, accuracy in (("resize_bilinear", 0.80), ("stn_blob", 0.90))
    ]
    for record in rerun:
        record.config["throughput"] = {"contention_retries": 0}
    write_all(rerun, tmp_path / "main")
    report = write_report(tmp_path / "main", with_figures=False, reference=tmp_path / "reference")
    text = report.path.read_text()
    section = text.split("## Reproduction of")[1]
    assert "4 of 4 runs compared: 4 identical" in text.split("\n")[2]  # the summary line
    assert section.count("same experiment: identical") == 4
    assert text.index("## Reproduction of") > text.index("## Results")
    # The reference folder is read, never written.
    assert not (tmp_path / "reference" / "report.md").exists()


def test_a_difference_and_a_changed_config_are_named(tmp_path, capsys):
    _reference(tmp_path / "reference")
    rerun = [make_record("resize_bilinear", s, 0.80 + s / 100) for s in (0, 1)]
    rerun[1].metrics.test_accuracy = 0.8125  # 0.25 points above its reference
    gained = [make_record("stn_blob", s, 0.90 + s / 100) for s in (0, 1)]
    for record in gained:
        record.config["reducer"]["glimpses"] = 2  # an option added since, set otherwise
    extra = make_record("pool_avg", 0, 0.85)
    write_all([*rerun, *gained, extra], tmp_path / "main")
    code = report_script.main(
        [str(tmp_path / "main"), "--no-figures", "--reference", str(tmp_path / "reference")]
    )
    assert code == report_script.EXIT_INCOMPLETE  # pool_avg seed 1 is missing
    text = (tmp_path / "main" / "report.md").read_text()
    assert "4 of 5 runs compared: 3 identical, 1 differ in test accuracy (at most 0.25 points)" in (
        text
    )
    assert "+0.25" in text and "same experiment: differs" in text
    assert "same names and seed; config differs in reducer.glimpses: identical" in text
    assert "no reference record" in text
    capsys.readouterr()
