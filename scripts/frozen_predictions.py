"""What a frozen network answers behind each fixed reducer: accuracy, the class it names
most and how often, and how bright its input is, on a dataset's test split.

    python -m scripts.frozen_predictions digits_96 resize_bilinear pool_blur oracle_crop

Each reducer is composed with ``experiment=frozen`` (the checkpoint of
``experiment=frozen_checkpoint``, kept frozen) and read once, untrained, as the frozen
sweep reads a fixed reducer. It explains a row at chance in ``results/frozen``: a network
that names one class for nearly every image is not reading its input (README, "When your
network is already trained"). One CPU thread; a probe, not a record.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

import experiments.run  # noqa: F401  (registers the config schemas)
from experiments.job import plain_config
from experiments.sections import build_model, read_run
from stn.data.prepare import prepare_data
from stn.reducers.base import reduce_batch
from stn.results.record import Record

CONF = Path(__file__).resolve().parents[1] / "conf"


@torch.no_grad()
def probe(dataset: str, reducer: str, seed: int = 0) -> dict[str, float | int]:
    """``accuracy``, ``top_class`` and ``top_share`` (the class it names most, and on what
    share of the test images) and ``input_mean`` (mean pixel of the reduced images)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = plain_config(
            compose(
                "config",
                overrides=["experiment=frozen", f"dataset={dataset}", f"reducer={reducer}"],
            )
        )
    run = read_run(config)
    data = prepare_data(run.dataset, seed, run.trainer.batch_size)
    model = build_model(
        run, data, torch.device("cpu"), Record(run_id="probe", sweep="probe", config=config)
    )
    model.eval()
    named: Counter[int] = Counter()
    correct = count = 0
    brightness = 0.0
    for batch in data.test.batches():
        reduced = reduce_batch(model.reducer, batch.x, batch.boxes)
        predicted = model(batch.x, batch.boxes).argmax(1)  # glimpses pooled as in training
        named.update(predicted.tolist())
        correct += int((predicted == batch.y).sum())
        count += len(predicted)
        brightness += float(reduced.mean()) * len(predicted)
    top_class, top_count = named.most_common(1)[0]
    return {
        "accuracy": correct / count,
        "top_class": top_class,
        "top_share": top_count / count,
        "input_mean": brightness / count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", help="a dataset preset, e.g. digits_96")
    parser.add_argument("reducers", nargs="+", help="reducer presets, read once each")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"{'reducer':<20} {'accuracy':>8} {'names most':>10} {'share':>6} {'input mean':>10}")
    for reducer in args.reducers:
        r = probe(args.dataset, reducer)
        print(
            f"{reducer:<20} {r['accuracy']:>8.3f} {r['top_class']:>10} "
            f"{r['top_share']:>6.3f} {r['input_mean']:>10.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
