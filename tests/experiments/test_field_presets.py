"""The new presets compose, build, and reach the sweeps (with PCA's MLP pairing)."""

import json
from pathlib import Path

from hydra import compose, initialize_config_dir

from experiments.job import run_job
from stn.reducers.registry import build_reducer

CONF = str(Path(__file__).resolve().parents[2] / "conf")
NEW = ["pca", "pca_whiten", "learned_resizer", "pool_blur", "oracle_crop"]


def composed(*overrides, hydra_config=False):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra_config)


def test_every_new_preset_builds_and_is_in_a_sweep():
    for name in NEW:
        spec = dict(composed(f"reducer={name}").reducer)
        reducer = build_reducer(spec, 1, (96, 96))
        assert reducer.name == name
    # The question's two halves: the CNN rows and PCA with the MLP (experiment=question_mlp).
    question = set()
    for experiment in ("question", "question_mlp"):
        swept = composed(f"experiment={experiment}", hydra_config=True).hydra.sweeper.params
        question |= set(swept.reducer.split(","))
    assert set(NEW) <= question


def test_the_main_job_runs_every_reducer_it_lists_on_three_seeds_at_least():
    for experiment in ("compare", "compare_mlp"):
        cfg = composed(f"experiment={experiment}", hydra_config=True)
        params = cfg.hydra.sweeper.params
        assert len(str(params.seed).split(",")) >= 3
        for name in params.reducer.split(","):
            assert composed(f"reducer={name}").reducer.name == name
    swept = composed("experiment=compare", hydra_config=True).hydra.sweeper.params.reducer
    # The baseline of the report's tests and the upper bound must be in the comparison.
    assert {"resize_bilinear", "oracle_crop", "stn_bilinear"} <= set(swept.split(","))


def test_compare_mlp_pairs_pca_with_the_mlp_in_the_same_sweep_folder():
    cfg = composed("experiment=compare_mlp", hydra_config=True)
    assert cfg.classifier.name == "mlp" and cfg.sweep == "compare"
    assert "pca" in cfg.hydra.sweeper.params.reducer.split(",")


def test_a_pca_run_fits_on_the_training_split_and_records_the_fit(tmp_path):
    cfg = composed(
        "reducer=pca_whiten",
        "classifier=mlp",
        "trainer=smoke",
        "logger=none",
        "dataset.limit_train=48",
        "dataset.limit_test=16",
        "reducer.n_components=32",
        f"reducer.cache_dir={tmp_path / 'cache'}",
        f"results_dir={tmp_path / 'out'}",
        "threads=1",
    )
    assert run_job(cfg).status == "ok"
    (path,) = (tmp_path / "out" / "records").glob("*.json")
    record = json.loads(path.read_text())
    fit = record["reducer_fit"]
    assert fit["n_train"] == record["dataset"]["n_train"] == 48
    assert fit["cache"] == "miss" and len(fit["explained_variance_ratio"][0]) == 32
    # 48 images of 96² to 32 components: the Gram solver, on the run's device.
    assert fit["solver"] == "gram" and fit["solver_reason"].startswith("auto: gram fits")
    assert fit["fit_details"]["device"] == record["environment"]["device"]
    assert 0 < fit["explained_variance_ratio_total"][0] <= 1
    assert record["reducer"]["whiten"] is True and record["classifier"]["name"] == "mlp"
