"""Build the comparison report of a sweep folder and print its table.

    stn-bench report results/compare
    stn-bench report results/compare --wandb      # also push table + figures
    stn-bench report results/main --reference results/compare   # reproduced?
    stn-bench report results/question --readme README.md        # + README's table
    stn-bench report results/frozen --readme README.md          # + its README table
    stn-bench report results/frozen --scratch results/frozen_scratch --scratch results/question

Writes <sweep>/report.md, <sweep>/tables/summary.{md,tex,csv} and <sweep>/figures/*.png.
Works on a partial sweep (jobs still running or failed) and says how complete it is.

exit codes:
  0  every record read, every run ok, no (dataset, reducer, classifier, seed) missing
  1  report written, but some runs failed / are unfinished / are missing from the grid
  2  no readable records: the folder or its records/ subfolder is missing or empty,
     or every record file in it was skipped
  3  report written from the rest, but some record files were skipped: unreadable, not
     JSON, another schema version, or invalid (a null section, a seed that is not an
     integer, an accuracy that is NaN, infinite, a string or outside [0, 1], ...); each
     is named with what is wrong on stderr and in report.md
  4  some outputs could not be written (an unwritable tables/ or figures/ folder, or
     report.md itself); each is named on stderr and, when report.md was written, there
  when several apply, the first of 2, 4, 3, 1
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from experiments.tracking import DEFAULT_PROJECT, log_report
from stn.report.document import Report, write_report
from stn.report.frozen_block import write_frozen_block
from stn.report.readme_block import MarkerError, write_readme_block
from stn.results.store import records_dir

EXIT_OK, EXIT_INCOMPLETE, EXIT_NO_RECORDS, EXIT_SKIPPED, EXIT_UNWRITTEN = 0, 1, 2, 3, 4

log = logging.getLogger("report")


def exit_code(report: Report) -> int:
    if report.runs.empty:
        return EXIT_NO_RECORDS
    if report.unwritten:
        return EXIT_UNWRITTEN
    if report.skipped:
        return EXIT_SKIPPED
    return EXIT_OK if report.completeness.complete else EXIT_INCOMPLETE


def push_to_wandb(report: Report, sweep_name: str, project: str = DEFAULT_PROJECT) -> bool:
    """Log the summary table and the figures to one wandb run (``experiments.tracking``);
    never raises or blocks.

    The mode comes from ``WANDB_MODE`` (default ``offline``; sync later with
    ``wandb sync``); the run's files go to ``<sweep>/wandb/``. Returns whether the run was
    logged and finished.
    """
    return log_report(
        f"report-{sweep_name}",
        report.table,
        report.figures,
        summary={
            "ok": report.completeness.ok,
            "failed": report.completeness.failed,
            "expected": report.completeness.expected,
        },
        config={"sweep": sweep_name, "records": len(report.runs)},
        project=project,
        folder=report.path.parent,  # <sweep>/wandb/, not ./wandb wherever the report ran
    )


def build_parser(prog: str = "stn-bench report") -> argparse.ArgumentParser:
    """The command line of ``stn-bench report`` (the guides' commands are checked with it)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder, e.g. results/compare")
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="push the summary table and figures to a wandb run "
        "(mode from WANDB_MODE, default offline; files in <sweep_dir>/wandb/)",
    )
    parser.add_argument(
        "--no-figures", action="store_true", help="tables only (faster; no PNGs written)"
    )
    parser.add_argument(
        "--baseline",
        action="append",
        metavar="REDUCER",
        help="the reducer each family is compared with, where it ran (repeat to give a "
        "preference order); default: the plainest resize present",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="FOLDER",
        help="a sweep folder of reference records: the report ends comparing each run "
        "with the reference record of the same experiment (make main: results/compare)",
    )
    parser.add_argument(
        "--scratch",
        action="append",
        type=Path,
        metavar="FOLDER",
        help="for a frozen network's sweep: a sweep folder of the same reducers trained from "
        "scratch (repeat; the first holding a canvas is used for it); default: the "
        "sweep's siblings frozen_scratch, compare and question",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        metavar="README",
        help="also rewrite this README's table from the same records: between its "
        "question-table markers (stn/report/readme_block.py), or for a frozen network's "
        "sweep between its frozen-table markers (stn/report/frozen_block.py)",
    )
    return parser


def main(argv: list[str] | None = None, prog: str = "stn-bench report") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not records_dir(args.sweep_dir).is_dir():
        print(
            f"error: {args.sweep_dir} has no records/ folder; pass a sweep folder such as "
            "results/compare (run a sweep first: stn-bench run experiment=compare)",
            file=sys.stderr,
        )
        return EXIT_NO_RECORDS
    try:
        report = write_report(
            args.sweep_dir,
            with_figures=not args.no_figures,
            baseline=args.baseline,
            reference=args.reference,
            scratch=args.scratch,
        )
    except OSError as err:  # report.md itself (the sweep folder is read-only)
        print(
            f"error: could not write the report: {err}; make {args.sweep_dir} writable "
            "or report on a copy of the sweep",
            file=sys.stderr,
        )
        return EXIT_UNWRITTEN
    print(report.table_markdown)
    print(f"\nreport: {report.path}  ({report.summary_line})")
    for skipped in report.skipped:
        print(f"skipped {skipped.reason}", file=sys.stderr)  # the reason names the file
    for what, why in report.unwritten.items():
        print(f"not written: {what}: {why}", file=sys.stderr)
    if report.runs.empty:
        print(f"error: no readable records in {records_dir(args.sweep_dir)}", file=sys.stderr)
    if args.wandb:
        push_to_wandb(report, args.sweep_dir.name)
    if args.readme is not None:
        try:
            if report.frozen:
                write_frozen_block(args.readme, args.sweep_dir, args.scratch)
            else:
                write_readme_block(args.readme, args.sweep_dir)
        except (MarkerError, OSError) as err:
            print(f"not written: {args.readme}: {err}", file=sys.stderr)
            return EXIT_UNWRITTEN
        print(f"README table: {args.readme}")
    return exit_code(report)
