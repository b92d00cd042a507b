"""Typed, frozen option sets: the one home of every option's name, default, type and help.

Each section of a run (dataset, classifier, trainer, throughput) and each reducer kind is a
frozen dataclass whose fields are declared with :func:`option`. :func:`options_from` builds
one from a plain mapping (a preset, a Hydra node turned into a dict): it rejects unknown
keys naming the valid ones and the closest match, checks each value against the field's
type (lists become tuples, ints become floats where a float is asked for) and then runs the
class's own cross-option checks (``__post_init__``). The Hydra edge registers the same
classes as structured-config schemas, so presets only override.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class OptionsError(ValueError):
    """Options that cannot be used as given; the message says what is wrong and the fix."""


def option(default: Any, help: str) -> Any:
    """A dataclass field with ``default`` and one line of ``help`` (shown by the CLI's option
    listing). Lists given as defaults are stored as tuples, so configs stay hashable; a
    mapping default is copied for each instance (a dataclass cannot share a mutable one)."""
    if isinstance(default, list):
        default = tuple(default)
    if isinstance(default, Mapping):
        frozen = dict(default)
        return dataclasses.field(default_factory=lambda: dict(frozen), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def closest_match(name: str, valid: list[str] | tuple[str, ...]) -> str | None:
    """The valid name nearest to ``name`` (a likely typo), or ``None`` when none is close."""
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_names_message(what: str, unknown: list[str], valid: list[str] | tuple[str, ...]) -> str:
    """``unknown <what> option 'x' (did you mean 'y'?); valid: a, b, c``."""
    parts = []
    for name in sorted(unknown):
        near = closest_match(name, valid)
        parts.append(f"{name!r}" + (f" (did you mean {near!r}?)" if near else ""))
    plural = "s" if len(parts) > 1 else ""
    return f"unknown {what} option{plural} {', '.join(parts)}; valid: {', '.join(valid) or 'none'}"


def option_names(cls: type) -> list[str]:
    """The option names of a config class, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def options_from(cls: type[T], values: Mapping[str, Any], what: str) -> T:
    """Build ``cls`` from ``values``: unknown keys and mistyped values are clear errors.

    Args:
        cls: a dataclass whose fields are the options.
        values: option name → value; options left out take their default.
        what: how the error names this option set (``"reducer kind 'resize'"``).
    """
    checked = checked_options(cls, values, what)
    try:
        return cls(**checked)
    except OptionsError:
        raise
    except (TypeError, ValueError) as err:
        raise OptionsError(f"{what}: {err}") from err


def checked_options(cls: type, values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``values`` checked against ``cls``'s options, before any cross-option check: unknown
    keys and mistyped values raise :class:`OptionsError`; values come back as the fields'
    types ask (tuples from lists, floats from ints). ``cls(**checked_options(...))`` lets
    the class's own checks raise as they are, for classes whose messages already name the
    section (``trainer.lr must be > 0``)."""
    valid = option_names(cls)
    unknown = [k for k in values if k not in valid]
    if unknown:
        raise OptionsError(unknown_names_message(what, unknown, valid))
    hints = typing.get_type_hints(cls)
    return {k: _checked(v, hints[k], f"{what}: option {k!r}") for k, v in values.items()}


def describe_options(config: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options of ``config`` as a JSON-ready dict (tuples as lists), for records."""
    return {
        f.name: _plain(getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name not in leave_out
    }


def option_help(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, help)`` for each option of ``cls``, for listings."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        rows.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is not None or not hasattr(hint, "__name__"):
        return str(hint).replace("typing.", "")  # tuple[int, ...], int | None
    return hint.__name__


# scalar type → (how an error names it, the Python types accepted for it)
_SCALARS: dict[type, tuple[str, tuple[type, ...]]] = {
    bool: ("true or false", (bool,)),
    int: ("an integer", (int,)),
    float: ("a number", (int, float)),
    str: ("a string", (str,)),
}


def _checked(value: Any, hint: Any, where: str) -> Any:
    """``value`` as ``hint`` asks (tuple from a list, float from an int), or an error."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return _checked(value, arm, where)
            except OptionsError as err:
                errors.append(str(err))
        raise OptionsError(
            errors[0]
            if len(errors) == 1
            else f"{where}: got {value!r}, which is none of {_type_name(hint)}"
        )
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise OptionsError(f"{where} takes a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_checked(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise OptionsError(f"{where} takes {len(args)} values, got {value!r}")
        return (
            tuple(
                _checked(v, a, f"{where}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
            if args
            else tuple(value)
        )
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise OptionsError(f"{where} takes a mapping, got {value!r}")
        return dict(value)
    if hint in _SCALARS:
        what, accepted = _SCALARS[hint]
        # bool is an int in Python, but true is no answer to "how many epochs".
        if not isinstance(value, accepted) or (hint is not bool and isinstance(value, bool)):
            raise OptionsError(f"{where} takes {what}, got {value!r}")
        return float(value) if hint is float else value
    return value
    return value
