"""Print the report's statistics calibrated by simulation (docs/reports.md, "Calibration").

    python -m scripts.calibrate_stats                 # 20,000 families per scenario
    python -m scripts.calibrate_stats --families 100000

Each scenario's families are simulated with a fixed RNG seed (``stn.report.calibration``):
the same figures on every run. Under no true difference, every rate of a false claim must
stay at or below α = 0.05 (tests/report/test_calibration.py holds it to three Monte Carlo
standard errors); under clear differences, power is how often the report finds them.
"""

from __future__ import annotations

import argparse

from stn.report.calibration import (
    Rates,
    error_rates,
    null_scenarios,
    power_scenarios,
    stall_scenario,
)

NAMES = ("oracle", "stn_candidates", "ats_topk", "stn_blob", "resize", "ats_sampling")


def false_claim_rows(families: int) -> list[str]:
    rows = [
        "| seeds | scenario | baseline column | any pair (letters) | best set | any claim |",
        "|---|---|---|---|---|---|",
    ]
    for seeds in (3, 5):
        for scenario in [*null_scenarios(seeds), stall_scenario(seeds)]:
            r = error_rates(scenario, families)
            rows.append(
                f"| {seeds} | {scenario.name} | {r.false_baseline:.3f} | {r.false_pairs:.3f} "
                f"| {r.false_best:.3f} | {r.false_any:.3f} |"
            )
    return rows


def power_rows(families: int) -> list[str]:
    rows = ["| seeds | scenario | separated | found in |", "|---|---|---|---|"]
    for seeds in (3, 5):
        for scenario in power_scenarios(seeds):
            r: Rates = error_rates(scenario, families)
            names = NAMES if len(scenario.means) == len(NAMES) else ("98.5 ± 0.1", "64.4 ± 3.5")
            for (i, j), power in r.power_pairs.items():
                rows.append(
                    f"| {seeds} | {scenario.name} | {names[i]} > {names[j]} | {power:.3f} |"
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", type=int, default=20_000, help="families per scenario")
    args = parser.parse_args(argv)
    print(f"False claims under no true difference ({args.families:,} families each):\n")
    print("\n".join(false_claim_rows(args.families)))
    print(f"\nPower on clear separations ({args.families:,} families each):\n")
    print("\n".join(power_rows(args.families)))


if __name__ == "__main__":
    main()
