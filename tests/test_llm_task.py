"""``task=tokenize task.text_base=...`` then ``task=lm_hf`` end to end on a tiny Llama and a tiny GPT-2: the loss
falls, the saved folder opens with ``AutoModelForCausalLM``, ``train=new_rows`` moves nothing else, a killed run
resumes to the same last checkpoint, and shards of another vocabulary are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from modalities import MultimodalTokenizer
from modalities.llm import extend_model, text_to_image
from modalities.shards import pretokenize
from modalities.tasks import run_task

from .conftest import REPO
from .llm_setup import caption_docs, gpt2_dir, hf_dirs, llama_dir, media_tokenizers  # noqa: F401

pytestmark = pytest.mark.slow
TINY = ["task=lm_hf", "task.seq_len=96", "task.batch_size=4", "task.lr=3e-3", "task.warmup_steps=2",
        "task.log_every=5", "show_progress=false", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def own_set(text_tok, tmp_path_factory):
    """An mmtok tokenizer folder of today's kind (own BPE text, image, audio) and a manifest of 28 documents."""
    root = tmp_path_factory.mktemp("own")
    MultimodalTokenizer({"text": text_tok, **media_tokenizers()}).save_pretrained(root / "tokenizer")
    rows = [json.loads(x) for x in (REPO / "samples/images/captions.jsonl").read_text().splitlines()][:28]
    lines = [json.dumps([{"text": r["caption"]}, {"image": str(REPO / "samples/images" / r["file"])}]) for r in rows]
    (root / "docs.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def llama_tokens(own_set, llama_dir, tmp_path_factory):  # noqa: F811
    from hydra import compose, initialize_config_dir

    from modalities.config import register_configs

    register_configs()
    out = tmp_path_factory.mktemp("tokenize")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", ["task=tokenize", f"task.tokenizer={own_set / 'tokenizer'}",
                                 f"task.text_base={llama_dir}", f"task.manifest={own_set / 'docs.jsonl'}",
                                 "task.shard_docs=10", "task.num_workers=0", "show_progress=false"])
    m = run_task(cfg, out)
    assert m["documents"] == 28 and m["skipped"] == 0
    return out / "tokens"


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_lm_hf_llama_end_to_end(compose, llama_dir, llama_tokens, tmp_path):  # noqa: F811
    m = run_task(compose([*TINY, f"task.model={llama_dir}", f"task.tokens={llama_tokens}", "task.max_steps=40",
                          "task.save_steps=20"]), tmp_path)
    assert m["steps"] == 40 and m["last_loss"] < 0.8 * m["first_loss"], m
    assert {"loss_text", "loss_image", "loss_special"} <= set(m)
    assert all("loss_text" in r for r in _rows(tmp_path) if "loss" in r)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    tok = MultimodalTokenizer.from_pretrained(tmp_path / "tokenizer")
    assert model.config.vocab_size == tok.registry.vocab_size
    assert model.config.mmtok_registry_fingerprint == tok.registry.fingerprint
    assert not (tmp_path / "model/training_args.bin").exists()  # the final folder holds no pickle
    assert (tmp_path / "model/tokenizer.json").read_bytes() == (llama_dir / "tokenizer.json").read_bytes()
    images = text_to_image(model, tok, ["a red flower"], do_sample=False)
    assert images[0].size == (32, 32)


