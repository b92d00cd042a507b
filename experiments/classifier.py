"""The run's downstream network from its ``classifier`` config section: predefined or yours.

A section names exactly one of

- ``kind``: a predefined network of :mod:`stn.networks` (``conf/classifier/cnn.yaml``, ...),
  its options those of the kind's config (``CnnConfig``, ...: unknown keys are errors);
- ``_target_``: your own network ``package.module.Class``, a subclass of ``torch.nn.Module``
  (``conf/classifier/custom.yaml``), or a function that returns one and is registered with
  :func:`network_factory`. Anything else a dotted path may name (a builtin, a loader such
  as ``numpy.load``, ``torch.hub.load``) is refused on the imported object, before it is
  called; so is an instantiate key (``_target_``, ``_partial_``, ...) nested in the
  options, which Hydra would have called first (``experiments.targets``).

Either way the run passes ``in_channels``, ``num_classes`` and ``input_size`` ``(h, w)``
as keyword arguments, and every other key of the section except ``name``, ``checkpoint``
and ``frozen`` (weights to load, and whether they stay fixed: ``experiments.checkpoints``)
as an option.

The section is read once, into a :class:`ClassifierSpec` (``ClassifierSpec.from_section``,
called by ``experiments.sections.read_run``): the run checks, builds, loads, records and
saves through it, the same way for a kind and a target. A target's network is checked
before any training: its import and signature before the data (``spec.check()``), then it
must be an ``nn.Module`` mapping a dummy ``(2, C, h, w)`` batch to ``(2, num_classes)``
logits (``spec.build(...)``). Each problem raises
:class:`ClassifierConfigError` (a kind's unknown or mistyped option: ``OptionsError``)
saying what is wrong and how to fix it; ``experiments.job`` records it as the run's
failure, so one bad network never ends a sweep.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from experiments.targets import nested_code_keys
from stn.measure.checkpoint import CheckpointError
from stn.networks import NETWORKS, ClassifierConfig, classifier_config
from stn.options import describe_options

MISSING = "???"  # OmegaConf's mandatory value, left as is by to_container
RUN_ARGS = ("in_channels", "num_classes", "input_size")
# checkpoint and frozen are the run's (experiments.checkpoints), never the network's options.
NOT_OPTIONS = frozenset({"name", "kind", "_target_", "checkpoint", "frozen"})
SIGNATURE = (
    "__init__(self, in_channels: int, num_classes: int, input_size: tuple[int, int], **options)"
)
CHECKPOINT = "classifier.checkpoint"
HOW = "classifier=custom classifier._target_=package.module.Class"
F = TypeVar("F", bound=Callable[..., nn.Module])

# The functions a config may name as classifier._target_ besides nn.Module classes: only
# those their own module registered, so no other callable is ever reached from a config.
NETWORK_FACTORIES: set[Callable[..., Any]] = set()


class ClassifierConfigError(ValueError):
    """The classifier section or the network it names cannot be used; says how to fix it."""


def network_factory(function: F) -> F:
    """Let ``classifier._target_`` name ``function``, which returns an ``nn.Module``.

    A config may otherwise name only ``nn.Module`` subclasses: decorate a builder such as
    ``def make_net(in_channels, num_classes, input_size, width=16) -> nn.Module`` where it
    is defined (registered when the module is imported, before the check)."""
    NETWORK_FACTORIES.add(function)
    return function


def classifier_name(section: Mapping[str, Any]) -> str | None:
    """The name records and reports use: ``name`` if set, else the target's class, else kind.

    Needs no import, so that a run whose target fails to build is still named.
    """
    if section.get("name"):
        return str(section["name"])
    target = section.get("_target_")
    if isinstance(target, str) and target not in ("", MISSING):
        return target.rsplit(".", 1)[-1]
    kind = section.get("kind")
    return None if kind is None else str(kind)


@dataclass(frozen=True)
class ClassifierSpec:
    """The ``classifier`` section read once (:meth:`from_section`): what the run builds,
    loads and records, the same way for a predefined kind and for your own target.

    Exactly one of ``config`` (a predefined network's typed options, ``CnnConfig``, ...)
    and ``target`` (your network's dotted path, with ``options``: its constructor's plain
    values) is set; ``checkpoint`` and ``frozen`` are the run's, never the network's.
    """

    name: str | None
    checkpoint: str | None
    frozen: bool
    config: ClassifierConfig | None = None
    target: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> ClassifierSpec:
        """Read and check what needs no import: kind or target, a kind's options (names and
        types), a target's options (plain values only), checkpoint and frozen."""
        kind, target = _kind_or_target(section)
        config = classifier_config(section) if kind is not None else None
        # Refused before the target is even imported.
        options = target_options(section) if target is not None else {}
        checkpoint, frozen = frozen_options(section)
        name = classifier_name(section)
        return cls(name, checkpoint, frozen, config=config, target=target, options=options)

    @property
    def identity(self) -> dict[str, Any]:
        """What names the network itself (its kind, or its target): what a checkpoint's meta
        must agree with and what the record says besides the name."""
        if self.target is not None:
            return {"target": self.target}
        return {"kind": self.config.kind}

    def describe(self) -> dict[str, Any]:
        """What a record says about the network besides its size: name and kind or target."""
        return {"name": self.name, **self.identity}

    def settings(self) -> dict[str, Any]:
        """The section as plain values without checkpoint and frozen (what a saved
        checkpoint says the network was built with)."""
        if self.target is not None:
            return {"name": self.name, "_target_": self.target, **self.options}
        run_only = ("checkpoint", "frozen")
        described = describe_options(self.config, leave_out=run_only)
        return {**described, "name": self.name}

    def check(self) -> None:
        """Raise now what building would raise before the network exists: the target's
        import, name and signature (a kind's options were checked when read). Called before
        the data is prepared, so that a mistyped target fails a run in a second."""
        if self.target is not None:
            check_signature(locate_target(self.target), self.target, self.options)

    def build(self, in_channels: int, num_classes: int, input_size: Sequence[int]) -> nn.Module:
        """The network: ``(N, C, h, w) → (N, num_classes)``."""
        if self.target is not None:
            return build_target(self.target, in_channels, num_classes, input_size, self.options)
        return NETWORKS.build(self.config.kind, self.config, in_channels, num_classes, input_size)


