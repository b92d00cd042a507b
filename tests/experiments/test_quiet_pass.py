"""The quiet pass: after a parallel sweep, each reducer configuration timed alone, and the
report's throughput taken from those timings."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from report_records import make_record

from experiments.job import plain_config
from experiments.quiet_pass import QuietPassSettings, quiet_configs, run_quiet_pass
from stn.measure.throughput import ThroughputSettings
from stn.report.document import write_report
from stn.results.record import ClassifierInfo, DatasetInfo, Metrics, ReducerInfo, new_record
from stn.results.store import load_records, write_record
from tests.tiny_runs import TINY

CONF = Path(__file__).resolve().parents[2] / "conf"
QUICK = QuietPassSettings(
    throughput=ThroughputSettings(
        warmup=0, min_repeats=1, min_seconds=0.0, rounds=1, contention_cores=1e9, batch_size=4
    )
)


def _beside(record, comparable=False):
    record.throughput = {"comparable": comparable, "reducer": {"images_per_s": 10.0}}
    return record


def test_one_timing_per_configuration_on_its_smallest_seed():
    records = [_beside(make_record(r, s, 0.8)) for r in ("pool_avg", "stn_blob") for s in (2, 1)]
    records.append(_beside(make_record("pool_max", 0, 0.8), comparable=True))  # timed alone
    records.append(make_record("resize_area", 0, None, status="failed"))
    for record in records[:2]:  # pool_avg's runs timed a batch of 16
        record.config["throughput"] = {"batch_size": 16, "rounds": 1}
    configs = quiet_configs(records, QUICK)
    assert [(c["reducer"]["name"], c["seed"]) for c in configs] == [
        ("pool_avg", 1),
        ("stn_blob", 1),
    ]
    assert all(c["mode"] == "throughput" for c in configs)
    # The pass's own settings, the run's timing batch kept.
    assert configs[0]["throughput"]["rounds"] == 1 and configs[0]["throughput"]["batch_size"] == 16


def _trained_beside_others(reducer: str, seed: int, accuracy: float) -> object:
    """A trained record of a real config, as a parallel sweep writes it (not comparable)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = plain_config(compose("config", overrides=[*TINY, f"reducer={reducer}"]))
    config["seed"] = seed
    record = new_record(config, sweep="test")
    record.status = "ok"
    record.reducer = ReducerInfo(name=reducer, kind="resize")
    record.classifier = ClassifierInfo(name="cnn")
    record.dataset = DatasetInfo(name="digits_96", num_classes=10)
    record.metrics = Metrics(test_accuracy=accuracy, test_loss=1.0)
    record.throughput = {
        "comparable": False,
        "not_comparable_reason": "measured under the parallel launcher",
        "reducer": {"images_per_s": 1.0, "device": "cpu"},
        "train_step": {"images_per_s": 1.0},
    }
    return record


def test_the_pass_times_each_configuration_alone_and_the_report_uses_it(tmp_path):
    for seed in (0, 1):
        write_record(_trained_beside_others("resize_bilinear", seed, 0.8 + seed / 100), tmp_path)
        write_record(_trained_beside_others("pool_avg", seed, 0.85 + seed / 100), tmp_path)
    outcome = run_quiet_pass(tmp_path, QUICK, sweep="test")
    assert len(outcome.timed) == 2 and outcome.already == 0
    assert all(r.status == "ok" for r in outcome.timed), [r.error for r in outcome.timed]
    for record in outcome.timed:
        assert record.mode == "throughput" and record.config["seed"] == 0
        assert record.throughput["comparable"] is True
        assert record.throughput["interpolate_aa"]["images_per_s"] > 0
        assert record.throughput["train_step"]["paired"]["interpolate_aa"] > 0
    # A relaunch finds them done.
    again = run_quiet_pass(tmp_path, QUICK, sweep="test")
    assert again.timed == [] and again.already == 2
    records, _ = load_records(tmp_path)
    assert len(records) == 6
    report = write_report(tmp_path, with_figures=False)
    table = report.table.set_index("reducer")
    assert table["tp_comparable"].all() and table.loc["pool_avg", "tp_reducer_images_per_s"] > 1
    text = report.path.read_text()
    assert "4 ok, 0 failed of 4 expected runs, 2 configuration(s) timed alone" in text
    assert "not comparable" not in text.split("## What was run")[0]  # the verdict's costs


def test_only_a_parallel_sweep_gets_a_quiet_pass(tmp_path):
    from dataclasses import asdict

    from omegaconf import OmegaConf

    from experiments.callbacks import _quiet_pass
    from experiments.launcher import SEQUENTIAL_LAUNCHERS

    write_record(_trained_beside_others("resize_bilinear", 0, 0.8), tmp_path)
    config = OmegaConf.create(
        {
            "results_dir": str(tmp_path),
            "sweep": "test",
            "quiet_pass": asdict(QUICK),
            "hydra": {"launcher": {"_target_": next(iter(SEQUENTIAL_LAUNCHERS))}},
        }
    )
    _quiet_pass(config)  # the basic launcher timed its runs one at a time already
    assert len(load_records(tmp_path)[0]) == 1
    config.hydra.launcher._target_ = "hydra_plugins.hydra_joblib_launcher.JoblibLauncher"
    _quiet_pass(config)
    modes = sorted(r.mode for r in load_records(tmp_path)[0])
    assert modes == ["throughput", "train"]


def test_a_quiet_pass_that_found_the_machine_busy_is_not_called_alone(tmp_path):
    """A timing-only record whose timing saw other work (``comparable`` false: a pass run
    while another sweep held the cores) is counted apart from the configurations timed
    alone, and the row's figures stay flagged."""
    trained = _beside(make_record("pool_avg", 0, 0.8))
    timed = _beside(make_record("pool_avg", 0, 0.8), comparable=False)
    timed.config["mode"] = "throughput"
    timed.metrics = Metrics()
    timed.run_id = "timed-busy"
    for record in (trained, timed):
        write_record(record, tmp_path)
    report = write_report(tmp_path, with_figures=False)
    text = report.path.read_text()
    assert "1 configuration(s) timed for throughput on a busy machine (not comparable)" in text
    assert "timed alone" not in text.split("\n")[2]
    assert not report.table.set_index("reducer").loc["pool_avg", "tp_comparable"]
