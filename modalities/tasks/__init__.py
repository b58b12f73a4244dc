"""Tasks run by ``python train.py task=<name>``.

A task is one YAML file in ``conf/task/`` naming a function ``run(cfg, out_dir)
-> dict`` (its ``run:`` key) plus that function, usually in this package.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_method
from omegaconf import DictConfig

log = logging.getLogger("mmtok")


def run_task(cfg: DictConfig, out_dir: str | Path) -> dict[str, Any]:
    """Seeds everything, runs ``cfg.task.run`` and prints its metrics as a table."""
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fn = get_method(cfg.task.run)
    metrics = fn(cfg, out_dir)
    width = max((len(k) for k in metrics), default=0)
    lines = [f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}" for k, v in metrics.items()]
    log.info("task %s finished; outputs in %s\n%s", cfg.task.name, out_dir, "\n".join(lines))
    return metrics
