import numpy as np
import pytest
import torch

from stn.data.canvas import CanvasSpec
from stn.data.embedded import load_embedded_digits
from stn.data.stream import BatchStream
from stn.measure.train import (
    NonFiniteLossError,
    ReducedClassifier,
    TrainSettings,
    fit,
    seed_everything,
)
from stn.networks import build_classifier
from stn.reducers.registry import build_reducer


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
    from stn.measure.train import make_optimizer

    reducer = build_reducer({"kind": "learned_resizer", "lr_multiplier": 0.1}, 1, (64, 64))
    model = ReducedClassifier(reducer, build_classifier("mlp", 1, 10, (48, 48)))
    optimizer = make_optimizer(model, TrainSettings(lr=0.01))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.001])


def test_warmup_cosine_matches_a_linear_ramp_then_torchs_cosine_annealing():
    from stn.measure.train import lr_factor

    total, warmup = 40, 6  # warmup_fraction 0.15 of 40 steps
    factors = [lr_factor(step, total, "warmup_cosine", 0.15) for step in range(total)]
    assert factors[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])
    # torch's CosineAnnealingLR over the remaining steps is the independent reference.
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)
    reference = []
    for _ in range(total - warmup):
        optimizer.step()
        schedule.step()
        reference.append(optimizer.param_groups[0]["lr"])
    assert factors[warmup:] == pytest.approx(reference, abs=1e-12)
    assert factors[-1] == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(7, total, "constant", 0.15) == 1.0


def test_fit_applies_the_schedule_to_every_group_and_clips_gradients(monkeypatch):
    import stn.measure.train as train_module

    seen_norms: list[float] = []
    seen_lrs: list[list[float]] = []
    clip = torch.nn.utils.clip_grad_norm_
    make_optimizer = train_module.make_optimizer

    def recording_clip(parameters, max_norm, *args, **kwargs):
        seen_norms.append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    def recording_optimizer(model, settings):
        optimizer = make_optimizer(model, settings)
        step = optimizer.step

        def recorded_step(*args, **kwargs):
            seen_lrs.append([group["lr"] for group in optimizer.param_groups])
            return step(*args, **kwargs)

        optimizer.step = recorded_step
        return optimizer

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    monkeypatch.setattr(train_module, "make_optimizer", recording_optimizer)
    digits = load_embedded_digits()
    train = BatchStream(digits.subset(np.arange(0, 5000, 50)), 25, None, 0)
    spec = {"kind": "learned_resizer", "lr_multiplier": 0.1}
    reducer = build_reducer(spec, 1, (28, 28), (14, 14))
    model = ReducedClassifier(reducer, build_classifier("mlp", 1, 10, (14, 14)))
    settings = TrainSettings(epochs=2, lr=0.01, grad_clip_norm=0.5, progress=False)
    fit(model, train, train, settings, torch.device("cpu"))
    assert seen_norms == [0.5] * 8
    factors = [train_module.lr_factor(s, 8, "warmup_cosine", 0.15) for s in range(8)]
    expected = [[0.01 * f, 0.001 * f] for f in factors]
    assert sum(seen_lrs, []) == pytest.approx(sum(expected, []))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lr_schedule", "step", "choose one of warmup_cosine, constant"),
        ("warmup_fraction", 1.0, "warmup_fraction must be in"),
        ("grad_clip_norm", 0.0, "grad_clip_norm must be > 0 or null"),
    ],
)
def test_bad_trainer_settings_say_what_is_allowed(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings(**{field: value})


def _recording_lrs(monkeypatch) -> list[float]:
    """The classifier group's learning rate at every optimiser step of the next fit."""
    import stn.measure.train as train_module

    seen: list[float] = []
    make_optimizer = train_module.make_optimizer

    def recording_optimizer(model, settings):
        optimizer = make_optimizer(model, settings)
        optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"])
        )
        return optimizer

    monkeypatch.setattr(train_module, "make_optimizer", recording_optimizer)
    return seen


def _small_model_and_stream(images: int, batch: int):
    digits = load_embedded_digits()
    stream = BatchStream(digits.subset(np.arange(0, 50 * images, 50)), batch, None, 0)
    reducer = build_reducer({"kind": "resize", "mode": "bilinear"}, 1, (28, 28), (16, 16))
    model = ReducedClassifier(reducer, build_classifier("cnn", 1, 10, (16, 16), dropout=0.5))
    return model, stream


def test_fit_warms_up_over_the_fraction_it_is_given(monkeypatch):
    # 20 steps: a warm-up of 0.5 is 10 steps, the default 0.15 would be 3 (at 8 steps,
    # as in the other tests, 0.0 and 0.15 both round to one step and cannot be told apart).
    seen = _recording_lrs(monkeypatch)
    model, stream = _small_model_and_stream(images=80, batch=8)
    settings = TrainSettings(
        epochs=2, lr=0.01, warmup_fraction=0.5, max_steps_per_epoch=10, progress=False
    )
    fit(model, stream, stream, settings, torch.device("cpu"))
    assert len(seen) == 20
    assert seen[:10] == pytest.approx([0.01 * (s + 1) / 10 for s in range(10)])  # the ramp
    assert seen[10] < seen[9] == pytest.approx(0.01)  # the peak at the ramp's end, then decay
    from stn.measure.train import lr_factor

    default = [0.01 * lr_factor(s, 20, "warmup_cosine", 0.15) for s in range(20)]
    assert seen != pytest.approx(default)


def test_evaluate_reads_the_network_in_eval_mode_and_changes_nothing():
    # In training mode batch norm would normalise with the test batches' statistics and
    # fold the test split into its running averages; dropout would draw at random.
    from stn.measure.train import evaluate

    torch.manual_seed(0)
    model, stream = _small_model_and_stream(images=40, batch=16)
    model.train()
    for module in model.modules():  # running statistics that differ from the test split's
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.fill_(0.3)
            module.running_var.fill_(2.0)
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    first = evaluate(model, stream, torch.device("cpu"))
    second = evaluate(model, stream, torch.device("cpu"))
    assert first == second
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in buffers.items())
    model.eval()
    loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for batch in stream.batches():
            logits = model(batch.x, batch.boxes)
            loss += torch.nn.functional.cross_entropy(logits, batch.y, reduction="sum").item()
            correct += int((logits.argmax(1) == batch.y).sum())
            count += len(batch.y)
    assert first == pytest.approx({"loss": loss / count, "accuracy": correct / count})
