"""A downstream network's weights on disk: saved with what they were trained for, read back
safely, checked against the network a run builds.

A checkpoint the suite saves is one ``torch.save`` of ``{"format", "meta", "state_dict"}``:
``meta`` says the network's ``kind`` (or ``target``), ``input_size`` ``[h, w]``,
``in_channels`` and ``num_classes``, so a checkpoint trained on another input size or
channel count is refused by name instead of failing (or, worse, silently running) on
mismatched shapes. A plain state dict (``torch.save(net.state_dict(), path)``) is read
too; only its keys and shapes can then be checked.

Files are read with ``torch.load(..., weights_only=True)``: tensors, numbers, strings,
lists and dicts only, so a checkpoint can never run code when it is opened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

FORMAT = "stn-bench-checkpoint/1"
# What a suite checkpoint's meta must agree on with the run that loads it.
CHECKED_META = ("kind", "target", "input_size", "in_channels", "num_classes")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for this run; says which and how to fix it."""


def file_digest(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex): which weights a record's run read."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(path: str | Path, network: nn.Module, meta: Mapping[str, Any]) -> Path:
    """Write ``network``'s state dict (on the CPU) with ``meta`` to ``path``; parents made.

    ``meta`` holds plain values only (it must load with ``weights_only=True``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    payload = {"format": FORMAT, "meta": dict(meta), "state_dict": state}
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)  # never a half-written checkpoint under the final name
    return path


def read_checkpoint(path: str | Path, option: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(state_dict, meta)`` of the file at ``path`` (``meta`` empty for a plain state dict).

    ``option`` names the setting that gave the path, for the error messages. Raises
    :class:`CheckpointError` for a missing or unreadable file, or one that holds anything
    but a state dict."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"{option}={str(path)!r}: no such file (from {Path.cwd()}); train one first "
            "(experiment=frozen_checkpoint, README 'When your network is already trained') "
            "or give the path of your network's state dict"
        )
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable or unsafe file
        raise CheckpointError(
            f"{option}={str(path)!r} cannot be read as weights ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); it must be a file written by "
            "torch.save(network.state_dict(), path) or by the suite (save_checkpoint=...): "
            "files holding other Python objects are never unpickled"
        ) from err
    if isinstance(payload, Mapping) and payload.get("format") == FORMAT:
        state, meta = payload.get("state_dict"), payload.get("meta")
        if not isinstance(meta, Mapping):
            raise CheckpointError(f"{option}={str(path)!r}: its 'meta' is not a mapping")
    else:
        state, meta = payload, {}
    if (
        not isinstance(state, Mapping)
        or not state
        or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items())
    ):
        raise CheckpointError(
            f"{option}={str(path)!r} holds a {type(state).__name__}, not a state dict "
            "(a non-empty mapping of parameter names to tensors): save "
            "network.state_dict(), not the network or a training state"
        )
    return dict(state), dict(meta)


def check_meta(meta: Mapping[str, Any], expected: Mapping[str, Any], option: str) -> None:
    """Raise unless every key of :data:`CHECKED_META` that both sides set agrees.

    A checkpoint trained for 1 channel at 48×48 must not be read at 3 channels or 64×64:
    say which setting differs and what the checkpoint was made for."""
    for key in CHECKED_META:
        if key not in meta or expected.get(key) is None:
            continue
        theirs, ours = _plain(meta[key]), _plain(expected[key])
        if theirs != ours:
            raise CheckpointError(
                f"{option}: the checkpoint was saved for {key}={theirs!r}, this run's "
                f"network has {key}={ours!r}; use a checkpoint trained for this run's "
                f"{_what(key)}, or make one (experiment=frozen_checkpoint with the same "
                "dataset channels, output_size and classifier)"
            )


def load_weights(network: nn.Module, state: Mapping[str, Tensor], option: str) -> None:
    """Copy ``state`` into ``network``; missing, unexpected or mis-shaped keys are a
    :class:`CheckpointError` listing the first few (no partial load is left silent)."""
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mis_shaped = [
        f"{k}: checkpoint {tuple(state[k].shape)}, network {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if unexpected:
        extra = ", ".join(unexpected[:3]) + (" ..." if len(unexpected) > 3 else "")
        problems.append(f"unexpected {extra}")
    if mis_shaped:
        problems.append(f"shapes differ: {'; '.join(mis_shaped[:3])}")
    if problems:
        raise CheckpointError(
            f"{option}: the checkpoint does not fit the configured network ("
            + " | ".join(problems)
            + "); it was saved for another network or options: use the classifier "
            "section it was trained with"
        )
    network.load_state_dict(state, strict=True)


def _plain(value: Any) -> Any:
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else value


def _what(key: str) -> str:
    return {
        "input_size": "output_size",
        "in_channels": "image channels (dataset.channels)",
        "num_classes": "classes (dataset)",
    }.get(key, "classifier")
