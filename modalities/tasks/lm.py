"""Task ``lm``: train the decoder-only transformer on pre-tokenised shards (one process, DDP or FSDP under torchrun).

Blocks of ``block_size + 1`` ids are drawn at random offsets of the
concatenated token stream, by a generator seeded from ``(seed, rank, step)``
at every step (the data of step ``k`` does not depend on the steps before
it); AdamW with warm-up and cosine decay (:func:`modalities.training.trainer.lr_factor`), gradient
accumulation, gradient clipping, bf16 autocast and optional ``torch.compile``
on CUDA. ``torchrun --nproc_per_node=N train.py task=lm ...`` starts DDP
(gloo on CPU, NCCL on GPU), or FSDP with ``task.fsdp=true``. Every
``log_every`` steps: loss overall and per modality (means over the steps since the last
log), tokens/s and (on GPU)
model FLOPs utilisation, to ``metrics.jsonl`` and TensorBoard (``tb/``).
Checkpoints (model, optimiser, schedule, step, global random states; full
state dicts, so a run can resume on another number of ranks) are atomic and
resumable with ``trainer.resume=true``; on CPU a run killed and resumed ends
with the same weights, bit for bit, as one that was never stopped. The
trained model is saved with the data's registry to ``model/`` (:meth:`models.transformer.Transformer.from_pretrained`).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

from models.transformer import Transformer, TransformerConfig, lm_loss_sums, loss_report

from ..data.fileio import atomic_open
from ..data.runlog import MetricsLog
from ..registry import VocabRegistry
from ..shards import ShardReader
from ..training import distributed
from ..training.trainer import lr_factor, resolve_device, rng_state, set_rng_state

log = logging.getLogger("mmtok")

# Dense bf16 peak TFLOP/s by CUDA device name (most specific first), for model FLOPs utilisation.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0), ("A100", 312.0),
                    ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0))


def token_stream(reader: ShardReader) -> np.ndarray:
    """All documents back to back, as int64."""
    return np.concatenate([np.asarray(ids, dtype=np.int64) for ids in reader.ids])


def random_blocks(stream: np.ndarray, block: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """LongTensor[batch, block + 1] at random offsets of ``stream``."""
    if len(stream) < block + 1:
        raise ValueError(f"the token stream has {len(stream)} ids, fewer than block_size + 1 = {block + 1}")
    starts = torch.randint(len(stream) - block, (batch,), generator=gen).numpy()
    return torch.from_numpy(np.stack([stream[s:s + block + 1] for s in starts]))


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The generator of step ``step`` on ``rank``: seeded afresh every step, so a resumed run draws the blocks an
    uninterrupted one draws, whatever the step it resumes at (and each rank its own)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + rank + 7919 * step)


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    """``override``, else the device's dense bf16 peak from :data:`PEAK_BF16_TFLOPS`; None on CPU or unknown."""
    if override:
        return float(override)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for key, v in PEAK_BF16_TFLOPS if key in name), None)


def parallelize(model: Transformer, device: torch.device, world: int, fsdp: bool) -> torch.nn.Module:
    """The module to call for training: ``model`` itself (one process), DDP around it, or ``model`` sharded
    in place with FSDP2 (each block one unit, the embeddings and head in the root unit)."""
    if world == 1:
        if fsdp:
            log.warning("task.fsdp=true needs torchrun with more than one process; training unsharded")
        return model
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks:
            fully_shard(block)
        return fully_shard(model)
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                     else None)


