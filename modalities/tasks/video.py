"""Task ``video``: train the causal 3-D video VQ tokenizer on a folder of videos."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from models.vqae3d import CausalVQAutoencoder

from ..data.datasets import VideoClips, center_crop_multiple
from ..data.io import VIDEO_SUFFIXES, load_video
from ..data.tars import VideoClip
from ..training import distributed
from ..video import VideoTokenizer
from .vq import (
    check_crop,
    ddp_task,
    encode_throughput,
    finish,
    media_split,
    quantizer_config,
    rank_summary,
    tar_input,
    train_vq,
)

log = logging.getLogger("mmtok")


class _HeldOutClip:
    """The first ``frames`` frames, centre-cropped: float[T, 3, H, W] -> float[1, frames, 3, h, w]."""

    def __init__(self, frames: int, multiple: int, size: int) -> None:
        self.frames, self.multiple, self.size = frames, multiple, size

    def __call__(self, v):
        if len(v) < self.frames:
            raise ValueError(f"{len(v)} frames, fewer than task.val_frames={self.frames}")
        return center_crop_multiple(v[:self.frames], self.multiple, self.size)[None]


@ddp_task
def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains, validates and saves to ``out_dir/tokenizer/video``; returns the final metrics
    (under ``torchrun``: see :func:`.vq.ddp_task`)."""
    tars = tar_input(cfg, "videos", "video", VIDEO_SUFFIXES)
    if tars is None:
        _, train_files, val_files = media_split(cfg, "videos", "video", VIDEO_SUFFIXES)
    model = CausalVQAutoencoder(OmegaConf.to_object(cfg.tokenizer.video), quantizer_config(cfg))
    f, ft = model.downsample, model.temporal_downsample
    for key in ("clip_frames", "val_frames"):
        if not model.valid_frames(cfg.task[key]):
            raise ValueError(f"task.{key}={cfg.task[key]} must be 1 + k * temporal_downsample ({ft})")
    check_crop(cfg, f)
    if tars is None:
        val_items = []
        for p in val_files:
            v = load_video(p, cfg.task.val_frames)
            if len(v) < cfg.task.val_frames:
                raise ValueError(f"validation video {p} has {len(v)} frames, fewer than task.val_frames")
            val_items.append(center_crop_multiple(v, f, cfg.task.val_size)[None])
        log.info("video task: %d training files, %d held out (%s)", len(train_files), len(val_files),
                 ", ".join(p.name for p in val_files))
        data = VideoClips(train_files, cfg.task.clip_frames, cfg.task.crop_size, cfg.task.flip)
        counts = {"train_files": len(train_files), "val_files": len(val_files)}
    else:  # held-out videos too short for task.val_frames are skipped with a warning
        val_items = tars.held_out(_HeldOutClip(cfg.task.val_frames, f, cfg.task.val_size))
        data = tars.stream(VideoClip(cfg.task.clip_frames, cfg.task.crop_size, cfg.task.flip))
        counts = tars.counts() | {"val_items": len(val_items)}
    trainer, result = train_vq(cfg, out_dir, model, data, val_items, video=True)
    if not distributed.is_main():
        return rank_summary("video", trainer, result)
    tok = VideoTokenizer(trainer.export_model)
    q = tok.model.quantizer
    metrics = {"task": "video", "quantizer": q.cfg.kind, "codebook_size": q.codebook_size, "downsample": f,
               "temporal_downsample": ft, "bits_per_pixel": q.bits_per_code / (f * f * ft), **counts, **result}
    metrics["encode_clips_per_s"] = round(encode_throughput(tok, val_items[0].expand(2, -1, -1, -1, -1)), 3)
    return finish(out_dir, tok, metrics)
