"""One way to register anything a config names: reducers, networks, datasets, kernels.

A :class:`Registry` maps a name to what builds it (a class or a function) and the frozen
dataclass of its options, both declared where the thing is defined::

    NETWORKS = Registry("classifier kind")

    @NETWORKS.register("cnn", CnnConfig)
    class NormalisedCNN(nn.Module): ...

``registry.config(name, options)`` checks options against the dataclass (an unknown key
or a mistyped value names the valid ones and the closest); an unknown name names the
closest registered one. ``registry.build(name, options, *args)`` builds the thing; each
registry says once how its things take their config (``make``). Nothing is imported by
string: a registry is filled by importing the modules that define its entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import is_dataclass
from typing import Any, Generic, TypeVar

from stn.options import OptionsError, closest_match, options_from

T = TypeVar("T")


def _call_with_config(target: Callable[..., Any], config: Any, *args: Any, **kw: Any) -> Any:
    return target(config, *args, **kw)


class Registry(Mapping[str, T], Generic[T]):
    """name → what builds it (``registry[name]``), in registration order, and its options.

    Args:
        what: how errors name an entry (``"reducer kind"``, ``"dataset source"``).
        error: the :class:`OptionsError` subclass raised for an unknown name or option.
        make: ``make(target, config, *args, **kw)`` builds an entry from its typed config
            (default ``target(config, *args, **kw)``).
    """

    def __init__(
        self,
        what: str,
        error: type[OptionsError] = OptionsError,
        make: Callable[..., Any] = _call_with_config,
    ) -> None:
        self.what = what
        self.error = error
        self._make = make
        self._targets: dict[str, T] = {}
        self._configs: dict[str, type] = {}

    def register(self, name: str, config_type: type) -> Callable[[T], T]:
        """Decorator: ``name`` in a config builds the decorated class or function, with its
        options checked against ``config_type`` (a dataclass). A class learns its name and
        config as ``kind`` and ``config_type``."""
        if not is_dataclass(config_type):
            raise TypeError(f"{self.what} {name!r}: options must be a dataclass")

        def add(target: T) -> T:
            if self._targets.get(name, target) is not target:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            if isinstance(target, type):
                target.kind = name  # type: ignore[attr-defined]
                target.config_type = config_type  # type: ignore[attr-defined]
            self._targets[name] = target
            self._configs[name] = config_type
            return target

        return add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register an example of their own)."""
        self._targets.pop(name)
        self._configs.pop(name)

    def __getitem__(self, name: str) -> T:
        return self._targets[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._targets)

    def check_name(self, name: Any) -> str:
        """``name`` when it is registered; else an error naming the closest and the rest."""
        if isinstance(name, str) and name in self._targets:
            return name
        near = closest_match(str(name), self.names())
        hint = f" (did you mean {near!r}?)" if near else ""
        known = ", ".join(sorted(self.names()))
        raise self.error(f"unknown {self.what} {name!r}{hint}; known: {known}")

    def config_type(self, name: str) -> type:
        """The options dataclass of ``name``."""
        return self._configs[self.check_name(name)]

    def config(self, name: str, options: Mapping[str, Any]) -> Any:
        """``name``'s typed options from ``options`` (left out: their defaults)."""
        config_type = self.config_type(name)
        try:
            return options_from(config_type, options, f"{self.what} {name!r}")
        except self.error:
            raise
        except OptionsError as err:  # an unknown key or a mistyped value: the config's fault
            raise self.error(str(err)) from err

    def build(self, name: str, options: Mapping[str, Any] | Any, *args: Any, **kw: Any) -> Any:
        """Build ``name`` from its options (a mapping, or its typed config)."""
        config = options if is_dataclass(options) else self.config(name, options)
        return self._make(self[self.check_name(name)], config, *args, **kw)
