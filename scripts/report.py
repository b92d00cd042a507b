"""Moved: ``stn-bench report DIR`` (``python -m stn_bench report DIR``) writes a sweep's report."""

import sys

if __name__ == "__main__":
    args = " ".join(sys.argv[1:]) or "DIR"
    print(f"error: scripts/report.py moved; run: stn-bench report {args}  "
          f"(or python -m stn_bench report {args})", file=sys.stderr)  # fmt: skip
    sys.exit(2)
