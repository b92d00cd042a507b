"""The one wandb adapter (experiments/tracking.py): the jobs' and the report's runs,
disabled in tests, never waiting for a login."""

import logging

import pandas as pd
import pytest
import wandb

from experiments import tracking
from experiments.tracking import LoggerSettings


@pytest.fixture
def no_init(monkeypatch):
    """wandb.init that fails the test if anything starts a run."""

    def refuse(**kwargs):
        raise AssertionError(f"wandb.init called with {kwargs}")

    monkeypatch.setattr(wandb, "init", refuse)


def test_the_mode_is_the_configured_one_else_wandb_mode_else_offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.wandb_mode("online") == "online"
    assert tracking.wandb_mode(None) == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    assert tracking.wandb_mode(None) == "offline"


def test_disabled_jobs_start_no_run_and_their_tracker_does_nothing(no_init, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    # The logger preset without a mode, and one whose mode resolved to disabled.
    for settings in (LoggerSettings(enabled=True), LoggerSettings(enabled=True, mode="disabled")):
        with tracking.open_tracker(settings, "run", {"seed": 0}, group="g") as tracker:
            assert tracker.run is None
            tracker.log({"loss": 1.0})
            tracker.summary({"status": "ok"})


def test_a_disabled_report_logs_nothing_and_says_so(no_init, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    table = pd.DataFrame({"reducer": ["a"], "accuracy_mean": [0.5]})
    logged = tracking.log_report("report-x", table, {}, summary={"ok": 1}, config={})
    assert logged is False


def test_online_mode_without_credentials_runs_offline_instead_of_prompting(monkeypatch, caplog):
    calls = {}

    def login(**kwargs):
        calls["login"] = kwargs
        return False  # no key saved, and no prompt allowed

    def init(**kwargs):
        calls["init"] = kwargs
        return "run"

    monkeypatch.setattr(wandb, "login", login)
    monkeypatch.setattr(wandb, "init", init)
    with caplog.at_level(logging.WARNING, logger="experiments.tracking"):
        assert tracking.start_run("online", project="p") == "run"
    assert calls["login"]["prompt"] is False
    assert calls["init"] == {"mode": "offline", "project": "p"}
    assert "no saved credentials" in caplog.text and "wandb login" in caplog.text


def test_a_tracker_whose_run_fails_warns_once_and_stops(caplog):
    class Broken:
        def log(self, metrics):
            raise RuntimeError("socket closed")

    tracker = tracking.Tracker(Broken())
    with caplog.at_level(logging.WARNING, logger="experiments.tracking"):
        tracker.log({"loss": 1.0})
        tracker.log({"loss": 0.5})
    assert tracker.run is None
    assert caplog.text.count("socket closed") == 1
