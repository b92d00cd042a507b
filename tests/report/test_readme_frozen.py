"""Issue 31: the README's table for a trained network kept fixed is written by
`stn-bench report <frozen sweep> --readme README.md` from the frozen sweep's records, and
its numbers are the report's "Accuracy kept" section's."""

import re
from pathlib import Path

from stn.report.frozen_block import BEGIN, END, NOT_RUN, build_frozen_block
from stn.report.frozen_kept import SECTION
from stn.report.readme_block import BEGIN as QUESTION_BEGIN
from stn.report.readme_block import END as QUESTION_END
from stn.report.readme_block import read_block
from stn_bench.report import main as report_main
from tests.report.test_frozen_kept import FROZEN, SCRATCH, sweeps, write_sweep  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
KEPT = re.compile(r"^(\d\.\d{3})(?: ± (\d\.\d{3}))?( †)? \((\S+)\)$")


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of the first markdown table of ``lines`` (header first, rule left out)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not all(set(c) <= set(":-") for c in cells):
            rows.append(cells)
    return rows


def readme_numbers(readme_text: str) -> dict[tuple[str, str], tuple]:
    """(canvas, reducer) → (kept, half-width, group, scratch ÷ oracle) from the block."""
    header, *rows = table_rows(read_block(readme_text, BEGIN, END).splitlines())
    canvases = [re.search(r"`([^`]+)`", h).group(1) for h in header[1::2]]
    numbers = {}
    for row in rows:
        reducer = row[0].strip("`")
        for i, canvas in enumerate(canvases):
            kept, scratch = row[1 + 2 * i], row[2 + 2 * i]
            if kept == "—":
                continue
            mean, half, _, group = KEPT.match(kept).groups()
            numbers[(canvas, reducer)] = (mean, half or "", group, scratch)
    return numbers


def report_numbers(report_text: str) -> dict[tuple[str, str], tuple]:
    """The same keys and values from the report's "Accuracy kept" tables."""
    numbers = {}
    section = report_text[report_text.index(SECTION) :].splitlines()
    for i, line in enumerate(section):
        if not line.startswith("### "):
            continue
        canvas = line[4:].split(",")[0]
        rest = section[i + 1 :]
        if not any(r.startswith("| reducer") for r in rest[:6]):
            continue
        header, *rows = table_rows(rest)
        column = {name: j for j, name in enumerate(header)}
        for row in rows:
            mean, _, half = row[column["kept (95 % CI)"]].partition(" ± ")
            scratch = row[column["÷ oracle"]]
            group = row[2] if re.fullmatch(r"[A-Za-z0-9,]+", row[2]) else "—"
            numbers[(canvas, row[0].strip("`"))] = (mean, half, group, scratch)
    return numbers


def readme_with_both_blocks(path: Path) -> Path:
    path.write_text(
        f"# project\n\n{QUESTION_BEGIN}\nquestion\n{QUESTION_END}\n\n"
        f"## Frozen\n\n{BEGIN}\nold\n{END}\n\nend\n"
    )
    return path


