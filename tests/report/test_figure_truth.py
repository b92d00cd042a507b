"""Figures that tell the truth and stay legible (issue 20, items 8 and 9): one kernel bar
per STN configuration, and Pareto labels that never overlap on a crowded sweep."""

import itertools
import math

import pandas as pd
import pytest
from matplotlib.text import Text
from report_records import make_record

from stn.report import figures
from stn.report.label_placement import place_labels
from stn.report.stats import summarise
from stn.results.collect import runs_frame

# Twenty reducers like the main job's, with two tight clusters (within 1 % accuracy and
# 10 % throughput of each other) whose names overwrote each other: accuracy per seed
# (three seeds), reducer images/s, STN kernel and anti-aliasing.
CLUSTERED = {
    "stn_bicubic": ((0.610, 0.612, 0.614), 800.0, ("bicubic", False)),
    "stn_gaussian": ((0.615, 0.618, 0.621), 840.0, ("gaussian", False)),
    "pool_blur": ((0.612, 0.615, 0.618), 870.0, None),
    "stn_lanczos": ((0.605, 0.607, 0.609), 780.0, ("lanczos", False)),
    "pool_avg": ((0.550, 0.552, 0.554), 9000.0, None),
    "resize_bilinear": ((0.553, 0.555, 0.557), 9500.0, None),
    "resize_area": ((0.548, 0.551, 0.554), 9800.0, None),
    "resize_nearest": ((0.500, 0.505, 0.510), 12000.0, None),
    "resize_bicubic": ((0.556, 0.559, 0.562), 8700.0, None),
    "resize_bilinear_aa": ((0.60, 0.62, 0.64), 7000.0, None),
    "resize_bicubic_aa": ((0.61, 0.63, 0.65), 6500.0, None),
    "pool_max": ((0.45, 0.47, 0.49), 9200.0, None),
    "pca": ((0.40, 0.42, 0.44), 3000.0, None),
    "stn_bilinear": ((0.40, 0.461, 0.522), 1500.0, ("bilinear", False)),
    "stn_blob": ((0.78, 0.787, 0.794), 1400.0, ("bilinear", False)),
    "stn_bilinear_aa": ((0.66, 0.67, 0.68), 600.0, ("bilinear", True)),
    "stn_bicubic_aa": ((0.68, 0.69, 0.70), 550.0, ("bicubic", True)),
    "stn_gaussian_aa": ((0.685, 0.69, 0.695), 570.0, ("gaussian", True)),
    "learned_resizer": ((0.70, 0.72, 0.74), 400.0, None),
    "saliency_sampler": ((0.52, 0.54, 0.56), 300.0, None),
}


def clustered_records() -> list[dict]:
    records = []
    for reducer, (accuracies, speed, stn) in CLUSTERED.items():
        options = {} if stn is None else {"kernel": stn[0], "antialias": stn[1]}
        kind = "stn" if stn else reducer.split("_")[0]
        for seed, accuracy in enumerate(accuracies):
            records.append(
                make_record(
                    reducer,
                    seed,
                    accuracy,
                    kind=kind,
                    images_per_s=speed,
                    reducer_options=options,
                )
            )
    return records


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return summarise(runs_frame(clustered_records()))


