"""Whether this run's throughput figures can be compared with those of other runs.

Figures are only comparable when runs take turns on the machine: Hydra's basic
launcher runs jobs one after another; joblib and submitit_local run them side by side,
so each one's speed depends on what the others were doing at the time.
"""

from __future__ import annotations

from typing import Any

SEQUENTIAL_LAUNCHERS = frozenset({"hydra._internal.core_plugins.basic_launcher.BasicLauncher"})


def launcher_target() -> str | None:
    """The ``_target_`` of the running Hydra launcher, or ``None`` outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().get("launcher") or {}
    return launcher.get("_target_")


def throughput_conditions(target: str | None = None) -> dict[str, Any]:
    """``comparable`` and ``reason`` for ``stn.measure.throughput.TimingConditions``."""
    target = launcher_target() if target is None else target
    if target is None or target in SEQUENTIAL_LAUNCHERS:
        return {"comparable": True, "reason": None}
    return {
        "comparable": False,
        "reason": (
            f"measured under the parallel launcher {target}: other runs shared the machine. "
            "Measure throughput with the basic launcher (drop hydra/launcher=...)."
        ),
    }
