"""The report's statistics calibrated by simulation: how often they claim a difference that
is not there, and how often they find one that is.

A scenario is a family of reducers with true mean accuracies and spreads (in points) over
seeds; each simulated family draws one accuracy per reducer and seed (normal around the
reducer's mean, plus a seed effect shared by every reducer of that seed, plus, for a
reducer that stalls, a chance of ending at the chance rate instead), then runs the very
decisions the report runs (``stn.report.pairwise``) on all families at once.

Rates (``Rates``), each a fraction of the simulated families:

- ``false_baseline``: some reducer called better or worse than the baseline while their
  true means are equal;
- ``false_pairs``: some pair with equal true means separated (the letters);
- ``false_best``: a reducer whose true mean is the best left out of the best set;
- ``false_any``: any of the three in the same family;
- ``power_baseline`` / ``power_pairs``: per named pair, how often it was separated
  (vs the baseline / among all pairs), in the direction of the true difference.

``python -m scripts.calibrate_stats`` prints the table of docs/reports.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stn.report.pairwise import ALPHA, adjust, best_set, paired_tests

SEED_EFFECT_POINTS = 1.0  # what a seed does to every reducer alike (cancels in a pair)
CHANCE_POINTS = 10.0  # where a stalled 10-class run ends


@dataclass(frozen=True)
class Scenario:
    """A family to simulate: ``means`` and ``spreads`` (points) per reducer, ``seeds``
    per reducer, the ``baseline``'s index, and per reducer the probability that a run
    stalls at ``CHANCE_POINTS`` (default: none do)."""

    name: str
    means: tuple[float, ...]
    spreads: tuple[float, ...]
    seeds: int
    baseline: int = 0
    stall_probability: tuple[float, ...] = ()
    # (i, j) pairs whose separation rate is reported as power (i truly above j).
    power_pairs: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if len(self.means) != len(self.spreads):
            raise ValueError(
                f"scenario {self.name!r}: {len(self.means)} means, {len(self.spreads)} spreads"
            )
        if self.stall_probability and len(self.stall_probability) != len(self.means):
            raise ValueError(f"scenario {self.name!r}: one stall probability per reducer")

    def true_means(self) -> np.ndarray:
        """``(R,)`` each reducer's expected accuracy, stalls included."""
        means = np.asarray(self.means, dtype=float)
        stall = np.asarray(self.stall_probability or [0.0] * len(means))
        return (1 - stall) * means + stall * CHANCE_POINTS


@dataclass(frozen=True)
class Rates:
    """What one scenario's families showed (see the module doc); ``standard_error`` is
    the Monte Carlo standard error of a rate of α over ``families``."""

    scenario: Scenario
    families: int
    false_baseline: float
    false_pairs: float
    false_best: float
    false_any: float
    power_baseline: dict[tuple[int, int], float] = field(default_factory=dict)
    power_pairs: dict[tuple[int, int], float] = field(default_factory=dict)

    @property
    def standard_error(self) -> float:
        return math.sqrt(ALPHA * (1 - ALPHA) / self.families)


def simulate(scenario: Scenario, families: int, rng: np.random.Generator) -> np.ndarray:
    """``(families, R, S)`` simulated accuracies in points."""
    means = np.asarray(scenario.means, dtype=float)[None, :, None]
    spreads = np.asarray(scenario.spreads, dtype=float)[None, :, None]
    rows, seeds = len(scenario.means), scenario.seeds
    noise = rng.standard_normal((families, rows, seeds))
    seed_effect = SEED_EFFECT_POINTS * rng.standard_normal((families, 1, seeds))
    values = means + spreads * noise + seed_effect
    if scenario.stall_probability:
        stall = np.asarray(scenario.stall_probability)[None, :, None]
        stalled = rng.random((families, rows, seeds)) < stall
        values = np.where(stalled, CHANCE_POINTS, values)
    return values


