"""List the options of a section or a reducer kind: name, type, default and help.

    stn-bench options                 # the sections and reducer kinds there are
    stn-bench options trainer         # one section (run, dataset, trainer, throughput, objective)
    stn-bench options stn             # one reducer kind (stn, resize, pca, ...)
    stn-bench options classifier/cnn  # one classifier kind

Each option is declared once, in its dataclass (README, "Where an option is defined");
this prints what those declarations say. Exit status 2 for a name that is neither.
"""

from __future__ import annotations

import argparse
import sys

from experiments.objective import Objective
from experiments.schemas import RunConfig, section_schemas
from stn.measure.throughput import ThroughputSettings
from stn.options import closest_match, option_help


def option_sets() -> dict[str, type]:
    """Name → dataclass: ``run``, ``throughput``, ``objective``, each section,
    ``classifier/<kind>``, each reducer kind."""
    sets: dict[str, type] = {
        "run": RunConfig,
        "throughput": ThroughputSettings,
        "objective": Objective,
    }
    for group, name, config_type in section_schemas():
        if group in ("dataset", "trainer"):
            sets[group] = config_type
        elif group == "classifier":
            sets[f"classifier/{name.removeprefix('base_')}"] = config_type
        elif group == "reducer":
            sets[name.removeprefix("base_")] = config_type
    return sets


def format_options(config_type: type) -> str:
    """One line per option: ``name  type  default  help``, aligned."""
    rows = [(n, t, repr(d) if isinstance(d, str) else str(d), h) for n, t, d, h in
            option_help(config_type)]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{n:<{widths[0]}}  {t:<{widths[1]}}  {d:<{widths[2]}}  {h}" for n, t, d, h in rows
    )


def main(argv: list[str] | None = None, prog: str = "stn-bench options") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", help="a section or reducer kind; omit to list them")
    args = parser.parse_args(argv)
    sets = option_sets()
    if args.name is None:
        print("sections and kinds:", ", ".join(sets))
        return 0
    if args.name not in sets:
        near = closest_match(args.name, list(sets))
        hint = f" (did you mean {near!r}?)" if near else ""
        print(f"error: no options named {args.name!r}{hint}; known: {', '.join(sets)}",
              file=sys.stderr)  # fmt: skip
        return 2
    print(format_options(sets[args.name]))
    return 0
