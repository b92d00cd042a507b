"""Issue 31: a trained network loaded from a checkpoint and kept frozen behind a reducer.

Mechanics only (a few steps on a few images, one CPU thread): the frozen network's weights
and batch-norm statistics stay exactly as loaded while a learned reducer trains through
it; every bad checkpoint fails its run before training; the record names the weights.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tiny_runs
import torch
from hydra import compose, initialize_config_dir

import experiments.job as job
from experiments.checkpoints import freeze, load_configured_weights
from experiments.classifier import ClassifierSpec
from experiments.job import plain_config, run_job
from stn.data.canvas import CanvasSpec
from stn.data.embedded import load_embedded_digits
from stn.data.stream import BatchStream
from stn.measure.checkpoint import file_digest, read_checkpoint, save_checkpoint
from stn.measure.train import ReducedClassifier, TrainSettings, fit, make_optimizer
from stn.networks import build_classifier
from stn.reducers.registry import build_reducer
from stn.results.identity import experiment_id
from stn.results.store import read_record

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf")
TINY = [*tiny_runs.TINY, "throughput.rounds=1", "threads=1"]
SMALL_CNN = "classifier.channels=[4,8,8,8]"  # the cnn's layout, narrow: fast on one thread
CNN_META = {"kind": "cnn", "input_size": [48, 48], "in_channels": 1, "num_classes": 10}


def small_cnn(channels=(4, 8, 8, 8)) -> torch.nn.Module:
    return build_classifier("cnn", 1, 10, (48, 48), channels=channels)


def trained_looking(network: torch.nn.Module) -> torch.nn.Module:
    """Batch-norm statistics away from their initial (0, 1), as a trained network's are."""
    network.train()
    with torch.no_grad():
        for _ in range(3):
            network(torch.rand(8, 1, 48, 48) * 3 + 1)
    return network


def compose_config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return plain_config(compose("config", overrides=list(overrides)))


def run(tmp_path: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[*TINY, f"results_dir={tmp_path}", *overrides])
    outcome = run_job(cfg)
    return json.loads((tmp_path / "records" / f"{outcome.run_id}.json").read_text())


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_a_reducer_trains_through_a_frozen_network_that_stays_exactly_as_loaded(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "net.pt", trained_looking(small_cnn()), CNN_META)
    network = small_cnn()
    section = {"kind": "cnn", "checkpoint": str(path), "frozen": True}
    facts = load_configured_weights(ClassifierSpec.from_section(section), network, 1, 10, (48, 48))
    assert facts["frozen"] is True
    loaded = snapshot(network)
    assert any("running_mean" in k and v.abs().sum() > 0 for k, v in loaded.items())

    digits = load_embedded_digits()
    train = BatchStream(digits.subset(np.arange(0, 2000, 40)), 16, CanvasSpec(size=64), 1)
    test = BatchStream(digits.subset(np.arange(7, 2000, 200)), 16, CanvasSpec(size=64), 9)
    reducer = build_reducer({"kind": "stn", "loc_hidden": 8}, 1, (64, 64))
    model = ReducedClassifier(reducer, network, frozen_classifier=True)
    reducer_before = snapshot(reducer)
    settings = TrainSettings(epochs=2, lr=1e-2, max_steps_per_epoch=3, progress=False)
    fit(model, train, test, settings, torch.device("cpu"))

    after = network.state_dict()
    for key, value in loaded.items():  # weights AND running statistics (and batch counts)
        assert torch.equal(after[key], value), key
    changed = [k for k, v in reducer.state_dict().items() if not torch.equal(v, reducer_before[k])]
    assert changed, "the reducer did not train"

    model.train()  # what fit does every epoch: the frozen network stays in evaluation mode
    assert model.training and reducer.training
    assert not any(m.training for m in network.modules())
    x, y = next(train.batches()).x[:4], next(train.batches()).y[:4]
    torch.nn.functional.cross_entropy(model(x), y).backward()
    assert all(p.grad is None for p in network.parameters())
    learned = [p for p in reducer.parameters() if p.requires_grad]
    assert learned and all(p.grad is not None for p in learned)
    assert any(p.grad.abs().sum() > 0 for p in learned)  # gradients reach the reducer