def test_lm_hf_gpt2_new_rows_only(compose, gpt2_dir, own_set, llama_tokens, tmp_path):  # noqa: F811
    # the GPT-2 shares the Llama's tokenizer, so the same shards train it
    m = run_task(compose([*TINY, f"task.model={gpt2_dir}", f"task.tokens={llama_tokens}", "task.max_steps=30",
                          "task.save_steps=30", "task.train=new_rows", "task.lr=2e-2",
                          "task.gradient_checkpointing=true", "task.flatten=true"]), tmp_path)
    assert m["last_loss"] < m["first_loss"], m
    base = AutoModelForCausalLM.from_pretrained(gpt2_dir)
    extend_model(base, MultimodalTokenizer.from_pretrained(tmp_path / "tokenizer"))
    before = base.state_dict()
    after = load_file(tmp_path / "model/model.safetensors")
    B = MultimodalTokenizer.from_pretrained(tmp_path / "tokenizer").registry.base.size
    for name, t in after.items():
        key = name if name in before else name.replace("lm_head", "transformer.wte")
        if "wte" in key:
            assert torch.equal(t[:B], before[key][:B]) and not torch.equal(t[B:], before[key][B:])
        else:
            assert torch.equal(t, before[key]), name


def test_lm_hf_resumes_after_a_kill(llama_dir, llama_tokens, tmp_path, compose):  # noqa: F811
    args = [*TINY, f"task.model={llama_dir}", f"task.tokens={llama_tokens}", "task.max_steps=60",
            "task.save_steps=4", "task.seq_len=32", "task.batch_size=2"]
    cmd = [sys.executable, "train.py", *args, f"hydra.run.dir={tmp_path / 'killed'}"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    ckpt = tmp_path / "killed/checkpoints"
    try:
        deadline = time.time() + 300
        while not (ckpt / "checkpoint-8/trainer_state.json").exists():
            assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (ckpt / "checkpoint-60").exists()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    state = json.loads((ckpt / "checkpoint-60/trainer_state.json").read_text())
    assert state["global_step"] == 60
    assert "resuming from" in out.stderr + out.stdout
    # an uninterrupted run ends with the same weights
    whole = tmp_path / "whole"
    run_task(compose(args), whole)
    a = load_file(whole / "model/model.safetensors")
    b = load_file(tmp_path / "killed/model/model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_lm_hf_refuses_shards_of_another_vocabulary(compose, llama_dir, hf_dirs, text_tok, samples,  # noqa: F811
                                                    tmp_path):
    own = MultimodalTokenizer({"text": text_tok, **media_tokenizers()})
    pretokenize(caption_docs(samples, 3), own, tmp_path / "own", show_progress=False)
    with pytest.raises(ValueError, match="tokenised with mmtok's own text vocabulary.*task.text_base="):
        run_task(compose([*TINY, f"task.model={llama_dir}", f"task.tokens={tmp_path / 'own'}"]), tmp_path / "a")
    from modalities import TextTokenizer

    other = MultimodalTokenizer({"text": TextTokenizer.from_hf(hf_dirs["sp_bpe"]), **media_tokenizers()})
    pretokenize(caption_docs(samples, 3), other, tmp_path / "other", show_progress=False)
    with pytest.raises(ValueError, match="tokenised on another base tokenizer"):
        run_task(compose([*TINY, f"task.model={llama_dir}", f"task.tokens={tmp_path / 'other'}"]), tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        run_task(compose([*TINY, f"task.model={tmp_path}", f"task.tokens={tmp_path / 'other'}"]), tmp_path / "c")


def test_lm_hf_under_torchrun_two_cpu_ranks(llama_dir, llama_tokens, tmp_path):  # noqa: F811
    """DDP through torchrun (gloo): two ranks each take their own batches, so an epoch goes twice as fast."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "train.py", *TINY,
           f"task.model={llama_dir}", f"task.tokens={llama_tokens}", "task.max_steps=6", "task.save_steps=6",
           "task.seq_len=32", "task.batch_size=2", f"hydra.run.dir={tmp_path}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    state = json.loads((tmp_path / "checkpoints/checkpoint-6/trainer_state.json").read_text())
    sequences = json.loads((tmp_path / "lm_hf.json").read_text())["sequences"]
    assert state["epoch"] == pytest.approx(6 * 2 * 2 / sequences, rel=0.05)  # 2 ranks x 2 sequences per step
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "model").config.vocab_size % 128 == 0
