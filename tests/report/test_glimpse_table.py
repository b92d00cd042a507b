"""The report's glimpse table reads the records' glimpse figures, per reducer, over seeds."""

import math

import pandas as pd

from stn.report.glimpse_table import glimpse_markdown, glimpse_table


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {"dataset": "d", "classifier": "cnn", "status": "ok", "object_side_px": 28.0}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_means_over_seeds_per_reducer_and_rows_without_glimpses_left_out() -> None:
    runs = frame(
        [
            {"reducer": "stn", "glimpse_zoom": 0.4, "glimpse_side_px": 24.0,
             "glimpse_distance_rel": 0.02, "glimpse_in_box": 1.0},
            {"reducer": "stn", "glimpse_zoom": 0.6, "glimpse_side_px": 36.0,
             "glimpse_distance_rel": 0.04, "glimpse_in_box": 0.5},
            {"reducer": "resize", "glimpse_zoom": math.nan, "glimpse_side_px": math.nan,
             "glimpse_distance_rel": math.nan, "glimpse_in_box": math.nan},
            {"reducer": "stn_failed", "status": "failed", "glimpse_zoom": 0.1,
             "glimpse_side_px": 6.0, "glimpse_distance_rel": 0.5, "glimpse_in_box": 0.0},
        ]
    )  # fmt: skip
    table = glimpse_table(runs)
    assert table["reducer"].tolist() == ["stn"]
    row = table.iloc[0]
    assert row["n"] == 2 and math.isclose(row["zoom"], 0.5) and math.isclose(row["glimpse_px"], 30)
    assert math.isclose(row["centre_off_pct"], 3.0) and math.isclose(row["in_box"], 0.75)
    assert math.isclose(row["zoom_sd"], math.sqrt(0.02))
    text = glimpse_markdown(table)
    assert "| stn " in text and "0.50 ± 0.14" in text and "3.0 ± 1.4" in text


def test_no_glimpse_columns_or_no_measured_runs_give_an_empty_table() -> None:
    assert glimpse_table(pd.DataFrame({"reducer": ["a"], "status": ["ok"]})).empty
    empty = frame([{"reducer": "r", "glimpse_zoom": math.nan}])
    assert glimpse_table(empty).empty and glimpse_markdown(glimpse_table(empty)) == ""


def test_the_report_shows_the_glimpse_section_only_when_a_record_has_one(tmp_path) -> None:
    from report_records import make_record, write_all

    from stn.report.document import write_report

    records = [make_record("resize_bilinear", s, 0.9) for s in (0, 1)]
    write_all(records, tmp_path)
    assert "Where the learned samplers looked" not in write_report(tmp_path, False).path.read_text()
    looked = []
    for seed in (0, 1):
        record = make_record("stn_bilinear", seed, 0.95, kind="stn")
        record.metrics.glimpse = {
            "zoom_mean": 0.5, "glimpse_side_px_mean": 30.0, "object_side_px_mean": 28.0,
            "centre_distance_rel_mean": 0.05, "centre_in_box": 0.9,
        }  # fmt: skip
        looked.append(record)
    write_all(looked, tmp_path)
    text = write_report(tmp_path, False).path.read_text()
    section = text.split("## Where the learned samplers looked")[1].split("##")[0]
    assert "| stn_bilinear " in section and "resize_bilinear" not in section
    assert "0.50 ± 0.00" in section and "5.0 ± 0.0" in section
