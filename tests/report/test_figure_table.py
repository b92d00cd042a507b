"""Which figures a report draws, declared in one table (stn.report.figure_table.FIGURES):
for the same records, the same figure files as the conditions it replaced wrote."""

from pathlib import Path

import pytest
from report_records import make_record, write_all, write_examples_for

from stn.report.document import write_report
from stn.report.figure_table import FIGURES, ReportFigure
from stn.results.store import write_record

GLIMPSE = {
    "zoom_mean": 0.5,
    "glimpse_side_px_mean": 24.0,
    "centre_distance_rel_mean": 0.05,
    "centre_in_box": 1.0,
}


def stn(seed: int, kernel: str = "bicubic", antialias: bool = False, **kw):
    name = f"stn_{kernel}" + ("_aa" if antialias else "")
    options = {"kernel": kernel, "antialias": antialias}
    return make_record(name, seed, 0.9, kind="stn", reducer_options=options, **kw)


def figure_files(sweep: Path) -> set[str]:
    report = write_report(sweep)
    written = {path.name for path in report.figures.values()}
    assert written == {p.name for p in (sweep / "figures").glob("*.png")}
    text = report.path.read_text()
    assert all(f"(figures/{name})" in text for name in written)
    return written


def test_throughput_stn_kernels_curves_and_examples_with_regions(tmp_path):
    records = [make_record("resize_bilinear", s, 0.8) for s in (0, 1)] + [stn(0), stn(1)]
    write_all(records, tmp_path)
    write_examples_for(records[0], tmp_path)
    write_examples_for(records[2], tmp_path, theta=True)
    assert figure_files(tmp_path) == {
        "pareto_digits_96_cnn.png",
        "kernels_digits_96_cnn.png",
        "curves_digits_96_cnn.png",
        "examples_digits_96.png",
        "regions_digits_96.png",
    }


def test_without_throughput_there_is_no_pareto_figure(tmp_path):
    records = [make_record("resize_bilinear", s, 0.8) for s in (0, 1)]
    for record in records:
        record.throughput = {}
    write_all(records, tmp_path)
    assert figure_files(tmp_path) == {"curves_digits_96_cnn.png"}


@pytest.mark.parametrize("glimpses", [False, True])
def test_glimpse_metrics_add_a_table_not_a_figure(tmp_path, glimpses):
    records = [stn(s) for s in (0, 1)]
    for record in records:
        record.metrics.glimpse = dict(GLIMPSE) if glimpses else None
    write_all(records, tmp_path)
    text_has_glimpses = "## Where the learned samplers looked"
    assert figure_files(tmp_path) == {
        "pareto_digits_96_cnn.png",
        "kernels_digits_96_cnn.png",
        "curves_digits_96_cnn.png",
    }
    assert (text_has_glimpses in (tmp_path / "report.md").read_text()) is glimpses


def test_examples_without_theta_draw_no_regions_and_each_block_its_own_files(tmp_path):
    records = [
        make_record(reducer, 0, 0.8, dataset=dataset, classifier=classifier)
        for dataset in ("digits_96", "digits_276")
        for classifier in ("cnn", "mlp")
        for reducer in ("resize_bilinear", "pool_avg")
    ]
    write_all(records, tmp_path)
    write_examples_for(records[0], tmp_path)  # digits_96 only, no θ
    assert figure_files(tmp_path) == {
        *(
            f"{figure}_{block}.png"
            for figure in ("pareto", "curves")
            for block in ("digits_96_cnn", "digits_96_mlp", "digits_276_cnn", "digits_276_mlp")
        ),
        "examples_digits_96.png",
    }


def test_a_sweep_over_object_scale_draws_one_figure_for_the_sweep(tmp_path):
    for scale in (0.25, 0.5):
        record = make_record("resize_bilinear", 0, scale, epochs=1)
        record.throughput = {}
        record.config["dataset"]["object_scale"] = [scale, scale]
        record.run_id = f"resize-{scale}"
        write_record(record, tmp_path)
    # Each scale is a block of its own (its curves); the scale figure spans the sweep.
    assert figure_files(tmp_path) == {
        "curves_digits_96-object_scale-0.25-0.25-_cnn.png",
        "curves_digits_96-object_scale-0.5-0.5-_cnn.png",
        "object_scale.png",
    }


def test_failed_runs_alone_draw_nothing(tmp_path):
    write_all([make_record("pool_max", s, None, status="failed") for s in (0, 1)], tmp_path)
    assert figure_files(tmp_path) == set()


def test_every_figure_of_the_table_has_its_own_file_name_and_a_known_scope():
    names = [figure.name for figure in FIGURES]
    assert len(set(names)) == len(names) and "pareto" in names
    with pytest.raises(ValueError, match="scope 'run' is not one of"):
        ReportFigure("x", "x", applies=lambda data: True, draw=lambda data, path: None, scope="run")
