"""Where each learned sampler looked: the report's glimpse table, from records only.

One row per (dataset, classifier, reducer) whose records carry ``metrics.glimpse``
(``stn.measure.glimpse``): mean over seeds of the glimpse's zoom and side, the object's
side, the distance from the glimpse's centre to the object's (in % of the canvas side)
and how often that centre falls inside the object's box — so "does it zoom onto the
object?" is read as numbers beside the accuracy.
"""

from __future__ import annotations

import pandas as pd

from stn.report.markdown import markdown_table

GLIMPSE_NOTE = (
    "Where each learned sampler looked on the test images (`metrics.glimpse`, up to 2,000 "
    "test images a run; mean over seeds, ± the spread between seeds as a standard "
    "deviation): `zoom` is the glimpse's side over the canvas's (1: the whole canvas), "
    "`glimpse px` and `object px` their sides in canvas pixels (a glimpse framing the "
    "object has about the object's side), `centre off` the distance from the glimpse's "
    "centre to the object's in % of the canvas side, `in box` the share of glimpses "
    "centred inside the object's box. With several windows, the most attended one."
)
_KEYS = ["dataset", "classifier", "reducer"]


def glimpse_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``runs`` (``stn.results.collect.runs_frame``) that measured a glimpse,
    summarised per (dataset, classifier, reducer); empty when none did."""
    if "glimpse_zoom" not in runs:
        return pd.DataFrame()
    measured = runs[runs["glimpse_zoom"].notna() & (runs["status"] == "ok")]
    if measured.empty:
        return pd.DataFrame()
    grouped = measured.groupby(_KEYS, sort=True)
    table = pd.DataFrame(
        {
            "n": grouped.size(),
            "zoom": grouped["glimpse_zoom"].mean(),
            "zoom_sd": grouped["glimpse_zoom"].std(),
            "glimpse_px": grouped["glimpse_side_px"].mean(),
            "object_px": grouped["object_side_px"].mean(),
            "centre_off_pct": 100 * grouped["glimpse_distance_rel"].mean(),
            "centre_off_pct_sd": 100 * grouped["glimpse_distance_rel"].std(),
            "in_box": grouped["glimpse_in_box"].mean(),
        }
    ).reset_index()
    return table.sort_values(["dataset", "classifier", "centre_off_pct"], ignore_index=True)


def glimpse_markdown(table: pd.DataFrame) -> str:
    """The table as markdown, numbers rounded for reading (empty string when empty)."""
    if table.empty:
        return ""

    def with_spread(mean: float, sd: float, spec: str) -> str:
        return f"{mean:{spec}}" + ("" if pd.isna(sd) else f" ± {sd:{spec}}")

    shown = pd.DataFrame(
        {
            "dataset": table["dataset"],
            "classifier": table["classifier"],
            "reducer": table["reducer"],
            "zoom": [
                with_spread(m, s, ".2f")
                for m, s in zip(table["zoom"], table["zoom_sd"], strict=True)
            ],
            "glimpse px": table["glimpse_px"].map("{:.1f}".format),
            "object px": table["object_px"].map("{:.1f}".format),
            "centre off (% of side)": [
                with_spread(m, s, ".1f")
                for m, s in zip(table["centre_off_pct"], table["centre_off_pct_sd"], strict=True)
            ],
            "in box": table["in_box"].map("{:.2f}".format),
            "n": table["n"],
        }
    )
    return markdown_table(shown)
