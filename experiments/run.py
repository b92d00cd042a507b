"""Run one configured job, or a sweep with ``-m``.

    python -m experiments.run                                # one run, the defaults
    python -m experiments.run reducer=resize_area seed=3     # one run, overridden
    python -m experiments.run -m reducer=resize_bilinear,pool_avg seed=0,1
    python -m experiments.run experiment=compare             # the default comparison sweep

Records land in ``results/<sweep>/records/<run id>.json``; ``--help`` lists every group.
A sweep re-launched over the same ``results_dir`` skips runs whose record is ``ok``
(``resume=false`` reruns them), ends with an ``ok / failed / skipped`` line and exits
non-zero when any run failed. Launchers: ``hydra/launcher=joblib`` (local processes, one
thread each when n_jobs = cores), ``hydra/launcher=slurm`` (cluster preset),
``hydra/launcher=submitit_local`` (the cluster path without SLURM).
"""

from __future__ import annotations

import dataclasses
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from experiments.outcomes import write_outcome


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> str:
    # Imported here: torch takes seconds to load, and config errors should not wait for it.
    from experiments.job import run_job

    outcome = run_job(cfg)
    hydra_cfg = HydraConfig.get()
    # The sweep's end-of-run callback reads these files, whatever process ran the job.
    overrides = " ".join(hydra_cfg.overrides.task)
    write_outcome(hydra_cfg.runtime.output_dir, dataclasses.replace(outcome, overrides=overrides))
    if hydra_cfg.mode == RunMode.RUN and outcome.status == "failed":
        sys.exit(1)  # a single run; in a sweep the callback exits after the report
    return outcome.status


if __name__ == "__main__":
    main()
