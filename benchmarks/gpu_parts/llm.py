"""The parts that check :mod:`modalities.llm` on a device (moved here from the first ``gpu_suite.py``):

- ``llm_generate_100m``: per-token cost of the stream logits processor against unconstrained ``generate``
  (bf16, a 100M-parameter Llama, batch 16; goal: at most 1.03), by ``benchmarks/llm_generate.py``;
- ``llm_generate_tiny``: the same with the CPU-sized model on the device;
- ``stream_cuda``: sequences sampled on the device under the processor all unpack at the requested shapes;
- ``llm_packed``: ``PackedShards`` tokens/s against a training step (goal: ratio above 1), by
  ``benchmarks/llm_packed.py``;
- ``lm_hf_bf16``: ``task=lm_hf`` end to end (bf16 and activation checkpointing on CUDA): the loss falls and the
  saved folder reloads, on text shards made on the model's own tokenizer.

``--smoke`` runs each at toy sizes on the CPU (fp32 for ``lm_hf_bf16``: bf16 there needs CUDA)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from .common import REPO, Context, check, row


def _script(name: str, args: list[str], out: Path) -> dict:
    proc = subprocess.run([sys.executable, f"benchmarks/{name}", *args, "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    return json.loads(out.read_text())


def _generate(ctx: Context, args: list[str], out: Path, what: str, goal: float | None) -> dict:
    res = _script("llm_generate.py", ["--device", str(ctx.device), *args], out)
    rows, checks = [], []
    for r in res["rows"]:
        measure = f"generate, {what}, {r['workload']} prompt"
        per_s = {k: r["batch"] * 1e3 / r[f"ms_per_token_{k}"] for k in ("unconstrained", "stream")}  # over the batch
        rows.append(row(measure, "unconstrained", per_s["unconstrained"], "tokens/s"))
        rows.append(row(measure, "stream logits processor", per_s["stream"], "tokens/s",
                        "unconstrained", 1 / r["ratio"], cost_per_token=r["ratio"]))
        if goal is not None:
            checks.append(check(f"{what}, {r['workload']}: processor cost per token at most {goal}",
                                r["ratio"] <= goal, f"stream/unconstrained time per token {r['ratio']:.3f}",
                                applies=ctx.cuda and not ctx.smoke))
    return res | {"rows": rows, "checks": checks}


def generate_100m(ctx: Context) -> dict:
    size = (["--hidden", "128", "--layers", "2", "--batch", "4", "--new-tokens", "16", "--repeat", "2", "--text-vocab",
             "1000", "--image-codes", "1024", "--grid", "4"] if ctx.smoke else
            ["--hidden", "1024", "--layers", "8", "--batch", "16", "--new-tokens", "256", "--repeat", "5"])
    return _generate(ctx, size, ctx.work / "g1.json", "100M Llama" if not ctx.smoke else "toy Llama", 1.03)


def generate_tiny(ctx: Context) -> dict:
    size = (["--new-tokens", "16", "--repeat", "2", "--text-vocab", "1000", "--image-codes", "1024", "--grid", "4"]
            if ctx.smoke else ["--repeat", "5"])
    return _generate(ctx, size, ctx.work / "g2.json", "tiny Llama", None)


def stream_cuda(ctx: Context) -> dict:
    from transformers import AutoModelForCausalLM

    from modalities import TextTokenizer, VocabRegistry
    from modalities.llm import StreamLogitsProcessor, extend_model, make_tiny_lm
    from modalities.llm.tiny import make_tiny_tokenizer
    from modalities.stream import unpack

    seeds, per_seed, new = (1, 20, 60) if ctx.smoke else (4, 50, 120)
    texts = (REPO / "samples/text/corpus/train.txt").read_text(encoding="utf-8").splitlines()[:5000]
    work, device = ctx.work, ctx.device
    folder = make_tiny_lm(work / "lm", make_tiny_tokenizer(work / "tok", texts, "byte_bpe", 1000), "llama")
    text = TextTokenizer.from_hf(folder)
    reg = VocabRegistry(base=text.base_vocab)
    text.register(reg, "text")
    reg.add_modality("image", 1024)
    reg.add_modality("audio", 256)
    model = AutoModelForCausalLM.from_pretrained(folder).to(device).eval()
    extend_model(model, reg)
    shapes = {"image": (4, 4), "audio": (2, 8)}
    boost = torch.zeros(reg.vocab_size, device=device)
    boost[[reg.special_id("<boi>"), reg.special_id("<boa>"), reg.eos_id]] = 6.0
    counts = {"image": 0, "audio": 0, "sequences": 0, "sampled": 0}
    t0 = time.perf_counter()
    for seed in range(seeds):
        torch.manual_seed(seed)
        out = model.generate(torch.tensor([[reg.bos_id, 5, 6]], device=device), max_new_tokens=new, do_sample=True,
                             num_return_sequences=per_seed, pad_token_id=reg.pad_id, eos_token_id=reg.eos_id,
                             logits_processor=[lambda ids, s: s + boost, StreamLogitsProcessor(reg, shapes)])
        for r in out.cpu().tolist():
            counts["sampled"] += 1
            if reg.eos_id not in r[1:]:
                continue  # cut by the length limit: the CPU tests cover trimming
            r = r[: r.index(reg.eos_id, 1) + 1]
            for seg in unpack(torch.tensor(r), reg):
                if seg.modality != "text":
                    assert seg.shape == shapes[seg.modality], (seg.modality, seg.shape)
                    counts[seg.modality] += 1
            counts["sequences"] += 1
    seconds = time.perf_counter() - t0
    return counts | {
        "rows": [row("sampling under the stream processor", str(device), counts["sampled"] / seconds, "sequences/s",
                     max_new_tokens=new)],
        "checks": [check("sampled sequences unpack at the requested shapes",
                         counts["sequences"] > 0 and counts["image"] + counts["audio"] > 0,
                         f"{counts['sequences']} complete sequences, {counts['image']} image and {counts['audio']} "
                         "audio segments, all at their shapes")]}


def packed(ctx: Context) -> dict:
    size = (["--docs", "300", "--seq-len", "128", "--batch", "4", "--steps", "2", "--text-vocab", "1000"] if ctx.smoke
            else ["--hidden", "1024", "--layers", "8", "--seq-len", "2048", "--batch", "8", "--docs", "20000"])
    res = _script("llm_packed.py", ["--device", str(ctx.device), *size], ctx.work / "p.json")
    return res | {
        "rows": [row("packed LLM training data", "training step", res["train_tokens_per_s"], "tokens/s"),
                 row("packed LLM training data", "PackedShards loader", res["loader_tokens_per_s"], "tokens/s",
                     "training step", res["ratio_loader_over_train"])],
        "checks": [check("PackedShards keeps up with a training step", res["ratio_loader_over_train"] > 1,
                         f"loader/step tokens/s {res['ratio_loader_over_train']}")]}


def lm_hf_bf16(ctx: Context) -> dict:
    from hydra import compose, initialize_config_dir
    from transformers import AutoModelForCausalLM

    from modalities import MultimodalTokenizer, TextTokenizer
    from modalities.config import register_configs
    from modalities.llm import make_tiny_lm
    from modalities.llm.tiny import make_tiny_tokenizer
    from modalities.multimodal import Text
    from modalities.shards import pretokenize
    from modalities.tasks import run_task

    work = ctx.work
    docs, vocab, hidden, layers = (600, 1000, 64, 2) if ctx.smoke else (3000, 2000, 256, 4)
    seq, batch, steps = (64, 4, 8) if ctx.smoke else (512, 8, 60)
    texts = [s for s in (REPO / "samples/text/corpus/train.txt").read_text(encoding="utf-8").splitlines() if s]
    folder = make_tiny_lm(work / "lm2", make_tiny_tokenizer(work / "tok2", texts[:5000], "byte_bpe", vocab), "llama",
                          hidden=hidden, layers=layers)
    tok = MultimodalTokenizer({"text": TextTokenizer.from_hf(folder)})
    pretokenize([[Text(s)] for s in texts[:docs]], tok, work / "tokens", shard_docs=1000, show_progress=False)
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", ["task=lm_hf", f"task.model={folder}", f"task.tokens={work / 'tokens'}",
                                 f"task.seq_len={seq}", f"task.batch_size={batch}", f"task.max_steps={steps}",
                                 "task.lr=2e-3", f"task.save_steps={steps // 2}", f"task.log_every={steps // 4}", "task.gradient_checkpointing=true",
                                 f"trainer.device={ctx.device.type}", "show_progress=false"])
    t0 = time.perf_counter()
    m = run_task(cfg, work / "run")
    model = AutoModelForCausalLM.from_pretrained(work / "run/model")
    reloads = model.config.vocab_size == tok.registry.vocab_size
    precision = "bf16" if ctx.cuda else "fp32"
    return {k: m[k] for k in ("steps", "first_loss", "last_loss", "train_seconds")} | {
        "precision": precision, "seconds": round(time.perf_counter() - t0, 1),
        "rows": [row(f"task=lm_hf ({precision}, activation checkpointing)", f"{hidden}x{layers} Llama",
                     m["steps"] * batch * seq / m["train_seconds"], "tokens/s", first_loss=round(m["first_loss"], 3),
                     last_loss=round(m["last_loss"], 3))],
        "checks": [check("task=lm_hf: the loss falls", m["last_loss"] < m["first_loss"],
                         f"{m['first_loss']:.3f} -> {m['last_loss']:.3f} in {m['steps']} steps"),
                   check("task=lm_hf: the saved model reloads at the registry's vocabulary", reloads,
                         f"vocab {model.config.vocab_size}, registry {tok.registry.vocab_size}")]}