def test_two_configurations_with_one_kernel_are_two_bars_each_with_its_own_spread(table):
    stn = table[table["reducer_kind"] == "stn"]
    bars = figures.kernel_bars(stn).set_index("reducer")
    assert len(bars) == 8  # one per STN configuration, none merged
    bilinear_plain = bars[(bars["kernel"] == "bilinear") & ~bars["antialias"]]
    assert sorted(bilinear_plain.index) == ["stn_bilinear", "stn_blob"]
    # Each bar is its configuration's own mean and CI over its seeds (the table's), not
    # the 62.4 % mean of the two the old figure drew.
    for reducer in ("stn_bilinear", "stn_blob"):
        row = table.set_index("reducer").loc[reducer]
        assert bars.loc[reducer, "accuracy_mean"] == pytest.approx(row["accuracy_mean"])
        assert bars.loc[reducer, "accuracy_ci95"] == pytest.approx(row["accuracy_ci95"])
    assert bars.loc["stn_bilinear", "accuracy_mean"] == pytest.approx(0.461)
    assert bars.loc["stn_blob", "accuracy_mean"] == pytest.approx(0.787)
    assert bars.loc["stn_bilinear", "accuracy_ci95"] > 5 * bars.loc["stn_blob", "accuracy_ci95"]
    # grouped by kernel, plain before anti-aliased, best first within a group
    assert list(figures.kernel_bars(stn)["reducer"][:3]) == [
        "stn_bicubic",
        "stn_bicubic_aa",
        "stn_blob",
    ]


def test_the_kernel_figure_refuses_rows_of_several_blocks(table):
    stn = table[table["reducer_kind"] == "stn"]
    with pytest.raises(ValueError, match="one \\(dataset, classifier\\) block"):
        figures.kernel_bars(pd.concat([stn, stn]))


def test_no_two_pareto_labels_overlap_on_a_crowded_sweep(table):
    figure, labels = figures.draw_accuracy_vs_throughput(table)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    assert sorted(label.get_text() for label in labels) == sorted(CLUSTERED)
    # The text's own box (an annotation's extent also spans its leader line)
    boxes = {label.get_text(): Text.get_window_extent(label, renderer) for label in labels}
    overlapping = [
        (a, b)
        for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2)
        if box_a.overlaps(box_b)
    ]
    assert overlapping == []
    axes_box = figure.axes[0].get_window_extent(renderer)
    assert all(
        axes_box.contains(b.x0, b.y0) and axes_box.contains(b.x1, b.y1) for b in boxes.values()
    )
    legend = figure.axes[0].get_legend().get_window_extent(renderer)
    assert not any(box.overlaps(legend) for box in boxes.values())


def test_the_old_placement_did_overlap_on_this_sweep(table):
    # The case above is a real test: labels at a fixed offset (the old figure) collide.
    figure, ax = figures.new_plot()
    x = table["tp_reducer_images_per_s"].to_numpy(float)
    y = 100 * table["accuracy_mean"].to_numpy(float)
    ax.plot(x, y, "o")
    ax.set_xscale("log")
    texts = [
        ax.annotate(n, (a, b), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for n, a, b in zip(table["reducer"], x, y, strict=True)
    ]
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_a_label_with_room_sits_beside_its_point_without_a_line():
    figure, ax = figures.new_plot()
    ax.plot([1.0, 10.0], [1.0, 10.0], "o")
    labels = place_labels(ax, [1.0, 10.0], [1.0, 10.0], ["a", "b"], fontsize=8)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for label, point in zip(labels, [(1.0, 1.0), (10.0, 10.0)], strict=True):
        assert label.arrowprops is None  # near and unambiguous: no leader line
        box = Text.get_window_extent(label, renderer)
        px, py = ax.transData.transform(point)
        gap_x = max(box.x0 - px, 0.0, px - box.x1)
        gap_y = max(box.y0 - py, 0.0, py - box.y1)
        assert math.hypot(gap_x, gap_y) < 10  # pixels from its point


def test_labels_of_many_coincident_points_still_never_overlap():
    figure, ax = figures.new_plot()
    x = [5.0 + 0.01 * i for i in range(25)]
    y = [50.0 + 0.01 * (i % 3) for i in range(25)]
    ax.plot(x, y, "o")
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 100)
    labels = place_labels(ax, x, y, [f"reducer_{i}" for i in range(25)], fontsize=8)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [Text.get_window_extent(label, renderer) for label in labels]
    assert len(boxes) == 25
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    assert all(label.arrowprops is not None for label in labels[1:])  # each tied to its point
