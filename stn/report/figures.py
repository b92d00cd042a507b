"""Report figures as PNG files (matplotlib's object API on the Agg canvas, no pyplot).

Every function takes plain data (the summary table, the curves frame, example arrays),
writes one PNG of a known pixel size (``figsize × DPI``, no tight bounding box) and
returns its path. Nothing here reads records or re-runs anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon, Rectangle
from matplotlib.text import Annotation

from stn.report.label_placement import place_labels
from stn.results.atomic import write_atomically

DPI = 100
PLOT_SIZE = (8.0, 5.0)  # inches: the Pareto, kernel and learning-curve figures
TILE = 1.3  # inches per picture in the example grids
LABEL_WIDTH = 1.6  # inches for the row labels of the example grids

# Output corners in normalised coordinates, in drawing order.
_CORNERS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both ``x`` and ``y`` (both larger is
    better), ordered by ``x``; NaN points are never on the front."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    valid = [i for i in range(len(x)) if np.isfinite(x[i]) and np.isfinite(y[i])]
    front, best_y = [], -np.inf
    for i in sorted(valid, key=lambda i: (-x[i], -y[i])):
        if y[i] > best_y:
            front.append(i)
            best_y = y[i]
    return sorted(front, key=lambda i: x[i])


def sampling_quadrilateral(theta: np.ndarray, height: int, width: int) -> np.ndarray:
    """Where an affine STN's output lands on its ``height × width`` input.

    ``theta`` ``(2, 3)`` maps output coordinates to input coordinates, both normalised
    to [-1, 1] (``F.affine_grid``). The output's outer corners (±1) map to
    ``theta @ [x, y, 1]``; with ``align_corners=False`` normalised -1 and +1 are the
    outer edges of the first and last pixel, i.e. pixel coordinates -0.5 and size-0.5
    (pixel centres at integers, as ``imshow`` draws them). Returns ``(4, 2)`` (x, y).
    """
    theta = np.asarray(theta, dtype=float).reshape(2, 3)
    homogeneous = np.hstack([_CORNERS, np.ones((4, 1))])
    normalised = homogeneous @ theta.T  # (4, 2): x, y in [-1, 1] when inside
    scale = np.array([width, height], dtype=float)
    return ((normalised + 1) * scale - 1) / 2


def plot_accuracy_vs_throughput(
    table: pd.DataFrame,
    path: str | os.PathLike,
    throughput: str = "tp_reducer_images_per_s",
    note: str | None = None,
) -> Path:
    """Mean test accuracy (with 95 % CI) against median reducer images/s, one point per
    reducer, the Pareto front drawn through the points no other reducer beats on both;
    ``note`` (why the speeds do not compare) under the axis label."""
    figure, _ = draw_accuracy_vs_throughput(table, throughput, note)
    return save_png(figure, path)


def draw_accuracy_vs_throughput(
    table: pd.DataFrame, throughput: str = "tp_reducer_images_per_s", note: str | None = None
) -> tuple[Figure, list[Annotation]]:
    """The figure of ``plot_accuracy_vs_throughput`` and its point labels, which never
    overlap (``stn.report.label_placement``): the front's in bold, placed first."""
    figure, ax = new_plot()
    data = table.dropna(subset=["accuracy_mean", throughput]).reset_index(drop=True)
    x, y = data[throughput].to_numpy(float), 100 * data["accuracy_mean"].to_numpy(float)
    error = 100 * data["accuracy_ci95"].fillna(0).to_numpy(float)
    ax.errorbar(x, y, yerr=error, fmt="o", color="tab:blue", ecolor="0.6", capsize=3)
    front = pareto_front(x, y)
    ax.plot(x[front], y[front], "-", color="tab:red", label="Pareto front")
    if len(x) and (x > 0).all():
        ax.set_xscale("log")
    label = throughput.removeprefix("tp_").replace("_images_per_s", " images/s").replace("_", " ")
    ax.set_xlabel(f"{label} (median over seeds, log scale)" + (f"\n{note}" if note else ""))
    ax.set_ylabel("test accuracy, % (mean ± 95 % CI)")
    ax.grid(True, alpha=0.3)
    legend = ax.legend(loc="lower left")
    rest = sorted(set(range(len(x))) - set(front), key=lambda i: -y[i])
    labels = place_labels(
        ax,
        x,
        y,
        data["reducer"].astype(str).tolist(),
        order=[*front, *rest],
        obstacles=[legend.get_window_extent(figure.canvas.get_renderer())],
        fontsize=8,
        fontweight=["bold" if i in front else "normal" for i in range(len(x))],
    )
    return figure, labels


