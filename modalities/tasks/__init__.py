"""Tasks run by ``python train.py task=<name>``.

A task is one YAML file in ``conf/task/`` naming a function ``run(cfg, out_dir)
-> dict`` (its ``run:`` key) plus that function, usually in this package.
:func:`run_task` holds the run directory's lock (:mod:`modalities.data.lock`) while the task runs, so a second
run started in the same directory stops with an error naming the first; ranks of one ``torchrun`` job each
hold their own (``$RANK``), and a task that runs sub-tasks in subfolders (``demo``) locks each of them too.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_method
from omegaconf import DictConfig

from ..data.lock import DirLock

log = logging.getLogger("mmtok")


def run_task(cfg: DictConfig, out_dir: str | Path) -> dict[str, Any]:
    """Seeds everything, runs ``cfg.task.run`` holding the lock of ``out_dir`` (for rank ``$RANK``) and prints its
    metrics as a table. Another live process writing ``out_dir`` as the same rank is a
    :class:`~modalities.data.lock.LockedError`."""
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out_dir = Path(out_dir)
    fn = get_method(cfg.task.run)
    with DirLock(out_dir, rank=int(os.environ.get("RANK", 0)), what="run directory"):
        metrics = fn(cfg, out_dir)
    width = max((len(k) for k in metrics), default=0)
    lines = [f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}" for k, v in metrics.items()]
    log.info("task %s finished; outputs in %s\n%s", cfg.task.name, out_dir, "\n".join(lines))
    return metrics
