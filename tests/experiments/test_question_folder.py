"""Issue 27: the question's comparison on a user's own folder of images, in one command."""

from collections import Counter
from pathlib import Path

import pytest
from presets import composed, sweep_values

from experiments.question_folder import (
    ALWAYS_LEFT_OUT,
    FolderError,
    FolderFacts,
    main,
    plan,
    read_folder,
    sweep_commands,
)
from tests.folder_images import CLASSES, make_image_folder
from tests.tiny_runs import TINY


def facts(side: int, per_class: int = 10, grey: bool = False, sizes=None) -> FolderFacts:
    sizes = sizes or Counter({(side, side): 3 * per_class})
    return FolderFacts(Path("mine"), {"a": per_class, "b": per_class, "c": per_class}, sizes, grey)


def test_a_side_that_is_not_a_multiple_of_48_leaves_pooling_out_and_says_why():
    chosen = plan(facts(276))
    assert "pool_avg" not in chosen.reducers and "pool_max" not in chosen.reducers
    assert "multiple" in chosen.left_out["pool_avg"] and "276 px" in chosen.left_out["pool_max"]
    assert {"pool_blur", "resize_area", "resize_bilinear_aa", "stn_lanczos3_aa"} <= set(
        chosen.reducers
    )
    assert "ips_windows" in chosen.reducers  # 276 ≥ its 128-px window
    assert set(ALWAYS_LEFT_OUT) <= set(chosen.left_out)  # no boxes, hand-set, identical


def test_a_multiple_of_48_adds_pooling_and_a_small_side_drops_the_selector():
    chosen = plan(facts(96))
    assert {"pool_avg", "pool_max"} <= set(chosen.reducers)
    assert "ips_windows" not in chosen.reducers and "128 px" in chosen.left_out["ips_windows"]


def test_pca_and_its_mlp_sweep_need_as_many_training_images_as_coefficients():
    few, many = plan(facts(144, per_class=100)), plan(facts(144, per_class=1000))
    assert "pca" not in few.reducers and few.mlp_reducers == []
    assert "2304" in few.left_out["pca"] and "240" in few.left_out["pca"]  # 3 × 80 train
    assert "pca" in many.reducers and many.mlp_reducers == ["resize_area", "pca", "pca_whiten"]
    # a smaller output needs fewer components
    assert "pca" in plan(facts(144, per_class=100), output=12).reducers  # 144 components


def test_images_no_larger_than_the_output_are_refused():
    with pytest.raises(FolderError, match="nothing to reduce"):
        plan(facts(48))


def test_sizes_that_differ_load_at_the_median_shorter_side_and_grey_loads_one_channel():
    mixed = facts(0, grey=True, sizes=Counter({(300, 200): 10, (150, 160): 9, (500, 500): 11}))
    chosen = plan(mixed)
    assert chosen.side == 200 and chosen.channels == 1
    (command,) = sweep_commands(mixed, chosen, ["seed=0"])
    assert "dataset.options.size=200" in command and "dataset.options.channels=1" in command
    assert command[-1] == "seed=0" and "experiment=question_folder" in command


def test_read_folder_reads_the_headers_and_refuses_one_class(tmp_path):
    root = make_image_folder(tmp_path / "shapes", per_class=4)
    found = read_folder(root)
    assert found.classes == dict.fromkeys(CLASSES, 4)
    assert found.sizes == Counter({(100, 100): 12}) and found.grey and found.side == 100
    lonely = tmp_path / "lonely" / "only"
    lonely.mkdir(parents=True)
    (root / "disc" / "0.png").rename(lonely / "0.png")
    with pytest.raises(FolderError, match="at least two"):
        read_folder(lonely.parent)


def test_one_command_runs_the_comparison_on_a_tiny_folder_and_writes_the_report(tmp_path, capsys):
    root = make_image_folder(tmp_path / "shapes")
    out = tmp_path / "out"
    status = main(
        [
            str(root),
            "--reducers",
            "resize_bilinear,pool_avg,pca,stn_bilinear",
            *TINY,
            "hydra/launcher=basic",
            "seed=0",
            "threads=1",
            f"results_dir={out}",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "18 images in 3 classes" in printed and "loaded at 100×100 px, 1 channel(s)" in printed
    assert "left out pool_avg: reaches 48 only from a multiple" in printed
    assert "left out pca: 2304 coefficients" in printed
    assert "classifier=mlp" not in printed  # no PCA, so no MLP sweep
    # the sweep it ran, printed as the front door's command a reader can rerun
    assert (
        f"$ stn-bench run -m experiment=question_folder dataset.root={root.resolve()} " in printed
    )
    report = (out / "report.md").read_text()
    assert "# Sweep report: out" in report and "2 ok, 0 failed of 2 expected runs" in report
    assert "| shapes    | resize_bilinear" in report and "| shapes    | stn_bilinear" in report
    assert len(list((out / "records").glob("*.json"))) == 2


def test_a_folder_it_cannot_use_exits_2_saying_why(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "--dry-run"]) == 2
    assert "not a folder" in capsys.readouterr().err
    root = make_image_folder(tmp_path / "shapes", per_class=3)
    assert main([str(root), "--reducers", "resize_bilinear,nonsense", "--dry-run"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_the_preset_lists_what_the_command_plans_for_a_large_side_without_pca():
    """experiment=question_folder by hand runs the rows the command picks for such images."""
    cfg = composed("experiment=question_folder")
    assert sweep_values(cfg, "reducer") == plan(facts(276)).reducers
    assert cfg.dataset.source == "folder" and cfg.dataset.canvas_size is None
    assert cfg.trainer == composed("experiment=question").trainer


def test_the_mlp_rows_are_question_mlps_less_what_a_folder_cannot_run():
    """A folder runs experiment=question_mlp's rows but those it always leaves out (the oracle
    needs object boxes), so a row added to the preset is not silently missing here."""
    swept = sweep_values(composed("experiment=question_mlp"), "reducer")
    assert "oracle_crop" in swept
    assert plan(facts(144, per_class=1000)).mlp_reducers == [
        name for name in swept if name not in ALWAYS_LEFT_OUT
    ]