def full_state(model: Transformer, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Unsharded model and optimiser state dicts on the CPU (a collective under FSDP: call on every rank;
    with more than one rank only rank 0 gets them, the others get empty dicts)."""
    return get_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def param_checksum(model: Transformer) -> float:
    """Sum of all weights in float64 (a collective under FSDP); equal on every rank when they agree."""
    from torch.distributed.tensor import DTensor

    return float(sum((p.full_tensor() if isinstance(p, DTensor) else p).detach().double().sum()
                     for p in model.parameters()))


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Trains on ``task.data`` (a pre-tokenised folder); saves ``model/``; returns the last metrics. Under
    ``torchrun`` each rank uses ``cuda:$LOCAL_RANK`` (or the CPU, gloo) inside one process group for the run."""
    device = distributed.local_device(resolve_device(cfg.trainer.device))
    with distributed.process_group(device):
        return _train(cfg, out_dir, device)


def _train(cfg: DictConfig, out_dir: Path, device: torch.device) -> dict[str, Any]:
    t, tr = cfg.task, cfg.trainer
    rank, world = distributed.rank(), distributed.world_size()
    reader = ShardReader(t.data)
    registry = VocabRegistry.load(Path(t.data) / "registry.json")
    stream = token_stream(reader)
    mcfg = TransformerConfig(**{**OmegaConf.to_container(t.model, resolve=True), "vocab_size": registry.vocab_size,
                                "max_seq_len": max(t.block_size, t.model.max_seq_len)})
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = Transformer(mcfg).to(device)
    n_params, flops_per_token = model.num_params(), model.flops_per_token(t.block_size)
    net = parallelize(model, device, world, t.fsdp)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=(0.9, 0.95), weight_decay=t.weight_decay)
    sched_cfg = OmegaConf.to_object(tr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, sched_cfg))
    ckpt = out_dir / "checkpoints" / "lm_last.pt"
    step = 0
    if tr.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["opt"],
                       options=StateDictOptions(full_state_dict=True))
        sched.load_state_dict(state["sched"])
        if "rng" in state:  # rank 0's; every rank draws the same global numbers (same seed, same calls)
            set_rng_state(state["rng"], device)
        step = int(state["step"])
        log.info("resumed the LM from %s at step %d", ckpt, step)
    if tr.compile:
        net = torch.compile(net)
    autocast = device.type == "cuda" and tr.precision in ("auto", "bf16")
    peak = peak_tflops(device, t.peak_tflops)
    names = {m.index: m.name for m in registry.modalities} | {0: "special"}
    metrics = MetricsLog(out_dir) if rank == 0 else None
    tb = None
    if rank == 0 and tr.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        tb = SummaryWriter(str(out_dir / "tb"))
    log.info("lm: %s parameters, %d tokens in the stream, %d rank(s)%s", f"{n_params:,}", len(stream), world,
             " (FSDP)" if world > 1 and t.fsdp else "")
    # summed losses and target counts per modality since the last log line, kept on the device (no sync per step)
    window_sums, window_counts = torch.zeros(len(names), device=device), torch.zeros(len(names), device=device)
    report: dict[str, float] = {}
    t0 = t_last = time.perf_counter()
    tokens = tokens_last = 0
    model.train()
    while step < tr.max_steps:
        opt.zero_grad(set_to_none=True)
        gen = step_generator(cfg.seed, rank, step)
        for _ in range(t.grad_accum):
            batch = random_blocks(stream, t.block_size, t.batch_size, gen)
            mod = registry.modality_of(batch)  # checks every id against the layout, on the CPU
            batch, mod = batch.to(device, non_blocking=True), mod.to(device, non_blocking=True)
            x, y = batch[:, :-1], batch[:, 1:]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = net(x, check_ids=False)
            loss, sums, counts = lm_loss_sums(logits, y, mod[:, 1:], len(names))
            (loss / t.grad_accum).backward()
            window_sums += sums
            window_counts += counts
            tokens += y.numel() * world
        torch.nn.utils.clip_grad_norm_(model.parameters(), tr.grad_clip or float("inf"))
        opt.step()
        sched.step()
        step += 1
        last = step == tr.max_steps
        if step % tr.log_every == 0 or last:
            report = loss_report(window_sums.sum() / window_counts.sum(), window_sums, window_counts, names)
            window_sums.zero_()
            window_counts.zero_()
        if metrics is not None and (step % tr.log_every == 0 or last):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            now = time.perf_counter()
            rate = (tokens - tokens_last) / (now - t_last)
            row = report | {"lr": sched.get_last_lr()[0], "tokens_per_s": rate}
            if peak:
                row["mfu"] = flops_per_token * rate / (peak * 1e12 * world)
            t_last, tokens_last = now, tokens
            metrics.write(step=step, **row)
            if tb is not None:
                for k, v in row.items():
                    tb.add_scalar(f"lm/{k}", v, step)
            log.info("lm step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in row.items()))
        if step % tr.ckpt_every == 0 or last:
            model_sd, opt_sd = full_state(model, opt)
            if rank == 0:
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                with atomic_open(ckpt) as tmp:  # a file object: a full disk is a DiskWriteError
                    torch.save({"step": step, "model": model_sd, "opt": opt_sd, "sched": sched.state_dict(),
                                "rng": rng_state(device)}, tmp)
    seconds = time.perf_counter() - t0
    if tb is not None:
        tb.close()
    model_sd, _ = full_state(model, opt)
    saved = out_dir / "model"
    if rank == 0:
        export = Transformer(mcfg)
        export.load_state_dict(model_sd)
        export.save_pretrained(saved)
        shutil.copyfile(Path(t.data) / "registry.json", saved / "registry.json")
    checksum = param_checksum(model)
    if world > 1:
        torch.distributed.barrier()
    result = {"task": "lm", "rank": rank, "world_size": world, "fsdp": bool(t.fsdp and world > 1),
              "params": n_params, "steps": step, "param_checksum": f"{checksum:.10e}", "stream_tokens": len(stream),
              **report, "tokens_per_s": tokens / seconds if seconds else 0.0}
    if peak and seconds:
        result["mfu"] = flops_per_token * tokens / seconds / (peak * 1e12 * world)
    return result | {"saved_to": str(saved)}
