"""Task ``lm``: train the decoder-only transformer on pre-tokenised shards (one process, or DDP under torchrun).

Blocks of ``block_size + 1`` ids are drawn at random offsets of the
concatenated token stream (each rank with its own seed); AdamW with warm-up
and cosine decay (:func:`modalities.trainer.lr_factor`), gradient
accumulation, gradient clipping, bf16 autocast and optional ``torch.compile``
on CUDA. ``torchrun --nproc_per_node=N train.py task=lm ...`` starts DDP
(gloo on CPU, NCCL on GPU). Every ``log_every`` steps: loss overall and per
modality, tokens/s, to ``metrics.jsonl``; checkpoints (model, optimiser,
step) are atomic and resumable with ``trainer.resume=true``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from models.transformer import Transformer, TransformerConfig, lm_loss

from ..fileio import atomic_path
from ..registry import VocabRegistry
from ..runlog import MetricsLog
from ..shards import ShardReader
from ..trainer import lr_factor, resolve_device

log = logging.getLogger("mmtok")


def token_stream(reader: ShardReader) -> np.ndarray:
    """All documents back to back, as int64."""
    return np.concatenate([np.asarray(ids, dtype=np.int64) for ids in reader.ids])


def random_blocks(stream: np.ndarray, block: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """LongTensor[batch, block + 1] at random offsets of ``stream``."""
    if len(stream) < block + 1:
        raise ValueError(f"the token stream has {len(stream)} ids, fewer than block_size + 1 = {block + 1}")
    starts = torch.randint(len(stream) - block, (batch,), generator=gen).numpy()
    return torch.from_numpy(np.stack([stream[s:s + block + 1] for s in starts]))


def _distributed(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains on ``task.data`` (a pre-tokenised folder); saves ``lm/model.pt``; returns the last metrics."""
    t, tr = cfg.task, cfg.trainer
    device = resolve_device(tr.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    rank, world = _distributed(device)
    reader = ShardReader(t.data)
    registry = VocabRegistry.load(Path(t.data) / "registry.json")
    stream = token_stream(reader)
    mcfg = TransformerConfig(**{**OmegaConf.to_container(t.model, resolve=True), "vocab_size": registry.vocab_size,
                                "max_seq_len": max(t.block_size, t.model.max_seq_len)})
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = Transformer(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=(0.9, 0.95), weight_decay=t.weight_decay)
    sched_cfg = OmegaConf.to_object(tr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, sched_cfg))
    ckpt = out_dir / "checkpoints" / "lm_last.pt"
    step = 0
    if tr.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step = int(state["step"])
        log.info("resumed the LM from %s at step %d", ckpt, step)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    if tr.compile:
        net = torch.compile(net)
    autocast = device.type == "cuda" and tr.precision in ("auto", "bf16")
    names = {m.index: m.name for m in registry.modalities} | {0: "special"}
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 7919 * step)
    metrics = MetricsLog(out_dir) if rank == 0 else None
    report: dict[str, float] = {}
    t0, tokens = time.perf_counter(), 0
    model.train()
    while step < tr.max_steps:
        opt.zero_grad(set_to_none=True)
        for _ in range(t.grad_accum):
            batch = random_blocks(stream, t.block_size, t.batch_size, gen).to(device)
            x, y = batch[:, :-1], batch[:, 1:]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = net(x)
            loss, report = lm_loss(logits, y, registry.modality_of(y.contiguous()), names)
            (loss / t.grad_accum).backward()
            tokens += y.numel() * world
        torch.nn.utils.clip_grad_norm_(model.parameters(), tr.grad_clip or float("inf"))
        opt.step()
        sched.step()
        step += 1
        last = step == tr.max_steps
        if metrics is not None and (step % tr.log_every == 0 or last):
            row = report | {"lr": sched.get_last_lr()[0], "tokens_per_s": tokens / (time.perf_counter() - t0)}
            metrics.write(step=step, **row)
            log.info("lm step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in row.items()))
        if rank == 0 and (step % tr.ckpt_every == 0 or last):
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(ckpt) as tmp:
                torch.save({"step": step, "model": model.state_dict(), "opt": opt.state_dict(),
                            "sched": sched.state_dict()}, tmp)
    seconds = time.perf_counter() - t0
    if world > 1:
        torch.distributed.barrier()
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))  # equal on every DDP rank
    return {"task": "lm", "rank": rank, "world_size": world, "params": model.num_params(), "steps": step,
            "param_checksum": f"{checksum:.10e}",
            "stream_tokens": len(stream), **report, "tokens_per_s": tokens / seconds if seconds else 0.0}
