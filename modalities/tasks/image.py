"""Task ``image``: train an image VQ tokenizer on a folder of images; compare with k-means on pixel patches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from models.vqae import VQAutoencoder

from ..data.datasets import ImageCrops, center_crop_multiple
from ..data.io import IMAGE_SUFFIXES, load_image
from ..data.sources import read_held_out, read_sources, source_of
from ..data.tars import ImageCrop
from ..eval.baselines import kmeans_patch_baseline
from ..eval.metrics import image_scores
from ..image import ImageTokenizer
from ..training import distributed
from .vq import (
    check_crop,
    ddp_task,
    encode_throughput,
    finish,
    media_split,
    quantizer_config,
    rank_summary,
    refit_codebook,
    tar_input,
    train_vq,
)

log = logging.getLogger("mmtok")

BASELINE_TAR_IMAGES = 256  # training images the k-means baseline is fitted on with tar input


@ddp_task
def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains, validates and saves to ``out_dir/tokenizer/image``; returns the final metrics
    (under ``torchrun``: see :func:`.vq.ddp_task`)."""
    tars = tar_input(cfg, "images", "image", IMAGE_SUFFIXES)
    for key, off in (("colour", None), ("split", "heldout"), ("zoom", None)):
        if tars is not None and cfg.task.get(key, off) != off:
            raise ValueError(f"task.{key}={cfg.task[key]} works with folder input only (data.images is a tar spec)")
    if tars is None:
        folder, train_files, val_files = media_split(cfg, "images", "images", IMAGE_SUFFIXES)
    model = VQAutoencoder(OmegaConf.to_object(cfg.tokenizer.image), quantizer_config(cfg))
    f = model.downsample
    check_crop(cfg, f)
    qc = model.quantizer.cfg
    if cfg.task.refit_crops and (qc.kind != "vq" or qc.use_cosine_sim):  # said before training, not after it
        raise ValueError(f"task.refit_crops={cfg.task.refit_crops} needs a Euclidean vq quantiser (quantizer=vq, "
                         f"use_cosine_sim=false), got kind={qc.kind!r}, use_cosine_sim={qc.use_cosine_sim}; "
                         "set task.refit_crops=0")
    if tars is None:
        val_items = [center_crop_multiple(load_image(p), f, cfg.task.val_size)[None] for p in val_files]
        log.info("image task: %d training files, %d to validate on (%s)", len(train_files), len(val_files),
                 ", ".join(p.name for p in val_files))
        zoom, colour = cfg.task.get("zoom"), cfg.task.get("colour")
        data = ImageCrops(train_files, cfg.task.crop_size, cfg.task.flip, cache=cfg.task.cache,
                          zoom=None if zoom is None else tuple(zoom), colour=None if colour is None else tuple(colour))
        counts = {"train_files": len(train_files), "val_files": len(val_files)}
    else:
        val_items = tars.held_out(lambda x: center_crop_multiple(x, f, cfg.task.val_size)[None])
        data = tars.stream(ImageCrop(cfg.task.crop_size, cfg.task.flip))
        counts = tars.counts() | {"val_items": len(val_items)}
    trainer, result = train_vq(cfg, out_dir, model, data, val_items)
    if not distributed.is_main():
        return rank_summary("image", trainer, result)
    if cfg.task.refit_crops:
        if tars is not None:
            raise ValueError("task.refit_crops works with folder input only (data.images is a tar spec)")
        before = {f"{k}_before_refit": v for k, v in result.items() if k.startswith("val_")}
        result |= before | refit_codebook(trainer, data, cfg.task.refit_crops, val_items, seed=cfg.seed + 1)
    tok = ImageTokenizer(trainer.export_model)
    q = tok.model.quantizer
    metrics = {"task": "image", "quantizer": q.cfg.kind, "codebook_size": q.codebook_size, "downsample": f,
               "bits_per_pixel": q.bits_per_code / f**2, **counts, **result}
    if cfg.task.baseline:
        train_images = ([load_image(p) for p in train_files] if tars is None
                        else tars.training_sample(lambda x: x, BASELINE_TAR_IMAGES))
        kmeans: list[dict[str, float]] = []
        metrics |= kmeans_patch_baseline(train_images, val_items, f, q.codebook_size, seed=cfg.seed, per_item=kmeans)
        if tars is None:
            with trainer._ctx():  # as validation scored them (bf16 autocast where the trainer uses it)
                metrics |= by_source(tok, val_files, val_items, kmeans, folder)
    size = min(256, cfg.task.val_size) // f * f
    first = load_image(val_files[0]) if tars is None else val_items[0][0]
    batch = center_crop_multiple(first, f, size)[None].expand(8, -1, -1, -1)
    metrics[f"encode_images_per_s_{batch.shape[-1]}px"] = round(encode_throughput(tok, batch), 2)
    return finish(out_dir, tok, metrics)


@torch.inference_mode()
def by_source(tok: ImageTokenizer, files: list[Path], items: list[torch.Tensor], kmeans: list[dict[str, float]],
              folder: Path) -> dict[str, Any]:
    """The held-out scores of the tokenizer and of the k-means baseline, per source and over the pinned sources.

    ``items[i]`` (``[1, 3, H, W]``) is the validation crop of ``files[i]`` and ``kmeans[i]`` its baseline scores
    (:func:`~modalities.eval.baselines.kmeans_patch_baseline` ``per_item``). Returns

    * ``heldout_sources``: ``{source: {"files", "psnr", "baseline_psnr", "margin_db", "ciede2000",
      "baseline_ciede2000", "colour_shift", "baseline_colour_shift"}}``, means over the source's files;
    * ``worst_source``, ``worst_source_margin_db``: the source where the tokenizer's PSNR margin over k-means is
      lowest (negative when k-means wins there);
    * ``palette_*``: the same means over the files of the sources the metadata pins held out
      (:func:`~modalities.data.sources.read_held_out`: palettes the training photographs lack), when any.
    """
    sources, pinned = read_sources(folder), read_held_out(folder)
    rows: dict[str, list[dict[str, float]]] = {}
    for path, x, base in zip(files, items, kmeans, strict=True):
        x = x.to(tok.device)
        ours = {k: float(v[0]) for k, v in image_scores(tok.decode(tok.encode(x)).cpu(), x.cpu()).items()}
        rows.setdefault(source_of(path, folder, sources), []).append(
            {k: ours[k] for k in ("psnr", "ciede2000", "colour_shift")}
            | {f"baseline_{k}": base[k] for k in ("psnr", "ciede2000", "colour_shift")})

    def mean(group: list[dict[str, float]]) -> dict[str, float]:
        m = {k: sum(r[k] for r in group) / len(group) for k in group[0]}
        return {"files": len(group), **m, "margin_db": m["psnr"] - m["baseline_psnr"]}

    per = {s: mean(g) for s, g in sorted(rows.items())}
    worst = min(per, key=lambda s: per[s]["margin_db"])
    out: dict[str, Any] = {"heldout_sources": per, "worst_source": worst,
                           "worst_source_margin_db": per[worst]["margin_db"]}
    palette = [r for s, g in rows.items() if s in pinned for r in g]
    if palette:
        out |= {f"palette_{k}": v for k, v in mean(palette).items()}
    return out
