"""Issue 27: the README opens with the question's table, written by one command from the
records of results/question, and its numbers are the report's."""

import re
from pathlib import Path

import pytest

from stn.report.readme_block import (
    BEGIN,
    END,
    NOT_RUN,
    MarkerError,
    build_block,
    has_records,
    read_block,
    replace_block,
)
from stn.results.store import write_record
from stn_bench.report import main as report_main
from tests.report_records import make_record

ROOT = Path(__file__).resolve().parents[2]
QUESTION = ROOT / "results" / "question"
PERCENT = re.compile(r"^(\d+\.\d)(?: ± (\d+\.\d))? %( †)?$")


# -- reading both documents ------------------------------------------------------------------


def _table_lines(lines: list[str]) -> list[list[str]]:
    """The cells of a markdown table's rows (header first, the rule left out)."""
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not all(set(c) <= set(":-") for c in cells):
            rows.append(cells)
    return rows


def readme_numbers(readme_text: str) -> dict[tuple[str, str, str], tuple]:
    """(dataset, reducer as the report names it, classifier) → (mean, half-width, stalled,
    group) from the README's block."""
    block = read_block(readme_text).splitlines()
    start = next(i for i, line in enumerate(block) if line.startswith("| reducer"))
    header, *rows = _table_lines(block[start:])
    datasets = [re.search(r"`([^`]+)`", h).group(1) for h in header[1:-1]]
    numbers = {}
    for row in rows:
        label = row[0]
        reducer = re.search(r"`([^`]+)`", label).group(1)
        if label.endswith("(oracle)"):
            reducer += " (oracle)"
        classifier = label.split(" + ")[1].split()[0].lower() if " + " in label else "cnn"
        for dataset, cell in zip(datasets, row[1:-1], strict=True):
            if cell == "—":
                continue
            accuracy, group = re.fullmatch(r"(.+) \((\S+)\)", cell).groups()
            numbers[(dataset, reducer, classifier)] = (*PERCENT.match(accuracy).groups(), group)
    return numbers


def report_numbers(report_text: str) -> dict[tuple[str, str, str], tuple]:
    """The same keys and values from the report's Results table."""
    lines = report_text.splitlines()
    start = lines.index("## Results") + 2
    header, *rows = _table_lines(lines[start:])
    column = {name: i for i, name in enumerate(header)}
    numbers = {}
    for row in rows:
        reducer = row[column["reducer"]]
        if reducer.endswith("(without stalled runs)"):
            continue
        accuracy = row[column["test accuracy (95 % CI)"]].replace("**", "")
        group = row[column["group"]]
        group = group if re.fullmatch(r"[A-Za-z0-9,]+", group) else "—"
        key = (row[column["dataset"]], reducer, row[column["classifier"]])
        numbers[key] = (*PERCENT.match(accuracy).groups(), group)
    return numbers


def assert_readme_matches_report(readme_text: str, sweep_dir: Path) -> None:
    """Every number of the README's block is the report's (and every report row is there)."""
    ours = readme_numbers(readme_text)
    theirs = report_numbers((sweep_dir / "report.md").read_text())
    assert ours == theirs


# -- a tiny question sweep of synthetic records --------------------------------------------

# (reducer, kind, classifier, accuracy by seed on question_276, train-step images/s)
ROWS = [
    ("resize_bilinear", "resize", "cnn", [0.80, 0.82, 0.81], 1000.0),
    ("resize_bilinear_aa", "resize", "cnn", [0.86, 0.88, 0.87], 1000.0),
    ("stn_bilinear", "stn", "cnn", [0.70, 0.90, 0.60], 500.0),
    ("ips_windows", "ips", "cnn", [0.95, 0.96, 0.97], 400.0),
    ("oracle_crop", "oracle_crop", "cnn", [0.98, 0.985, 0.99], 1000.0),
    ("resize_area", "resize", "mlp", [0.30, 0.31, 0.32], 4000.0),
    ("pca", "pca", "mlp", [0.20, 0.26, 0.22], 2000.0),
]


def write_question_sweep(sweep_dir: Path) -> None:
    for reducer, kind, classifier, accuracies, step in ROWS:
        for dataset, shift in (("question_276", 0.0), ("digits_276", -0.05)):
            for seed, accuracy in enumerate(accuracies):
                stalled = reducer == "stn_bilinear" and seed == 2  # a † row, and its twin
                record = make_record(
                    reducer, seed, accuracy + shift, dataset, classifier, kind=kind, stalled=stalled
                )
                record.reducer.oracle = reducer == "oracle_crop"
                record.throughput["train_step"] = {"images_per_s": step}
                write_record(record, sweep_dir)


def readme_with_markers(path: Path) -> Path:
    path.write_text(f"# my project\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## More\ntext\n")
    return path


