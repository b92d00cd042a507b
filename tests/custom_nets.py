"""Networks a user might bring (``classifier._target_=custom_nets.<Name>``), good and bad.

Importable as ``custom_nets`` in tests: tests/conftest.py puts tests/ on sys.path.
"""

from torch import Tensor, nn

from experiments.classifier import network_factory

FACTORY_CALLS: list[tuple] = []  # every call of counting_factory: a refused one must not call it


class TinyNet(nn.Module):
    """A valid network: ``(N, C, h, w) → (N, num_classes)``; ``width`` is an option."""

    def __init__(self, in_channels: int, num_classes: int, input_size, width: int = 4) -> None:
        super().__init__()
        self.input_size = input_size  # kept so a test can see what the run passed
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class NoRunArguments(nn.Module):
    """Wrong signature: cannot take in_channels / input_size."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = nn.LazyLinear(num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x.flatten(1))


class WrongShape(TinyNet):
    """Returns one logit too many: ``(N, num_classes + 1)``."""

    def __init__(self, in_channels: int, num_classes: int, input_size) -> None:
        super().__init__(in_channels, num_classes + 1, input_size)


class FlatOnly(nn.Module):
    """Expects flat ``(N, features)`` input, so a ``(N, C, h, w)`` batch breaks it."""

    def __init__(self, in_channels: int, num_classes: int, input_size) -> None:
        super().__init__()
        self.head = nn.Linear(in_channels * 2, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x)


def not_a_module(in_channels: int, num_classes: int, input_size) -> dict:
    """A factory that returns something other than an nn.Module."""
    return {"in_channels": in_channels}


@network_factory
def tiny_net(in_channels: int, num_classes: int, input_size, width: int = 4) -> nn.Module:
    """A registered factory: classifier._target_ may name it."""
    return TinyNet(in_channels, num_classes, input_size, width=width)


@network_factory
def registered_not_a_module(in_channels: int, num_classes: int, input_size) -> dict:
    """A registered factory that returns something other than an nn.Module."""
    return {"in_channels": in_channels}


def counting_factory(in_channels: int, num_classes: int, input_size) -> nn.Module:
    """Not registered: a config may not name it, and it is never called."""
    FACTORY_CALLS.append((in_channels, num_classes, input_size))
    return TinyNet(in_channels, num_classes, input_size)
