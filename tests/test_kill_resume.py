"""Kill and resume: runs stopped with SIGKILL and started again with the same command end where an uninterrupted run
ends, byte for byte.

* pre-tokenisation under ``torchrun --nproc_per_node=2``, the whole process group killed at three moments (once
  ``k`` shard files exist), then rerun: every file equals the uninterrupted run's;
* a VQ tokenizer (EMA and discriminator on) killed between two checkpoints and again in the middle of writing one,
  and the LM (DDP, two ranks, dropout on) killed between two checkpoints, each resumed with the same command
  (``trainer.resume=true`` in every run): the exported weights and the whole last checkpoint (optimiser, schedule,
  EMA, discriminator, random states) are bit-identical on CPU.

The trainers are killed from inside (:data:`KILLER` sends the process SIGKILL at a chosen step or halfway through a
checkpoint write), which makes the moment exact; nothing runs on the way out, as with a kill from outside.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from modalities import ImageTokenizer, MultimodalTokenizer
from modalities.data.datasets import ImageCrops, infinite_batches
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

from .conftest import REPO
from .test_lm import TINY
from .test_train_vq import FAST

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # every run of a comparison with the same threads (same sum order)
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

# Runs train.py; with KILL=step:K it SIGKILLs itself right after optimiser step K (before that step's checkpoint),
# with KILL=save:N halfway through writing its N-th checkpoint (half a file left under the temporary name).
KILLER = r'''
import io, os, runpy, signal, sys
import torch

def die():
    os.kill(os.getpid(), signal.SIGKILL)

how, _, at = os.environ.get("KILL", "").partition(":")
if how == "step":
    step = torch.optim.lr_scheduler.LambdaLR.step
    def killing_step(self, *a, **k):
        step(self, *a, **k)
        if self.last_epoch == int(at):
            die()
    torch.optim.lr_scheduler.LambdaLR.step = killing_step
elif how == "save":
    save, calls = torch.save, [0]
    def killing_save(obj, f, *a, **k):
        calls[0] += 1
        if calls[0] < int(at):
            return save(obj, f, *a, **k)
        buf = io.BytesIO()
        save(obj, buf, *a, **k)
        data = buf.getvalue()[:len(buf.getvalue()) // 2]
        if hasattr(f, "write"):
            f.write(data)
            f.flush()
        else:
            with open(f, "wb") as out:
                out.write(data)
        die()
    torch.save = killing_save
sys.path.insert(0, os.getcwd())
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
'''


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _same_state(a, b, where="checkpoint") -> None:
    """Nested checkpoint dicts/lists equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _train(cmd: list[str], run_dir: Path, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {**ENV, "KILL": kill} if kill else ENV
    proc = subprocess.run([*cmd, f"hydra.run.dir={run_dir}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert (proc.returncode == 0) == (kill is None), proc.stderr[-3000:]  # the callers check where a kill struck
    return proc


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _logged_steps(run_dir: Path) -> list[int]:
    """The steps of the training rows in ``metrics.jsonl``; a step logged twice (before a kill and after the
    resume) must carry the same loss both times."""
    rows = [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    losses: dict[int, set[float]] = {}
    for r in rows:
        losses.setdefault(r["step"], set()).add(r["loss"])
    assert all(len(v) == 1 for v in losses.values()), losses
    return [r["step"] for r in rows]


# ------------------------------------------------------------------ pre-tokenisation


@pytest.fixture(scope="module")
def corpus(text_tok, samples, tmp_path_factory) -> Path:
    """A saved tiny text+image MultimodalTokenizer and a manifest of 280 documents (28 captioned photos, 10 times)."""
    root = tmp_path_factory.mktemp("corpus")
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4),
                                        QuantizerConfig(kind="fsq", levels=[4, 4, 4]), size_policy="resize", size=64)
    MultimodalTokenizer({"text": text_tok, "image": image}).save_pretrained(root / "mm")
    rows = [json.loads(x) for x in (samples / "images/captions.jsonl").read_text().splitlines()][:28]
    docs = [json.dumps([{"text": r["caption"]}, {"image": str(samples / "images" / r["file"])}]) for r in rows]
    (root / "docs.jsonl").write_text("\n".join(docs * 10) + "\n")
    return root


def _tokenize_cmd(corpus: Path, out: Path) -> list[str]:
    return [*TORCHRUN, "train.py", "task=tokenize", f"task.tokenizer={corpus}/mm",
            f"task.manifest={corpus}/docs.jsonl", "task.shard_docs=4", f"task.out={out}", "show_progress=false",
            "trainer.device=cpu", f"hydra.run.dir={out.parent}/run_{out.name}"]


N_SHARDS = 280 // 4


@pytest.fixture(scope="module")
def tokens(corpus) -> Path:
    """The uninterrupted run: ``torchrun --nproc_per_node=2 train.py task=tokenize`` once."""
    out = corpus / "tokens_whole"
    proc = subprocess.run(_tokenize_cmd(corpus, out), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(out.glob("shard_*.json"))) == N_SHARDS and (out / "manifest.json").is_file()
    return out


@pytest.mark.slow
def test_pretokenize_killed_three_times_is_byte_identical(corpus, tokens):
    out = corpus / "tokens_killed"
    done = lambda: len(list(out.glob("shard_*.json")))  # noqa: E731
    for more in (3, 12, 12):  # SIGKILL the whole torchrun group once this many more shards are finished (of 70)
        target = done() + more
        proc = subprocess.Popen(_tokenize_cmd(corpus, out), cwd=REPO, env=ENV, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while done() < target and proc.poll() is None:
                time.sleep(0.005)
            assert proc.poll() is None, f"the run finished before {target} shards were done: nothing was killed"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert done() < N_SHARDS and not (out / "manifest.json").exists()
    proc = subprocess.run(_tokenize_cmd(corpus, out), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    whole, resumed = _files(tokens), _files(out)
    assert not [n for n in resumed if n.endswith(".tmp") or ".mmtok-lock" in n]  # stale ones taken over and gone
    assert sorted(resumed) == sorted(whole)
    assert len(whole) == 3 * N_SHARDS + 2 and {"manifest.json", "registry.json"} <= set(whole)
    assert [n for n in whole if resumed[n] != whole[n]] == []


# ------------------------------------------------------------------ training


def test_batches_do_not_depend_on_where_the_stream_starts(samples):
    """What a resumed VQ run relies on: batch ``k`` is the same tensors from ``start=k``, with or without workers,
    and drawing batches does not move the global random state (which the checkpoint restores for the model)."""
    data = ImageCrops(sorted((samples / "images").glob("*.png"))[:5], 32)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    whole = list(itertools.islice(infinite_batches(data, 8, seed=3), 6))
    assert torch.equal(state, torch.get_rng_state())
    assert not torch.equal(whole[0], whole[1])
    resumed = list(itertools.islice(infinite_batches(data, 8, seed=3, start=4), 2))
    workers = list(itertools.islice(infinite_batches(data, 8, num_workers=2, seed=3, start=3), 3))
    assert all(torch.equal(a, b) for a, b in zip(whole[4:], resumed, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(whole[3:], workers, strict=True))


VQ = [sys.executable, "-c", KILLER, *FAST, "trainer.max_steps=12", "trainer.ckpt_every=4", "trainer.val_every=6",
      "trainer.log_every=1", "trainer.ema_decay=0.9", "trainer.disc_start=2", "trainer.discriminator.channels=8",
      "trainer.device=cpu", "trainer.resume=true", "seed=3"]


@pytest.mark.slow
def test_vq_training_killed_twice_ends_bit_identical(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _train(VQ, whole)
    _train(VQ, killed, kill="step:6")  # between the checkpoints of steps 4 and 8
    assert _ckpt(killed / "checkpoints/last.pt")["step"] == 4
    _train(VQ, killed, kill="save:2")  # resumed at 4; killed while writing the checkpoint of step 12
    assert _ckpt(killed / "checkpoints/last.pt")["step"] == 8 and (killed / "checkpoints/last.pt.tmp").is_file()
    _train(VQ, killed)  # resumed at 8
    _same_state(_ckpt(whole / "checkpoints/last.pt"), _ckpt(killed / "checkpoints/last.pt"))
    weights = _files(whole / "tokenizer/image")
    assert weights and weights == _files(killed / "tokenizer/image")
    assert not list(killed.rglob("*.tmp"))
    # killed in step 6 and in the checkpoint of step 12: the rows after each last checkpoint are written again
    assert _logged_steps(killed) == [1, 2, 3, 4, 5, *range(5, 13), *range(9, 13)]


@pytest.mark.slow
def test_lm_training_killed_under_torchrun_ends_bit_identical(tokens, tmp_path):
    """Two DDP ranks: each rank's blocks come from a generator seeded by (seed, rank, step), the global random
    state from the checkpoint; the resumed run's weights equal the uninterrupted run's, bit for bit."""
    lm = [*TORCHRUN, str(tmp_path / "killer.py"), *TINY, f"task.data={tokens}", "trainer.max_steps=10",
          "trainer.ckpt_every=4", "trainer.resume=true", "task.model.dropout=0.1", "seed=5"]
    (tmp_path / "killer.py").write_text(KILLER)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _train(lm, whole)
    _train(lm, killed, kill="step:6")
    assert _ckpt(killed / "checkpoints/lm_last.pt")["step"] == 4
    _train(lm, killed)
    _same_state(_ckpt(whole / "checkpoints/lm_last.pt"), _ckpt(killed / "checkpoints/lm_last.pt"))
    weights = _files(whole / "model")
    assert "model.safetensors" in weights and weights == _files(killed / "model")
    assert not list(killed.rglob("*.tmp"))
    assert _logged_steps(killed) == [1, 2, 3, 4, 5, *range(5, 11)]
