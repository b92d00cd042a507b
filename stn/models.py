"""The predefined downstream networks; each takes ``(N, C, 48, 48)`` (any fixed size)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """(conv–pool) × stages then fc, in the spirit of the STN paper's CNN baseline.

    ``(N, C, H, W) → (N, num_classes)`` logits; ``len(channels)`` conv–pool stages, so H
    and W must be divisible by ``2 ** len(channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: Sequence[int] = (48, 48),
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 5,
        hidden: int = 128,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        h, w = int(input_size[0]), int(input_size[1])
        shrink = 2 ** len(channels)
        if h % shrink or w % shrink:
            raise ValueError(
                f"SmallCNN with {len(channels)} stages needs an input size divisible by "
                f"{shrink}, got {h}×{w}"
            )
        layers: list[nn.Module] = []
        width = in_channels
        for out in channels:
            layers += [nn.Conv2d(width, out, kernel_size, padding=kernel_size // 2)]
            layers += [nn.BatchNorm2d(out)] if batch_norm else []
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * (h // shrink) * (w // shrink), hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """Flatten then fully connected layers: ``(N, C, H, W) → (N, num_classes)``.

    The fair partner for reducers whose output is not a spatial image (PCA).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: Sequence[int] = (48, 48),
        hidden: Sequence[int] = (256,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        width = in_channels * int(input_size[0]) * int(input_size[1])
        layers: list[nn.Module] = [nn.Flatten()]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


CLASSIFIERS = {"cnn": SmallCNN, "mlp": MLP}


def build_classifier(
    kind: str, in_channels: int, num_classes: int, input_size: Sequence[int], **options
) -> nn.Module:
    """Build a predefined network by kind (``cnn`` or ``mlp``) with its options."""
    if kind not in CLASSIFIERS:
        raise ValueError(
            f"unknown classifier {kind!r}; choose one of: {', '.join(sorted(CLASSIFIERS))}"
        )
    return CLASSIFIERS[kind](in_channels, num_classes, input_size, **options)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
