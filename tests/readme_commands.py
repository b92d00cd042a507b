"""README's commands: parsed from its ``bash`` blocks, and run small in one process.

    python -m readme_commands COMMANDS.json RESULTS.json   # (tests/ on PYTHONPATH)

reads a list of ``stn-bench`` argument lists, runs each through ``stn_bench.cli.main`` in
the working directory, and writes each one's exit status to RESULTS.json. A command that
launches runs (``run`` without ``--help`` / ``--cfg``) runs its first job only, as a
single run, on a few images for a few steps (:func:`tiny_run`): the first value of each
swept option, on the command line or in the preset's ``hydra.sweeper.params``. One
process for all of them: torch and Hydra load once, so the README's commands take
seconds, not minutes.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from tiny_runs import TINY

# Settings of the small run on top of TINY: one epoch (presets set their own), one thread,
# one brief timing round, no pass after the sweep.
SMALL = [
    *TINY,
    "trainer.epochs=1",
    "threads=1",
    "throughput.rounds=1",
    "throughput.contention_retries=0",
    "throughput.flush_cache=false",
    "quiet_pass.enabled=false",
]


def python_lines(markdown: str) -> list[str]:
    """The ``python -c`` set-up lines of the ``bash`` code blocks (a folder to try on)."""
    lines = []
    for body in re.findall(r"```bash\n(.*?)```", markdown, re.S):
        lines += [line for line in body.splitlines() if line.startswith("python -c ")]
    return lines


def bash_commands(markdown: str) -> list[list[str]]:
    """Every ``stn-bench`` command of the ``bash`` code blocks in ``markdown``, as its
    arguments after ``stn-bench`` (continuation lines joined, comments dropped)."""
    commands = []
    for body in re.findall(r"```bash\n(.*?)```", markdown, re.S):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["stn-bench"]:
                commands.append(words[1:])
    return commands


def launches_runs(args: list[str]) -> bool:
    """Whether ``stn-bench <args>`` trains or times anything (not ``--help``, ``--cfg``)."""
    return args[:1] == ["run"] and not {"--help", "-h", "--cfg", "-c", "--info"} & set(args)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _first_value(override: str) -> str:
    """``reducer=a,b`` → ``reducer=a``; anything else unchanged."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (parsed,) = OverridesParser.create().parse_overrides([override])
    if not parsed.is_sweep_override():
        return override
    first = next(iter(parsed.sweep_string_iterator()))
    return f"{parsed.get_key_element()}={first}"


def tiny_run(args: list[str]) -> list[str]:
    """``run ARGS`` as one small single run: its sweep's first job, SMALL settings."""
    from hydra import compose, initialize_config_dir

    from experiments import CONF_DIR
    from experiments.schemas import register_schemas

    overrides = [_first_value(a) for a in args[1:] if a not in ("-m", "--multirun")]
    small_keys = {_key(s) for s in SMALL}
    overrides = [o for o in overrides if _key(o) not in small_keys] + SMALL
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    given = {_key(o) for o in overrides}
    params = cfg.hydra.sweeper.get("params") or {}
    overrides += [_first_value(f"{k}={v}") for k, v in params.items() if k not in given]
    return ["run", *overrides, "hydra.mode=RUN"]


def small_command(args: list[str]) -> list[str]:
    """``stn-bench ARGS`` as the test runs it: runs small (:func:`tiny_run`), ``folder``
    as its plan only (``--dry-run``: its sweeps are ``run`` commands, and
    tests/experiments/test_question_folder.py runs them)."""
    if launches_runs(args):
        return tiny_run(args)
    if args[:1] == ["folder"]:
        return [*args, "--dry-run"]
    return args


def run_commands(commands: list[list[str]]) -> list[int]:
    """Each command's exit status, run one after another in this process."""
    from stn_bench.cli import main

    statuses = []
    for args in commands:
        argv = small_command(args)
        print(f"$ stn-bench {shlex.join(argv)}", flush=True)
        try:
            status = main(argv)
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 1
        statuses.append(int(status or 0))
    return statuses


if __name__ == "__main__":
    commands = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run_commands(commands)))
