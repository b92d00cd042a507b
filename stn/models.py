"""The predefined downstream networks; each takes ``(N, C, 48, 48)`` (any fixed size)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """conv–pool–conv–pool–fc, in the spirit of the STN paper's CNN baseline.

    ``(N, C, H, W) → (N, num_classes)`` logits; H and W must be divisible by 4.
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
        if h % 4 or w % 4:
            raise ValueError(f"SmallCNN needs an input size divisible by 4, got {h}×{w}")
        c1, c2 = channels
        pad = kernel_size // 2

        def norm(width: int) -> nn.Module:
            return nn.BatchNorm2d(width) if batch_norm else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size, padding=pad),
            norm(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size, padding=pad),
            norm(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * (h // 4) * (w // 4), hidden),
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
