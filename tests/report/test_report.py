import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image
from report_records import make_record, write_all, write_examples_for

from stn.report.document import write_report
from stn.results.record import SCHEMA_VERSION
from stn.results.store import write_record
from stn_bench import report as report_script


def _sweep(tmp_path: Path) -> tuple[Path, list[dict]]:
    records = []
    for seed in (0, 1):
        records.append(make_record("resize_bilinear", seed, 0.80 + seed / 100))
        records.append(
            make_record(
                "stn_bicubic",
                seed,
                0.90 + seed / 100,
                kind="stn",
                reducer_options={"kernel": "bicubic", "antialias": False},
            )
        )
        records.append(
            make_record(
                "stn_bicubic_aa",
                seed,
                0.92 + seed / 100,
                kind="stn",
                reducer_options={"kernel": "bicubic", "antialias": True},
            )
        )
    records.append(make_record("pool_avg", 0, 0.85))  # seed 1 never ran: missing
    records.append(make_record("pool_max", 0, None, status="failed"))
    records.append(make_record("pool_max", 1, None, status="failed"))
    write_all(records, tmp_path)
    write_examples_for(records[0], tmp_path)
    write_examples_for(records[1], tmp_path, theta=True)
    return tmp_path, records


def test_report_stitches_config_tables_figures_and_problems(tmp_path):
    sweep, records = _sweep(tmp_path)
    report = write_report(sweep)
    text = report.path.read_text()
    assert report.path == sweep / "report.md"
    assert "7 ok, 2 failed of 10 expected runs (1 missing)" in text
    for piece in (
        "## What was run",
        "seeds: `0`, `1`",
        "torch `2.13.0`",
        "epochs `3`",
        "## Results",
        "## Verdict",
        "paired t-test of each pair",
        "compact letter display",
        # resize_bilinear and both STNs differ by the same amount on each seed: no test.
        "**stn_bicubic_aa** has the best mean, 92.5 ± 6.4 %: +12.0 [+12.0, +12.0] points "
        "over resize_bilinear, better by the same amount on every seed (no spread, no p)",
        "Not judged (fewer than 2 seeds): pool_avg.",
        "## Failed runs",
        "pool_avg cannot reach 48 from 100 second line",
        "## Missing runs",
        "9 record(s) read",
    ):
        assert piece in text, piece
    missing = report.completeness.missing
    assert missing[["reducer", "seed"]].values.tolist() == [["pool_avg", 1]]
    expected_figures = {
        "pareto_digits_96_cnn.png",
        "kernels_digits_96_cnn.png",
        "curves_digits_96_cnn.png",
        "examples_digits_96.png",
        "regions_digits_96.png",
    }
    assert {p.name for p in report.figures.values()} == expected_figures
    for path in report.figures.values():
        assert path.stat().st_size > 0 and f"(figures/{path.name})" in text
    for path in report.tables.values():
        assert path.is_file() and f"({path.relative_to(sweep)})" in text


def test_figures_without_their_data_are_left_out(tmp_path):
    write_all([make_record("resize_bilinear", 0, 0.8)], tmp_path)  # no examples, no STN
    report = write_report(tmp_path)
    assert {p.name for p in report.figures.values()} == {
        "pareto_digits_96_cnn.png",
        "curves_digits_96_cnn.png",
    }


def test_a_family_whose_best_never_trained_gets_no_verdict_on_its_reducers(tmp_path):
    # digits_276 with the MLP: every run of every reducer on the plateau (10–14 %);
    # question_276: the best trained, only the others stalled.
    records = [
        make_record(reducer, seed, level + seed / 100, dataset=dataset, stalled=stalled)
        for dataset, levels in {
            "digits_276": {"resize_area": (0.13, True), "pca": (0.11, True)},
            "question_276": {"resize_area": (0.25, False), "pca": (0.18, True)},
        }.items()
        for reducer, (level, stalled) in levels.items()
        for seed in range(3)
    ]
    write_all(records, tmp_path)
    text = write_report(tmp_path, with_figures=False).path.read_text()
    verdict = text[text.index("## Verdict") : text.index("## What was run")]
    digits, question = verdict.split("### question_276")
    assert digits.count("**No verdict on the reducers:**") == 1
    assert digits.index("has the best mean") < digits.index("**No verdict")
    assert "No verdict on the reducers" not in question


