"""Markdown tables whose cells cannot break them: every table the report writes goes here.

A name is free text (``reducer.name``, a record written by anyone), and in a markdown table
a ``|`` starts a new cell and a line break ends the row: a reducer named ``a|b`` or
``a\\nb`` split its row and shifted every column after it.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x85\u2028\u2029]+")


def markdown_cell(text: str) -> str:
    """``text`` safe inside a markdown table cell: ``|`` escaped as ``\\|``, line breaks
    (and tabs) as one space."""
    return _LINE_BREAKS.sub(" ", text).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, **to_markdown: Any) -> str:
    """``frame.to_markdown(index=False, **to_markdown)`` with every string cell and column
    name made safe by :func:`markdown_cell`; other values are left to tabulate."""
    safe = frame.map(lambda v: markdown_cell(v) if isinstance(v, str) else v)
    safe.columns = [markdown_cell(str(c)) for c in frame.columns]
    return safe.to_markdown(index=False, **to_markdown)
