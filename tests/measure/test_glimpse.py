"""The record's glimpse figures (zoom, distance to the object) on glimpses placed by hand."""

import math

import pytest
import torch

from stn.measure.glimpse import (
    GLIMPSE_SUMMARY_KEYS,
    glimpse_geometry,
    measure_glimpses,
    summarise_glimpses,
)
from stn.reducers.transformer import theta_from_params


def attention_theta(scale: float, centre_px: tuple[float, float], side: int) -> torch.Tensor:
    """θ of a square glimpse of ``scale`` × the side, centred on pixel coordinates."""
    tx, ty = (2 * c / side - 1 for c in centre_px)
    return theta_from_params(torch.tensor([[scale, tx, ty]]), "attention")


def test_glimpse_on_a_known_box_reads_its_zoom_and_zero_distance() -> None:
    # A 30-px glimpse on a 60-px canvas, centred on the box (20, 10)–(48, 38).
    box = torch.tensor([[20.0, 10.0, 48.0, 38.0]])
    geometry = glimpse_geometry(attention_theta(0.5, (34.0, 24.0), 60), box, (60, 60))
    assert geometry["zoom"].item() == pytest.approx(0.5)
    assert geometry["glimpse_side_px"].item() == pytest.approx(30.0)
    assert geometry["centre_distance_px"].item() == pytest.approx(0.0, abs=1e-5)
    assert geometry["centre_in_box"].item() == 1.0


def test_distance_is_euclidean_in_pixels_and_outside_the_box_is_a_miss() -> None:
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # centre (5, 5)
    geometry = glimpse_geometry(attention_theta(1.0, (35.0, 45.0), 60), box, (60, 60))
    assert geometry["centre_distance_px"].item() == pytest.approx(math.hypot(30, 40))
    assert geometry["centre_in_box"].item() == 0.0
    assert geometry["zoom"].item() == pytest.approx(1.0)


def test_affine_zoom_is_the_side_of_a_square_of_the_same_area() -> None:
    # Anisotropic 0.5 × 0.2 and a rotation: area 0.1 of the input → side √0.1.
    angle = 0.3
    rotation = torch.tensor(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    a = rotation @ torch.diag(torch.tensor([0.5, 0.2]))
    theta = torch.cat([a, torch.zeros(2, 1)], 1).unsqueeze(0)
    geometry = glimpse_geometry(theta, torch.tensor([[20.0, 20.0, 40.0, 40.0]]), (60, 60))
    assert geometry["zoom"].item() == pytest.approx(math.sqrt(0.1))
    assert geometry["centre_in_box"].item() == 1.0  # centre (30, 30)


def test_summary_averages_over_batches_and_reports_relative_distance() -> None:
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0], [40.0, 40.0, 60.0, 60.0]])
    on = attention_theta(0.25, (10.0, 10.0), 60)
    off = attention_theta(0.75, (50.0 - 6.0, 50.0 - 8.0), 60)  # 10 px from (50, 50)
    summary = summarise_glimpses([(on, boxes[:1]), (off, boxes[1:])], (60, 60))
    assert set(summary) == set(GLIMPSE_SUMMARY_KEYS)
    assert summary["zoom_mean"] == pytest.approx(0.5)
    assert summary["centre_distance_px_mean"] == pytest.approx(5.0)
    assert summary["centre_distance_rel_mean"] == pytest.approx(5.0 / 60)
    assert summary["object_side_px_mean"] == pytest.approx(20.0)
    assert summary["centre_in_box"] == pytest.approx(1.0)
    assert summary["images"] == 2
    assert summarise_glimpses([], (60, 60)) is None


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match=r"theta must be \(N, 2, 3\)"):
        glimpse_geometry(torch.zeros(2, 6), torch.zeros(2, 4), (8, 8))
    with pytest.raises(ValueError, match=r"boxes must be \(2, 4\)"):
        glimpse_geometry(torch.zeros(2, 2, 3), torch.zeros(3, 4), (8, 8))


class FixedGlimpse(torch.nn.Module):
    """A reducer whose glimpse is placed on each image's box (the answer is known); it
    reads the boxes in the stream's order."""

    def __init__(self, boxes: torch.Tensor, side: int) -> None:
        super().__init__()
        self.boxes, self.side, self.seen = boxes, side, 0

    def forward_with_theta(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert not self.training  # measured in evaluation mode
        b = self.boxes[self.seen : self.seen + len(x)]
        self.seen += len(x)
        centre = (b[:, :2] + b[:, 2:]) / 2
        t = 2 * centre / self.side - 1
        scale = (b[:, 2] - b[:, 0]) / self.side
        return x, theta_from_params(torch.stack([scale, t[:, 0], t[:, 1]], 1), "attention")


def test_measure_glimpses_over_a_stream_places_glimpses_on_the_objects() -> None:
    from stn.data.canvas import CanvasSpec
    from stn.data.images import ImageSet
    from stn.data.stream import BatchStream

    images = ImageSet(
        images=torch.randint(0, 255, (12, 1, 28, 28), dtype=torch.uint8).numpy(),
        labels=torch.arange(12).remainder(3).numpy(),
        num_classes=3,
        name="t",
    )
    stream = BatchStream(images, 5, CanvasSpec(size=60, object_size=(20, 28)), seed=1)
    boxes = torch.cat([b.boxes for b in stream.batches(epoch=0, shuffle=False)])
    reducer = FixedGlimpse(boxes, 60).train()
    summary = measure_glimpses(reducer, stream, torch.device("cpu"), max_images=7)
    assert summary["images"] == 7
    assert summary["centre_distance_px_mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["centre_in_box"] == 1.0
    expected_side = ((boxes[:7, 2] - boxes[:7, 0]).double()).mean().item()
    assert summary["glimpse_side_px_mean"] == pytest.approx(expected_side)
    assert summary["object_side_px_mean"] == pytest.approx(expected_side)
    assert reducer.training  # mode restored
    assert measure_glimpses(torch.nn.Identity(), stream, torch.device("cpu")) is None
