"""The chance-plateau verdict: the rule on synthetic curves, on real training, in reports."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from report_records import make_record, write_all

from stn.data.images import ImageSet
from stn.data.stream import BatchStream
from stn.measure.plateau import (
    PLATEAU_RULE,
    chance_loss,
    plateau_verdict,
    stalled_counts,
)
from stn.measure.train import ReducedClassifier, TrainSettings, fit, seed_everything
from stn.networks import build_classifier
from stn.reducers.registry import build_reducer
from stn.report.document import write_report
from stn.report.stats import aggregate
from stn.report.tables import STALLED_MARK, STALLED_NOTE, UNKNOWN_NOTE
from stn.results.collect import record_plateau, runs_frame


def _curves(*epochs: tuple[float, float]) -> list[dict]:
    """(train_loss, train_accuracy) per epoch → fit's curve entries."""
    return [
        {"epoch": i + 1, "train_loss": loss, "train_accuracy": accuracy}
        for i, (loss, accuracy) in enumerate(epochs)
    ]


@pytest.mark.parametrize("num_classes", [2, 10])
def test_chance_loss_is_the_cross_entropy_of_a_uniform_prediction(num_classes):
    labels = torch.arange(num_classes).repeat(3)
    uniform = F.cross_entropy(torch.zeros(len(labels), num_classes), labels).item()
    assert chance_loss(num_classes) == pytest.approx(uniform, rel=1e-6)


def test_a_run_that_never_moves_ended_on_the_plateau():
    ln10 = math.log(10)
    verdict = plateau_verdict(_curves((ln10, 0.1), (ln10, 0.11), (ln10 - 0.01, 0.09)), 10)
    assert verdict["ended_on_plateau"] is True and verdict["left_at_epoch"] is None
    assert verdict["chance_loss"] == pytest.approx(ln10)
    assert verdict["chance_accuracy"] == pytest.approx(0.1)
    assert verdict["final_train_loss"] == pytest.approx(ln10 - 0.01)
    assert verdict["final_train_accuracy"] == pytest.approx(0.09)
    assert verdict["rule"] == PLATEAU_RULE


def test_a_run_that_learns_left_the_plateau_at_its_first_low_epoch():
    verdict = plateau_verdict(_curves((2.30, 0.10), (2.20, 0.15), (1.50, 0.45), (0.8, 0.7)), 10)
    assert verdict["ended_on_plateau"] is False and verdict["left_at_epoch"] == 3


def test_a_run_that_leaves_and_falls_back_ends_on_the_plateau_and_says_when_it_left():
    verdict = plateau_verdict(_curves((2.30, 0.1), (1.2, 0.6), (2.31, 0.1)), 10)
    assert verdict["ended_on_plateau"] is True and verdict["left_at_epoch"] == 2


def test_epoch_numbers_come_from_the_curve_entries():
    curves = [{"epoch": 7, "train_loss": 0.5, "train_accuracy": 0.9}]
    assert plateau_verdict(curves, 10)["left_at_epoch"] == 7


@pytest.mark.parametrize("num_classes", [2, 10])
def test_thresholds_loss_bound_inclusive_accuracy_bound_exclusive(num_classes):
    loss_bound = 0.9 * math.log(num_classes)
    below_accuracy = np.nextafter(2 / num_classes, 0)
    on = plateau_verdict(_curves((loss_bound, below_accuracy)), num_classes)
    assert on["ended_on_plateau"] is True and on["left_at_epoch"] is None
    lower_loss = plateau_verdict(_curves((np.nextafter(loss_bound, 0), 0.0)), num_classes)
    assert lower_loss["ended_on_plateau"] is False and lower_loss["left_at_epoch"] == 1
    if num_classes > 2:  # for C = 2 the accuracy bound is 1.0: a run can never reach above it
        accurate = plateau_verdict(_curves((loss_bound, 2 / num_classes)), num_classes)
        assert accurate["ended_on_plateau"] is False and accurate["left_at_epoch"] is None


def test_the_same_curve_is_a_plateau_for_two_classes_but_not_for_ten():
    curves = _curves((1.0, 0.45))  # 0.9 ln 2 = 0.62 ≤ 1.0 < 2.07 = 0.9 ln 10
    assert plateau_verdict(curves, 2)["ended_on_plateau"] is True
    assert plateau_verdict(curves, 10)["ended_on_plateau"] is False
    # With ten classes an accuracy of 0.45 is far above 2/C even at a high loss.
    assert plateau_verdict(_curves((2.2, 0.45)), 10)["ended_on_plateau"] is False


@pytest.mark.parametrize(
    ("curves", "num_classes", "message"),
    [
        ([], 10, "curves is empty"),
        (_curves((2.3, 0.1)), 1, "num_classes must be an integer ≥ 2"),
        (_curves((2.3, 0.1)), 10.0, "num_classes must be an integer ≥ 2"),
        ([{"epoch": 1, "train_loss": 2.3}], 10, "curves\\[0\\] needs .*'train_accuracy'"),
        (_curves((2.3, 0.1), (math.nan, 0.1)), 10, "curves\\[1\\] needs .*'train_loss'"),
    ],
)
def test_unusable_input_is_a_clear_error(curves, num_classes, message):
    with pytest.raises(ValueError, match=message):
        plateau_verdict(curves, num_classes)


