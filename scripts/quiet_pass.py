"""Time each reducer configuration of a sweep folder alone: the quiet pass, on demand.

    python -m scripts.quiet_pass results/stn_goal          # then: stn-bench report results/stn_goal
    python -m scripts.quiet_pass results/stn_goal --rounds 5

A sweep under a parallel launcher runs this pass by itself when it ends
(``quiet_pass.enabled``); this script runs it over a folder written before the pass
existed, or again after a pass that other processes disturbed (delete its
``mode=throughput`` records first: configurations already timed are skipped). Run it on a
quiet machine: figures taken while other processes keep more than
``throughput.contention_cores`` busy are retaken, then flagged (docs/throughput.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from experiments.quiet_pass import QuietPassSettings, run_quiet_pass
from stn.measure.throughput import ThroughputSettings
from stn.results.store import records_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder, e.g. results/stn_goal")
    parser.add_argument(
        "--rounds", type=int, default=ThroughputSettings.rounds, help="rounds per figure"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not records_dir(args.sweep_dir).is_dir():
        print(f"error: {args.sweep_dir} has no records/ folder", file=sys.stderr)
        return 2
    settings = QuietPassSettings(throughput=ThroughputSettings(rounds=args.rounds))
    outcome = run_quiet_pass(args.sweep_dir, settings, sweep=args.sweep_dir.name)
    print(outcome.line())
    return 1 if any(r.status != "ok" for r in outcome.timed) else 0


if __name__ == "__main__":
    sys.exit(main())
