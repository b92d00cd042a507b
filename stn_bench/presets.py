"""The presets of each config group, read from ``conf/``: what ``group=name`` may say.

    stn-bench list             # every group and its presets
    stn-bench list reducer     # one group: each preset with the first line of its comment
    stn-bench list hydra/sweeper   # Hydra's own groups: their plugins' presets too

A preset is a YAML file under ``conf/<group>/`` (a subfolder is named with it:
``reducer=ablation/stn_loc_sgd``). The ``base_*`` schemas a preset extends are left out
(``stn-bench options`` lists what they declare). Exit status 2 for a group that is not there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments import CONF_DIR
from stn.options import closest_match

# Groups whose presets come mostly from Hydra's plugins (joblib, submitit, optuna).
HYDRA_GROUPS = ("hydra/launcher", "hydra/sweeper")


def file_presets(conf_dir: Path = CONF_DIR) -> dict[str, list[Path]]:
    """Group → its preset files, sorted; a group is a folder of ``conf/`` holding YAML
    files directly, and a subfolder of it (``reducer/ablation``) belongs to its group."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(conf_dir.rglob("*.yaml")):
        folder = path.parent.relative_to(conf_dir)
        if folder == Path("."):
            continue  # config.yaml: the primary config, not a preset
        group = folder.as_posix() if folder.parts[0] == "hydra" else folder.parts[0]
        groups.setdefault(group, []).append(path)
    return groups


def preset_name(group: str, path: Path, conf_dir: Path = CONF_DIR) -> str:
    """What ``group=<name>`` says to pick ``path``: ``stn_bilinear``, ``ablation/stn_loc_sgd``."""
    return path.relative_to(conf_dir / group).with_suffix("").as_posix()


def description(path: Path) -> str:
    """The first comment line of a preset (``# @package`` lines aside), or ``''``."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("#") and not text.startswith("# @package"):
            return text.lstrip("#").strip()
        if text and not text.startswith("#"):
            break
    return ""


def hydra_presets(group: str) -> list[str]:
    """Every preset Hydra offers for one of its own groups (``hydra/launcher``): this
    checkout's files and its installed plugins' configs, as ``--help`` lists them."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def all_presets() -> dict[str, list[str]]:
    """Group → preset names: ``conf/``'s groups, then Hydra's launchers and sweepers."""
    groups = {
        group: [preset_name(group, path) for path in paths]
        for group, paths in file_presets().items()
        if group not in HYDRA_GROUPS
    }
    for group in HYDRA_GROUPS:
        groups[group] = hydra_presets(group)
    return groups


def main(argv: list[str] | None = None, prog: str = "stn-bench list") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("group", nargs="?", help="a config group (reducer, dataset, ...)")
    args = parser.parse_args(argv)
    groups = all_presets()
    if args.group is None:
        width = max(len(group) for group in groups)
        for group, names in groups.items():
            print(f"{group:<{width}}  {', '.join(names)}")
        print("\npick one with group=name (stn-bench run reducer=stn_bilinear); a group's "
              "presets with what each is: stn-bench list GROUP")  # fmt: skip
        return 0
    if args.group not in groups:
        near = closest_match(args.group, list(groups))
        hint = f" (did you mean {near!r}?)" if near else ""
        print(f"error: no config group {args.group!r}{hint}; groups: {', '.join(groups)}",
              file=sys.stderr)  # fmt: skip
        return 2
    files = {preset_name(args.group, p): p for p in file_presets().get(args.group, [])}
    names = groups[args.group]
    width = max(len(name) for name in names)
    for name in names:
        text = description(files[name]) if name in files else "(Hydra plugin)"
        print(f"{name:<{width}}  {text}")
    return 0
