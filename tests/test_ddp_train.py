"""Tokenizer training under ``torchrun`` (DDP, gloo on the CPU): the ranks agree, split the data as one process with
the whole batch would read it, and resume together.

Each ``torchrun`` run starts two Python processes (imports dominate: about 10 s of CPU); the module runs three
of them, plus one single-process run and one spawned pair for the codebooks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modalities.data.datasets import rank_samples
from modalities.tasks import run_task

from .conftest import REPO

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
# a tiny f8 image tokenizer with EMA, the discriminator from step 1 and the EMA codebook; the schedule is constant so
# that a run of 2 steps resumed to 4 matches a run of 4
TINY = ["experiment=image_debug", "trainer.tensorboard=false", "task.baseline=false", "task.val_size=32",
        "task.crop_size=32", "tokenizer.image.channels=[8,8,16,16]", "tokenizer.image.z_dim=8",
        "tokenizer.image.groups=4", "quantizer.codebook_size=64", "trainer.schedule=constant",
        "trainer.warmup_steps=1", "trainer.log_every=1", "trainer.val_every=100", "trainer.ckpt_every=2",
        "trainer.device=cpu", "show_progress=false", "trainer.ema_decay=0.9", "trainer.disc_start=1",
        "trainer.discriminator.channels=8"]
# k-means initialisation and dead-code restarts sample codebook vectors with random draws, which differ between
# one process and two ranks (the library samples on every rank and gathers); the comparison with one process
# turns them off, the other runs keep them on. Adam's eps is raised from 1e-8 to 1e-6: Adam divides a gradient
# by its own running size, so a weight whose gradient is nearly zero (1e-9, a cancelling sum) moves by a whole
# step in the direction of its rounding error, and the two runs' sums, rounded in another order, can disagree
# on that sign (seen once in CI on the discriminator: 1.4e-3). Gradients of real size are 1e3 times larger
# than this eps, so the runs still follow the same path.
SAME_AS_ONE = ["quantizer.kmeans_init=false", "quantizer.threshold_ema_dead_code=0", "+trainer.optimizer.eps=1e-6"]
BATCH, STEPS = 2, 4


def _torchrun(args: list[str], run_dir: Path) -> str:
    proc = subprocess.run([*TORCHRUN, "train.py", *TINY, *SAME_AS_ONE, *args, f"hydra.run.dir={run_dir}"], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def _ckpt(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints/last.pt", map_location="cpu", weights_only=True)


def _losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, str]:
    """``torchrun --nproc_per_node=2 train.py task=image`` (per-rank batch 2) for 4 steps, uninterrupted."""
    run_dir = tmp_path_factory.mktemp("ddp") / "two_ranks"
    return run_dir, _torchrun([f"task.batch_size={BATCH}", f"trainer.max_steps={STEPS}"], run_dir)


def test_rank_slices_make_up_the_single_process_batches():
    """Rank r of W takes samples [b*W*bs + r*bs, b*W*bs + (r+1)*bs) of global batch b: together the ranks read
    exactly the batches of one process with batch W*bs, from any start step."""
    take = 12
    for world, bs, start in [(2, 3, 0), (4, 2, 5), (1, 4, 2)]:
        ranks = [list(zip(range(take), rank_samples(bs, start, r, world), strict=False)) for r in range(world)]
        ranks = [[s for _, s in r] for r in ranks]
        single = list(zip(range(take * world), rank_samples(world * bs, start), strict=False))
        for b in range(take // bs):
            merged = [s for r in range(world) for s in ranks[r][b * bs:(b + 1) * bs]]
            assert merged == [s for _, s in single[b * world * bs:(b + 1) * world * bs]]
    with pytest.raises(ValueError, match="rank 2 is not in"):
        rank_samples(2, 0, 2, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _codebook_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    from modalities.training.distributed import process_group
    from models.quantizer import Quantizer, QuantizerConfig

    with process_group(torch.device("cpu")):  # what the VQ tasks enter before building the model
        torch.manual_seed(0)
        q = Quantizer(8, QuantizerConfig(kind="vq", codebook_size=32, kmeans_init=True, threshold_ema_dead_code=2.0))
        gen = torch.Generator().manual_seed(100 + rank)  # each rank its own data
        for _ in range(4):  # k-means init on the first batch, EMA updates, dead codes restarted (32 codes, 24 vectors)
            q(torch.randn(2, 8, 3, 4, generator=gen) * (1 + rank))
        torch.save({k: v.clone() for k, v in q.state_dict().items()}, f"{out}/rank{rank}.pt")


def test_vq_codebook_buffers_stay_identical_across_ranks(tmp_path):
    """Built after the process group exists, the library's EMA codebook all-reduces its statistics and samples
    k-means and dead-code vectors across ranks: two ranks with different data hold the same codebook buffers
    (without DDP's buffer broadcast, which the trainer adds as a safety net). The ranks are forked from this
    process, which has built quantisers before (other tests), so the library's cached "not distributed" answer
    must be cleared when the group is joined."""
    from models.quantizer import Quantizer, QuantizerConfig

    Quantizer(8, QuantizerConfig(kind="vq", codebook_size=4))  # caches "not distributed" in this process
    # forked (not spawned): the children start with torch already imported
    torch.multiprocessing.start_processes(_codebook_worker, args=(_free_port(), str(tmp_path)), nprocs=2,
                                          start_method="fork")
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert {k for k in a if "_codebook" in k} >= {"q._codebook.embed", "q._codebook.cluster_size"}
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert bool(a["q._codebook.initted"])


@pytest.mark.slow
def test_ranks_end_with_identical_weights(two_ranks):
    run_dir, out = two_ranks
    digests = re.findall(r"state_sha256\s+([0-9a-f]{64})", out)
    assert len(digests) == 2 and digests[0] == digests[1], out[-3000:]
    assert re.findall(r"world_size\s+(\d+)", out) == ["2", "2"]
    # rank 0's checkpoint holds the weights both ranks ended with, and every rank's random state
    state = _ckpt(run_dir)
    h = hashlib.sha256()
    for name, t in state["model"].items():
        h.update(name.encode())
        h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    assert h.hexdigest() == digests[0]
    assert state["step"] == STEPS and len(state["rng_ranks"]) == 2 and {"ema", "disc"} <= set(state)
    assert (run_dir / "tokenizer/image/config.json").is_file()  # saved once, by rank 0
    assert [json.loads(x).get("summary") for x in (run_dir / "metrics.jsonl").read_text().splitlines()].count(True) == 1


@pytest.mark.slow
def test_two_ranks_follow_one_process_with_the_whole_batch(two_ranks, compose, tmp_path):
    """Two ranks with batch 2 against one process with batch 4 on the same samples. The only difference is the
    order of floating-point sums (per-rank partial gradients and codebook statistics, then an all-reduce), about
    1e-7 relative per operation; measured after 4 steps: 5e-7 on the weights, 2e-5 on the discriminator. An
    AdamW step at lr 1e-3 moves a weight by up to 1e-3, so the tolerance of 2e-4 (a fifth of one step) fails a
    run that trained on other data, skipped the gradient or codebook all-reduce, or dropped a step."""
    run_dir, _ = two_ranks
    run_task(compose([*TINY, *SAME_AS_ONE, f"task.batch_size={2 * BATCH}", f"trainer.max_steps={STEPS}"]), tmp_path)
    two, one = _ckpt(run_dir), _ckpt(tmp_path)
    for part in ("model", "ema", "disc"):
        for k, v in one[part].items():
            diff = (two[part][k].double() - v.double()).abs().max().item() if v.numel() else 0.0
            assert diff < 2e-4, (part, k, diff)
    one_loss, two_loss = _losses(tmp_path), _losses(run_dir)  # the 2-rank rows are means over the ranks
    assert sorted(two_loss) == sorted(one_loss) == list(range(1, STEPS + 1))
    for step in one_loss:
        assert two_loss[step] == pytest.approx(one_loss[step], rel=1e-3), step


@pytest.mark.slow
def test_two_ranks_resume_from_one_checkpoint(two_ranks, tmp_path):
    """2 steps, then ``trainer.resume=true`` up to 4 on both ranks: every rank restores its own random state, and
    the last checkpoint equals the uninterrupted run's bit for bit (gloo sums in a fixed order on the CPU)."""
    run_dir, _ = two_ranks
    _torchrun([f"task.batch_size={BATCH}", "trainer.max_steps=2", "trainer.resume=true"], tmp_path)
    out = _torchrun([f"task.batch_size={BATCH}", f"trainer.max_steps={STEPS}", "trainer.resume=true"], tmp_path)
    assert out.count("at step 2") == 2, out[-3000:]  # "resumed from ... at step 2" on each rank
    resumed, straight = _ckpt(tmp_path), _ckpt(run_dir)
    for part in ("model", "opt", "ema", "disc", "disc_opt", "rng_ranks"):
        _same(resumed[part], straight[part], part)
    assert sorted(_losses(tmp_path)) == list(range(1, STEPS + 1))


def _same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)