def test_hand_written_notes_are_copied_under_their_own_heading(tmp_path):
    write_all([make_record("resize_bilinear", s, 0.8 + s / 100) for s in (0, 1)], tmp_path)
    assert (
        "## Notes on this sweep" not in write_report(tmp_path, with_figures=False).path.read_text()
    )
    (tmp_path / "notes.md").write_text("\nSeed 2 of `stn_bicubic` stalled: the kernel aliases.\n")
    text = write_report(tmp_path, with_figures=False).path.read_text()
    section = text[text.index("## Notes on this sweep") :]
    assert "*Written by hand in `notes.md`" in section
    assert "Seed 2 of `stn_bicubic` stalled: the kernel aliases.\n" in section
    assert text.index("## Results") < text.index("## Notes on this sweep")
    (tmp_path / "notes.md").write_bytes(b"\xff\xfe not utf-8")
    text = write_report(tmp_path, with_figures=False).path.read_text()
    assert "`notes.md` could not be read: " in text  # and the report is still written
    (tmp_path / "notes.md").write_text("  \n")
    assert (
        "## Notes on this sweep" not in write_report(tmp_path, with_figures=False).path.read_text()
    )


def test_corrupt_and_foreign_records_are_named_skipped_and_the_rest_reported(tmp_path):
    sweep, _ = _sweep(tmp_path)
    (sweep / "records" / "broken.json").write_text('{"schema_version": 1, "run')
    (sweep / "records" / "future.json").write_text(
        json.dumps({"schema_version": SCHEMA_VERSION + 1})
    )
    (sweep / "examples" / "garbage.npz").write_bytes(b"zip?")
    report = write_report(sweep)
    text = report.path.read_text()
    assert "## Skipped record files" in text
    assert "broken.json`: " in text and "not valid JSON" in text
    assert "future.json`: " in text and "schema version" in text
    assert len(report.runs) == 9 and "2 record file(s) skipped (unreadable or invalid)" in text
    assert report_script.exit_code(report) == report_script.EXIT_SKIPPED


def test_script_exit_codes_and_messages(tmp_path, capsys):
    assert report_script.main([str(tmp_path / "nowhere")]) == report_script.EXIT_NO_RECORDS
    assert "nowhere has no records/ folder" in capsys.readouterr().err

    (tmp_path / "empty" / "records").mkdir(parents=True)
    assert report_script.main([str(tmp_path / "empty")]) == report_script.EXIT_NO_RECORDS
    assert "no readable records" in capsys.readouterr().err

    complete = tmp_path / "complete"
    write_all([make_record("resize_bilinear", s, 0.8) for s in (0, 1)], complete)
    assert report_script.main([str(complete), "--no-figures"]) == report_script.EXIT_OK
    assert "| digits_96 | resize_bilinear" in capsys.readouterr().out
    assert not (complete / "figures").exists()

    partial, _ = _sweep(tmp_path / "partial")
    assert report_script.main([str(partial), "--no-figures"]) == report_script.EXIT_INCOMPLETE


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        report_script.main(["--help"])
    help_text = capsys.readouterr().out
    assert "exit codes:" in help_text and "--wandb" in help_text and "skipped" in help_text


