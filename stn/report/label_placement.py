"""Point labels that never overlap: each label goes to the nearest good spot around its
point, tried ring by ring, with a thin leader line to its point when it had to move away
or sits as near another point as its own.

Deterministic and dependency-free (matplotlib only). Every candidate spot inside the
axes is scored by what is wrong with it, most serious first: overlapping a label placed
before it (or an obstacle such as the legend), covering a point marker, a leader line
crossing a label, a leader line passing another point, sitting nearer another point
than its own; the nearest spot with the fewest problems wins. So labels never overlap
while a free spot exists within ``MAX_RADIUS_PT`` (otherwise it is logged), and the
labels placed first (the caller's priority order) sit closest to their points.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.axes import Axes
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

log = logging.getLogger(__name__)

# Offsets tried around a point, in points: rings of growing radius, 16 directions each,
# starting up-right (where a reader looks for a label) and going round both ways.
RADII_PT = (5, 10, 16, 24, 34, 46, 60, 76, 94, 115, 140, 170)
MAX_RADIUS_PT = RADII_PT[-1]
_ANGLES = (45, 0, 90, 315, 135, 180, 270, 225, 22.5, 67.5, 337.5, 292.5, 112.5, 157.5, 202.5, 247.5)
LEADER_FROM_PT = 12  # labels moved further than this get a line to their point
GAP_PX = 2.0  # clearance kept between a label and anything else
MARKER_PX = 4.0  # half the side of the box kept clear around each point


def place_labels(
    ax: Axes,
    x: Sequence[float],
    y: Sequence[float],
    labels: Sequence[str],
    order: Sequence[int] | None = None,
    obstacles: Sequence[Bbox] = (),
    **text_style: object,
) -> list[Annotation]:
    """Annotate point ``i`` (data coordinates ``x[i], y[i]``) with ``labels[i]`` so that
    no two labels overlap; returns the annotations of the points shown, in the order of
    ``labels``.

    ``order``: indices in placement priority (default: as given). ``obstacles``: boxes in
    display pixels to keep clear (a legend's ``get_window_extent()``). ``text_style``:
    passed to every annotation (``fontsize``, ...); ``fontweight`` may be a sequence, one
    per label. Call after everything that moves the axes limits has been drawn; the
    limits are then frozen so the labels stay where they were placed.
    """
    figure = ax.get_figure()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    renderer = figure.canvas.get_renderer()
    points = ax.transData.transform(np.column_stack([x, y]).astype(float))
    layout = _Layout(
        bounds=ax.get_window_extent(renderer),
        points=points[np.isfinite(points).all(axis=1)],
        px_per_pt=figure.dpi / 72.0,
        taken=list(obstacles),
    )
    weights = text_style.pop("fontweight", "normal")
    placed: dict[int, Annotation] = {}
    for i in order if order is not None else range(len(labels)):
        if not np.isfinite(points[i]).all():
            continue  # a NaN or non-positive value on a log axis: no point, no label
        weight = weights[i] if isinstance(weights, (list, tuple, np.ndarray)) else weights
        style = {**text_style, "fontweight": weight}
        size = _text_size(ax, str(labels[i]), style, renderer)
        offset, leader = layout.place(points[i], size)
        placed[i] = _annotate(ax, str(labels[i]), (x[i], y[i]), offset, style, leader)
    return [placed[i] for i in sorted(placed)]


def _text_size(
    ax: Axes, text: str, style: dict[str, object], renderer: object
) -> tuple[float, float]:
    """Width and height (pixels) of ``text`` drawn in ``style``."""
    probe = ax.text(0, 0, text, **style)
    box = probe.get_window_extent(renderer)
    probe.remove()
    return box.width, box.height


def _annotate(
    ax: Axes,
    text: str,
    point: tuple[float, float],
    offset: tuple[float, float],
    style: dict[str, object],
    leader: bool,
) -> Annotation:
    ha, va = _alignment(*offset)
    # Dark, thin, drawn above the markers: it stays visible where it crosses a cluster,
    # and does not read as a (light grey) error bar.
    line = {"arrowstyle": "-", "color": "0.15", "lw": 0.6, "shrinkA": 1, "shrinkB": 0}
    return ax.annotate(
        text,
        point,
        xytext=offset,
        textcoords="offset points",
        ha=ha,
        va=va,
        arrowprops=line if leader else None,
        **style,
    )


_CANDIDATES = [
    (r * math.cos(math.radians(a)), r * math.sin(math.radians(a)))
    for r in RADII_PT
    for a in _ANGLES
]


@dataclass
class _Layout:
    """What is on the axes so far, in display pixels: the axes ``bounds``, every point,
    the boxes already taken (labels, obstacles) and the leader lines drawn."""

    bounds: Bbox
    points: np.ndarray  # (n, 2)
    px_per_pt: float
    taken: list[Bbox]
    leaders: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def place(
        self, point: np.ndarray, size: tuple[float, float]
    ) -> tuple[tuple[float, float], bool]:
        """Take the best spot for a ``size`` label of ``point``; return its offset (points)
        and whether it needs a leader line.

        The best spot has the fewest problems, compared in this order: labels (and
        obstacles) it overlaps, point markers it covers, leader lines crossing labels
        (its own through placed labels, placed ones through it), its own leader line
        passing other points, being nearer another point than its own; then the nearest.
        """
        others = self.points[np.hypot(*(self.points - point).T) > 0.5]
        best: tuple[tuple[int, ...], tuple[float, float], Bbox, bool] | None = None
        for rank, offset in enumerate(_CANDIDATES):
            box = _label_box(point, offset, size, self.px_per_pt)
            if not _contains(self.bounds, box):
                continue
            near = _nearest_is_own(box, point, others)
            leader = not near or math.hypot(*offset) > LEADER_FROM_PT
            cost = (*self._problems(box, point if leader else None, others), int(not near), rank)
            if best is None or cost < best[0]:
                best = (cost, offset, box, leader)
            if not any(cost[:-1]):
                break  # nothing wrong: the nearest such spot
        if best is None:  # a label wider than the axes: put it where it would go
            offset = _CANDIDATES[0]
            return self._take(offset, _label_box(point, offset, size, self.px_per_pt), point, True)
        cost, offset, box, leader = best
        if cost[0]:
            log.warning("no free spot for a label within %s pt of its point", MAX_RADIUS_PT)
        return self._take(offset, box, point, leader)

    def _problems(
        self, box: Bbox, leader_from: np.ndarray | None, others: np.ndarray
    ) -> tuple[int, int, int, int]:
        """Counts of what is wrong with a label at ``box`` whose leader (if any) starts at
        ``leader_from``: labels overlapped, markers covered, leader crossings with labels,
        other points its leader passes."""
        markers = [_box_around(p, MARKER_PX) for p in others]
        overlapped = sum(bool(_overlap(box, other)) for other in self.taken)
        covered = sum(bool(_overlap(box, _box_around(p, MARKER_PX))) for p in self.points)
        crossings = sum(_crosses(start, end, box) for start, end in self.leaders)
        passed = 0
        if leader_from is not None:
            end = _centre(box)
            crossings += sum(_crosses(leader_from, end, other) for other in self.taken)
            passed = sum(_crosses(leader_from, end, marker) for marker in markers)
        return overlapped, covered, crossings, passed

    def _take(
        self, offset: tuple[float, float], box: Bbox, point: np.ndarray, leader: bool
    ) -> tuple[tuple[float, float], bool]:
        self.taken.append(box)
        if leader:
            self.leaders.append((point, _centre(box)))
        return offset, leader


def _nearest_is_own(box: Bbox, point: np.ndarray, others: np.ndarray) -> bool:
    """Whether ``point`` is nearer the label ``box`` than every one of ``others`` (by a
    few pixels), so a reader pairs them without a line."""
    if not len(others):
        return True
    return _distance(box, point) + 2 * MARKER_PX < min(_distance(box, p) for p in others)


def _distance(box: Bbox, point: np.ndarray) -> float:
    """Pixels from ``point`` to the nearest edge of ``box`` (0 inside)."""
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


def _alignment(dx: float, dy: float) -> tuple[str, str]:
    """Text alignment that puts the label on the side of the point its offset points to."""
    ha = "left" if dx > 1e-9 else "right" if dx < -1e-9 else "center"
    va = "bottom" if dy > 1e-9 else "top" if dy < -1e-9 else "center"
    return ha, va


def _label_box(
    point: np.ndarray, offset: tuple[float, float], size: tuple[float, float], px_per_pt: float
) -> Bbox:
    """The box (pixels) of a ``size`` label anchored ``offset`` points from ``point``,
    aligned as ``_alignment`` says."""
    ax_, ay_ = point[0] + offset[0] * px_per_pt, point[1] + offset[1] * px_per_pt
    width, height = size
    ha, va = _alignment(*offset)
    x0 = {"left": ax_, "right": ax_ - width, "center": ax_ - width / 2}[ha]
    y0 = {"bottom": ay_, "top": ay_ - height, "center": ay_ - height / 2}[va]
    return Bbox.from_bounds(x0, y0, width, height)


def _centre(box: Bbox) -> np.ndarray:
    return np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])


def _crosses(start: np.ndarray, end: np.ndarray, box: Bbox) -> bool:
    """Whether the segment ``start``–``end`` passes through ``box`` grown by ``GAP_PX``
    (Liang–Barsky clipping)."""
    low, high = 0.0, 1.0
    delta = end - start
    edges = (
        (-delta[0], start[0] - (box.x0 - GAP_PX)),
        (delta[0], (box.x1 + GAP_PX) - start[0]),
        (-delta[1], start[1] - (box.y0 - GAP_PX)),
        (delta[1], (box.y1 + GAP_PX) - start[1]),
    )
    for p, q in edges:
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _box_around(point: np.ndarray, half: float) -> Bbox:
    return Bbox.from_extents(point[0] - half, point[1] - half, point[0] + half, point[1] + half)


def _contains(outer: Bbox, inner: Bbox) -> bool:
    return (
        inner.x0 >= outer.x0 + GAP_PX
        and inner.y0 >= outer.y0 + GAP_PX
        and inner.x1 <= outer.x1 - GAP_PX
        and inner.y1 <= outer.y1 - GAP_PX
    )


def _overlap(a: Bbox, b: Bbox) -> bool:
    return _overlap_area(a, b) > 0


def _overlap_area(a: Bbox, b: Bbox) -> float:
    """Area (pixels²) shared by ``a`` grown by ``GAP_PX`` and ``b``."""
    width = min(a.x1 + GAP_PX, b.x1) - max(a.x0 - GAP_PX, b.x0)
    height = min(a.y1 + GAP_PX, b.y1) - max(a.y0 - GAP_PX, b.y0)
    return max(width, 0.0) * max(height, 0.0)
