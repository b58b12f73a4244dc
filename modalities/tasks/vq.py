"""What the VQ tasks (image, video, audio spectrogram) share: building the model from the config, training, saving, reporting."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from models.quantizer import QuantizerConfig
from models.vqae import VQModel

from ..base import Tokenizer
from ..data.datasets import infinite_batches
from ..data.io import list_media
from ..data.runlog import MetricsLog
from ..data.samples import data_root, media_folder
from ..data.sources import read_sources, source_of, split_folder
from ..data.tars import (
    SkipCounter,
    TarMedia,
    decode_member,
    expand_shards,
    hold_out_last,
    is_tar_spec,
    read_members,
    tar_batches,
)
from ..eval.perceptual import LPIPSMetric
from ..training import distributed
from ..training.trainer import VQTrainer, resolve_device

log = logging.getLogger("mmtok")


def quantizer_config(cfg: DictConfig) -> QuantizerConfig:
    return OmegaConf.to_object(cfg.quantizer)


def media_split(cfg: DictConfig, key: str, default: str, suffixes: tuple[str, ...]) -> tuple[Path, list[Path], list[Path]]:
    """The media folder ``data.<key>`` (``default`` under the data root when unset) and its training and
    held-out files: ``task.val_fraction`` of the *sources* named by the folder's ``*.jsonl`` metadata are held
    out with all their files, and the sources the metadata pins held out (see :mod:`modalities.data.sources`),
    so no crop, clip or voice of a held-out source is trained on.

    ``task.split=validation`` (where the task has it) splits the *training* side again, the same way: training
    on part of the training sources and validating on the rest, to choose a recipe without looking at the
    held-out sources that report it."""
    folder = media_folder(data_root(cfg.data.root), cfg.data[key], default)
    files = list_media(folder, suffixes, f"data.{key}")
    train, val = split_folder(files, cfg.task.val_fraction, folder)
    split = cfg.task.get("split", "heldout")
    if split == "validation":
        train, val = split_folder(train, cfg.task.val_fraction, folder)
    elif split != "heldout":
        raise ValueError(f"task.split must be 'heldout' or 'validation', got {split!r}")
    sources = read_sources(folder)
    held = sorted({source_of(f, folder, sources) for f in val})
    log.info("data.%s: %d files from %d sources %s (%s); %d files for training", key, len(val), len(held),
             "held out" if split == "heldout" else "for validation (a split of the training sources)",
             ", ".join(held), len(train))
    return folder, train, val


def ddp_task(run: Callable[[DictConfig, Path], dict[str, Any]]) -> Callable[[DictConfig, Path], dict[str, Any]]:
    """A VQ task's ``run(cfg, out_dir)`` inside the ``torchrun`` process group (a no-op in a single process):
    every rank trains on its slice of the data and rank 0 alone validates, evaluates and saves. The group exists
    before ``run`` builds the model: the quantiser library synchronises its codebooks across ranks only then."""

    @functools.wraps(run)
    def in_session(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
        device = distributed.local_device(resolve_device(cfg.trainer.device))
        with distributed.process_group(device, cfg.trainer.dist_timeout_minutes):
            return run(cfg, out_dir)

    return in_session


@dataclass
class TarInput:
    """Tar-shard input of a VQ task (``data.<key>`` names shards; see :mod:`modalities.data.tars`).

    Attributes:
        what: the config key, for messages (``data.images``).
        kind: ``image``, ``audio`` or ``video``.
        train: training shard URLs.
        val_urls: held-out shard URLs (``data.val_<key>`` as tars, or the last shard of ``data.<key>``).
        val_files: held-out files when ``data.val_<key>`` is a folder.
        shuffle_buffer: ``data.shuffle_buffer``.
        seed: the run's seed.
    """

    what: str
    kind: str
    train: list[str]
    val_urls: list[str]
    val_files: list[Path]
    shuffle_buffer: int
    seed: int
    counter: SkipCounter = field(default_factory=SkipCounter)

    def stream(self, transform: Callable[[Any], torch.Tensor]) -> TarMedia:
        """The endless training stream of ``transform`` of each training member (this rank's shards)."""
        return TarMedia(self.train, self.kind, transform, self.what, self.shuffle_buffer, self.seed,
                        counter=self.counter)

    def held_out(self, transform: Callable[[Any], torch.Tensor]) -> list[torch.Tensor]:
        """``transform`` of every held-out member or file (read by rank 0 only, which validates; ``[]`` elsewhere).
        Unreadable members are skipped with a warning; no readable one at all is an error."""
        if not distributed.is_main():
            return []
        if self.val_files:
            items = [transform(decode_member(self.kind, p.read_bytes(), str(p))) for p in self.val_files]
        else:
            items = [x for _, _, x in read_members(self.val_urls, self.kind, f"{self.what} (held out)", self.counter,
                                                    transform)]
        if not items:
            raise ValueError(f"{self.what}: no readable held-out item in {self.val_urls or self.val_files}")
        return items

    def training_sample(self, transform: Callable[[Any], torch.Tensor], limit: int) -> list[torch.Tensor]:
        """``transform`` of the first ``limit`` training members (for the classical baselines, on rank 0)."""
        return [x for _, _, x in read_members(self.train, self.kind, self.what, None, transform, limit)]

    def counts(self) -> dict[str, int]:
        """What the metrics report instead of file counts."""
        return {"train_shards": len(self.train),
                **({"val_files": len(self.val_files)} if self.val_files else {"val_shards": len(self.val_urls)})}


def tar_input(cfg: DictConfig, key: str, kind: str, suffixes: tuple[str, ...]) -> TarInput | None:
    """``data.<key>`` as tar shards (None when it is a folder, which :func:`media_split` reads). Held out:
    ``data.val_<key>`` (a folder of files with ``suffixes``, or tar shards) when set, else the last shard."""
    value = cfg.data[key]
    if value is not None and not isinstance(value, str) and not OmegaConf.is_list(value):
        raise ValueError(f"data.{key} must be a folder or tar shards (a pattern or a list of them), got {value!r}")
    if not is_tar_spec(value):
        if OmegaConf.is_list(value):
            raise ValueError(f"data.{key}: a list must name tar shards (.tar, .tar.gz, .tgz or pipe:), got {list(value)}")
        if cfg.data.get(f"val_{key}") is not None:
            raise ValueError(f"data.val_{key} names held-out data for tar input, but data.{key}={cfg.data[key]!r} "
                             f"is a folder, which is split by task.val_fraction; unset data.val_{key}")
        return None
    root = data_root(cfg.data.root)
    what = f"data.{key}"
    urls = expand_shards(cfg.data[key], root, what)
    val_spec = cfg.data.get(f"val_{key}")
    val_urls: list[str] = []
    val_files: list[Path] = []
    if val_spec is None:
        urls, val_urls = hold_out_last(urls, what)
        log.info("%s: %d tar shards for training; the last one, %s, held out for validation (set data.val_%s to "
                 "hold out other data)", what, len(urls), val_urls[0], key)
    elif is_tar_spec(val_spec):
        val_urls = expand_shards(val_spec, root, f"data.val_{key}")
        log.info("%s: %d tar shards for training, %d held out from data.val_%s", what, len(urls), len(val_urls), key)
    else:
        val_files = list_media(media_folder(root, val_spec, val_spec), suffixes, f"data.val_{key}")
        log.info("%s: %d tar shards for training, %d held-out files from data.val_%s", what, len(urls),
                 len(val_files), key)
    overlap = sorted(set(urls) & set(val_urls))
    if overlap:
        raise ValueError(f"{what} and data.val_{key} share the shards {overlap}: held-out data must not be trained on")
    return TarInput(what, kind, urls, val_urls, val_files, cfg.data.shuffle_buffer, cfg.seed)


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer of ``model`` (bytes, in state-dict order): equal on every rank when
    the ranks hold the same model, bit for bit."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def rank_summary(task: str, trainer: VQTrainer, result: dict[str, Any]) -> dict[str, Any]:
    """What a rank other than 0 returns (rank 0 validates, evaluates and saves)."""
    return {"task": task, "rank": trainer.rank, "world_size": trainer.world, "steps": result["steps"],
            "state_sha256": result["state_sha256"]}


def check_crop(cfg: DictConfig, downsample: int) -> None:
    """Refuses a ``task.crop_size`` that is not a multiple of the model's downsample factor."""
    if cfg.task.crop_size % downsample:
        raise ValueError(f"task.crop_size={cfg.task.crop_size} must be a multiple of the downsample factor "
                         f"{downsample}")


def train_vq(cfg: DictConfig, out_dir: Path, model: VQModel, dataset: torch.utils.data.Dataset,
             val_items: list[torch.Tensor], video: bool = False,
             trainer: VQTrainer | None = None) -> tuple[VQTrainer, dict[str, Any]]:
    """Runs ``trainer`` (by default a :class:`VQTrainer` for ``model``) on ``dataset`` (a map-style dataset read
    through :func:`infinite_batches`, or a :class:`TarMedia` stream); returns the trainer and its final metrics
    (validation ones on rank 0 only). Under ``torchrun`` ``task.batch_size`` is per rank: rank ``r`` takes its
    slice of each global batch of ``W * batch_size`` samples."""
    if trainer is None:
        to_model = (lambda x: x.transpose(1, 2)) if video else (lambda x: x)
        lpips = LPIPSMetric(cfg.eval.lpips_weights, cfg.eval.lpips_net, resolve_device(cfg.trainer.device)) \
            if cfg.eval.lpips_weights else None
        trainer = VQTrainer(model, OmegaConf.to_object(cfg.trainer), out_dir, layout=to_model, unlayout=to_model,
                            lpips=lpips)

    def batches(start: int):  # from the step the trainer resumes at: batch k is the same in a resumed run
        if isinstance(dataset, TarMedia):  # a fresh shard order and crops seeded by the step (not bit-identical)
            return tar_batches(dataset.starting_at(start), cfg.task.batch_size, trainer.cfg.num_workers)
        return infinite_batches(dataset, cfg.task.batch_size, trainer.cfg.num_workers, cfg.seed, start=start,
                                rank=trainer.rank, world_size=trainer.world)

    t0 = time.perf_counter()
    result = trainer.fit(batches, val_items, show_progress=cfg.show_progress)
    result = result | {"train_seconds": round(time.perf_counter() - t0, 2), "steps": trainer.step}
    if isinstance(dataset, TarMedia):  # summed over the ranks (a collective)
        result["skipped_members"] = int(distributed.all_reduce_sum(dataset.counter.value))
    if trainer.world > 1:
        result |= {"world_size": trainer.world, "global_batch_size": trainer.world * cfg.task.batch_size,
                   "state_sha256": state_digest(trainer.model)}
    return trainer, result


def refit_codebook(trainer: VQTrainer, dataset: torch.utils.data.Dataset, crops: int, val_items: list[torch.Tensor],
                   seed: int, batch_size: int = 64) -> dict[str, Any]:
    """Refits the trained (exported) model's codebook on its encoder outputs for ``crops`` training samples
    (drawn with ``seed``; :meth:`models.quantizer.Quantizer.refit`), then validates again; returns the refit's
    numbers and the new validation metrics."""
    model = trainer.export_model
    batches = infinite_batches(dataset, batch_size, 0, seed)
    zs = []
    with torch.inference_mode():
        for _ in range(math.ceil(crops / batch_size)):
            x = trainer.layout(next(batches).to(trainer.device)) * 2 - 1
            z = model.encoder(x)
            zs.append(z.flatten(2).transpose(1, 2).reshape(-1, z.shape[1]))
    stats = model.quantizer.refit(torch.cat(zs)[: crops * zs[0].shape[0] // batch_size])
    log.info("codebook refit on %d crops: quantisation MSE %.4g -> %.4g", crops, stats["refit_mse_before"],
             stats["refit_mse_after"])
    return stats | trainer.validate(val_items)


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
    """Saves the tokenizer to ``out_dir/tokenizer/<kind>`` and logs the summary row (rank 0 only: the other ranks
    of a ``torchrun`` job save nothing and get ``metrics`` back)."""
    if not distributed.is_main():
        return metrics
    path = tok.save_pretrained(out_dir / "tokenizer" / tok.kind)
    metrics = metrics | {"saved_to": str(path)}
    MetricsLog(out_dir).write(summary=True, **metrics)
    return metrics
