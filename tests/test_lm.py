"""``task=lm`` end to end on pre-tokenised shards: loss falls, per-modality losses, resume, DDP with torchrun."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from modalities import ImageTokenizer, MultimodalTokenizer
from modalities.multimodal import Image, Text
from modalities.shards import pretokenize
from modalities.tasks import run_task
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

from .conftest import REPO

TINY = ["task=lm", "task.block_size=32", "task.batch_size=4", "task.model.dim=32", "task.model.n_layers=2",
        "task.model.n_heads=2", "trainer.warmup_steps=2", "trainer.log_every=1", "trainer.tensorboard=false",
        "show_progress=false", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def shards(text_tok, samples, tmp_path_factory):
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4),
                                        QuantizerConfig(kind="fsq", levels=[4, 4, 4]), size_policy="resize", size=64)
    mm = MultimodalTokenizer({"text": text_tok, "image": image})
    rows = [json.loads(x) for x in (samples / "images/captions.jsonl").read_text().splitlines()][:28]
    docs = [[Text(r["caption"]), Image(samples / "images" / r["file"])] for r in rows]
    out = tmp_path_factory.mktemp("tokens")
    pretokenize(docs, mm, out, shard_docs=10, show_progress=False)
    return out


def _rows(d):
    return [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]


def test_lm_trains_and_reports_per_modality(compose, shards, tmp_path):
    m = run_task(compose([*TINY, f"task.data={shards}", "trainer.max_steps=60", "task.lr=3e-3"]), tmp_path)
    rows = _rows(tmp_path)
    assert m["steps"] == 60 and {"loss_text", "loss_image", "loss_special"} <= set(m)
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"], (rows[0]["loss"], rows[-1]["loss"])
    assert m["tokens_per_s"] > 0 and (tmp_path / "checkpoints/lm_last.pt").is_file()


def test_lm_resume(compose, shards, tmp_path):
    run_task(compose([*TINY, f"task.data={shards}", "trainer.max_steps=3"]), tmp_path)
    m = run_task(compose([*TINY, f"task.data={shards}", "trainer.max_steps=5", "trainer.resume=true"]), tmp_path)
    assert [r["step"] for r in _rows(tmp_path)] == [1, 2, 3, 4, 5] and m["steps"] == 5


@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_two_cpu_processes_agree(shards, tmp_path, fsdp):
    """DDP (replicated) and FSDP (sharded) runs under torchrun with gloo: both ranks end with the same weights."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "train.py", *TINY, f"task.data={shards}", "trainer.max_steps=3", f"task.fsdp={fsdp}",
           f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    sums = re.findall(r"param_checksum\s+(\S+)", out)
    worlds = re.findall(r"world_size\s+(\d+)", out)
    assert len(sums) == 2 and sums[0] == sums[1], out[-3000:]
    assert worlds == ["2", "2"]
    assert re.findall(r"fsdp\s+(\S+)", out) == [str(fsdp)] * 2
    from models.transformer import Transformer

    saved = Transformer.from_pretrained(tmp_path / "model")  # the gathered, unsharded weights
    assert f"{sum(p.double().sum() for p in saved.parameters()):.10e}" == sums[0]


@pytest.mark.gpu
@pytest.mark.parametrize("compile_", [False, True], ids=["eager", "compile"])
def test_lm_on_cuda_bf16(compose, shards, tmp_path, compile_):
    """``task=lm`` on CUDA: bf16 autocast (and ``torch.compile``), loss falls, MFU is reported."""
    m = run_task(compose([*[o for o in TINY if o != "trainer.device=cpu"], f"task.data={shards}",
                          "trainer.max_steps=30", "task.lr=3e-3", "trainer.device=cuda",
                          f"trainer.compile={compile_}"]), tmp_path)
    rows = _rows(tmp_path)
    assert rows[-1]["loss"] < 0.9 * rows[0]["loss"] and m["tokens_per_s"] > 0
    assert m.get("mfu") is None or 0 < m["mfu"] < 1
