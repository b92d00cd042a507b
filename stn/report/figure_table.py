"""Every figure of the report, declared in one table: :data:`FIGURES`.

An entry says what the figure shows (its caption), for which slice of the sweep it is
drawn (``scope``), when it applies (a predicate over the slice) and how it is drawn (a
function given the slice and the PNG path). Adding a figure is one entry::

    ReportFigure(
        name="accuracy_by_seed",                  # figures/accuracy_by_seed_<slice>.png
        shows="Test accuracy of each run by seed",  # caption: "... (digits_96, cnn)"
        applies=lambda data: data.runs["seed"].nunique() > 1,
        draw=plot_accuracy_by_seed,               # (FigureData, Path) -> anything
    )

Scopes, in the order the report shows their figures:

- ``BLOCK``: each (dataset, classifier) of the summary table; file
  ``<name>_<dataset>_<classifier>.png``
- ``SWEEP``: once for the whole sweep; file ``<name>.png``
- ``DATASET``: each dataset with example images (``stn.results.examples``); file
  ``<name>_<dataset>.png``

The report reads records and files only: a slice holds the runs frame, the summary table's
rows, the learning curves and the example arrays, never a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stn.report import figures, figures_scale
from stn.results.collect import curves_frame
from stn.results.examples import examples_path, load_examples
from stn.results.record import Record

BLOCK = "dataset, classifier"
SWEEP = "sweep"
DATASET = "dataset"
SCOPES = (BLOCK, SWEEP, DATASET)

PLOT_THROUGHPUT = "tp_reducer_images_per_s"
NOT_COMPARABLE_NOTE = (
    "throughput timed beside other runs, not comparable (no quiet pass: quiet_pass.enabled)"
)

FigurePlan = list[tuple[str, Callable[[], Path]]]


@dataclass(frozen=True)
class Examples:
    """One dataset's example images: the same test inputs, and per reducer (in the summary
    table's order) its outputs, and where it has them its sampling transforms and weights."""

    inputs: np.ndarray
    boxes: np.ndarray | None
    outputs: dict[str, np.ndarray]
    thetas: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]


