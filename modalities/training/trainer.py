"""Training loop shared by the VQ tokenizers (image, video, spectrogram).

One :class:`VQTrainer` owns the model, optimiser, schedule, optional EMA and
PatchGAN discriminator, atomic resumable checkpoints, validation (PSNR/SSIM,
codebook usage and perplexity, a PNG grid) and logging to ``metrics.jsonl``
and TensorBoard. The task modules only supply data and the model.

A checkpoint holds everything the next step depends on: weights, optimiser,
schedule, EMA, discriminator, the step (which is also the position in the
data stream, see :func:`modalities.data.datasets.infinite_batches`) and the
global random states (:func:`rng_state`), so on CPU a run killed and resumed
ends with the same parameters, bit for bit, as one that was never stopped.

Under ``torchrun`` (see :mod:`modalities.training.distributed`) the model is wrapped in DDP (its buffers, the
EMA codebooks, broadcast from rank 0 before each forward pass as a safety net: the quantiser library already
all-reduces its codebook statistics), the discriminator's gradients are averaged across ranks, and rank 0 alone
validates, logs and writes checkpoints (with every rank's random state); the others wait for it.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from hydra.utils import instantiate
from tqdm.auto import tqdm

from models.discriminator import DiscriminatorConfig, PatchDiscriminator, hinge_d_loss, hinge_g_loss
from models.vqae import VQAutoencoder, VQModel, patch_mean_loss

from ..data.fileio import atomic_open
from ..data.runlog import MetricsLog
from ..eval.metrics import CodeStats, image_scores
from . import distributed

__all__ = ["TrainerConfig", "VQTrainer"]

log = logging.getLogger("mmtok")


@dataclass
class TrainerConfig:
    """Optimisation, validation and checkpointing (the Hydra group ``trainer=``).

    Attributes:
        max_steps: optimiser steps in total (a resumed run continues up to it).
        optimizer: a ``_partial_`` optimiser target, called with the parameters.
        warmup_steps: linear warm-up of the learning rate.
        schedule: ``cosine`` (down to ``min_lr_ratio``) or ``constant`` after warm-up.
        min_lr_ratio: final learning rate as a fraction of the peak (cosine).
        grad_clip: max gradient norm (0 = off).
        ema_decay: decay of an exponential moving average of the weights used for
            validation and export (0 = off).
        recon_loss: ``l1`` or ``l2``.
        colour_weight: weight of :func:`models.vqae.patch_mean_loss` at the model's downsample (each token's mean
            colour against the original's; images only; 0 = off).
        disc_start: step at which the PatchGAN hinge loss starts (negative = never).
        disc_weight: weight of the generator's adversarial loss.
        discriminator: PatchGAN shape.
        perceptual_weights: local path to VGG16 weights (safetensors or state dict); none = off.
        perceptual_weight: weight of the perceptual loss.
        val_every: validate every this many steps (and at the end).
        log_every: log training losses every this many steps.
        ckpt_every: write ``checkpoints/last.pt`` every this many steps (and at the end).
        resume: continue from ``checkpoints/last.pt`` in the run directory (or ``resume_from``).
        resume_from: explicit checkpoint path to resume from.
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:1``...
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``bf16`` or ``fp32``.
        compile: ``torch.compile`` the model for training.
        num_workers: data loader workers.
        tensorboard: also write TensorBoard event files to ``tb/``.
        grid_items: originals shown beside reconstructions in the PNG grid.
        dist_timeout_minutes: under ``torchrun``, how long a collective may wait, e.g. the other ranks at a
            barrier while rank 0 validates or evaluates the final model.
    """

    max_steps: int = 5000
    optimizer: Any = field(default_factory=lambda: {"_target_": "torch.optim.AdamW", "_partial_": True,
                                                    "lr": 2e-4, "betas": [0.5, 0.9], "weight_decay": 0.0})
    warmup_steps: int = 100
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    recon_loss: str = "l1"
    colour_weight: float = 0.0
    disc_start: int = -1
    disc_weight: float = 0.1
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    perceptual_weights: Optional[str] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    perceptual_weight: float = 1.0
    val_every: int = 500
    log_every: int = 50
    ckpt_every: int = 500
    resume: bool = False
    resume_from: Optional[str] = None  # noqa: UP045
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    num_workers: int = 0
    tensorboard: bool = True
    grid_items: int = 4
    dist_timeout_minutes: float = 60.0


def lr_factor(step: int, cfg: TrainerConfig) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine or constant."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule != "cosine":
        raise ValueError(f"unknown trainer.schedule {cfg.schedule!r}; expected 'cosine' or 'constant'")
    t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


class ModelEMA:
    """Exponential moving average of parameters; buffers (e.g. EMA codebooks) are copied as they are."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model, self.decay = copy.deepcopy(model).eval().requires_grad_(False), decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for e, p in zip(self.model.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1 - self.decay)
        for e, b in zip(self.model.buffers(), model.buffers(), strict=True):
            e.copy_(b)


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """The global random states (torch CPU, CUDA of ``device``, Python) as tensors and plain Python values, which
    ``torch.load(weights_only=True)`` reads back. Checkpoints store them so that a resumed run draws the numbers
    an uninterrupted one would (k-means init, dead-code restarts, dropout). NumPy's global generator is left
    out: nothing in training draws from it and no run seeds it, so an uninterrupted run has no state to match."""
    version, mt, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "python": [version, torch.tensor(mt, dtype=torch.int64), gauss]}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restores what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt.tolist()), gauss))
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _cpu(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (from :func:`rng_state`) with its tensors on the CPU, to gather it across ranks."""
    return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"trainer.device={name} but no CUDA device is available; use trainer.device=cpu")
    return dev


class VQTrainer:
    """Trains a :class:`models.vqae.VQModel` on batches in [0, 1] (the model sees ``2x - 1``).

    Args:
        model: the autoencoder.
        cfg: trainer settings.
        out_dir: run directory (checkpoints, metrics, grids, TensorBoard).
        layout: moves the channel axis where the model wants it: ``[B, T, C, H, W] -> [B, C, T, H, W]``
            for video; identity for images.
        unlayout: the inverse of ``layout``, applied to reconstructions.
    """

    def __init__(self, model: VQModel, cfg: TrainerConfig, out_dir: str | Path,
                 layout: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
                 unlayout: Callable[[torch.Tensor], torch.Tensor] = lambda x: x, lpips: Any = None) -> None:
        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.lpips = lpips if lpips is not None and lpips.available else None  # an eval.perceptual.LPIPSMetric
        self.device = distributed.local_device(resolve_device(cfg.device))
        self.rank, self.world = distributed.rank(), distributed.world_size()
        precision = ("bf16" if self.device.type == "cuda" else "fp32") if cfg.precision == "auto" else cfg.precision
        if precision not in ("bf16", "fp32"):
            raise ValueError(f"trainer.precision must be auto, bf16 or fp32, got {cfg.precision!r}")
        self.autocast = precision == "bf16"
        self.model = model.to(self.device)
        self.layout, self.unlayout = layout, unlayout
        self.opt = instantiate(cfg.optimizer)(self.model.parameters())
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, cfg))
        self.ema = ModelEMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.disc = self.disc_opt = None
        if cfg.disc_start >= 0:
            self.disc = PatchDiscriminator(model.cfg.in_channels, cfg.discriminator).to(self.device)
            self.disc_opt = instantiate(cfg.optimizer)(self.disc.parameters())
        if cfg.colour_weight < 0 or (cfg.colour_weight and not (isinstance(model, VQAutoencoder)
                                                                 and model.cfg.in_channels == 3)):
            raise ValueError(f"trainer.colour_weight={cfg.colour_weight} must be >= 0, and > 0 only for an RGB "
                             f"image autoencoder; got a {type(model).__name__}")
        self.perceptual = None
        if cfg.perceptual_weights:
            from models.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss.from_file(cfg.perceptual_weights).to(self.device)
        self.forward = self.model
        if self.world > 1 and any(getattr(m, "use_ddp", None) is False for m in self.model.modules()):
            raise RuntimeError("the model's VQ codebook was built before the torchrun process group existed, so its "
                               "EMA statistics, k-means init and dead-code restarts would not be synchronised across "
                               "ranks: build the model inside modalities.training.distributed.process_group")
        if self.world > 1:  # buffers (EMA codebooks) broadcast from rank 0 before each forward: kept identical
            self.forward = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                forward_sync_buffers=True)
        if cfg.compile:
            self.forward = torch.compile(self.forward)
        self.step = 0
        self.metrics = MetricsLog(self.out_dir) if self.rank == 0 else None
        self.tb = None
        if cfg.tensorboard and self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out_dir / "tb"))

    # ------------------------------------------------------------ checkpoints
    @property
    def ckpt_path(self) -> Path:
        return self.out_dir / "checkpoints" / "last.pt"

    def state_dict(self) -> dict[str, Any]:
        """Everything the next step depends on; under ``torchrun`` a collective (every rank's random state is
        gathered into ``rng_ranks``), the weights being the same on every rank."""
        state = {"step": self.step, "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                 "sched": self.sched.state_dict(), "rng": rng_state(self.device)}
        if self.world > 1:  # the ranks draw different numbers (the quantiser's sampling): keep each one's state
            state["rng_ranks"] = distributed.gather_objects(_cpu(state["rng"]))
        if self.ema is not None:
            state["ema"] = self.ema.model.state_dict()
        if self.disc is not None:
            state["disc"], state["disc_opt"] = self.disc.state_dict(), self.disc_opt.state_dict()
        return state

    def save_checkpoint(self) -> Path:
        """Writes ``checkpoints/last.pt`` atomically (temp file, then rename): a failed write (``DiskWriteError`` when
        the disk is full or read-only) leaves the previous checkpoint as it was. Under ``torchrun`` every rank calls
        it (the random states are gathered), rank 0 writes, and the others wait until the file is complete."""
        state = self.state_dict()
        if self.rank == 0:
            self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(self.ckpt_path) as tmp:  # a file object: a full disk is a DiskWriteError
                torch.save(state, tmp)
        distributed.barrier()
        return self.ckpt_path

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.sched.load_state_dict(state["sched"])
            if self.ema is not None:
                self.ema.model.load_state_dict(state.get("ema", state["model"]))
            if self.disc is not None and "disc" in state:
                self.disc.load_state_dict(state["disc"])
                self.disc_opt.load_state_dict(state["disc_opt"])
            ranks = state.get("rng_ranks")
            if ranks is not None and len(ranks) == self.world:  # this rank's own state
                set_rng_state(ranks[self.rank], self.device)
            elif "rng" in state:  # from before it was saved: the current state; other world size: rank 0's
                set_rng_state(state["rng"], self.device)
        except (KeyError, RuntimeError, ValueError) as e:
            raise ValueError(f"checkpoint {path} does not match this model or trainer config: {e}") from None
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", path, self.step)

    # ---------------------------------------------------------------- steps
    def _ctx(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        """One optimiser step on ``batch`` (values in [0, 1]); returns the logged numbers."""
        self.model.train()
        x = self.layout(batch.to(self.device, non_blocking=True)) * 2 - 1
        use_disc = self.disc is not None and self.step >= self.cfg.disc_start
        with self._ctx():
            out = self.forward(x, recon_loss=self.cfg.recon_loss)
            losses = dict(out.losses)
            if self.cfg.colour_weight:
                losses["colour"] = self.cfg.colour_weight * patch_mean_loss(out.recon, x, self.model.downsample)
            if self.perceptual is not None:
                losses["perceptual"] = self.cfg.perceptual_weight * self.perceptual(out.recon, x)
            if use_disc:
                self.disc.requires_grad_(False)
                losses["gan"] = self.cfg.disc_weight * hinge_g_loss(self.disc(out.recon))
        row = self.optimizer_step(losses)
        if use_disc:
            self.disc.requires_grad_(True)
            with self._ctx():
                d_loss = hinge_d_loss(self.disc(x), self.disc(out.recon.detach()))
            row["loss_disc"] = self.discriminator_step(d_loss)
        self.step += 1
        return row | {f"batch_{k}": v for k, v in out.metrics.items()}

    def optimizer_step(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """Backward of the sum of ``losses``, clipped optimiser step, schedule and EMA; returns the logged losses
        and gradient norm. A non-finite loss raises, naming the step and each term."""
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {self.step}: {({k: float(v) for k, v in losses.items()})}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or float("inf"))
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return {f"loss_{k}": v.item() for k, v in losses.items()} | {"loss": loss.item(), "grad_norm": gnorm.item()}

    def discriminator_step(self, d_loss: torch.Tensor) -> float:
        """One discriminator step on ``d_loss`` (gradients averaged over ranks); returns the loss."""
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        distributed.average_gradients(self.disc.parameters())
        self.disc_opt.step()
        return d_loss.item()

    @torch.inference_mode()
    def validate(self, val_items: list[torch.Tensor]) -> dict[str, float]:
        """The metrics of ``task=evaluate`` over ``val_items`` (each a batch ``[B, 3, H, W]`` or ``[B, T, 3, H, W]``
        in [0, 1]): 8-bit PSNR, SSIM and the colour errors (mean CIEDE2000, mean-colour shift) per image (video:
        per frame), then the mean; LPIPS when the trainer has an LPIPS metric with weights; codebook usage and
        perplexity. Writes a grid."""
        model = (self.ema.model if self.ema is not None else self.model).eval()
        stats = CodeStats(model.quantizer.codebook_size)
        scores: dict[str, list[torch.Tensor]] = {"val_psnr": [], "val_ssim": [], "val_ciede2000": [],
                                                 "val_colour_shift": [], "val_lpips": []}
        shown: list[tuple[torch.Tensor, torch.Tensor]] = []
        for item in val_items:
            x = item.to(self.device)
            with self._ctx():
                out = model(self.layout(x) * 2 - 1)
            recon = self.unlayout(((out.recon.float() + 1) / 2).clamp(0, 1))
            stats.update(out.codes)
            frames, target = recon.reshape(-1, *recon.shape[-3:]), x.reshape(-1, *x.shape[-3:])
            for k, v in image_scores(frames, target).items():
                scores[f"val_{k}"].append(v)
            if self.lpips is not None:
                scores["val_lpips"].append(self.lpips(frames, target).cpu())
            if len(shown) < self.cfg.grid_items:
                shown.append((x[0].cpu(), recon[0].cpu()))
        result = {k: float(torch.cat(v).mean()) for k, v in scores.items() if v}
        result |= {f"val_{k}": v for k, v in stats.result().items()}
        self.save_grid(shown)
        return result

    def save_grid(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> Path | None:
        """PNG of originals (top row) over reconstructions (bottom row); video items show their first frame."""
        from torchvision.utils import save_image

        if not pairs:
            return None
        frames = [(a[0] if a.ndim == 4 else a, b[0] if b.ndim == 4 else b) for a, b in pairs]
        h = max(f.shape[-2] for pair in frames for f in pair)
        w = max(f.shape[-1] for pair in frames for f in pair)
        tiles = [torch.nn.functional.pad(f, (0, w - f.shape[-1], 0, h - f.shape[-2]), value=1.0)
                 for row in zip(*frames, strict=True) for f in row]
        path = self.out_dir / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(torch.stack(tiles), path, nrow=len(frames), padding=2, pad_value=1.0)
        return path

    def _log(self, row: dict[str, float], prefix: str) -> None:
        if self.metrics is None:  # not rank 0
            return
        self.metrics.write(step=self.step, **row)
        if self.tb is not None:
            for k, v in row.items():
                self.tb.add_scalar(f"{prefix}/{k}", v, self.step)

    def fit(self, batches: Iterator[torch.Tensor] | Callable[[int], Iterator[torch.Tensor]],
            val_items: list[torch.Tensor], show_progress: bool = True) -> dict[str, float]:
        """Trains up to ``max_steps`` (resuming if asked); returns the last validation metrics.

        ``batches`` is an iterator, or a function of the step to start from returning the batches from there
        on (one per step): with it a resumed run continues the data stream where the checkpoint left it
        instead of starting it again. Under ``torchrun`` each rank passes its own slice of the data; only rank 0
        validates (the others get ``{}``), and whether to resume is rank 0's decision."""
        cfg = self.cfg
        if cfg.resume or cfg.resume_from:
            path = Path(cfg.resume_from) if cfg.resume_from else self.ckpt_path
            if distributed.broadcast_object(cfg.resume_from is not None or path.is_file()):
                if not path.is_file() and self.world > 1 and cfg.resume_from is None:
                    raise FileNotFoundError(f"cannot resume on rank {self.rank}: rank 0 sees the checkpoint {path} "
                                            "but this rank does not; the run directory must be on a file system "
                                            "every node shares")
                self.load_checkpoint(path)
            else:
                log.warning("trainer.resume=true but %s does not exist; starting from step 0", path)
        if callable(batches):
            batches = batches(self.step)
        result: dict[str, float] = {}
        t0, seen = time.perf_counter(), 0
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not show_progress or self.rank != 0, desc="train", unit="step")
        while self.step < cfg.max_steps:
            batch = next(batches)
            row = self.train_step(batch)
            seen += len(batch) * self.world
            bar.update(1)
            last = self.step == cfg.max_steps
            if self.step % cfg.log_every == 0 or last:  # under torchrun: means over the ranks (the global batch)
                row = distributed.mean_over_ranks(row)
                row |= {"lr": self.sched.get_last_lr()[0], "items_per_s": seen / (time.perf_counter() - t0)}
                self._log(row, "train")
                bar.set_postfix(loss=f"{row['loss']:.4f}")
            if (self.step % cfg.val_every == 0 or last) and self.rank == 0:
                result = self.validate(val_items)
                self._log(result, "val")
                log.info("step %d: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
            if self.step % cfg.ckpt_every == 0 or last:
                self.save_checkpoint()  # a barrier under torchrun: the other ranks wait for rank 0's validation
            elif self.step % cfg.val_every == 0:
                distributed.barrier()
        bar.close()
        if not result and self.rank == 0:  # resumed at max_steps: still report where the model stands
            result = self.validate(val_items)
        if self.tb is not None:
            self.tb.flush()
        return result

    @property
    def export_model(self) -> VQModel:
        """The weights to ship: the EMA copy when EMA is on."""
        return (self.ema.model if self.ema is not None else self.model).eval()
