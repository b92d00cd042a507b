"""Accuracy against object scale: read from records, one line per reducer."""

import pytest

from stn.report.figures_scale import object_scale_frame, plot_accuracy_vs_object_scale
from stn.results.collect import runs_frame
from stn.results.record import Metrics, ReducerInfo, new_record


def record(reducer, scale, seed, accuracy, status="ok"):
    dataset = {"name": "digits_128", "object_scale": scale}
    config = {"seed": seed, "dataset": dataset, "reducer": {"name": reducer}}
    made = new_record(config, "t")
    made.status = status
    made.reducer = ReducerInfo(name=reducer)
    made.metrics = Metrics(test_accuracy=accuracy)
    return made


def test_plot_averages_seeds_per_reducer_and_scale(tmp_path):
    records = [
        record("resize", [0.1, 0.1], 0, 0.2),
        record("resize", [0.1, 0.1], 1, 0.4),
        record("resize", [0.5, 0.5], 0, 0.9),
        record("stn", [0.1, 0.1], 0, 0.7),
        record("stn", [0.2, 0.3], 0, 0.8),
        record("stn", [0.5, 0.5], 0, 0.1, status="failed"),
        record("stn", None, 0, 0.5),
    ]
    frame = object_scale_frame(runs_frame(records))
    assert frame["object_scale"].tolist()[:5] == pytest.approx([0.1, 0.1, 0.5, 0.1, 0.25])
    path = tmp_path / "fig" / "scale.png"
    table = plot_accuracy_vs_object_scale(frame, path)
    assert path.stat().st_size > 0
    rows = {(r.reducer, r.object_scale): (r.mean, r.n) for r in table.itertuples()}
    assert rows == {
        ("resize", 0.1): (pytest.approx(0.3), 2),
        ("resize", 0.5): (pytest.approx(0.9), 1),
        ("stn", 0.1): (pytest.approx(0.7), 1),
        ("stn", 0.25): (pytest.approx(0.8), 1),
    }


def test_no_scaled_runs_says_which_experiment_to_run(tmp_path):
    frame = object_scale_frame(runs_frame([record("resize", None, 0, 0.5)]))
    with pytest.raises(ValueError, match="experiment=object_scale"):
        plot_accuracy_vs_object_scale(frame, tmp_path / "x.png")