def test_record_plateau_prefers_the_stored_verdict_then_the_curves_else_unknown():
    learned = make_record("pool_avg", 0, 0.8)
    assert record_plateau(learned)["ended_on_plateau"] is False  # computed from its curves
    stalled = make_record("pool_avg", 0, 0.1, stalled=True)
    assert record_plateau(stalled)["ended_on_plateau"] is True
    learned.metrics.plateau = plateau_verdict(_curves((2.3, 0.1)), 10)
    assert record_plateau(learned)["ended_on_plateau"] is True  # the stored one wins
    assert record_plateau(make_record("pool_avg", 0, 0.8, num_classes=None)) is None
    no_curves = make_record("pool_avg", 0, 0.8)
    no_curves.metrics.curves = None
    assert record_plateau(no_curves) is None
    assert record_plateau(make_record("pool_avg", 0, None, status="failed")) is None


def test_stalled_counts_treat_anything_but_a_boolean_as_unknown():
    flags = [True, np.True_, False, np.False_, None, math.nan]
    assert stalled_counts(flags) == {"stalled": 2, "stalled_unknown": 2}


def _bands(labels_scrambled: bool) -> ImageSet:
    """Ten classes, 10 copies each of one noise-free 48×48 picture per class (a bright
    band at rows 4k..4k+4). Scrambled labels give each picture every class exactly once,
    so no fixed network beats ln C or 1/C on them: a structural plateau, not a lucky one."""
    classes, copies = 10, 10
    picture = np.repeat(np.arange(classes), copies)
    images = np.zeros((len(picture), 1, 48, 48), np.uint8)
    for i, k in enumerate(picture):
        images[i, 0, 4 * k : 4 * k + 4, :] = 255
    labels = picture
    if labels_scrambled:  # a permutation of the true labels, balanced within each picture
        labels = (picture + np.tile(np.arange(copies), classes)) % classes
    return ImageSet(images, labels.astype(np.int64), classes, "bands")


def _train_on_bands(labels_scrambled: bool) -> dict:
    images = _bands(labels_scrambled)
    seed_everything(0)
    reducer = build_reducer({"kind": "resize", "mode": "bilinear"}, 1, (48, 48))
    model = ReducedClassifier(reducer, build_classifier("cnn", 1, images.num_classes, (48, 48)))
    settings = TrainSettings(epochs=2, lr=1e-3, progress=False)
    test = BatchStream(images.subset(np.arange(0, 100, 10)), 10, None, 0)
    metrics = fit(model, BatchStream(images, 10, None, 0), test, settings, torch.device("cpu"))
    return plateau_verdict(metrics["curves"], images.num_classes)


def test_real_training_on_scrambled_labels_ends_on_the_plateau_true_labels_do_not():
    scrambled, true = _train_on_bands(True), _train_on_bands(False)
    assert scrambled["ended_on_plateau"] is True and scrambled["left_at_epoch"] is None
    assert true["ended_on_plateau"] is False and true["left_at_epoch"] is not None


def test_the_report_counts_marks_and_lists_stalled_runs(tmp_path):
    records = []
    for seed in range(3):
        records.append(make_record("resize_bilinear", seed, 0.8, stalled=seed == 1))
        records.append(make_record("pool_avg", seed, 0.85))
        records.append(make_record("pool_max", seed, 0.7, num_classes=None if seed else 10))
    write_all(records, tmp_path)
    table = aggregate(runs_frame(records)).set_index("reducer")
    assert table.loc["resize_bilinear", ["stalled", "stalled_unknown"]].tolist() == [1, 0]
    assert table.loc["pool_max", ["stalled", "stalled_unknown"]].tolist() == [0, 2]
    assert table.loc["resize_bilinear", "accuracy_mean"] == pytest.approx(0.8)  # kept

    text = write_report(tmp_path, with_figures=False).path.read_text()
    rows = {
        cells[1]: cells
        for line in text.split("## Results")[1].split("\n## ")[0].splitlines()
        if line.startswith("| digits_96")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert rows["resize_bilinear"][3].endswith(STALLED_MARK)
    assert rows["resize_bilinear"][7] == "1/3"
    assert rows["pool_avg"][7] == "0/3" and not rows["pool_avg"][3].endswith(STALLED_MARK)
    assert rows["pool_max"][7] == "0/3 (2 ?)"
    assert STALLED_NOTE in text and UNKNOWN_NOTE in text
    listed = text.split("## Runs that ended on the chance plateau")[1]
    stalled_lines = [line for line in listed.splitlines() if line.startswith("| digits_96")]
    assert len(stalled_lines) == 1
    assert "| resize_bilinear " in stalled_lines[0] and "|      1 |" in stalled_lines[0]
    assert "2 ok run(s) have no learning curve or class count" in listed


def test_a_sweep_without_stalled_runs_has_no_mark_and_no_list(tmp_path):
    write_all([make_record("pool_avg", seed, 0.85) for seed in range(2)], tmp_path)
    text = write_report(tmp_path, with_figures=False).path.read_text()
    results = text.split("## Results")[1].split("\n## ")[0]
    assert "| 0/2 " in results and f"% {STALLED_MARK}" not in results
    assert STALLED_NOTE not in text and UNKNOWN_NOTE not in text
    assert "## Runs that ended on the chance plateau" not in text
