"""Every ``stn-bench`` command the user guides (docs/*.md) show composes as written (issue 29).

README's commands run (tests/test_readme_commands.py); the guides' are mostly hours-long
sweeps, so here each ``run`` is composed with Hydra's compose API (its sweep's first job)
and each ``report`` parsed by the report's own argument parser: a renamed preset, option
or flag fails here before a reader meets it.
"""

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from readme_commands import _first_value

from experiments import CONF_DIR
from stn_bench import report

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs").glob("*.md"))


def docs_commands(markdown: str) -> list[list[str]]:
    """``stn-bench`` commands of a guide, as their arguments after ``stn-bench``: code lines
    (indented or fenced, ``\\`` continuations joined, comments dropped) and inline code
    spans that start with the command (a span may wrap over a line break)."""
    commands = []
    joined = re.sub(r"\\\n\s*", " ", markdown)
    for line in joined.splitlines():
        code = line.strip()
        if code.startswith("stn-bench ") and (line.startswith("    ") or line == code):
            commands.append(shlex.split(code, comments=True)[1:])
    for span in re.findall(r"`(stn-bench [^`]+)`", joined):
        commands.append(shlex.split(" ".join(span.split()))[1:])
    return commands


# A command's name alone in prose ("exit codes of `stn-bench report`") is not a command.
COMMANDS = [
    (path.name, args)
    for path in GUIDES
    for args in docs_commands(path.read_text())
    if args[:1] in (["run"], ["report"]) and len(args) >= 2
]


def test_the_guides_show_commands_to_check():
    assert sum(args[:1] == ["run"] for _, args in COMMANDS) >= 20


def _value(override: str):
    (parsed,) = OverridesParser.create().parse_overrides([override])
    return parsed.key_or_group, parsed.value()


@pytest.mark.parametrize(
    ("guide", "args"), COMMANDS, ids=[f"{g}:{' '.join(a)[:60]}" for g, a in COMMANDS]
)
def test_each_guide_command_composes_or_parses(guide, args):
    if args[0] == "report":
        parsed = report.build_parser().parse_args(args[1:])  # an unknown flag exits 2
        assert parsed.sweep_dir == Path(next(a for a in args[1:] if not a.startswith("-")))
        return
    overrides = [_first_value(a) for a in args[1:] if a not in ("-m", "--multirun")]
    overrides = [o for o in overrides if not o.startswith("-")]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    given = {o.split("=", 1)[0] for o in overrides}
    firsts = [_first_value(f"{k}={v}") for k, v in params.items() if k not in given]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        job = compose("config", overrides=overrides + firsts)
    # Every option the command sets (not a preset choice) holds its value in the job.
    for key, value in map(_value, overrides):
        if "." in key or key in ("seed", "sweep"):
            assert OmegaConf.select(job, key) == value, f"{guide}: {key}"
