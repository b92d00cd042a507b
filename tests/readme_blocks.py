"""The README's code blocks, for the tests that run its worked examples as written."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_block(language: str, first_line: str) -> str:
    """The body of the README's ``language`` block whose first line is ``first_line``."""
    for body in re.findall(rf"```{language}\n(.*?)```", README, re.S):
        if body.startswith(first_line):
            return body
    raise AssertionError(f"README has no {language} block starting {first_line!r}")
