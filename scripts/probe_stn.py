"""Quick probe of one reducer recipe on cluttered digits: accuracy and where it looks, per epoch.

    python -m scripts.probe_stn --canvas 128 --clutter 8 --train 2000 --epochs 3 \\
        kind=stn loc_head=heatmap init_scale=0.5 lr_multiplier=1.0

Reducer options are ``key=value`` pairs (values parsed as YAML-ish JSON: numbers, true,
[0.3, 0.5]); default ``kind=stn``; options left out take the kind's config defaults
(``stn.reducers.transformer.StnConfig``: ``lr_multiplier`` 1.0, where the stn_* presets
set 0.1). Per epoch it prints test accuracy, the mean and spread
of the zoom over test images, and how often the glimpse centre falls inside the true
object box (``hit``) — the attended region, without plots. One thread, CPU; for choosing
recipes before a sweep, not a benchmark record (use ``experiment=stn_recipes`` for that).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from stn.data.prepare import DatasetSpec, prepare_data
from stn.measure.train import ReducedClassifier, TrainSettings, fit, seed_everything
from stn.networks import build_classifier
from stn.reducers.registry import build_reducer


def parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"reducer option {text!r} is not key=value")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


@torch.no_grad()
def attention_stats(model: ReducedClassifier, stream, device: torch.device) -> dict[str, float]:
    """Zoom mean/std and the share of glimpse centres inside the object box (test split)."""
    reducer = model.reducer
    if not hasattr(reducer, "params"):
        return {}
    model.eval()
    scales, hits = [], []
    for batch in stream.batches():
        x = batch.x.to(device)
        params = reducer.params(x)
        scale, tx, ty = params[:, 0], params[:, 1], params[:, -1]
        if params.shape[1] == 6:
            tx, ty = params[:, 2], params[:, 5]
        size = x.shape[-1]
        cx, cy = (tx + 1) * size / 2, (ty + 1) * size / 2  # glimpse centre in pixels
        box = batch.boxes.to(device)
        hits.append((cx >= box[:, 0]) & (cx < box[:, 2]) & (cy >= box[:, 1]) & (cy < box[:, 3]))
        scales.append(scale)
    scale = torch.cat(scales)
    return {
        "scale_mean": scale.mean().item(),
        "scale_std": scale.std().item(),
        "hit": torch.cat(hits).float().mean().item(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("options", nargs="*", type=parse_option, help="reducer key=value")
    parser.add_argument("--source", default="digits", help="dataset source (mnist: full MNIST)")
    parser.add_argument("--canvas", type=int, default=128, help="canvas side (px)")
    parser.add_argument("--object-size", type=int, nargs=2, default=[28, 28], metavar=("LO", "HI"))
    parser.add_argument("--clutter", type=int, default=8, help="fragments per canvas")
    parser.add_argument("--train", type=int, default=2000, help="training digits (0: all)")
    parser.add_argument("--test", type=int, default=500, help="test digits")
    parser.add_argument("--output", type=int, default=48, help="output side (px)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--classifier",
        choices=["cnn", "small_cnn"],
        default="cnn",
        help="the downstream network: the default normalised cnn, or the 16/32 small_cnn of "
        "the probes in docs/stn.md (with --legacy-training to reproduce them)",
    )
    parser.add_argument(
        "--classifier-bn", action="store_true", help="batch norm in small_cnn's stages"
    )
    parser.add_argument(
        "--legacy-training",
        action="store_true",
        help="constant-rate Adam without clipping or decay (the training of earlier probes)",
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    spec = DatasetSpec(
        name="probe",
        source=args.source,
        canvas_size=args.canvas,
        object_size=tuple(args.object_size),
        clutter=args.clutter,
        jitter=1.0,  # anywhere on the canvas (DatasetSpec's default is digits_96's 0.5)
        limit_train=args.train or None,
        limit_test=args.test,
    )
    data = prepare_data(spec, args.seed, args.batch_size)
    options = {"kind": "stn", "name": "probe", **dict(args.options)}
    channels, h, w = data.train.input_shape
    out = (args.output, args.output)
    reducer = build_reducer(options, channels, (h, w), out)
    torch.manual_seed(args.seed)  # the same classifier init whatever the reducer drew
    options_of = {"small_cnn": {"channels": (16, 32), "batch_norm": args.classifier_bn}}
    classifier = build_classifier(
        args.classifier, channels, data.num_classes, out, **options_of.get(args.classifier, {})
    )
    model = ReducedClassifier(reducer, classifier)
    device = torch.device("cpu")
    print(json.dumps({"options": options, "args": vars(args) | {"options": None}}))
    started = time.perf_counter()

    def report(entry: dict) -> None:
        stats = attention_stats(model, data.test, device)
        line = {k: round(v, 3) for k, v in {**entry, **stats}.items() if k != "epoch"}
        print(f"epoch {entry['epoch']}: {line}", flush=True)

    legacy = {"lr_schedule": "constant", "weight_decay": 0.0, "grad_clip_norm": None}
    settings = TrainSettings(
        epochs=args.epochs,
        lr=args.lr,
        progress=False,
        **(legacy if args.legacy_training else {}),
    )
    metrics = fit(model, data.train, data.test, settings, device, on_epoch_end=report)
    wall = time.perf_counter() - started
    print(
        f"final test accuracy {metrics['test_accuracy']:.3f}, "
        f"train {metrics['train_seconds']:.0f} s, wall {wall:.0f} s, {metrics['steps']} steps"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