def frozen_options(section: Mapping[str, Any]) -> tuple[str | None, bool]:
    """``(checkpoint, frozen)`` of a classifier section, checked; a frozen network
    without weights to keep is an error (a random fixed network measures nothing)."""
    checkpoint, frozen = section.get("checkpoint"), section.get("frozen", False)
    if not isinstance(frozen, bool):
        raise CheckpointError(f"classifier.frozen takes true or false, got {frozen!r}")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
        raise CheckpointError(f"{CHECKPOINT} must be a file path or null, got {checkpoint!r}")
    if frozen and checkpoint is None:
        raise CheckpointError(
            "classifier.frozen=true needs classifier.checkpoint=PATH: a frozen network keeps "
            "its weights, and a randomly initialised one would measure nothing. Make one "
            "with experiment=frozen_checkpoint (README 'When your network is already "
            "trained'), or set classifier.frozen=false"
        )
    return checkpoint, frozen


def _options(section: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in NOT_OPTIONS}


def target_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """The options a target's constructor gets: plain values only. A nested instantiate
    key (``+classifier.x={_target_: numpy.load, ...}``) is refused, naming it: the options
    go to the constructor as they are, and nothing in them is ever called."""
    options = _options(section)
    nested = nested_code_keys(options, "classifier")
    if nested:
        raise ClassifierConfigError(
            f"{', '.join(nested)}: an option of classifier._target_ may not name code "
            "(Hydra's _target_, _args_, _partial_, ...); give plain values (numbers, "
            "strings, lists, mappings), and build what they describe inside the network"
        )
    return options


def _kind_or_target(section: Mapping[str, Any]) -> tuple[str | None, str | None]:
    kind, target = section.get("kind"), section.get("_target_")
    predefined = ", ".join(sorted(NETWORKS))
    if kind is not None and target is not None:
        raise ClassifierConfigError(
            f"the classifier section sets both kind={kind!r} (a predefined network) and "
            f"_target_={target!r} (your own); it takes one. For your own network write "
            f"{HOW} (not +classifier._target_=... on the {kind} preset)"
        )
    if kind is None and target is None:
        raise ClassifierConfigError(
            "the classifier section sets neither kind (a predefined network: "
            f"{predefined}; conf/classifier/) nor _target_ (your own nn.Module: {HOW})"
        )
    if target in ("", MISSING):
        raise ClassifierConfigError(
            "classifier._target_ is not set: name your network's class, "
            f"{HOW} (e.g. mynets.TinyNet for class TinyNet in mynets.py)"
        )
    return kind, target


def build_target(
    target: str,
    in_channels: int,
    num_classes: int,
    input_size: Sequence[int],
    options: Mapping[str, Any],
) -> nn.Module:
    """Instantiate ``target(in_channels=, num_classes=, input_size=(h, w), **options)``.

    Checks, in order, that the module imports, defines the name, takes those keywords,
    returns an ``nn.Module``, and maps ``(2, C, h, w)`` to ``(2, num_classes)``.
    """
    factory = locate_target(target)
    check_signature(factory, target, options)
    run_args = {
        "in_channels": int(in_channels),
        "num_classes": int(num_classes),
        "input_size": tuple(int(s) for s in input_size),
    }
    # Called directly, not through Hydra's instantiate: the options are plain values
    # (target_options refused any nested _target_), and the run's input_size a tuple.
    call = f"{target}({_arguments({**run_args, **options})})"
    try:
        network = factory(**run_args, **options)
    except Exception as err:
        raise ClassifierConfigError(f"{call} raised {type(err).__name__}: {err}") from err
    if not isinstance(network, nn.Module):
        raise ClassifierConfigError(
            f"{call} returned a {type(network).__module__}.{type(network).__qualname__}, "
            "not a torch.nn.Module: the target must be an nn.Module class, or a registered "
            "network_factory returning one"
        )
    check_forward(network, target, run_args["in_channels"], num_classes, run_args["input_size"])
    return network


