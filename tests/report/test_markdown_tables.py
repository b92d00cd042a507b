"""Names holding '|' or a line break cannot break the report's markdown tables."""

import re

from report_records import make_record, write_all

from stn.report.document import write_report
from stn.report.markdown import markdown_cell

NAMES = ("resize|bilinear", "stn\nbicubic")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _tables(text: str) -> list[list[str]]:
    """Every markdown table of ``text``: its consecutive lines that start with '|'."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def test_every_table_row_keeps_its_columns_whatever_the_names(tmp_path):
    records = [make_record(name, seed, 0.8 + seed / 100) for name in NAMES for seed in (0, 1)]
    records.append(make_record(NAMES[0], 2, None, status="failed"))  # the failed-runs table
    records.append(make_record("pool|max", 0, 0.7))  # seed 1 missing: the missing-runs table
    write_all(records, tmp_path)
    report = write_report(tmp_path, with_figures=False)
    for path in (report.path, tmp_path / "tables" / "summary.md"):
        tables = _tables(path.read_text())
        assert len(tables) >= (3 if path == report.path else 1)
        for table in tables:
            cells = {len(UNESCAPED_PIPE.findall(row)) for row in table}
            assert len(cells) == 1, f"{path.name}: rows of unequal width:\n" + "\n".join(table)
    text = report.path.read_text()
    assert "resize\\|bilinear" in text and "stn bicubic" in text


def test_a_cell_escapes_pipes_and_joins_lines():
    assert markdown_cell("a|b\nc\r\n\td") == "a\\|b c d"
