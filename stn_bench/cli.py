"""``stn-bench``: the suite's one command (``python -m stn_bench`` is the same).

    stn-bench run [OVERRIDES]      one run; -m for a sweep (Hydra's command line: --help, --cfg job)
    stn-bench report DIR           a sweep folder's report.md, tables and figures
    stn-bench options [NAME]       the options of a section or a reducer kind
    stn-bench list [GROUP]         the presets of each config group (conf/)
    stn-bench folder PATH          the question's comparison on your own images (a folder per class)

``run`` hands everything after it to Hydra unchanged (``experiments.run``), so overrides,
``-m``, ``--help``, ``--cfg job`` and ``hydra/launcher=joblib`` work as in any Hydra app.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

PROG = "stn-bench"


def run(argv: list[str]) -> int:
    """Hydra's app (``experiments.run.cli``) with ``argv`` as its command line."""
    # Imported here: the schemas import torch, which ``list`` and ``--help`` never need.
    from experiments.run import cli

    saved = sys.argv
    # Hydra reads its command line from sys.argv, after the program's name.
    sys.argv = [f"{PROG} run", *argv]
    try:
        cli()
    finally:
        sys.argv = saved
    return 0


def report(argv: list[str]) -> int:
    from stn_bench.report import main

    return main(argv, prog=f"{PROG} report")


def options(argv: list[str]) -> int:
    from stn_bench.options import main

    return main(argv, prog=f"{PROG} options")


def list_presets(argv: list[str]) -> int:
    from stn_bench.presets import main

    return main(argv, prog=f"{PROG} list")


def folder(argv: list[str]) -> int:
    from experiments.question_folder import main

    return main(argv, prog=f"{PROG} folder")


# name → (what it does, the function that runs it)
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "run": ("one run, or a sweep with -m: Hydra overrides (run --help lists them)", run),
    "report": ("write a sweep folder's report.md, tables and figures", report),
    "options": ("list the options of a section or a reducer kind", options),
    "list": ("list the presets of each config group (conf/)", list_presets),
    "folder": ("the question's comparison on your own images (one folder per class)", folder),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Benchmark ways of reducing large images to a small network's input.",
        epilog="`python -m stn_bench` is the same command. Each command's own help: "
        "stn-bench COMMAND --help.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (text, _) in COMMANDS.items():
        # Only for the listing: each command parses its own arguments.
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if argv and argv[0] in COMMANDS:
        # Dispatched before argparse sees the rest: `run -m x=1,2 --help` belongs to Hydra.
        return COMMANDS[argv[0]][1](argv[1:])
    if argv and not argv[0].startswith("-"):
        from stn.options import closest_match

        near = closest_match(argv[0], list(COMMANDS))
        hint = f" (did you mean {near!r}?)" if near else ""
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: unknown command {argv[0]!r}{hint}; commands: "
              f"{', '.join(COMMANDS)}", file=sys.stderr)  # fmt: skip
        return 2
    parser.parse_args(argv)  # --help prints and exits; an unknown option exits 2
    parser.print_help()
    return 0
