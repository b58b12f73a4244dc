"""What the VQ tasks (image, video, audio spectrogram) share: building the model from the config, training, saving, reporting."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from models.quantizer import QuantizerConfig
from models.vqae import VQModel

from ..base import Tokenizer
from ..data.datasets import infinite_batches, split_by_file
from ..data.io import list_media
from ..data.runlog import MetricsLog
from ..data.samples import data_root, media_folder
from ..training.trainer import VQTrainer

log = logging.getLogger("mmtok")


def quantizer_config(cfg: DictConfig) -> QuantizerConfig:
    return OmegaConf.to_object(cfg.quantizer)


def media_split(cfg: DictConfig, key: str, default: str, suffixes: tuple[str, ...]) -> tuple[Path, list[Path], list[Path]]:
    """The media folder ``data.<key>`` (``default`` under the data root when unset) and its training and
    held-out files, split by file name hash with ``task.val_fraction``."""
    folder = media_folder(data_root(cfg.data.root), cfg.data[key], default)
    files = list_media(folder, suffixes, f"data.{key}")
    return folder, *split_by_file(files, cfg.task.val_fraction, folder)


def check_crop(cfg: DictConfig, downsample: int) -> None:
    """Refuses a ``task.crop_size`` that is not a multiple of the model's downsample factor."""
    if cfg.task.crop_size % downsample:
        raise ValueError(f"task.crop_size={cfg.task.crop_size} must be a multiple of the downsample factor "
                         f"{downsample}")


def train_vq(cfg: DictConfig, out_dir: Path, model: VQModel, dataset: torch.utils.data.Dataset,
             val_items: list[torch.Tensor], video: bool = False,
             trainer: VQTrainer | None = None) -> tuple[VQTrainer, dict[str, Any]]:
    """Runs ``trainer`` (by default a :class:`VQTrainer` for ``model``) on ``dataset``; returns the trainer and
    its final validation metrics."""
    if trainer is None:
        to_model = (lambda x: x.transpose(1, 2)) if video else (lambda x: x)
        trainer = VQTrainer(model, OmegaConf.to_object(cfg.trainer), out_dir, layout=to_model, unlayout=to_model)

    def batches(start: int):  # from the step the trainer resumes at: batch k is the same in a resumed run
        return infinite_batches(dataset, cfg.task.batch_size, trainer.cfg.num_workers, cfg.seed, start=start)

    t0 = time.perf_counter()
    result = trainer.fit(batches, val_items, show_progress=cfg.show_progress)
    return trainer, result | {"train_seconds": round(time.perf_counter() - t0, 2), "steps": trainer.step}


@torch.inference_mode()
def encode_throughput(tok: Tokenizer, batch: torch.Tensor, repeat: int = 3, **kwargs: Any) -> float:
    """Items per second of ``tok.encode(batch, **kwargs)`` (best of ``repeat`` after a warm-up)."""
    tok.encode(batch, **kwargs)
    best = float("inf")
    for _ in range(repeat):
        if tok.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        tok.encode(batch, **kwargs)
        if tok.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return len(batch) / best


def finish(out_dir: Path, tok: Tokenizer, metrics: dict[str, Any]) -> dict[str, Any]:
    """Saves the tokenizer to ``out_dir/tokenizer/<kind>`` and logs the summary row."""
    path = tok.save_pretrained(out_dir / "tokenizer" / tok.kind)
    metrics = metrics | {"saved_to": str(path)}
    MetricsLog(out_dir).write(summary=True, **metrics)
    return metrics
