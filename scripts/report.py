"""Build the comparison report of a sweep folder and print its table.

    python scripts/report.py results/compare

Exit code 0 when every record was read, 1 when some were skipped or runs failed,
2 when the folder has no records at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stn.report import write_report
from stn.results import records_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder, e.g. results/compare")
    args = parser.parse_args(argv)
    if not records_dir(args.sweep_dir).is_dir():
        print(
            f"error: {args.sweep_dir} has no records/ folder; pass a sweep folder such as "
            "results/compare (run a sweep first: python -m experiments.run experiment=compare)",
            file=sys.stderr,
        )
        return 2
    report = write_report(args.sweep_dir)
    print(report.table_markdown)
    print(f"\nreport: {report.path}  ({report.summary_line})")
    for skipped in report.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    return 1 if report.skipped or not report.failed.empty else 0


if __name__ == "__main__":
    sys.exit(main())
