"""The ``quiet_pass`` section's settings, apart from the pass itself: the run config's
schema (``experiments.schemas``) holds them, and the pass reads the typed run config
(``experiments.sections``), which holds the schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from stn.measure.throughput import ThroughputSettings
from stn.options import option


@dataclass(frozen=True)
class QuietPassSettings:
    """The ``quiet_pass`` section: whether and how a parallel sweep's configurations are
    timed again alone when it ends."""

    enabled: bool = option(
        True,
        "after a sweep whose runs were timed beside each other, time each reducer "
        "configuration alone (mode=throughput records) so the report's speeds compare",
    )
    throughput: ThroughputSettings = option(
        ThroughputSettings(), "how the quiet pass times (the documented defaults)"
    )
