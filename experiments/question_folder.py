"""The question's comparison on your own images, in one command.

    stn-bench folder PATH                    # the comparison, 3 seeds
    stn-bench folder PATH trainer=smoke      # a quick look (a few steps)
    stn-bench folder PATH --dry-run          # what it would run
    stn-bench folder PATH --output 32 --reducers resize_area,stn_bilinear

PATH holds one folder per class (``PATH/<class>/<image>``: png, jpg, jpeg, ppm, bmp). The
command reads the images' headers (not their pixels), then:

- loads every image at their own side (the median shorter side where sizes differ: each
  image is resized to it), grey when every image is grey, else RGB;
- reduces to ``--output`` (48, the network's input) and refuses images no larger than that;
- keeps the reducers of ``experiment=question_folder`` that run at that size and adds the
  ones the size allows, printing each reducer left out and why: ``pool_avg``/``pool_max``
  only from a multiple of the output side, ``ips_windows`` from a side of at least its
  largest window (128 px), PCA (with the CNN, then with the MLP) only with at least
  output² training images;
- runs ``stn-bench run experiment=question_folder ...`` (as ``python -m experiments.run``) into
  ``results/question_<folder name>/`` (then ``classifier=mlp`` for PCA when it can run),
  whose report is the question's (``report.md``: verdict, table, figures).

Anything after PATH that is not an option of this command is passed to every sweep as a
Hydra override (``trainer=smoke``, ``seed=0``, ``results_dir=...``). Exit status: that of
the sweeps (the first non-zero), 2 for a folder it cannot use.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from stn.data.folder import IMAGE_EXTENSIONS

ROOT = Path(__file__).resolve().parents[1]
USAGE_ERROR = 2
DEFAULT_OUTPUT = 48
# experiment=question_folder's rows, in its order (they run at any side of at least 128).
PRESET = "experiment=question_folder"
RESIZES = [
    "resize_nearest", "resize_bilinear", "resize_bicubic", "resize_area",
    "resize_bilinear_aa", "resize_bicubic_aa",
]  # fmt: skip
STNS = [
    "stn_nearest", "stn_bilinear", "stn_bicubic", "stn_lanczos3", "stn_gaussian",
    "stn_bilinear_aa", "stn_bicubic_aa", "stn_lanczos3_aa",
]  # fmt: skip
LARGEST_WINDOW = 128  # ips_windows' window sides: 32, 64, 128 px
# experiment=question_mlp's rows but its oracle (a folder has no object boxes).
MLP_REDUCERS = ["resize_area", "pca", "pca_whiten"]
ALWAYS_LEFT_OUT = {
    "pool_adaptive": "computes exactly what resize_area does (bit for bit)",
    "stn_candidates": "its blob detector is set by hand for 28-px digits on a dark ground",
    "oracle_crop": "your images carry no object boxes to crop",
}


class FolderError(ValueError):
    """A folder this command cannot compare reducers on; the message says why and how."""


@dataclass(frozen=True)
class FolderFacts:
    """What the headers say: images per class, sizes, colour."""

    root: Path
    classes: dict[str, int]
    sizes: Counter  # (width, height) → images
    grey: bool

    @property
    def images(self) -> int:
        return sum(self.classes.values())

    @property
    def side(self) -> int:
        """The side every image is loaded at: the common one, else the median shorter side."""
        return int(
            statistics.median_low(min(w, h) for (w, h), n in self.sizes.items() for _ in range(n))
        )

    def describe(self) -> str:
        sizes = (
            f"all {next(iter(self.sizes))[0]}×{next(iter(self.sizes))[1]} px"
            if len(self.sizes) == 1
            else f"{len(self.sizes)} sizes, loaded at the median shorter side"
        )
        colour = "grey" if self.grey else "colour"
        return (
            f"{self.images} images in {len(self.classes)} classes "
            f"({', '.join(f'{c}: {n}' for c, n in self.classes.items())}), {sizes}, {colour}"
        )


@dataclass
class Plan:
    side: int
    output: int
    channels: int
    reducers: list[str]
    mlp_reducers: list[str]
    left_out: dict[str, str] = field(default_factory=dict)  # reducer → why


def read_folder(root: str | os.PathLike) -> FolderFacts:
    """The image headers under ``root/<class>/`` (Pillow reads no pixels for this)."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise FolderError(f"{root}: not a folder; give a folder holding one sub-folder per class")
    classes: dict[str, int] = {}
    sizes: Counter = Counter()
    grey = True
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [
            p
            for p in sorted(class_dir.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        ]
        for path in files:
            try:
                with Image.open(path) as image:
                    sizes[image.size] += 1
                    grey &= image.mode in ("1", "L", "I", "I;16", "F")
            except (UnidentifiedImageError, OSError) as err:
                raise FolderError(f"{path}: cannot read this image ({err})") from err
        if files:
            classes[class_dir.name] = len(files)
    if len(classes) < 2:
        raise FolderError(
            f"{root}: found {len(classes)} class folder(s) with images; a comparison needs at "
            f"least two: arrange the images as {root}/<class name>/<image file> "
            f"({', '.join(IMAGE_EXTENSIONS)})"
        )
    return FolderFacts(root, classes, sizes, grey)


def plan(facts: FolderFacts, output: int = DEFAULT_OUTPUT, test_fraction: float = 0.2) -> Plan:
    """The reducers that can run on ``facts``' images at ``output``, and why the others
    cannot. Raises :class:`FolderError` for images no larger than ``output``."""
    side = facts.side
    if side <= output:
        raise FolderError(
            f"{facts.root}: the images are {side} px on their shorter side, no larger than the "
            f"{output}-px output: there is nothing to reduce (give --output a smaller side, or "
            "feed the images to the network as they are)"
        )
    left_out = dict(ALWAYS_LEFT_OUT)
    reducers = list(RESIZES)
    if side % output == 0:
        reducers += ["pool_avg", "pool_max"]
    else:
        multiples = ", ".join(str(output * k) for k in range(2, 6))
        why = (
            f"reaches {output} only from a multiple of it ({multiples}, ...); the images are "
            f"{side} px (pool_blur reaches {output} from any size)"
        )
        left_out.update(pool_avg=why, pool_max=why)
    reducers += ["pool_blur"]
    train_images = sum(n - round(n * test_fraction) for n in facts.classes.values())
    components = output * output
    pca = train_images >= components
    if pca:
        reducers += ["pca"]
    else:
        why = (
            f"{components} coefficients ({output}²) need at least {components} training "
            f"images; the folder gives about {train_images}"
        )
        left_out.update(pca=why, pca_whiten=why)
    reducers += ["learned_resizer", *STNS, "saliency_sampler"]
    if side >= LARGEST_WINDOW:
        reducers += ["ips_windows"]
    else:
        left_out["ips_windows"] = (
            f"its largest window is {LARGEST_WINDOW} px and the images are {side} px "
            "(smaller windows: reducer=ips_windows reducer.window_sizes=[16,32,64])"
        )
    return Plan(
        side=side,
        output=output,
        channels=1 if facts.grey else 3,
        reducers=reducers,
        mlp_reducers=MLP_REDUCERS if pca else [],
        left_out=left_out,
    )


def sweep_commands(facts: FolderFacts, chosen: Plan, overrides: list[str]) -> list[list[str]]:
    """The ``experiments.run`` command lines: the CNN sweep, then PCA with the MLP."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", facts.root.resolve().name).strip("_") or "folder"
    common = [
        sys.executable,
        "-m",
        "experiments.run",
        "-m",  # a sweep: Hydra reads reducer=a,b as one only with it
        PRESET,
        f"dataset.root={facts.root.resolve()}",
        f"dataset.name={name}",
        f"dataset.options.size={chosen.side}",
        f"dataset.options.channels={chosen.channels}",
        f"output_size=[{chosen.output},{chosen.output}]",
        f"sweep=question_{name}",
    ]
    commands = [[*common, f"reducer={','.join(chosen.reducers)}", *overrides]]
    if chosen.mlp_reducers:
        mlp = ["classifier=mlp", f"reducer={','.join(chosen.mlp_reducers)}"]
        commands.append([*common, *mlp, *overrides])
    return commands


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, help="one sub-folder of images per class")
    parser.add_argument(
        "--output", type=int, default=DEFAULT_OUTPUT, help="the network's input side (48)"
    )
    parser.add_argument(
        "--reducers",
        help="run only these of the planned reducers (comma-separated); "
        "those the size rules out are still named with why",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and commands only")
    args, overrides = parser.parse_known_args(argv)
    try:
        facts = read_folder(args.folder)
        chosen = plan(facts, args.output)
    except FolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE_ERROR
    if args.reducers:
        wanted = [r for r in args.reducers.split(",") if r]
        unknown = [r for r in wanted if r not in chosen.reducers + chosen.mlp_reducers]
        unknown = [r for r in unknown if r not in chosen.left_out]
        if unknown:
            print(
                f"error: --reducers: not in the question's rows: {', '.join(unknown)}",
                file=sys.stderr,
            )
            return USAGE_ERROR
        chosen.left_out = {r: why for r, why in chosen.left_out.items() if r in wanted}
        chosen.reducers = [r for r in chosen.reducers if r in wanted]
        chosen.mlp_reducers = [r for r in chosen.mlp_reducers if r in wanted]
        if chosen.mlp_reducers and not any(r.startswith("pca") for r in chosen.mlp_reducers):
            chosen.mlp_reducers = []  # the MLP sweep is there for PCA
    print(f"{facts.root}: {facts.describe()}")
    print(
        f"loaded at {chosen.side}×{chosen.side} px, {chosen.channels} channel(s), reduced to "
        f"{chosen.output}×{chosen.output}: {len(chosen.reducers)} reducer(s) with the CNN"
        + (f", {len(chosen.mlp_reducers)} with the MLP" if chosen.mlp_reducers else "")
    )
    for reducer, why in chosen.left_out.items():
        print(f"  left out {reducer}: {why}")
    commands = sweep_commands(facts, chosen, overrides) if chosen.reducers else []
    status = 0
    # The sweeps import experiments.run: this checkout first, whatever the working folder.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    for command in commands:
        # Printed as the front door's equivalent (stn-bench run hands its arguments to
        # experiments.run unchanged), so a reader can rerun or edit it as it stands.
        print("$ stn-bench run " + shlex.join(command[3:]), flush=True)
        if not args.dry_run:
            status = status or subprocess.run(command, env=env, check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
