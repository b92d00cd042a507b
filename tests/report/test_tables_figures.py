import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from report_records import make_record

from stn.report import figures
from stn.report.stats import summarise
from stn.report.tables import latex_escape, to_latex, to_markdown, write_tables
from stn.results.collect import curves_frame, runs_frame


@pytest.fixture(scope="module")
def records():
    spec = {
        "resize_bilinear": ([0.80, 0.82, 0.84], 5000.0),
        "pool_avg": ([0.85, 0.86, 0.87], 9000.0),
        "stn_bilinear": ([0.90, 0.91, 0.92], 800.0),
        "stn_bilinear_aa": ([0.93, 0.94, 0.95], 600.0),
    }
    out = []
    for reducer, (accuracies, speed) in spec.items():
        kind = "stn" if reducer.startswith("stn") else "resize"
        options = (
            {"kernel": "bilinear", "antialias": reducer.endswith("_aa")} if kind == "stn" else {}
        )
        for seed, accuracy in enumerate(accuracies):
            out.append(
                make_record(
                    reducer, seed, accuracy, kind=kind, images_per_s=speed, reducer_options=options
                )
            )
    out.append(make_record("other_ds", 0, 0.1, dataset="tiny", images_per_s=1.0))
    return out


@pytest.fixture(scope="module")
def table(records):
    return summarise(runs_frame(records))