def test_the_optimiser_holds_no_parameter_of_a_frozen_network():
    network = small_cnn()
    freeze(network)
    reducer = build_reducer({"kind": "stn", "loc_hidden": 8}, 1, (64, 64))
    optimizer = make_optimizer(ReducedClassifier(reducer, network, True), TrainSettings())
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not held & {id(p) for p in network.parameters()}
    assert {id(p) for p in reducer.parameters() if p.requires_grad} <= held


def test_a_checkpoint_round_trips_with_its_metadata(tmp_path):
    torch.manual_seed(1)
    network = trained_looking(small_cnn()).eval()
    path = save_checkpoint(tmp_path / "sub" / "net.pt", network, {**CNN_META, "note": "x"})
    state, meta = read_checkpoint(path, "test")
    assert meta == {**CNN_META, "note": "x"}
    again = small_cnn()
    again.load_state_dict(state)
    again.eval()
    x = torch.rand(5, 1, 48, 48)
    assert torch.equal(network(x), again(x))
    assert not list(path.parent.glob("*.partial"))


class NotWeights:
    """A pickled object: weights_only loading must refuse it, never call it."""


def write_case(tmp_path: Path, case: str) -> str:
    path = tmp_path / f"{case}.pt"
    if case == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif case == "pickled_object":
        torch.save({"net": NotWeights()}, path)
    elif case == "tensor":
        torch.save(torch.zeros(3), path)
    elif case == "other_input_size":
        save_checkpoint(path, small_cnn(), {**CNN_META, "input_size": [32, 32]})
    elif case == "other_kind":
        save_checkpoint(path, small_cnn(), {**CNN_META, "kind": "resnet"})
    elif case == "other_channels":
        save_checkpoint(path, small_cnn(), {**CNN_META, "in_channels": 3})
    elif case == "wrong_shapes":  # a plain state dict of a wider network: no meta to read
        torch.save(small_cnn((8, 8, 8, 8)).state_dict(), path)
    elif case == "wrong_keys":
        torch.save(build_classifier("mlp", 1, 10, (48, 48)).state_dict(), path)
    return str(path)


BEFORE_DATA = {
    "missing": "no such file",
    "garbage": "cannot be read as weights",
    "pickled_object": "never unpickled",
    "tensor": "not a state dict",
    "other_input_size": "input_size=[32, 32]",
    "other_kind": "kind='resnet'",
}
AFTER_DATA = {
    "other_channels": "in_channels=3",
    "wrong_shapes": "shapes differ",
    "wrong_keys": "missing",
}


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(job, "fit", refuse)


@pytest.mark.parametrize("case", sorted(BEFORE_DATA))
def test_a_bad_checkpoint_fails_before_the_data_is_read(tmp_path, monkeypatch, case):
    def refuse(*args, **kwargs):
        raise AssertionError("data read")

    monkeypatch.setattr(job, "prepare_data", refuse)
    path = str(tmp_path / "absent.pt") if case == "missing" else write_case(tmp_path, case)
    record = run(tmp_path, SMALL_CNN, f"classifier.checkpoint={path}", "classifier.frozen=true")
    assert record["status"] == "failed"
    assert record["error"].startswith("CheckpointError: classifier.checkpoint")
    assert BEFORE_DATA[case] in record["error"]


@pytest.mark.parametrize("case", sorted(AFTER_DATA))
def test_a_checkpoint_that_does_not_fit_the_network_fails_before_training(
    tmp_path, no_training, case
):
    path = write_case(tmp_path, case)
    record = run(tmp_path, SMALL_CNN, f"classifier.checkpoint={path}", "classifier.frozen=true")
    assert record["status"] == "failed"
    assert record["error"].startswith("CheckpointError: classifier.checkpoint")
    assert AFTER_DATA[case] in record["error"]


def test_a_frozen_network_without_a_checkpoint_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(job, "prepare_data", lambda *a, **k: pytest.fail("data read"))
    record = run(tmp_path, "classifier.frozen=true")
    assert record["status"] == "failed"
    assert "classifier.frozen=true needs classifier.checkpoint=PATH" in record["error"]