def test_the_frozen_sweeps_report_writes_its_own_block_with_the_reports_numbers(
    sweeps,  # noqa: F811
    tmp_path,
):
    frozen, scratch = sweeps
    readme = readme_with_both_blocks(tmp_path / "results" / "README.md")
    assert report_main([str(frozen), "--no-figures", "--readme", str(readme)]) in (0, 1)
    text = readme.read_text()
    assert read_block(text, QUESTION_BEGIN, QUESTION_END) == "question"  # left alone
    assert text.endswith(f"{END}\n\nend\n")
    block = read_block(text, BEGIN, END)
    assert "old" not in block and NOT_RUN not in block
    assert "[frozen/report.md](frozen/report.md)" in block  # relative to the README
    header, *rows = table_rows(block.splitlines())
    assert header[1] == "`digits_96` kept" and header[3] == "`digits_276` kept"
    # best first by the mean kept over the canvases a row has (resize_bilinear: 0.842 on
    # digits_96, 0.500 on digits_276); the oracle is the reference, not a row
    assert [r[0] for r in rows] == [
        "`stn_bilinear`", "`pool_adaptive`", "`resize_nearest`", "`resize_bilinear`",
    ]  # fmt: skip
    by_name = {r[0]: r for r in rows}
    assert by_name["`resize_bilinear`"][1].startswith(f"{0.80 / 0.95:.3f} ± 0.000 (")
    assert by_name["`resize_bilinear`"][2] == f"{sum(SCRATCH['resize_bilinear']) / 3 / 0.985:.3f}"
    assert by_name["`pool_adaptive`"][2] == "—"  # the scratch sweep never ran it
    assert by_name["`resize_bilinear`"][3].startswith(f"{0.45 / 0.9:.3f}")  # digits_276
    assert by_name["`stn_bilinear`"][3] == "—"  # not run on digits_276
    assert "`digits_96` 95.0 %" in block and "`digits_276` 90.0 %" in block
    assert "`digits_96` `compare`" in block and "`digits_276` none" in block
    assert "Kendall's τ between the frozen and the from-scratch rankings: `digits_96` -1.00" in (
        block
    )
    numbers = readme_numbers(text)
    assert numbers == report_numbers((frozen / "report.md").read_text())
    assert len(numbers) == len(FROZEN) - 1 + 1  # 4 rows on digits_96, 1 on digits_276


def test_a_readme_number_that_differs_from_the_report_is_caught(sweeps, tmp_path):  # noqa: F811
    frozen, _ = sweeps
    readme = readme_with_both_blocks(tmp_path / "README.md")
    report_main([str(frozen), "--no-figures", "--readme", str(readme)])
    good = readme.read_text()
    edited = good.replace(f"{0.80 / 0.95:.3f} ± 0.000", f"{0.81 / 0.95:.3f} ± 0.000", 1)
    assert edited != good
    report = (frozen / "report.md").read_text()
    assert readme_numbers(good) == report_numbers(report)
    assert readme_numbers(edited) != report_numbers(report)


def test_a_question_sweep_writes_the_question_block_and_a_missing_marker_is_named(tmp_path, capsys):
    plain = tmp_path / "question"
    write_sweep(plain, SCRATCH, frozen=False, dataset="question_276")
    readme = readme_with_both_blocks(tmp_path / "README.md")
    assert report_main([str(plain), "--no-figures", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| reducer" in read_block(text, QUESTION_BEGIN, QUESTION_END)
    assert read_block(text, BEGIN, END) == "old"
    # a frozen sweep with a README that has only the question's markers: refused, untouched
    frozen = tmp_path / "frozen"
    write_sweep(frozen, FROZEN, frozen=True)
    only_question = tmp_path / "Q.md"
    only_question.write_text(f"{QUESTION_BEGIN}\nq\n{QUESTION_END}\n")
    assert report_main([str(frozen), "--no-figures", "--readme", str(only_question)]) == 4
    assert only_question.read_text() == f"{QUESTION_BEGIN}\nq\n{QUESTION_END}\n"
    assert "frozen-table:begin" in capsys.readouterr().err


def test_a_folder_without_frozen_runs_gives_the_pending_block(tmp_path):
    block = build_frozen_block(tmp_path / "results" / "frozen", tmp_path)
    assert NOT_RUN in block and "|" not in block
    assert "`stn-bench report results/frozen --readme README.md`" in block


# -- this repository's README ------------------------------------------------------------------


def test_the_readme_frozen_block_is_what_results_frozen_gives():
    """Regenerating the block from the committed records changes nothing."""
    readme = (ROOT / "README.md").read_text()
    assert read_block(readme, BEGIN, END) == build_frozen_block(ROOT / "results" / "frozen", ROOT)
