"""Task ``image``: train an image VQ tokenizer on a folder of images; compare with k-means on pixel patches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from models.vqae import VQAutoencoder

from ..data.datasets import ImageCrops, center_crop_multiple
from ..data.io import IMAGE_SUFFIXES, load_image
from ..eval.baselines import kmeans_patch_baseline
from ..image import ImageTokenizer
from .vq import check_crop, encode_throughput, finish, media_split, quantizer_config, train_vq

log = logging.getLogger("mmtok")


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains, validates and saves to ``out_dir/tokenizer/image``; returns the final metrics."""
    _, train_files, val_files = media_split(cfg, "images", "images", IMAGE_SUFFIXES)
    model = VQAutoencoder(OmegaConf.to_object(cfg.tokenizer.image), quantizer_config(cfg))
    f = model.downsample
    check_crop(cfg, f)
    val_items = [center_crop_multiple(load_image(p), f, cfg.task.val_size)[None] for p in val_files]
    log.info("image task: %d training files, %d held out (%s)", len(train_files), len(val_files),
             ", ".join(p.name for p in val_files))
    data = ImageCrops(train_files, cfg.task.crop_size, cfg.task.flip, cache=cfg.task.cache)
    trainer, result = train_vq(cfg, out_dir, model, data, val_items)
    tok = ImageTokenizer(trainer.export_model)
    q = tok.model.quantizer
    metrics = {"task": "image", "quantizer": q.cfg.kind, "codebook_size": q.codebook_size, "downsample": f,
               "bits_per_pixel": q.bits_per_code / f**2, "train_files": len(train_files),
               "val_files": len(val_files), **result}
    if cfg.task.baseline:
        metrics |= kmeans_patch_baseline([load_image(p) for p in train_files], val_items, f, q.codebook_size,
                                         seed=cfg.seed)
    size = min(256, cfg.task.val_size) // f * f
    batch = center_crop_multiple(load_image(val_files[0]), f, size)[None].expand(8, -1, -1, -1)
    metrics[f"encode_images_per_s_{batch.shape[-1]}px"] = round(encode_throughput(tok, batch), 2)
    return finish(out_dir, tok, metrics)