def test_the_two_steps_save_then_load_and_the_record_names_the_weights(tmp_path):
    saved = tmp_path / "checkpoints" / "net.pt"
    first = run(tmp_path, SMALL_CNN, "reducer=oracle_crop", f"save_checkpoint={saved}")
    assert first["status"] == "ok", first.get("error")
    _, meta = read_checkpoint(saved, "test")
    assert {k: meta[k] for k in CNN_META} == CNN_META
    assert meta["run_id"] == first["run_id"] and meta["reducer"] == "oracle_crop"
    assert first["saved_checkpoint"] == {"path": str(saved), "sha256": file_digest(saved)}

    frozen = [SMALL_CNN, f"classifier.checkpoint={saved}", "classifier.frozen=true"]
    learned = run(tmp_path, *frozen, "reducer=stn_bilinear", "reducer.loc_hidden=8")
    assert learned["status"] == "ok", learned.get("error")
    assert learned["classifier"]["checkpoint"] == str(saved)
    assert learned["classifier"]["checkpoint_sha256"] == file_digest(saved)
    assert learned["classifier"]["frozen"] is True
    assert learned["metrics"]["steps"] > 0
    path = tmp_path / "records" / f"{learned['run_id']}.json"
    assert read_record(path).classifier.frozen is True  # the layout reads it back

    fixed = run(tmp_path, *frozen, "reducer=resize_bilinear")  # nothing left to train
    assert fixed["status"] == "ok", fixed.get("error")
    assert fixed["metrics"]["steps"] == 0 and len(fixed["metrics"]["curves"]) == 1
    assert fixed["throughput"]["train_step"]["nothing_trains"] is True


def test_unfrozen_runs_keep_their_ids_and_a_frozen_one_gets_its_own():
    config = compose_config()
    assert config["classifier"]["checkpoint"] is None and config["classifier"]["frozen"] is False
    before = {
        **config,
        "classifier": {
            k: v for k, v in config["classifier"].items() if k not in ("checkpoint", "frozen")
        },
    }
    assert experiment_id(config) == experiment_id(before)
    frozen = {**config, "classifier": {**config["classifier"], "checkpoint": "a.pt"}}
    assert experiment_id(frozen) != experiment_id(config)
    assert experiment_id({**config, "save_checkpoint": "x.pt"}) == experiment_id(config)


def test_the_frozen_presets_compose_into_the_two_steps():
    step1 = compose_config("experiment=frozen_checkpoint")
    assert step1["reducer"]["name"] == "oracle_crop" and step1["classifier"]["name"] == "cnn"
    assert step1["classifier"]["frozen"] is False
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=frozen"], return_hydra_config=True)
        params = cfg.hydra.sweeper.params
    datasets, reducers = params["dataset"].split(","), params["reducer"].split(",")
    assert datasets == ["digits_96", "digits_276", "question_276"]
    assert params["seed"] == "0,1,2"
    for needed in ("resize_bilinear_aa", "pool_blur", "learned_resizer", "frozen/stn_bilinear"):
        assert needed in reducers
    # the textbook STN keeps its row name and learns at the trainer's rate: with the network
    # frozen its localisation net is all that learns (the joint-training 0.1× stays at chance)
    stn = compose_config("experiment=frozen", "reducer=frozen/stn_bilinear")["reducer"]
    plain = compose_config("reducer=stn_bilinear")["reducer"]
    assert stn["name"] == "stn_bilinear" and stn["lr_multiplier"] == 1.0
    assert plain["lr_multiplier"] == 0.1
    assert {k: v for k, v in stn.items() if k != "lr_multiplier"} == {
        k: v for k, v in plain.items() if k != "lr_multiplier"
    }
    assert {"stn_candidates", "ips_windows", "oracle_crop"} <= set(reducers)
    assert not [r for r in reducers if r.startswith("pca")]  # left out, the preset says why
    # Step 2 reads exactly the file step 1 writes, into the network it was saved for.
    config = compose_config("experiment=frozen")
    assert config["classifier"]["checkpoint"] == step1["save_checkpoint"]
    assert config["classifier"]["frozen"] is True and config["classifier"]["kind"] == "cnn"
    for dataset in datasets:  # every run of the sweep composes
        for reducer in reducers:
            one = compose_config("experiment=frozen", f"dataset={dataset}", f"reducer={reducer}")
            assert one["reducer"]["name"] == reducer.removeprefix("frozen/")
            assert one["classifier"]["frozen"] is True