def locate_target(target: str) -> Callable[..., Any]:
    """The network class (or registered factory) a dotted path ``package.module.Class``
    names, checked on the imported object before anything is called."""
    module_name, _, attr = str(target).rpartition(".")
    if not module_name:
        raise ClassifierConfigError(
            f"classifier._target_={target!r} is not a dotted path: write "
            "package.module.Class (e.g. mynets.TinyNet for class TinyNet in mynets.py)"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is None or not (module_name + ".").startswith(err.name + "."):
            raise _import_failed(target, module_name, err) from err
        raise ClassifierConfigError(
            f"classifier._target_={target!r}: cannot import module {module_name!r} "
            f"({type(err).__name__}: {err}). It must be importable where the run starts: "
            f"{module_name.replace('.', '/')}.py in the working directory, an installed "
            "package, or a folder on PYTHONPATH"
        ) from err
    except Exception as err:  # noqa: BLE001 - any error while importing the user's module
        raise _import_failed(target, module_name, err) from err
    if not hasattr(module, attr):
        raise ClassifierConfigError(
            f"classifier._target_={target!r}: module {module_name!r} "
            f"({getattr(module, '__file__', 'no file')}) has no attribute {attr!r}; "
            f"the nn.Module classes it defines: {', '.join(_modules_in(module)) or 'none'}"
        )
    factory = getattr(module, attr)
    if isinstance(factory, type) and issubclass(factory, nn.Module):
        return factory
    if any(factory is registered for registered in NETWORK_FACTORIES):
        return factory
    kind = "class" if isinstance(factory, type) else type(factory).__name__
    raise ClassifierConfigError(
        f"classifier._target_={target!r} is a {kind}, not a torch.nn.Module subclass; "
        "nothing was called. A config may name only a network class (or a function "
        "registered with @experiments.classifier.network_factory where it is defined): "
        f"the nn.Module classes {module_name!r} defines: "
        f"{', '.join(_modules_in(module)) or 'none'}"
    )


def _import_failed(target: str, module_name: str, err: Exception) -> ClassifierConfigError:
    return ClassifierConfigError(
        f"classifier._target_={target!r}: importing module {module_name!r} raised "
        f"{type(err).__name__}: {err} (fix the module or what it imports)"
    )


def _modules_in(module: Any) -> list[str]:
    """Names of the nn.Module classes defined in ``module`` itself (not imported into it)."""
    return sorted(
        name
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, nn.Module)
        and obj.__module__ == module.__name__
    )


def check_signature(factory: Callable[..., Any], target: str, options: Mapping[str, Any]) -> None:
    """Raise unless ``factory`` takes the run's keywords and the section's options."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read: the call will tell
        return
    params = list(signature.parameters.values())
    keywords = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
    shown = f"{target}{signature}"
    refused = [a for a in RUN_ARGS if a not in keywords and not any_keyword]
    if refused:
        raise ClassifierConfigError(
            f"{shown} does not accept {', '.join(refused)} as keyword argument(s); a "
            "classifier is built with the run's in_channels, num_classes and input_size "
            f"(h, w), so its signature must be {SIGNATURE}"
        )
    unknown = [k for k in options if k not in keywords and not any_keyword]
    if unknown:
        raise ClassifierConfigError(
            f"{shown} has no parameter {', '.join(unknown)}, which the classifier section "
            f"sets: remove it (~classifier.{unknown[0]}) or add it to the constructor"
        )
    required = [
        p.name
        for p in params
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in RUN_ARGS
        and p.name not in options
    ]
    if required:
        raise ClassifierConfigError(
            f"{shown} needs {', '.join(required)}, which the classifier section does not "
            f"set: add +classifier.{required[0]}=<value> to the command"
        )


def check_forward(
    network: nn.Module, target: str, in_channels: int, num_classes: int, size: tuple[int, int]
) -> None:
    """Raise unless ``network`` maps a ``(2, C, h, w)`` zero batch to ``(2, num_classes)``.

    On the CPU, without gradients, in eval mode (no batch-norm statistics move, no dropout
    draws a random number), then back in the mode it was in. Lazy layers get their shapes.
    """
    shape = (2, in_channels, *size)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            out = network(torch.zeros(shape))
    except Exception as err:
        raise ClassifierConfigError(
            f"{target}: forward on a dummy batch of shape {shape} (N, C, h, w) raised "
            f"{type(err).__name__}: {err}; the network must take (N, in_channels, h, w) with "
            f"(h, w) = input_size = {size}"
        ) from err
    finally:
        network.train(was_training)
    if isinstance(out, Tensor) and tuple(out.shape) == (2, num_classes):
        return
    got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else f"a {type(out).__name__}"
    raise ClassifierConfigError(
        f"{target}: forward on a dummy batch of shape {shape} (N, C, h, w) returned {got}; "
        f"it must return logits of shape (N, num_classes) = (2, {num_classes})"
    )


def _arguments(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())