def test_the_report_command_writes_the_block_from_the_records(tmp_path):
    sweep = tmp_path / "results" / "question"
    write_question_sweep(sweep)
    readme = readme_with_markers(tmp_path / "README.md")
    code = report_main([str(sweep), "--no-figures", "--readme", str(readme)])
    assert code == 0
    text = readme.read_text()
    assert text.startswith("# my project\n\nintro\n\n") and text.endswith("## More\ntext\n")
    block = read_block(text)
    assert "old table" not in block and NOT_RUN not in block
    assert "[results/question/report.md](results/question/report.md)" in block
    lines = block.splitlines()
    header = next(line for line in lines if line.startswith("| reducer"))
    assert "`question_276`" in header and "`digits_276`" in header
    assert header.index("question_276") < header.index("digits_276")
    rows = {row[0]: row for row in _table_lines(lines[lines.index(header) :])[1:]}
    # the CNN rows first, best mean first, then the MLP family
    assert list(rows) == [
        "`oracle_crop` (oracle)", "`ips_windows`", "`resize_bilinear_aa`", "`resize_bilinear`",
        "`stn_bilinear`", "`resize_area` + MLP", "`pca` + MLP",
    ]  # fmt: skip
    # accuracy ± half-width and the group letters (the cross-check below compares them)
    assert re.fullmatch(r"96\.0 ± 2\.5 % \([a-z]+\)", rows["`ips_windows`"][1])
    assert re.fullmatch(r"91\.0 ± 2\.5 % \([a-z]+\)", rows["`ips_windows`"][2])
    assert rows["`stn_bilinear`"][1].startswith("73.3 ± 37.9 % † (")  # its stalled seed
    assert "†: some runs of the row ended on the chance plateau" in block
    # training step: the baseline's speed over the row's, per canvas (resize_bilinear for
    # the CNN, resize_area for the MLP)
    assert rows["`ips_windows`"][3] == "2.5× / 2.5×"
    assert rows["`resize_bilinear`"][3] == "1× / 1×"
    assert rows["`pca` + MLP"][3] == "2× / 2×"
    assert_readme_matches_report(text, sweep)


def test_the_cross_check_fails_when_a_readme_number_differs(tmp_path):
    sweep = tmp_path / "question"
    write_question_sweep(sweep)
    readme = readme_with_markers(tmp_path / "README.md")
    assert report_main([str(sweep), "--no-figures", "--readme", str(readme)]) == 0
    edited = readme.read_text().replace("96.0 ± 2.5 %", "96.1 ± 2.5 %", 1)
    assert edited != readme.read_text()
    with pytest.raises(AssertionError):
        assert_readme_matches_report(edited, sweep)


def test_the_standalone_command_and_a_folder_without_records(tmp_path, capsys):
    from stn.report.readme_block import main

    readme = readme_with_markers(tmp_path / "README.md")
    assert main([str(tmp_path / "results" / "question"), "--readme", str(readme)]) == 0
    block = read_block(readme.read_text())
    assert NOT_RUN in block and "|" not in block
    assert "`results/question/` holds no records yet" in block
    assert "updated" in capsys.readouterr().out
    assert main([str(tmp_path / "results" / "question"), "--readme", str(readme)]) == 0
    assert "already up to date" in capsys.readouterr().out


def test_a_readme_without_markers_is_refused_and_left_alone(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(MarkerError):
        replace_block(readme.read_text(), "x")
    sweep = tmp_path / "question"
    write_question_sweep(sweep)
    assert report_main([str(sweep), "--no-figures", "--readme", str(readme)]) == 4
    assert readme.read_text() == "# no markers\n"
    assert "question-table:begin" in capsys.readouterr().err


# -- this repository's README ------------------------------------------------------------------


def test_the_readme_block_is_what_results_question_gives():
    """Regenerating the block from the committed records changes nothing."""
    readme = (ROOT / "README.md").read_text()
    assert read_block(readme) == build_block(QUESTION, ROOT)


def test_the_readme_numbers_are_the_reports_or_it_says_the_sweep_is_not_run():
    readme = (ROOT / "README.md").read_text()
    block = read_block(readme)
    if has_records(QUESTION):
        assert NOT_RUN not in block
        assert_readme_matches_report(readme, QUESTION)
    else:  # until the sweep lands: the block says so, and shows no number
        assert NOT_RUN in block and "|" not in block
        assert not re.search(r"\d+\.\d ± \d+\.\d %", block)
    # the opening: the block comes before anything else of substance
    assert readme.index(BEGIN) < readme.index("## Set-up in two commands")


STEP_COST = r"\d+(?:\.\d+)?×"


def quoted_figures(paragraph: str) -> list[str]:
    """The accuracies ("96.9 %") and step costs ("2.7×") a paragraph of prose quotes."""
    return re.findall(rf"(?<![\d.])\d+(?:\.\d)? %|(?<![\d.]){STEP_COST}", paragraph)


def assert_quotes_are_table_cells(paragraph: str, block: str) -> None:
    """Every figure the paragraph quotes is a mean or a step cost of the block's table."""
    cells = set(re.findall(r"\d+\.\d(?= ± )", block)) | set(re.findall(STEP_COST, block))
    for figure in quoted_figures(paragraph):
        assert figure.replace(" %", "") in cells, f"{figure!r} is not in the question table"


def test_the_quote_check_catches_a_figure_the_table_does_not_hold():
    block = "| `a` | 96.9 ± 0.9 % (a) | 1× / 2.7× |"
    assert_quotes_are_table_cells("reads 96.9 % at 2.7× a resize step", block)
    with pytest.raises(AssertionError, match="97.0 %"):
        assert_quotes_are_table_cells("reads 97.0 %", block)
    with pytest.raises(AssertionError, match="3×"):
        assert_quotes_are_table_cells("costs 3×", block)


def test_what_to_use_when_quotes_only_the_tables_figures():
    """The hand-written paragraph under the table says no number the records do not give."""
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index(END) : readme.index("## Set-up in two commands")]
    if has_records(QUESTION):
        assert "pending the sweep" not in paragraph and quoted_figures(paragraph)
        assert_quotes_are_table_cells(paragraph, read_block(readme))
    else:
        assert "pending the sweep" in paragraph