KERNEL_BAR_COLUMNS = ["kernel", "antialias", "reducer", "accuracy_mean", "accuracy_ci95", "n"]


def kernel_bars(table: pd.DataFrame) -> pd.DataFrame:
    """The bars of the kernel figure: one per sampler configuration (summary row),
    never an average over configurations that share a kernel.

    ``table``: summary rows of one (dataset, classifier) block with ``kernel`` and
    ``antialias``; rows without a kernel are left out. Returns ``KERNEL_BAR_COLUMNS``
    ordered by kernel, plain before anti-aliased, then best accuracy first; each bar's
    ``accuracy_ci95`` is that configuration's interval over its own seeds.
    """
    rows = table[table["kernel"].notna()]
    if rows["reducer"].duplicated().any():
        raise ValueError(
            "kernel figure: a reducer appears twice; pass the rows of one "
            "(dataset, classifier) block of the summary table"
        )
    bars = rows.assign(kernel=rows["kernel"].astype(str), antialias=rows["antialias"].astype(bool))
    bars = bars.sort_values(
        ["kernel", "antialias", "accuracy_mean"], ascending=[True, True, False], kind="stable"
    )
    return bars[KERNEL_BAR_COLUMNS].reset_index(drop=True)


def plot_kernel_accuracy(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Test accuracy of each sampler configuration (an STN or a learned window selector;
    one bar each, mean ± 95 % CI over its seeds), grouped under its sampling kernel, plain
    and anti-aliased told apart by colour.

    ``table`` holds the summary rows of those reducers with ``kernel`` and ``antialias``
    (see ``kernel_bars``).
    """
    bars = kernel_bars(table)
    figure, ax = new_plot()
    positions, headers = _grouped_positions(bars["kernel"].tolist())
    colors = np.where(bars["antialias"], "tab:orange", "tab:blue")
    means = 100 * bars["accuracy_mean"].to_numpy(float)
    errors = 100 * bars["accuracy_ci95"].fillna(0).to_numpy(float)
    ax.barh(positions, means, 0.8, xerr=errors, capsize=3, color=colors, ecolor="0.3")
    for y, mean, error, n in zip(positions, means, errors, bars["n"], strict=True):
        ax.annotate(
            f"{mean:.1f} % (n={int(n)})",
            (mean + error, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    for kernel, y in headers.items():
        # x in axes fractions (just inside the left edge), y in data
        ax.text(
            0.005,
            y,
            f"{kernel} kernel",
            fontsize=8,
            fontweight="bold",
            va="center",
            transform=ax.get_yaxis_transform(),
        )
    ax.set_yticks(positions, bars["reducer"].astype(str).tolist(), fontsize=8)
    ax.set_ylim(max(positions, default=0.0) + 0.6, -0.6)  # first kernel on top, headings in
    right = float(np.max(means + errors)) if len(means) else 100.0
    ax.set_xlim(0, max(100.0, right) * 1.15)  # room for the value labels
    ax.set_xlabel("test accuracy, % (mean ± 95 % CI over the seeds of each configuration)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(
        handles=[
            Patch(color="tab:blue", label="plain"),
            Patch(color="tab:orange", label="anti-aliased"),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),  # above the axes: inside, it hid the last bar's label
        ncol=2,
        frameon=False,
        fontsize=8,
    )
    figure.subplots_adjust(left=_label_margin(bars["reducer"], figure), right=0.97)
    return save_png(figure, path)


def _label_margin(labels: pd.Series, figure: Figure) -> float:
    """The left margin (figure fraction) that fits the longest tick label, at least 0.25,
    at most 0.6."""
    inches = _text_inches(labels)
    return float(min(0.6, max(0.25, inches / figure.get_figwidth() + 0.03)))


def _text_inches(labels: Iterable[object] | None, fontsize: float = 8) -> float:
    """About how wide the longest of ``labels`` is at ``fontsize`` (a character ≈ 0.6 em)."""
    longest = max((len(str(label)) for label in (labels if labels is not None else [])), default=0)
    return longest * 0.6 * fontsize / 72


def _grouped_positions(groups: list[str]) -> tuple[list[float], dict[str, float]]:
    """Bar positions for consecutive runs of equal ``groups``, each run preceded by a
    free slot for its heading; returns the positions and ``{group: heading position}``."""
    positions: list[float] = []
    headers: dict[str, float] = {}
    y = 0.0
    for i, group in enumerate(groups):
        if i == 0 or group != groups[i - 1]:
            headers[group] = y
            y += 1.0
        positions.append(y)
        y += 1.0
    return positions, headers


def line_styles(n: int) -> list[tuple[str, str]]:
    """``n`` distinct (colour, line style) pairs: ten colours, then the same ten dashed,
    dotted, …, so a sweep of more than ten reducers keeps every line apart."""
    styles = ("-", "--", ":", "-.")
    return [(f"C{i % 10}", styles[(i // 10) % len(styles)]) for i in range(n)]


def plot_learning_curves(curves: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Test accuracy and training loss per epoch, one line per reducer (mean over seeds)."""
    figure = Figure(figsize=PLOT_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    accuracy_ax, loss_ax = figure.subplots(1, 2)
    groups = list(curves.groupby("reducer", sort=True))
    for (reducer, rows), (color, style) in zip(groups, line_styles(len(groups)), strict=True):
        mean = rows.groupby("epoch")[["test_accuracy", "train_loss"]].mean(numeric_only=True)
        look = {"marker": ".", "color": color, "linestyle": style, "label": str(reducer)}
        accuracy_ax.plot(mean.index, 100 * mean["test_accuracy"], **look)
        loss_ax.plot(mean.index, mean["train_loss"], **look)
    accuracy_ax.set(xlabel="epoch", ylabel="test accuracy, %", title="held-out accuracy")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="training loss")
    for ax in (accuracy_ax, loss_ax):
        ax.grid(True, alpha=0.3)
    # Beside the plots, not on them: a dozen reducers' legend hides the curves.
    figure.legend(*accuracy_ax.get_legend_handles_labels(), loc="center right", fontsize=6)
    figure.subplots_adjust(left=0.08, right=0.76, wspace=0.3)
    return save_png(figure, path)


def grid_size(rows: int, columns: int, labels: list[str] | None = None) -> tuple[float, float]:
    """Inches of an example grid with ``rows × columns`` pictures; the row labels get
    ``LABEL_WIDTH``, or what the longest of ``labels`` needs at 8 pt."""
    return (_label_width(labels) + TILE * columns, TILE * rows + 0.3)


def _label_width(labels: list[str] | None) -> float:
    """Inches a column of row labels needs."""
    return max(LABEL_WIDTH, _text_inches(labels) + 0.2)


def plot_example_grid(
    inputs: np.ndarray, outputs: dict[str, np.ndarray], path: str | os.PathLike
) -> Path:
    """The same test inputs ``(k, C, H, W)`` (first row) and each reducer's output
    ``(k, C, h, w)`` (one row per reducer, named on the left), every picture shown at
    the same size with nearest-neighbour enlargement so a reducer's pixels stay visible."""
    rows = [("input", inputs.astype(np.float32) / 255.0), *outputs.items()]
    tile = max(int(images.shape[-1]) for _, images in rows)
    mosaic = _mosaic([images for _, images in rows], len(inputs), tile)
    figure, ax = _grid_figure(len(inputs), mosaic, [name for name, _ in rows])
    _label_rows(ax, [name for name, _ in rows], tile)
    return save_png(figure, path)


def plot_sampling_regions(
    inputs: np.ndarray,
    thetas: dict[str, np.ndarray],
    path: str | os.PathLike,
    boxes: np.ndarray | None = None,
    weights: dict[str, np.ndarray] | None = None,
) -> Path:
    """Each STN's learned sampling region (quadrilateral of θ ``(k, 2, 3)``) drawn on the
    inputs ``(k, C, H, W)``, one row per STN, cut at each picture's edge; the true object
    box dashed when known. A reducer that reads G windows per image gives θ
    ``(k, G, 2, 3)``, most attended first: the first is drawn in red, the others in orange,
    each labelled with its side in input pixels and, when ``weights`` has the reducer's
    ``(k, G)`` weights, its weight in the reading (``64·.42``)."""
    columns = len(inputs)
    height, width = inputs.shape[-2:]
    tile = max(height, width)
    images = inputs.astype(np.float32) / 255.0
    mosaic = _mosaic([images] * len(thetas), columns, tile)
    figure, ax = _grid_figure(columns, mosaic, list(thetas))
    scale = np.array([tile / width, tile / height])
    for r, (name, theta) in enumerate(thetas.items()):
        shares = (weights or {}).get(name)
        for c in range(min(columns, len(theta))):
            origin = np.array([c * (tile + _GAP), r * (tile + _GAP)])
            windows = np.asarray(theta[c]).reshape(-1, 2, 3)
            for g in reversed(range(len(windows))):  # the most attended drawn last, on top
                share = None if shares is None else float(np.asarray(shares[c]).ravel()[g])
                _draw_region(
                    ax, windows[g], origin, scale, (height, width), tile, g, len(windows), share
                )
            if boxes is not None and c < len(boxes):
                x0, y0, x1, y1 = np.asarray(boxes[c], dtype=float)
                ax.add_patch(
                    Rectangle(
                        origin + np.array([x0, y0]) * scale - 0.5,
                        (x1 - x0) * scale[0],
                        (y1 - y0) * scale[1],
                        fill=False,
                        edgecolor="lime",
                        lw=1,
                        ls="--",
                    )
                )
    _label_rows(ax, list(thetas), tile)
    return save_png(figure, path)


def _draw_region(
    ax: Any,
    theta: np.ndarray,
    origin: np.ndarray,
    scale: np.ndarray,
    size: tuple[int, int],
    tile: int,
    rank: int,
    count: int,
    weight: float | None = None,
) -> None:
    """One sampling region on its picture: the first of several in red, the rest orange;
    with several, each is labelled with its side in input pixels and its ``weight`` in the
    reading when known (``64·.42``: 64 px, 0.42)."""
    height, width = size
    # input pixel coords (edges at -0.5) → mosaic coords (same convention)
    corners = (sampling_quadrilateral(theta, height, width) + 0.5) * scale - 0.5
    colour, line = ("red", 1.5) if rank == 0 else ("orange", 1.0)
    region = Polygon(corners + origin, closed=True, fill=False, edgecolor=colour, lw=line)
    ax.add_patch(region)
    # A window larger than the canvas or off it is cut at its own picture's edge, not drawn
    # across its neighbours.
    frame = Rectangle(origin - 0.5, tile, tile, transform=ax.transData)
    region.set_clip_path(frame)
    if count > 1:
        side = round(float(np.hypot(theta[0, 0], theta[1, 0])) * width)
        x, y = corners.min(0) + origin
        label = ax.text(
            x + 1, y + 1, window_label(side, weight), color=colour, fontsize=5, va="top"
        )
        label.set_clip_path(frame)


def window_label(side: int, weight: float | None = None) -> str:
    """A window's label on the region figure: its side in input pixels, then its weight in
    the reading to two decimals without the leading zero (``64·.42``, ``32·1.00``)."""
    if weight is None:
        return str(side)
    share = f"{weight:.2f}"
    return f"{side}·{share[1:] if share.startswith('0.') else share}"


def new_plot() -> tuple[Figure, object]:
    """A figure of :data:`PLOT_SIZE` at :data:`DPI` on the Agg canvas, and its one axes."""
    figure = Figure(figsize=PLOT_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


_GAP = 2  # mosaic pixels between pictures


def _mosaic(rows: list[np.ndarray], columns: int, tile: int) -> np.ndarray:
    """One RGB picture ``(rows·tile, columns·tile, 3)`` of ``(k, C, h, w)`` stacks, each
    enlarged to ``tile × tile`` by nearest neighbour (one imshow is far cheaper than one
    axes per picture); values clipped to [0, 1], gaps mid-grey."""
    step = tile + _GAP
    mosaic = np.full((len(rows) * step - _GAP, columns * step - _GAP, 3), 0.5, np.float32)
    for r, images in enumerate(rows):
        for c in range(min(columns, len(images))):
            image = np.clip(np.asarray(images[c], dtype=np.float32), 0.0, 1.0)
            rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image[:3]
            rows_idx = np.arange(tile) * rgb.shape[1] // tile
            cols_idx = np.arange(tile) * rgb.shape[2] // tile
            enlarged = rgb[:, rows_idx][:, :, cols_idx]
            mosaic[r * step : r * step + tile, c * step : c * step + tile] = enlarged.transpose(
                1, 2, 0
            )
    return mosaic


def _grid_figure(columns: int, mosaic: np.ndarray, labels: list[str]) -> tuple[Figure, object]:
    """A figure for ``mosaic`` with one row per label, room left for the labels."""
    size = grid_size(len(labels), columns, labels)
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    left = _label_width(labels) / size[0]
    ax = figure.add_axes((left, 0.02, 0.99 - left, 0.96))
    ax.imshow(mosaic, interpolation="nearest", aspect="equal")
    ax.set_axis_off()
    return figure, ax


def _label_rows(ax: object, names: list[str], tile: int) -> None:
    for r, name in enumerate(names):
        y = r * (tile + _GAP) + tile / 2
        ax.text(-tile * 0.08, y, str(name), ha="right", va="center", fontsize=8)


def save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` as a PNG at ``path``; returns the path."""
    # Atomically: a figure that cannot be written whole leaves the previous one.
    return write_atomically(path, lambda handle: figure.savefig(handle, dpi=DPI, format="png"))