def error_rates(
    scenario: Scenario, families: int = 20_000, seed: int = 0, alpha: float = ALPHA
) -> Rates:
    """Simulate ``families`` families of ``scenario`` (RNG seeded with ``seed``: the same
    figures every time) and count what the report's decisions claimed."""
    values = simulate(scenario, families, np.random.default_rng(seed))
    tests = paired_tests(values)
    truth = scenario.true_means()
    equal = np.isclose(truth[:, None], truth[None, :])  # (R, R) true nulls
    b = scenario.baseline

    adjusted = adjust(tests, b)  # (F, R, R)
    rejected = np.nan_to_num(adjusted, nan=1.0) < alpha
    rejected_versus = rejected[:, :, b]  # (F, R)
    false_baseline = (rejected_versus & equal[:, b]).any(axis=-1)
    false_pairs = (rejected & equal).any(axis=(-2, -1))

    everyone = np.ones(len(truth), dtype=bool)
    kept = best_set(tests, adjusted, everyone, alpha)
    best = np.isclose(truth, truth.max())
    false_best = (~kept & best).any(axis=-1)

    def power(hit: np.ndarray, i: int, j: int) -> float:
        # Separated in the direction of the truth: i (truly above) found above j.
        return float((hit & (tests.mean[:, i, j] > 0)).mean())

    return Rates(
        scenario=scenario,
        families=families,
        false_baseline=float(false_baseline.mean()),
        false_pairs=float(false_pairs.mean()),
        false_best=float(false_best.mean()),
        false_any=float((false_baseline | false_pairs | false_best).mean()),
        power_baseline={
            (i, j): power(rejected_versus[:, j if i == b else i], i, j)
            for i, j in scenario.power_pairs
            if b in (i, j)
        },
        power_pairs={(i, j): power(rejected[:, i, j], i, j) for i, j in scenario.power_pairs},
    )


# -- the scenarios of docs/reports.md ---------------------------------------------------

NULL_SPREADS = {
    "all 0.1": (0.1,) * 6,
    "all 50": (50.0,) * 6,
    "0.1 to 50": (0.1, 0.3, 1.0, 3.5, 10.0, 50.0),
    "five at 0.1, one at 50": (0.1,) * 5 + (50.0,),
}
# digits_276 of results/stn_goal: oracle, stn_candidates, ats_topk, stn_blob, the resize
# (the baseline) and ats_sampling, with the means and spreads the sweep measured.
STN_GOAL_MEANS = (98.5, 95.5, 90.8, 87.7, 64.4, 38.6)
STN_GOAL_SPREADS = (0.1, 0.5, 4.4, 0.7, 3.5, 49.3)


def null_scenarios(seeds: int) -> list[Scenario]:
    """No true difference: six reducers at 80 points, spreads 0.1 to 50 points."""
    return [
        Scenario(f"null, spreads {name}", (80.0,) * len(spreads), spreads, seeds)
        for name, spreads in NULL_SPREADS.items()
    ]


def power_scenarios(seeds: int) -> list[Scenario]:
    """Clear separations: the oracle (98.5 ± 0.1) over the resize (64.4 ± 3.5) alone, and
    the whole digits_276 family of results/stn_goal."""
    return [
        Scenario("98.5 ± 0.1 vs 64.4 ± 3.5", (98.5, 64.4), (0.1, 3.5), seeds, 1, (), ((0, 1),)),
        Scenario(
            "digits_276 of stn_goal",
            STN_GOAL_MEANS,
            STN_GOAL_SPREADS,
            seeds,
            baseline=4,
            power_pairs=((0, 4), (1, 4), (3, 4), (2, 4), (0, 1)),
        ),
    ]


def stall_scenario(seeds: int) -> Scenario:
    """Five equal reducers beside one that stalls on a third of its runs: the equal ones
    must not be separated, and the stalling one is worse on average."""
    return Scenario(
        "five equal at 90 ± 1, one stalling on 1/3 of its runs",
        (90.0,) * 6,
        (1.0,) * 6,
        seeds,
        stall_probability=(0.0,) * 5 + (1 / 3,),
    )