def _markdown_rows(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_markdown_marks_the_best_of_each_column_per_dataset(table):
    rows = _markdown_rows(to_markdown(table))
    assert len(rows) == len(table) == 5
    assert [r[1] for r in rows[:4]] == [
        "stn_bilinear_aa",
        "stn_bilinear",
        "pool_avg",
        "resize_bilinear",
    ]
    bold_accuracy = [r[1] for r in rows if r[3].startswith("**")]
    assert bold_accuracy == ["stn_bilinear_aa", "other_ds"]  # best of each dataset
    bold_speed = [r[1] for r in rows if r[8].startswith("**")]
    assert bold_speed == ["pool_avg", "other_ds"]
    header = [c.strip() for c in to_markdown(table).splitlines()[0].strip("|").split("|")]
    assert header[3:5] == ["test accuracy (95 % CI)", "group"]  # the group beside accuracy
    assert [r[4] for r in rows] == table["group"].tolist()
    assert rows[0][4] == "a" and rows[-1][4] == "n/a — needs ≥ 2 seeds"
    assert rows[0][3] == "**94.0 ± 2.5 %**"  # 0.01 std, t(2) = 4.303, 4.303*0.01/√3 = 0.0248


def test_csv_reads_back_equal_to_the_table(table, tmp_path):
    paths = write_tables(table, tmp_path)
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == list(table.columns)
    numeric = table.select_dtypes("number").columns
    pd.testing.assert_frame_equal(back[numeric], table[numeric], check_dtype=False)
    assert back["vs_baseline"].tolist() == table["vs_baseline"].tolist()
    assert paths["markdown"].read_text().strip() == to_markdown(table)


def test_latex_is_a_booktabs_tabular_with_one_line_per_row(table, tmp_path):
    text = write_tables(table, tmp_path)["latex"].read_text()
    assert text == to_latex(table)
    body = text.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    header = text.split("\\toprule")[1].split("\\midrule")[0].strip()
    assert "\\toprule" in text and text.strip().endswith("\\end{tabular}")
    assert len(body) == len(table)
    assert all(line.count("&") == header.count("&") for line in body)
    assert "stn\\_bilinear\\_aa" in body[0] and "\\textbf{94.0 $\\pm$ 2.5 \\%}" in body[0]
    assert "±" not in text and "_" not in text.replace("\\_", "")
    assert "+12.0 [+9.5, +14.5] better (Holm p=" in body[0]
    assert "<" not in text.replace("$<$", "")  # not ¡ in pdflatex
    assert "$\\Delta$ points" in header and "Δ" not in text


def test_latex_escape_handles_every_special_character():
    assert latex_escape("a_b & 5% #1 {x} ~^\\") == (
        "a\\_b \\& 5\\% \\#1 \\{x\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    )


def test_empty_table_says_so():
    assert to_markdown(summarise(runs_frame([]))) == "(no trained runs yet)"


def test_pareto_front_against_brute_force():
    rng = np.random.default_rng(1)
    x, y = rng.random(40), rng.random(40)
    x[3], y[3] = np.nan, 2.0  # NaN never on the front
    expected = [
        i
        for i in range(40)
        if np.isfinite(x[i])
        and not any(
            (x[j] >= x[i]) and (y[j] >= y[i]) and (x[j] > x[i] or y[j] > y[i])
            for j in range(40)
            if np.isfinite(x[j])
        )
    ]
    front = figures.pareto_front(x, y)
    assert sorted(front) == sorted(expected)
    assert list(x[front]) == sorted(x[front])


def test_quadrilateral_of_identity_is_the_image_border():
    corners = figures.sampling_quadrilateral(np.array([[1, 0, 0], [0, 1, 0]]), 60, 80)
    assert corners.tolist() == [[-0.5, -0.5], [79.5, -0.5], [79.5, 59.5], [-0.5, 59.5]]


def test_quadrilateral_agrees_with_affine_grid():
    # Reference: F.affine_grid's outermost sample centres, extended by half a sample step,
    # are the corners of the sampled region; converted to input pixels (align_corners=False).
    theta = torch.tensor([[[0.4, -0.1, 0.2], [0.15, 0.5, -0.3]]], dtype=torch.float64)
    height, width, out = 90, 70, 12
    grid = F.affine_grid(theta, (1, 1, out, out), align_corners=False)[0]  # (h, w, 2)
    step_x, step_y = grid[0, 1] - grid[0, 0], grid[1, 0] - grid[0, 0]
    top_left = grid[0, 0] - step_x / 2 - step_y / 2
    bottom_right = grid[-1, -1] + step_x / 2 + step_y / 2
    scale = torch.tensor([width, height], dtype=torch.float64)
    to_pixels = lambda p: (((p + 1) * scale - 1) / 2).numpy()  # noqa: E731
    corners = figures.sampling_quadrilateral(theta[0].numpy(), height, width)
    np.testing.assert_allclose(corners[0], to_pixels(top_left), atol=1e-9)
    np.testing.assert_allclose(corners[2], to_pixels(bottom_right), atol=1e-9)


def _png_size(path):
    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_figures_are_pngs_of_the_expected_size(table, records, tmp_path):
    plot_px = (int(figures.PLOT_SIZE[0] * figures.DPI), int(figures.PLOT_SIZE[1] * figures.DPI))
    block = table[table["dataset"] == "digits_96"]
    assert _png_size(figures.plot_accuracy_vs_throughput(block, tmp_path / "p.png")) == plot_px
    stn = block[block["reducer_kind"] == "stn"]
    assert _png_size(figures.plot_kernel_accuracy(stn, tmp_path / "k.png")) == plot_px
    curves = curves_frame(records)
    assert _png_size(figures.plot_learning_curves(curves, tmp_path / "c.png")) == plot_px

    inputs = np.zeros((5, 1, 96, 96), np.uint8)
    outputs = {"a": np.zeros((5, 1, 48, 48)), "b": np.ones((5, 1, 48, 48))}
    width, height = figures.grid_size(3, 5)
    grid_px = (round(width * figures.DPI), round(height * figures.DPI))
    assert _png_size(figures.plot_example_grid(inputs, outputs, tmp_path / "e.png")) == grid_px
    thetas = {"stn": np.tile(np.eye(2, 3), (5, 1, 1))}
    boxes = np.tile([[10.0, 10.0, 40.0, 40.0]], (5, 1))
    path = figures.plot_sampling_regions(inputs, thetas, tmp_path / "r.png", boxes)
    width, height = figures.grid_size(1, 5)
    assert _png_size(path) == (round(width * figures.DPI), round(height * figures.DPI))
    # the region's outline is drawn in red on the black input
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert ((pixels[..., 0] > 200) & (pixels[..., 1] < 80)).any()


def test_a_region_larger_than_the_canvas_is_not_drawn_over_its_neighbours(tmp_path):
    inputs = np.zeros((3, 1, 96, 96), np.uint8)
    # Three times the canvas, centred: every outline lies outside its own picture and,
    # uncut, would cross the pictures beside it.
    thetas = {"stn": np.tile(3 * np.eye(2, 3), (3, 1, 1))}
    path = figures.plot_sampling_regions(inputs, thetas, tmp_path / "r.png")
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert not ((pixels[..., 0] > 200) & (pixels[..., 1] < 80)).any()


def test_learning_curves_keep_up_to_forty_reducers_apart():
    looks = figures.line_styles(40)
    assert len(set(looks)) == 40 and looks[0] != looks[10] and looks[0][0] == looks[10][0]


def test_several_windows_per_picture_are_drawn_first_in_red_then_orange(tmp_path):
    inputs = np.zeros((2, 1, 96, 96), np.uint8)
    # two windows per picture: a 48-px one at the centre, a 24-px one in a corner
    small = np.array([[0.25, 0, -0.5], [0, 0.25, -0.5]])
    windows = np.stack([0.5 * np.eye(2, 3), small])  # (G, 2, 3), most attended first
    thetas = {"windows": np.stack([windows, windows])}  # (k, G, 2, 3)
    path = figures.plot_sampling_regions(inputs, thetas, tmp_path / "r.png")
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80)
    orange = (pixels[..., 0] > 200) & (pixels[..., 1] > 100) & (pixels[..., 1] < 200)
    assert red.any() and orange.any()
    # the corner window lies up and left of the centre one
    assert np.argwhere(orange)[:, 0].min() < np.argwhere(red)[:, 0].min()


def test_window_labels_give_each_window_its_side_and_weight(tmp_path, monkeypatch):
    assert figures.window_label(64) == "64"
    assert figures.window_label(64, 0.4213) == "64·.42"
    assert figures.window_label(32, 1.0) == "32·1.00"
    drawn = []
    save = figures.save_png
    monkeypatch.setattr(
        figures, "save_png", lambda figure, path: drawn.append(figure) or save(figure, path)
    )
    inputs = np.zeros((2, 1, 96, 96), np.uint8)
    small = np.array([[0.25, 0, -0.5], [0, 0.25, -0.5]])
    windows = np.stack([0.5 * np.eye(2, 3), small])  # 48 px and 24 px, (G, 2, 3)
    thetas = {"ips": np.stack([windows, windows]), "other": np.stack([windows, windows])}
    weights = {"ips": np.array([[0.75, 0.25], [0.6, 0.4]])}  # none for "other"
    figures.plot_sampling_regions(inputs, thetas, tmp_path / "r.png", None, weights)
    texts = sorted(t.get_text() for t in drawn[0].axes[0].texts if t.get_text() not in thetas)
    assert texts == sorted(["48·.75", "24·.25", "48·.60", "24·.40", "48", "24", "48", "24"])


def test_long_row_names_fit_on_the_example_grids_and_the_kernel_figure():
    """Row names of options swept under one preset are long
    (``ips_windows (antialias=false, kernel=lanczos3)``): every label stays inside the
    picture."""
    names = ["ips_windows (antialias=false, kernel=lanczos3)", "resize_area"]
    mosaic = np.zeros((2 * 50, 5 * 50, 3), np.float32)
    figure, ax = figures._grid_figure(5, mosaic, names)
    figures._label_rows(ax, names, 48)
    renderer = figure.canvas.get_renderer()
    assert all(text.get_window_extent(renderer).x0 >= 0 for text in ax.texts)
    assert figures.grid_size(2, 5, names)[0] > figures.grid_size(2, 5)[0]
    table = pd.DataFrame(
        {
            "reducer": names,
            "kernel": ["lanczos3", "bilinear"],
            "antialias": [False, True],
            "accuracy_mean": [0.9, 0.8],
            "accuracy_ci95": [0.01, 0.01],
            "n": [3, 3],
        }
    )
    figure, ax = figures.new_plot()
    ax.set_yticks([0, 1], names, fontsize=8)
    figure.subplots_adjust(left=figures._label_margin(table["reducer"], figure))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    assert all(label.get_window_extent(renderer).x0 >= 0 for label in ax.get_yticklabels())
