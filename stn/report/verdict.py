"""The verdict a report opens with: per dataset and network, which reducer to use.

For each family (``stn.report.stats.Family``): the contender with the best mean and every
contender no other beats significantly (they may be the best too), each with its
difference from the baseline in points and its 95 % interval, its gap to the oracle, and
the time of its training step relative to the baseline's; then which contenders are
significantly worse than another, and which could not be judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from stn.report.markdown import markdown_cell
from stn.report.stats import GROUP_KEYS, NO_BASELINE, Family

RowOf = Callable[[str], pd.Series]  # a family's row of the summary table, by reducer
# The training-step figure the cost is read from: the ratio to F.interpolate(antialias)
# timed beside every step (steadier on a shared machine), else images/s.
STEP_RATIO = "tp_ratios_train_step_vs_interpolate_aa"
STEP_RATE = "tp_train_step_images_per_s"
VERDICT_NOTE = (
    "Contenders exclude oracles (they see the true object box) and rows without their "
    "stalled runs. *May be the best*: no other contender is significantly better "
    "(same correction as the table). Δ: mean paired difference over the seeds both have, "
    "in points, with its 95 % t interval; *better*/*worse* only where the family's "
    "correction rejects. Training step: time per training step relative to the "
    "baseline's (reducer and network, forward, backward and update), from the "
    "throughput figures the table uses."
)

# A family whose best mean comes from runs that all stayed on the chance plateau ranks
# failures to train, not reducers: said before its table, so no one cites its "best".
NOTHING_TRAINED = (
    "**No verdict on the reducers:** every run of the best contender ended on the chance "
    "plateau, so this family's best mean comes from runs that did not train and its "
    'ranking says nothing about which reduction keeps more ("Runs that ended on the '
    "chance plateau\" lists them; a sweep's notes may say why)."
)


def verdict_section(families: list[Family], table: pd.DataFrame) -> list[str]:
    """Markdown lines of the verdict, one block per family (``table``: the summary table,
    for accuracies, intervals, stalls and training-step figures)."""
    if not families:
        return []
    rows = table.set_index(GROUP_KEYS)
    lines = ["## Verdict", "", VERDICT_NOTE, ""]
    for family in families:
        lines += _family_block(family, rows)
    return lines


def _family_block(family: Family, rows: pd.DataFrame) -> list[str]:
    def row(name: str) -> pd.Series:
        return rows.loc[(family.dataset, name, family.classifier)]

    head = f"### {family.dataset}, {family.classifier}"
    facts = [f"baseline: {_named(family.baseline, row)}" if family.baseline else NO_BASELINE]
    if family.oracle:
        facts.append(f"oracle: {_named(family.oracle, row)}")
    lines = [head, "", "; ".join(facts) + ".", ""]
    if family.best is None:
        return [*lines, "No verdict: no contender has 2 seeds or more.", ""]
    lines += [_lead(family, row), ""]
    if _every_run_stalled(row(family.best)):
        lines += [NOTHING_TRAINED, ""]
    lines += _best_table(family, row) + [""]
    lines += _others(family, row)
    return lines


def _every_run_stalled(r: pd.Series) -> bool:
    stalled, n = r.get("stalled"), r.get("n")
    return bool(pd.notna(stalled) and pd.notna(n) and n > 0 and int(stalled) == int(n))


def _lead(family: Family, row: RowOf) -> str:
    best = row(family.best)
    text = f"**{family.best}** has the best mean, {_percent(best)}"
    if family.best == family.baseline:
        text += ", and is the baseline itself"
    elif family.baseline is not None:
        text += f": {_delta(best)} points over {family.baseline}, {_word(best)}"
    gap = _gap(family, family.best)
    if gap:
        text += f"; {gap} points against the oracle"
    if family.best != family.baseline:
        ratio, comparable = _step_ratio(family, row, family.best)
        if ratio is not None:
            text += f"; its training step takes {ratio:.2g}× the baseline's time" + (
                "" if comparable else " (figures timed beside other runs, not comparable)"
            )
    others = [r for r in family.best_set if r != family.best]
    if others:
        tail = f" Not significantly worse, so possibly as good: {', '.join(others)}."
    elif len(family.contenders) > 1:
        tail = " Every other contender is significantly worse than another."
    else:
        tail = " It is the only contender with 2 seeds or more."
    return text + "." + tail


def _best_table(family: Family, row: RowOf) -> list[str]:
    base = family.baseline or "baseline"
    header = [
        "reducer",
        "test accuracy (95 % CI)",
        f"Δ vs {base}, points (95 % CI)",
        "vs oracle, points (95 % CI)",
        "training step × baseline",
    ]
    # Names are free text: escaped so a '|' or a line break cannot split a row.
    header = [markdown_cell(h) for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in family.best_set:
        r = row(name)
        shown = markdown_cell(name)
        label = f"**{shown}** (best)" if name == family.best else shown
        if name == family.baseline:
            delta = "baseline"
        elif family.baseline is None:
            delta = "—"
        else:
            delta = f"{_delta(r)}, {_word(r)}"
        cells = [label, _percent(r), delta, _gap(family, name) or "—", _cost(family, row, name)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _others(family: Family, row: RowOf) -> list[str]:
    lines = []
    worse = []
    for name in family.contenders:
        if name in family.best_set:
            continue
        winner, p = family.beaten_by(name) or ("?", math.nan)
        worse.append(f"{name} (below {winner}, Holm {_p(p)})")
    if worse:
        lines.append(f"Significantly worse than another contender: {'; '.join(worse)}.")
    unjudged = [r for r in family.rows if r not in family.contenders and r not in family.oracles]
    unjudged = [r for r in unjudged if r not in family.variants]
    if unjudged:
        lines.append(f"Not judged (fewer than 2 seeds): {', '.join(unjudged)}.")
    for variant, parent in family.variants.items():
        r, own = row(variant), row(parent)
        stalled = int(own.get("stalled", 0))
        lines.append(
            f"{parent}: {stalled} of {int(own.get('runs', own['n']))} runs ended on the "
            "chance plateau; "
            f"without them {_percent(r)} over {int(r['n'])} seed(s)"
            + (f", {_delta(r)} over {family.baseline}" if family.baseline else "")
            + "."
        )
    return [*lines, ""] if lines else []


def _named(name: str, row: RowOf) -> str:
    return f"{name}, {_percent(row(name))}"


def _percent(r: pd.Series) -> str:
    mean, half = float(r["accuracy_mean"]), float(r["accuracy_ci95"])
    text = f"{100 * mean:.1f} %" if math.isnan(half) else f"{100 * mean:.1f} ± {100 * half:.1f} %"
    return text + (" †" if r.get("stalled", 0) and r["stalled"] > 0 else "")


def _delta(r: pd.Series) -> str:
    """``+31.1 [21.4, 40.7]`` points, the interval where there is one."""
    delta = float(r["delta_vs_baseline"])
    if math.isnan(delta):
        return "—"
    low, high = float(r["delta_ci_low"]), float(r["delta_ci_high"])
    interval = "" if math.isnan(low) else f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"{100 * delta:+.1f}{interval}"


def _word(r: pd.Series) -> str:
    """``better (Holm p=0.026)``, ``no significant difference (Holm p=0.081)``, or why
    there is no verdict."""
    verdict = str(r["vs_baseline"])
    return verdict.split(";")[0] + ")" if "; raw" in verdict else verdict


def _gap(family: Family, name: str) -> str:
    """``name`` minus the oracle, ``−3.0 [−4.1, −1.9]`` points; empty without an oracle
    or shared seeds."""
    if family.oracle is None or name == family.oracle:
        return ""
    i, o = family.index(name), family.index(family.oracle)
    n, mean = int(family.tests.n[i, o]), float(family.tests.mean[i, o])
    if n == 0:
        return ""
    low, high = float(family.tests.ci_low[i, o]), float(family.tests.ci_high[i, o])
    interval = "" if math.isnan(low) else f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"{100 * mean:+.1f}{interval}"


def _cost(family: Family, row: RowOf, name: str) -> str:
    """Training-step time of ``name`` over the baseline's, ``3.1×``; ``—`` without
    figures; ``(not comparable)`` when either was timed beside other runs."""
    ratio, comparable = _step_ratio(family, row, name)
    if ratio is None:
        return "—"
    return f"{ratio:.2g}×" + ("" if comparable else " (not comparable)")


def _step_ratio(family: Family, row: RowOf, name: str) -> tuple[float | None, bool]:
    """Baseline's training-step speed over ``name``'s, and whether both compare."""
    if family.baseline is None:
        return None, False
    mine, base = row(name), row(family.baseline)
    for column in (STEP_RATIO, STEP_RATE):
        if column in mine and pd.notna(mine.get(column)) and pd.notna(base.get(column)):
            ratio = float(base[column]) / float(mine[column])
            return ratio, _comparable(mine) and _comparable(base)
    return None, False


def _comparable(r: pd.Series) -> bool:
    """Whether a row's throughput figures compare (unknown counts as comparable)."""
    value = r.get("tp_comparable")
    return value is None or bool(pd.isna(value)) or bool(value)


def _p(p_value: float) -> str:
    if math.isnan(p_value):
        return "p=n/a"
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"