def test_wandb_offline_run_gets_the_table_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    sweep, _ = _sweep(tmp_path / "sweep")
    report = write_report(sweep)
    cwd = tmp_path / "elsewhere"  # where the report is run from
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert report_script.push_to_wandb(report, "sweep")
    # Beside the sweep's own runs (<sweep>/wandb/); before, wandb wrote ./wandb wherever
    # the report ran.
    runs = list((sweep / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert not (cwd / "wandb").exists()
    media = {p.name for p in (runs[0] / "files" / "media").rglob("*") if p.is_file()}
    assert any(name.startswith("summary") and name.endswith(".table.json") for name in media)
    assert sum(name.endswith(".png") for name in media) == len(report.figures)


def test_wandb_failure_never_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "not-a-mode")
    write_all([make_record("resize_bilinear", 0, 0.8)], tmp_path)
    report = write_report(tmp_path, with_figures=False)
    assert report_script.push_to_wandb(report, "x") is False


@pytest.mark.slow
def test_a_25_record_sweep_reports_with_every_figure(tmp_path):
    records = []
    reducers = ["resize_bilinear", "pool_avg", "pool_max", "stn_bilinear", "stn_bilinear_aa"]
    for reducer in reducers:
        options = {"kernel": "bilinear", "antialias": reducer.endswith("aa")}
        for seed in range(5):
            record = make_record(
                reducer,
                seed,
                0.8 + seed / 100,
                kind=reducer[:3],
                reducer_options=options,
                epochs=10,
            )
            records.append(record)
            write_examples_for(record, tmp_path, theta=reducer.startswith("stn"), k=6)
    write_all(records, tmp_path)
    started = time.perf_counter()
    report = write_report(tmp_path)
    print(
        f"report of 25 records with {len(report.figures)} figures: "
        f"{time.perf_counter() - started:.1f} s"
    )
    assert len(report.runs) == 25 and report.completeness.complete
    assert len(report.figures) == 5 and os.path.getsize(report.path) > 0


def test_a_figure_that_fails_is_reported_and_the_rest_are_drawn(tmp_path, monkeypatch):
    from stn.report import figures

    def broken(*args, **kwargs):
        raise ValueError("odd data")

    monkeypatch.setattr(figures, "plot_learning_curves", broken)
    write_all([make_record("resize_bilinear", 0, 0.8)], tmp_path)
    report = write_report(tmp_path)
    text = report.path.read_text()
    assert "## Figures that could not be drawn" in text and "ValueError: odd data" in text
    assert {p.name for p in report.figures.values()} == {"pareto_digits_96_cnn.png"}


def test_a_sweep_over_object_scale_gets_its_figure(tmp_path):
    for scale in (0.1, 0.5, 1.0):
        for reducer in ("resize_bilinear", "oracle_crop"):
            record = make_record(
                reducer, seed=0, accuracy=scale if reducer == "resize_bilinear" else 0.9
            )
            record.config["dataset"]["object_scale"] = [scale, scale]
            record.run_id = f"{reducer}-{scale}"
            write_record(record, tmp_path)
    report = write_report(tmp_path)
    caption = next(c for c in report.figures if "object scale" in c)
    with Image.open(report.figures[caption]) as image:
        assert image.size[0] > 100 and image.size[1] > 100
    assert "object_scale.png" in report.path.read_text()


def test_report_opens_with_the_verdict_and_groups_the_reducers(tmp_path):
    # Three levels 20 points apart, a seed effect and ±0.3 points of noise over 3 seeds.
    offsets = {0: 0.0, 1: 0.02, 2: -0.01}
    noise = {0: 0.003, 1: -0.002, 2: -0.001}
    levels = {"oracle_crop": 0.95, "stn_blob": 0.75, "pool_avg": 0.55, "resize_bilinear": 0.548}
    records = []
    for k, (reducer, level) in enumerate(levels.items()):
        for seed in range(3):
            noise_k = noise[(seed + k) % 3]
            records.append(make_record(reducer, seed, level + offsets[seed] + noise_k))
            records[-1].reducer.oracle = reducer == "oracle_crop"
    write_all(records, tmp_path)
    report = write_report(tmp_path, with_figures=False)
    text = report.path.read_text()
    assert text.index("## Verdict") < text.index("## What was run") < text.index("## Results")
    header = [c.strip() for c in report.table_markdown.splitlines()[0].strip("|").split("|")]
    assert header[header.index("test accuracy (95 % CI)") + 1] == "group"
    groups = report.table.set_index("reducer")["group"].to_dict()
    assert groups == {
        "oracle_crop (oracle)": "a",
        "stn_blob": "b",
        "pool_avg": "c",
        "resize_bilinear": "c",
    }
    assert "baseline: resize_bilinear, 55.1 ± 3.6 %; oracle: oracle_crop (oracle), 95.3" in text
    assert "**stn_blob** has the best mean, 75.3 ± 3.4 %: +20.2 [+19.1, +21.3] points" in text
    assert "Significantly worse than another contender: pool_avg (below stn_blob" in text
    verdicts = report.table.set_index("reducer")["vs_baseline"]
    assert verdicts["stn_blob"].startswith("better (Holm p")
    assert verdicts["pool_avg"].startswith("no significant difference (Holm p")
