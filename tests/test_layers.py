"""Every module on its floor: no import in ``stn/`` climbs back up the layers.

The floors, lowest first (DESIGN.md, README "Layout"): a module may import from its own
floor and the ones below, never above; ``stn`` imports neither Hydra, wandb nor the
``experiments`` and ``scripts`` packages. Read with ``ast`` from the source, so an import
inside a function or under ``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first. stn/options.py and stn/registry.py are the ground floor.
FLOORS = [
    ("stn.options", "stn.registry"),
    ("stn.sampling",),
    ("stn.data",),
    ("stn.reducers",),
    ("stn.networks",),
    ("stn.measure",),
    ("stn.results",),
    ("stn.report",),
]
NEVER_IN_STN = ("hydra", "omegaconf", "wandb", "experiments", "scripts")


def floor_of(module: str) -> int | None:
    for level, prefixes in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    """Every module ``path`` imports (absolute names; ``from . import x`` resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if floor_of(base) is None]
    return names


STN_MODULES = sorted((ROOT / "stn").rglob("*.py"))


def test_every_stn_package_has_a_floor():
    packages = {module_name(p) for p in STN_MODULES if p.parent != ROOT / "stn"}
    packages |= {module_name(p) for p in STN_MODULES if p.parent == ROOT / "stn"} - {"stn"}
    assert [m for m in packages if floor_of(m) is None] == []


@pytest.mark.parametrize("path", STN_MODULES, ids=lambda p: module_name(p))
def test_no_import_climbs_back_up(path):
    here = floor_of(module_name(path))
    if here is None:  # stn/__init__.py
        here = len(FLOORS)
    climbing = [
        name
        for name in imports_of(path)
        if name.startswith("stn.") and (floor_of(name) or 0) > here
    ]
    assert climbing == [], f"{module_name(path)} (floor {FLOORS[min(here, len(FLOORS) - 1)]})"
    outside = [n for n in imports_of(path) if n.split(".")[0] in NEVER_IN_STN]
    assert outside == [], module_name(path)


def test_the_check_sees_a_climbing_import(tmp_path, monkeypatch):
    """The check itself: an import of the report from the results floor, even inside a
    function, is caught; one down to the measure floor is not."""
    probe = tmp_path / "stn" / "results" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import stn.measure.train\n\ndef f():\n    from stn.report import tables\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    here = floor_of(module_name(probe))
    assert [n for n in imports_of(probe) if (floor_of(n) or 0) > here] == ["stn.report"]
