"""Run one configured job, or a sweep with ``-m``.

    python -m experiments.run                                # one run, the defaults
    python -m experiments.run reducer=resize_area seed=3     # one run, overridden
    python -m experiments.run -m reducer=resize_bilinear,pool_avg seed=0,1
    python -m experiments.run experiment=compare             # the default comparison sweep

Records land in ``results/<sweep>/records/<run id>.json``; ``--help`` lists every group.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from experiments.job import run_job


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> str:
    return run_job(cfg)


if __name__ == "__main__":
    main()
