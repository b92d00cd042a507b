"""What a job returns to Hydra's sweeper (experiments/objective.py): the objective's value,
read from the record, and the Optuna sweeper's failure contract for a run without one."""

from enum import Enum

import pytest
from omegaconf import OmegaConf
from report_records import make_record

from experiments.objective import (
    NoObjective,
    Objective,
    direction_problem,
    objective_from,
    objective_metrics,
    sweep_return,
)
from experiments.targets import code_problems
from stn.results.store import write_record

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def test_the_metrics_an_objective_may_name_are_the_records_numbers():
    assert objective_metrics() == ("test_accuracy", "test_loss", "train_seconds", "steps")
    assert Objective() == Objective("test_accuracy", "maximize")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"metric": "test_acuracy"},
            "'test_acuracy' is not a recorded metric (did you mean "
            "'test_accuracy'?); recorded: test_accuracy",
        ),  # fmt: skip
        ({"metric": "curves"}, "'curves' is not a recorded metric"),
        ({"direction": "max"}, "objective.direction: 'max' is not one of maximize, minimize"),
        ({"metrc": "test_loss"}, "unknown objective option 'metrc' (did you mean 'metric'?)"),
    ],
)
def test_an_objective_that_names_nothing_recorded_is_refused(section, message):
    with pytest.raises(ValueError) as err:
        objective_from(section)
    assert message in str(err.value)


class Direction(Enum):  # as optuna.study.StudyDirection, which the sweeper's config holds
    minimize = 1
    maximize = 2


@pytest.mark.parametrize(
    ("direction", "agrees"),
    [("maximize", True), (Direction.maximize, True), (["maximize"], True),
     ("minimize", False), (Direction.minimize, False), (["maximize", "minimize"], False)],
)  # fmt: skip
def test_an_optimising_sweepers_direction_must_be_the_objectives(direction, agrees):
    sweeper = OmegaConf.create({"direction": direction}) if isinstance(direction, list) else {
        "direction": direction}  # fmt: skip
    problem = direction_problem(Objective(), sweeper)
    assert (problem is None) == agrees
    if not agrees:
        assert "add hydra.sweeper.direction=maximize" in problem
    assert direction_problem(Objective(), {"max_batch_size": None}) is None  # the grid sweeper


def _recorded(tmp_path, status="ok", accuracy=0.875):
    record = make_record("stn_bilinear", 0, accuracy, status=status)
    write_record(record, tmp_path)
    return record


def test_a_job_returns_its_recorded_metric_as_a_float(tmp_path):
    record = _recorded(tmp_path)
    for sweeper in (OPTUNA, BASIC, None):
        value = sweep_return("ok", None, record.run_id, tmp_path, Objective(), sweeper)
        assert value == 0.875 and type(value) is float
    # Skipped because its ok record exists (a resumed sweep): the same value.
    assert sweep_return("skipped", None, record.run_id, tmp_path, Objective(), OPTUNA) == 0.875
    loss = Objective("test_loss", "minimize")
    assert sweep_return("ok", None, record.run_id, tmp_path, loss, OPTUNA) == float(
        record.metrics.test_loss
    )


def test_a_run_without_a_value_fails_its_trial_but_not_a_grid_sweep(tmp_path):
    record = _recorded(tmp_path, status="failed")
    reason = "NonFiniteLossError: parameter w became non-finite"
    with pytest.raises(NoObjective, match="gave no test_accuracy .failed: NonFiniteLossError"):
        sweep_return("failed", reason, record.run_id, tmp_path, Objective(), OPTUNA)
    assert sweep_return("failed", reason, record.run_id, tmp_path, Objective(), BASIC) is None
    # No record at all (skipped: device=cuda_if_present without a GPU).
    with pytest.raises(NoObjective, match="no metrics.test_accuracy"):
        sweep_return("skipped", None, "0" * 16, tmp_path, Objective(), OPTUNA)


def test_the_optuna_sampler_may_be_named_and_a_search_space_function_may_not():
    hydra = {"sweeper": {"_target_": OPTUNA, "sampler": {"_target_": "optuna.samplers.TPESampler"}}}
    assert code_problems({"hydra": hydra}) == []
    hydra["sweeper"]["sampler"]["_target_"] = "os.system"
    (problem,) = code_problems({"hydra": hydra})
    assert problem.startswith("hydra.sweeper.sampler._target_: 'os.system' is a")
    hydra["sweeper"]["sampler"]["_target_"] = "optuna.samplers.TPESampler"
    hydra["sweeper"]["custom_search_space"] = "shutil.rmtree"
    (problem,) = code_problems({"hydra": hydra})
    assert problem.startswith("hydra.sweeper.custom_search_space: 'shutil.rmtree' refused")
