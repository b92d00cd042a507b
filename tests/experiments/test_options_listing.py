"""stn-bench options (stn_bench/options.py): what each section's and kind's dataclass
declares, as a listing."""

import dataclasses

from stn.reducers.base import REDUCERS
from stn_bench.options import main, option_sets


def test_every_reducer_kind_and_section_is_listed(capsys):
    assert main([]) == 0
    listed = capsys.readouterr().out
    for name in ["run", "throughput", "dataset", "trainer", "classifier/cnn", *REDUCERS]:
        assert name in option_sets() and name in listed


def test_a_kind_lists_every_option_with_its_default(capsys):
    assert main(["stn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    config_type = REDUCERS["stn"].config_type
    assert [line.split()[0] for line in lines] == [f.name for f in dataclasses.fields(config_type)]
    glimpses = next(line for line in lines if line.startswith("glimpses "))
    assert glimpses.split()[1:3] == ["int", "1"]
    assert "tuple[int, ...]" in next(line for line in lines if line.startswith("loc_channels "))


def test_an_unknown_name_exits_2_with_the_closest(capsys):
    assert main(["trainr"]) == 2
    assert "did you mean 'trainer'?" in capsys.readouterr().err