def test_the_scratch_preset_trains_every_frozen_row_at_96_on_the_main_jobs_protocol():
    def grid(preset):
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose("config", overrides=[f"experiment={preset}"], return_hydra_config=True)
            return cfg.hydra.sweeper.params

    frozen, scratch = grid("frozen"), grid("frozen_scratch")
    assert scratch["dataset"] == "digits_96" and scratch["seed"] == frozen["seed"]
    # the same rows (frozen/stn_bilinear is stn_bilinear at the trainer's rate: from scratch
    # the textbook STN keeps the rate it has in every other comparison)
    # and ips_windows left out: its 128-px windows do not fit a 96×96 canvas
    assert scratch["reducer"].split(",") == [
        r.removeprefix("frozen/") for r in frozen["reducer"].split(",") if r != "ips_windows"
    ]
    # from scratch: no checkpoint, and the same experiments as the main job's runs (same ids)
    one = compose_config("experiment=frozen_scratch", "reducer=stn_bilinear", "seed=1")
    main = compose_config("experiment=compare", "reducer=stn_bilinear", "seed=1")
    assert one["classifier"].get("checkpoint") is None and not one["classifier"]["frozen"]
    assert experiment_id(one) == experiment_id(main)


def test_a_reducer_that_warms_up_frozen_trains_after_its_warm_up(tmp_path):
    """Its first epoch has nothing to learn (reducer and network both fixed): no crash."""
    path = save_checkpoint(tmp_path / "net.pt", trained_looking(small_cnn()), CNN_META)
    network = small_cnn()
    spec = ClassifierSpec.from_section({"kind": "cnn", "checkpoint": str(path), "frozen": True})
    load_configured_weights(spec, network, 1, 10, (48, 48))
    digits = load_embedded_digits()
    train = BatchStream(digits.subset(np.arange(0, 800, 40)), 8, CanvasSpec(size=64), 1)
    reducer = build_reducer({"kind": "stn", "loc_hidden": 8, "loc_warmup_epochs": 1}, 1, (64, 64))
    before = snapshot(reducer)
    model = ReducedClassifier(reducer, network, frozen_classifier=True)
    settings = TrainSettings(epochs=2, lr=1e-2, max_steps_per_epoch=2, progress=False)
    metrics = fit(model, train, train, settings, torch.device("cpu"))
    assert metrics["steps"] == 4
    assert any(not torch.equal(v, before[k]) for k, v in reducer.state_dict().items())


def test_your_own_network_loads_a_plain_state_dict_and_stays_frozen(tmp_path):
    from custom_nets import TinyNet

    path = tmp_path / "tiny.pt"
    torch.save(trained_looking(TinyNet(1, 10, (48, 48))).state_dict(), path)
    record = run(
        tmp_path,
        "classifier=custom",
        "classifier._target_=custom_nets.TinyNet",  # checkpoint, frozen: not its options
        f"classifier.checkpoint={path}",
        "classifier.frozen=true",
        "reducer=stn_bilinear",
        "reducer.loc_hidden=8",
    )
    assert record["status"] == "ok", record.get("error")
    assert record["classifier"]["target"] == "custom_nets.TinyNet"
    assert record["classifier"]["checkpoint_sha256"] == file_digest(path)
    assert record["classifier"]["frozen"] is True


def test_the_prediction_probe_reads_the_frozen_network_as_its_run_did():
    """scripts.frozen_predictions on the committed checkpoint: the oracle crop reproduces
    the accuracy the checkpoint's own run measured on the same test split (0.979)."""
    from scripts.frozen_predictions import probe

    (saved,) = [
        json.loads(p.read_text())
        for p in (ROOT / "results" / "frozen_checkpoint" / "records").glob("*.json")
        if json.loads(p.read_text()).get("metrics")
    ]
    result = probe("digits_96", "oracle_crop")
    assert result["accuracy"] == pytest.approx(saved["metrics"]["test_accuracy"], abs=1e-9)
    assert 0.1 <= result["top_share"] <= 1.0 and 0.0 < result["input_mean"] < 1.0
