"""Accuracy against object scale, one line per reducer (the ``object_scale`` experiment).

At object scale 1 (the object fills the canvas) plain resizing should do as well as
anything; at 0.1 only a reducer that attends can keep the object legible. Reads
the runs frame's ``object_scale`` (the mean of ``config.dataset.object_scale``);
never re-runs anything.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that write reports
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

from stn.results.atomic import write_atomically  # noqa: E402

SCALE_COLUMNS = ["reducer", "dataset", "seed", "status", "object_scale", "test_accuracy"]


def object_scale_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """The columns of the runs frame (``stn.results.collect.runs_frame``) this figure
    reads: reducer, dataset, seed, status, object_scale, test_accuracy. ``reducer`` is
    the preset's name: the table's rows split each preset by scale, the figure's x axis
    is that scale."""
    if "preset" in runs:
        runs = runs.assign(reducer=runs["preset"])
    return runs.reindex(columns=SCALE_COLUMNS)


def accuracy_by_object_scale(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, spread and count of test accuracy per (reducer, object_scale), ok runs only."""
    ok = frame[(frame["status"] == "ok") & frame["object_scale"].notna()]
    table = (
        ok.groupby(["reducer", "object_scale"])["test_accuracy"]
        .agg(mean="mean", std="std", n="size")
        .reset_index()
    )
    return table.sort_values(["reducer", "object_scale"], ignore_index=True)


def plot_accuracy_vs_object_scale(frame: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Draw test accuracy (mean ± std over seeds) against object scale, one line per reducer.

    Args:
        frame: ``object_scale_frame(runs)`` (needs reducer, status, object_scale,
            test_accuracy).
        path: the image to write (the suffix picks the format: .png, .svg, .pdf).

    Returns:
        the plotted table (``accuracy_by_object_scale``). Raises ``ValueError`` when no ok
        run has an object scale (run ``experiment=object_scale`` first).
    """
    table = accuracy_by_object_scale(frame)
    if table.empty:
        raise ValueError(
            "no ok run with dataset.object_scale set; run: stn-bench run experiment=object_scale"
        )
    fig, ax = plt.subplots(figsize=(6, 4))
    for reducer, rows in table.groupby("reducer"):
        ax.errorbar(
            rows["object_scale"],
            100 * rows["mean"],
            yerr=100 * rows["std"].fillna(0.0),
            marker="o",
            capsize=3,
            label=str(reducer),
        )
    ax.set_xscale("log")
    ax.set_xticks(sorted(table["object_scale"].unique()))
    ax.get_xaxis().set_major_formatter(ScalarFormatter())
    ax.set_xlabel("object side / canvas side")
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    try:  # atomically, as every figure: a failed write leaves the previous one
        write_atomically(path, lambda handle: fig.savefig(handle, format="png"))
    finally:
        plt.close(fig)
    return table
