"""The predefined downstream networks; each maps ``(N, C, h, w)`` to ``(N, num_classes)``,
registered as a ``classifier.kind`` with its options (``stn.networks.base``).

``cnn`` (the default) and ``resnet`` standardise their input with statistics of the
training split and normalise every convolution stage, so they leave the chance plateau on
every seed; ``cnn_small`` is the network of every figure measured before that change (kept
so they can be reproduced); ``mlp`` is the partner of non-spatial reducers (PCA).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from stn.networks.base import ClassifierConfig, register_network
from stn.options import option


@dataclass(frozen=True)
class CnnConfig(ClassifierConfig):
    """``kind: cnn``, :class:`NormalisedCNN`."""

    channels: tuple[int, ...] = option(
        (16, 32, 64, 128),
        "one conv–BN–pool stage per entry (4: 48 → 3 px, a receptive field of 46 px)",
    )
    standardise_input: bool = option(
        True, "per-channel batch norm without learned scale on the input"
    )
    dropout: float = option(0.0, "dropout before the linear head")


@dataclass(frozen=True)
class SmallCnnConfig(ClassifierConfig):
    """``kind: small_cnn``, :class:`SmallCNN`."""

    channels: tuple[int, ...] = option((8, 16), "one conv–pool stage per entry")
    kernel_size: int = option(5, "side of every convolution's kernel")
    hidden: int = option(128, "units of the fully connected layer")
    dropout: float = option(0.0, "dropout before the last layer")
    batch_norm: bool = option(False, "batch norm after every convolution (not in earlier figures)")


@dataclass(frozen=True)
class MlpConfig(ClassifierConfig):
    """``kind: mlp``, :class:`MLP`."""

    hidden: tuple[int, ...] = option((256,), "units of each hidden layer")
    dropout: float = option(0.0, "dropout after every hidden layer")
    standardise_input: bool = option(
        True, "per-channel batch norm without learned scale on the input"
    )


@dataclass(frozen=True)
class ResNetConfig(ClassifierConfig):
    """``kind: resnet``, :class:`CifarResNet`."""

    depth: int = option(8, "6n + 2: n basic blocks per stage (20: the paper's ResNet-20)")
    widths: tuple[int, int, int] = option(
        (16, 32, 64), "channels of the three stages (48 → 24 → 12 px)"
    )
    standardise_input: bool = option(
        True, "per-channel batch norm without learned scale on the input"
    )


def input_standardiser(channels: int, enabled: bool) -> nn.Module:
    """Per-channel standardisation by the training split's statistics.

    A batch norm without learned scale: while training it standardises each batch and
    keeps a running mean and variance of the reducer's output; at evaluation it applies
    those training-split estimates. Every reducer's output reaches the network on the same
    scale (PCA coefficients, max-pooled ink and a bilinear resize differ by up to 100×),
    without a statistics pass before training.
    """
    return nn.BatchNorm2d(channels, affine=False) if enabled else nn.Identity()


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


@register_network("cnn", CnnConfig)
class NormalisedCNN(nn.Module):
    """Standardised input, then (3×3 conv–BN–ReLU–max-pool) × stages, global average pool,
    linear: ``(N, C, h, w) → (N, num_classes)`` logits, any ``h, w ≥ 2 ** len(channels)``.

    Batch norm keeps every stage's activations on one scale, so the network leaves the
    ln C loss plateau within the first epoch whatever the seed; the global average pool
    reads the object wherever it sits in the reduced image. Four stages see 46 px: an
    object that fills the 48×48 input (the oracle crop) is read whole, not as a bag of
    strokes (three stages, 22 px, read oracle crops worse than a plain resize).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: Sequence[int] = (48, 48),
        channels: Sequence[int] = CnnConfig.channels,
        standardise_input: bool = CnnConfig.standardise_input,
        dropout: float = CnnConfig.dropout,
    ) -> None:
        super().__init__()
        _check_input_size("cnn", input_size, 2 ** len(channels))
        layers: list[nn.Module] = [input_standardiser(in_channels, standardise_input)]
        width = in_channels
        for out in channels:
            layers += [*_conv_bn_relu(width, out), nn.MaxPool2d(2)]
            width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean((2, 3)))


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers plus the input (He et al. 2016); a 1×1 projection when the
    stride or width changes: ``(N, C_in, h, w) → (N, C_out, h / stride, w / stride)``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_relu(in_channels, out_channels, stride),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        return (self.body(x) + self.shortcut(x)).relu_()


@register_network("resnet", ResNetConfig)
class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. (2016, §4.2) sized for 48×48 inputs.

    ``depth = 6n + 2``: a 3×3 stem, three stages of ``n`` basic blocks at ``widths``
    (stride 2 between stages: 48 → 24 → 12), global average pool, linear;
    ``(N, C, h, w) → (N, num_classes)``. Depth 20 is the paper's ResNet-20; the default
    depth 8 (one block a stage) keeps a CPU sweep affordable.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: Sequence[int] = (48, 48),
        depth: int = ResNetConfig.depth,
        widths: Sequence[int] = ResNetConfig.widths,
        standardise_input: bool = ResNetConfig.standardise_input,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"resnet depth must be 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}"
            )
        if len(widths) != 3:
            raise ValueError(f"resnet widths must name its three stages, got {list(widths)}")
        _check_input_size("resnet", input_size, 4)
        blocks = (depth - 2) // 6
        layers: list[nn.Module] = [
            input_standardiser(in_channels, standardise_input),
            *_conv_bn_relu(in_channels, widths[0]),
        ]
        width = widths[0]
        for stage, out in enumerate(widths):
            for block in range(blocks):
                layers.append(BasicBlock(width, out, 2 if stage > 0 and block == 0 else 1))
                width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean((2, 3)))


@register_network("small_cnn", SmallCnnConfig)
class SmallCNN(nn.Module):
    """(5×5 conv–ReLU–max-pool) × stages then two fully connected layers, in the spirit of
    the STN paper's CNN baseline; no normalisation. The downstream network of every figure
    measured before the normalised ``cnn`` (preset ``classifier=cnn_small``).

    ``(N, C, H, W) → (N, num_classes)`` logits; ``len(channels)`` conv–pool stages, so H
    and W must be divisible by ``2 ** len(channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: Sequence[int] = (48, 48),
        channels: Sequence[int] = SmallCnnConfig.channels,
        kernel_size: int = SmallCnnConfig.kernel_size,
        hidden: int = SmallCnnConfig.hidden,
        dropout: float = SmallCnnConfig.dropout,
        batch_norm: bool = SmallCnnConfig.batch_norm,
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


@register_network("mlp", MlpConfig)
class MLP(nn.Module):
    """Standardised input, flatten, fully connected layers:
    ``(N, C, H, W) → (N, num_classes)``.

    The fair partner for reducers whose output is not a spatial image (PCA).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: Sequence[int] = (48, 48),
        hidden: Sequence[int] = MlpConfig.hidden,
        dropout: float = MlpConfig.dropout,
        standardise_input: bool = MlpConfig.standardise_input,
    ) -> None:
        super().__init__()
        width = in_channels * int(input_size[0]) * int(input_size[1])
        layers: list[nn.Module] = [input_standardiser(in_channels, standardise_input), nn.Flatten()]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _check_input_size(kind: str, input_size: Sequence[int], smallest: int) -> None:
    if min(int(input_size[0]), int(input_size[1])) < smallest:
        raise ValueError(
            f"classifier {kind} halves its input {smallest.bit_length() - 1} times and needs "
            f"h, w >= {smallest}, got {list(input_size)}; use fewer stages or a larger output_size"
        )
