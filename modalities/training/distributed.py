"""Data-parallel training under ``torchrun``: one process group per run, rank helpers, gradient averaging.

``torchrun --nproc_per_node=G [--nnodes=N --node_rank=i --rdzv_endpoint=host:port] train.py task=image ...``
starts one process per GPU (or per CPU slot) with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in the environment. :func:`process_group` reads them, joins the group (NCCL on CUDA, gloo on the
CPU) and leaves it when the run ends; without them (``python train.py``) everything here is a no-op and the
helpers answer rank 0 of 1, so the trainers have one code path.

The group must exist *before* the model is built: ``vector-quantize-pytorch`` decides at construction whether
its EMA codebooks, k-means initialisation and dead-code restarts are synchronised across ranks
(``sync_codebook`` defaults to "a process group of more than one rank exists"). The library caches that check
(``functools.cache``) the first time any quantiser is built in the process, so :func:`process_group` clears the
cache when it joins and leaves the group.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["all_reduce_sum", "average_gradients", "barrier", "broadcast_object", "forget_cached_world",
           "gather_objects", "is_distributed", "is_main", "local_device", "mean_over_ranks", "process_group", "rank", "world_size"]

log = logging.getLogger("mmtok")


def is_distributed() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0: the one that validates, logs, checkpoints and saves."""
    return rank() == 0


def barrier() -> None:
    """Waits until every rank gets here (no-op on one rank)."""
    if is_distributed():
        dist.barrier()


def local_device(device: torch.device) -> torch.device:
    """``device`` for this rank: under ``torchrun`` a bare ``cuda`` becomes ``cuda:$LOCAL_RANK`` (made current).

    Raises ``ValueError`` for an explicit ``cuda:N`` with several local ranks (all would share one GPU)."""
    if device.type != "cuda" or "LOCAL_RANK" not in os.environ:
        return device
    local = int(os.environ["LOCAL_RANK"])
    if device.index is not None:
        if int(os.environ.get("LOCAL_WORLD_SIZE", 1)) > 1:
            raise ValueError(f"trainer.device={device} under torchrun with several processes per node: every rank "
                             "would use that one GPU; use trainer.device=cuda (or auto) to give rank r cuda:LOCAL_RANK")
        return device
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)
    return device


@contextlib.contextmanager
def process_group(device: torch.device, timeout_minutes: float = 60.0) -> Iterator[None]:
    """Joins the ``torchrun`` process group for the duration of the ``with`` block and leaves it afterwards.

    Does nothing when ``WORLD_SIZE`` is unset or 1, or when a group already exists (its owner destroys it).
    ``timeout_minutes`` bounds every collective, so also how long the other ranks wait at a barrier while rank 0
    validates, writes a checkpoint or evaluates the final model."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1 or dist.is_initialized():
        yield
        return
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world} but {', '.join(missing)} is not set: start distributed runs with "
                           "torchrun (python -m torch.distributed.run)")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes),
                            device_id=device if backend == "nccl" else None)
    forget_cached_world()
    log.info("rank %d of %d joined the %s process group", dist.get_rank(), world, backend)
    try:
        yield
        dist.barrier()  # the other ranks wait here while rank 0 evaluates and saves
    finally:
        dist.destroy_process_group()
        forget_cached_world()


def forget_cached_world() -> None:
    """Clears ``vector-quantize-pytorch``'s cached "is a process group of several ranks running?" answers, which
    decide whether a quantiser built next synchronises its codebook: a quantiser built in this process before the
    group existed would otherwise make every later one skip the synchronisation."""
    for name, module in list(sys.modules.items()):
        check = getattr(module, "is_distributed", None) if name.startswith("vector_quantize_pytorch") else None
        if check is not None and hasattr(check, "cache_clear"):
            check.cache_clear()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (a small picklable value: a flag, a step number)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` on one rank)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(value: float) -> float:
    """Sum of ``value`` over the ranks."""
    if not is_distributed():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item())


def mean_over_ranks(row: dict[str, float]) -> dict[str, float]:
    """Each number of ``row`` averaged over the ranks (every rank passes the same keys): the losses of the
    global batch, as one process with all of it would log them."""
    if not is_distributed():
        return row
    keys = sorted(row)
    t = torch.tensor([float(row[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return {k: float(v) / dist.get_world_size() for k, v in zip(keys, t.tolist(), strict=True)}


@torch.no_grad()
def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replaces each gradient by its mean over the ranks (one flat all-reduce): what DDP does, for a module trained
    outside DDP (the discriminator, whose two forward calls per step DDP does not allow)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