@dataclass(frozen=True)
class FigureData:
    """What a figure is drawn from: one slice of the sweep (see the scopes above)."""

    where: str  # the slice in the caption: "digits_96, cnn", "digits_96", "" (the sweep)
    stem: str  # the slice in the file name: "digits_96_cnn", "digits_96", "" (the sweep)
    runs: pd.DataFrame  # the slice's runs (stn.results.collect.runs_frame)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # its summary rows, BLOCK only
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # its learning curves, BLOCK
    examples: Examples | None = None  # its example images, DATASET only


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report: what it shows, when it applies, how it is drawn."""

    name: str  # the file name's start: figures/<name>_<slice>.png
    shows: str  # the caption; the slice follows it in parentheses
    applies: Callable[[FigureData], bool]
    draw: Callable[[FigureData, Path], Any]  # writes the PNG at the path it is given
    scope: str = BLOCK
    note: Callable[[FigureData], str | None] = lambda data: None  # caption's " — note"

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"figure {self.name!r}: scope {self.scope!r} is not one of {SCOPES}")

    def caption(self, data: FigureData) -> str:
        text = f"{self.shows} ({data.where})" if data.where else self.shows
        note = self.note(data)
        return text if note is None else f"{text} — {note}"

    def path(self, folder: Path, data: FigureData) -> Path:
        return folder / (f"{self.name}_{data.stem}.png" if data.stem else f"{self.name}.png")


def _has_throughput(data: FigureData) -> bool:
    return PLOT_THROUGHPUT in data.table and bool(data.table[PLOT_THROUGHPUT].notna().any())


def _throughput_note(data: FigureData) -> str | None:
    table = data.table
    comparable = "tp_comparable" not in table or table["tp_comparable"].fillna(True).all()
    return None if comparable else NOT_COMPARABLE_NOTE


def _draw_pareto(data: FigureData, path: Path) -> None:
    figures.plot_accuracy_vs_throughput(data.table, path, PLOT_THROUGHPUT, _throughput_note(data))


def _sampler_rows(data: FigureData) -> pd.DataFrame:
    """Rows of reducers that sample with a kernel in front of the network: the STNs and
    the learned window selectors (whose windows reach 48×48 through ``kernel``)."""
    table = data.table
    if "reducer_kind" not in table or "kernel" not in table:
        return table.iloc[0:0]
    learned = table["learned"].fillna(False).astype(bool) if "learned" in table else False
    return table[((table["reducer_kind"] == "stn") | learned) & table["kernel"].notna()]


def _object_scales(data: FigureData) -> pd.DataFrame:
    return figures_scale.object_scale_frame(data.runs)


def _examples(data: FigureData) -> Examples:
    if data.examples is None:
        raise ValueError(f"figure drawn without example images ({data.where})")
    return data.examples


def _draw_examples(data: FigureData, path: Path) -> None:
    examples = _examples(data)
    figures.plot_example_grid(examples.inputs, examples.outputs, path)


def _draw_regions(data: FigureData, path: Path) -> None:
    examples = _examples(data)
    figures.plot_sampling_regions(
        examples.inputs, examples.thetas, path, examples.boxes, examples.weights
    )


FIGURES: tuple[ReportFigure, ...] = (
    ReportFigure(
        name="pareto",
        shows="Accuracy vs reducer throughput",
        applies=_has_throughput,
        draw=_draw_pareto,
        note=_throughput_note,
    ),
    ReportFigure(
        name="kernels",
        shows="Accuracy of each sampler configuration by sampling kernel, plain vs anti-aliased",
        applies=lambda data: not _sampler_rows(data).empty,
        draw=lambda data, path: figures.plot_kernel_accuracy(_sampler_rows(data), path),
    ),
    ReportFigure(
        name="curves",
        shows="Learning curves",
        applies=lambda data: not data.curves.empty,
        draw=lambda data, path: figures.plot_learning_curves(data.curves, path),
    ),
    ReportFigure(
        name="object_scale",
        shows="Accuracy vs object scale (fraction of the canvas side the object spans)",
        applies=lambda data: _object_scales(data)["object_scale"].nunique() > 1,
        draw=lambda data, path: figures_scale.plot_accuracy_vs_object_scale(
            _object_scales(data), path
        ),
        scope=SWEEP,
    ),
    ReportFigure(
        name="examples",
        shows="What each reducer makes of the same test images",
        applies=lambda data: data.examples is not None,
        draw=_draw_examples,
        scope=DATASET,
    ),
    ReportFigure(
        name="regions",
        shows="STN sampling regions on the input",
        applies=lambda data: data.examples is not None and bool(data.examples.thetas),
        draw=_draw_regions,
        scope=DATASET,
    ),
)


def figure_plan(
    sweep_dir: Path,
    records: list[Record],
    runs: pd.DataFrame,
    table: pd.DataFrame,
    folder: Path,
) -> FigurePlan:
    """``(caption, draw)`` of every figure of :data:`FIGURES` that applies to a slice of
    the sweep: by scope (``SCOPES``' order), then slice, then the table's order.
    ``draw()`` writes the PNG and returns its path."""
    slicers = {
        BLOCK: lambda: _blocks(records, runs, table),
        SWEEP: lambda: iter([FigureData(where="", stem="", runs=runs)]),
        DATASET: lambda: _datasets(sweep_dir, runs, table),
    }
    plan: FigurePlan = []
    for scope in SCOPES:
        mine = [entry for entry in FIGURES if entry.scope == scope]
        if not mine:
            continue
        for data in slicers[scope]():
            plan += [
                (entry.caption(data), partial(_draw, entry, data, entry.path(folder, data)))
                for entry in mine
                if entry.applies(data)
            ]
    return plan


def _draw(entry: ReportFigure, data: FigureData, path: Path) -> Path:
    entry.draw(data, path)
    return path


def _blocks(records: list[Record], runs: pd.DataFrame, table: pd.DataFrame) -> Iterator[FigureData]:
    """One slice per (dataset, classifier) of the summary table; rows that exist only to
    show a reducer without its stalled runs are left out."""
    curves = curves_frame(records)
    if "without_stalled" in table:
        table = table[~table["without_stalled"].fillna(False).astype(bool)]
    for (dataset, classifier), block in table.groupby(["dataset", "classifier"], dropna=False):
        yield FigureData(
            where=f"{dataset}, {classifier}",
            stem=slug(f"{dataset}_{classifier}"),
            runs=_matching(runs, dataset, classifier),
            table=block,
            curves=_matching(curves, dataset, classifier),
        )


def _matching(frame: pd.DataFrame, dataset: Any, classifier: Any) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame["dataset"] == dataset) & (frame["classifier"] == classifier)]


def _datasets(sweep_dir: Path, runs: pd.DataFrame, table: pd.DataFrame) -> Iterator[FigureData]:
    """One slice per dataset whose runs left example images (``.npz`` beside the records);
    runs without a file are left out of the picture."""
    order = {name: i for i, name in enumerate(table["reducer"])} if not table.empty else {}
    ok = runs[(runs["status"] == "ok") & runs["run_id"].notna()]
    # Reducers in the table's order; within one, seeds then run ids ascending (as text).
    ok = ok.sort_values(["seed", "run_id"], key=lambda column: column.map(str))
    ok = ok.sort_values(
        "reducer", key=lambda names: names.map(lambda n: order.get(n, len(order))), kind="stable"
    )
    for dataset in sorted(set(ok["dataset"]), key=str):
        examples = _dataset_examples(sweep_dir, ok[ok["dataset"] == dataset])
        if examples is not None:
            yield FigureData(
                where=str(dataset),
                stem=slug(str(dataset)),
                runs=runs[runs["dataset"] == dataset],
                examples=examples,
            )


def _dataset_examples(sweep_dir: Path, ok: pd.DataFrame) -> Examples | None:
    """The first example file of each reducer among ``ok`` (one dataset's runs, in order)
    that shows the same test inputs as the first file read; ``None`` without any."""
    inputs, boxes = None, None
    outputs: dict[str, np.ndarray] = {}
    thetas: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    for run in ok.itertuples():
        reducer = str(run.reducer)
        if reducer in outputs:
            continue
        arrays = load_examples(examples_path(sweep_dir, run.run_id))
        if arrays is None:
            continue
        if inputs is None:
            inputs, boxes = arrays["inputs"], arrays.get("boxes")
        elif not np.array_equal(arrays["inputs"], inputs):
            continue  # another test set under the same dataset name (overridden options)
        outputs[reducer] = arrays["outputs"]
        if "theta" in arrays:
            thetas[reducer] = arrays["theta"]
        if "weights" in arrays:
            weights[reducer] = arrays["weights"]
    return None if inputs is None else Examples(inputs, boxes, outputs, thetas, weights)


def slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters become one ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "all"
