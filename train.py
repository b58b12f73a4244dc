"""Hydra entry point: ``python train.py task=<name> key=value ...``.

Composes ``conf/config.yaml``, runs the task in the Hydra run directory and
prints its metrics. All logic lives in ``modalities.tasks``.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from modalities.config import register_configs
from modalities.tasks import run_task

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_task(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
