import numpy as np
import pytest
import torch

from stn.data.canvas import CanvasSpec
from stn.data.embedded import load_embedded_digits
from stn.data.stream import BatchStream
from stn.models import build_classifier
from stn.reducers import build_reducer
from stn.train import NonFiniteLossError, ReducedClassifier, TrainSettings, fit, seed_everything


def _run(seed: int, lr: float = 1e-3):
    digits = load_embedded_digits()
    train = BatchStream(digits.subset(np.arange(0, 5000, 40)), 32, CanvasSpec(size=64), seed)
    test = BatchStream(digits.subset(np.arange(7, 5000, 100)), 32, CanvasSpec(size=64), 99)
    seed_everything(seed)
    reducer = build_reducer({"kind": "resize", "mode": "bilinear"}, 1, (64, 64))
    model = ReducedClassifier(reducer, build_classifier("cnn", 1, 10, (48, 48)))
    settings = TrainSettings(epochs=2, lr=lr, max_steps_per_epoch=3, progress=False)
    return fit(model, train, test, settings, torch.device("cpu"))


def test_same_seed_gives_identical_metrics_on_cpu():
    a, b = _run(seed=3), _run(seed=3)
    assert a["curves"][-1]["train_loss"] == b["curves"][-1]["train_loss"]
    assert a["test_accuracy"] == b["test_accuracy"] and a["test_loss"] == b["test_loss"]
    assert a["steps"] == 6 and len(a["curves"]) == 2


def test_different_seeds_train_differently():
    assert _run(seed=3)["curves"][0]["train_loss"] != _run(seed=4)["curves"][0]["train_loss"]


def test_diverging_loss_stops_the_run_with_a_reason():
    with pytest.raises(NonFiniteLossError, match="loss became (nan|inf)"):
        _run(seed=0, lr=1e30)


def test_reducer_parameters_train_at_their_own_rate():
    from stn.train import make_optimizer

    reducer = build_reducer({"kind": "resize", "mode": "bilinear"}, 1, (64, 64))
    reducer.scale = torch.nn.Parameter(torch.ones(1))
    reducer.lr_multiplier = 0.1
    model = ReducedClassifier(reducer, build_classifier("mlp", 1, 10, (48, 48)))
    optimizer = make_optimizer(model, TrainSettings(lr=0.01))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.001])
