"""The checks that need a GPU, in one short run: what a device session should call first.

1. ``llm_generate``: per-token cost of the stream logits processor against unconstrained ``generate`` on CUDA
   (bf16, a 100M-parameter Llama, batch 16; goal at most 1.03), and the tiny CPU-sized model on CUDA;
2. ``stream_cuda``: 200 sequences sampled on CUDA under the processor all unpack at the requested shapes;
3. ``llm_packed``: ``PackedShards`` tokens/s against a bf16 training step on CUDA (goal: ratio above 1);
4. ``lm_hf_bf16``: ``task=lm_hf`` end to end on CUDA in bf16 with gradient checkpointing (the loss falls, the
   saved folder reloads), on text shards made on the model's own tokenizer.

Each part is timed and its result or error recorded; nothing stops the others. Results go to ``--out``
(JSON) and stdout.

    python benchmarks/gpu_suite.py --out gpu_suite.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _script(name: str, args: list[str], out: Path) -> dict:
    proc = subprocess.run([sys.executable, f"benchmarks/{name}", *args, "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    return json.loads(out.read_text())


def stream_cuda(work: Path) -> dict:
    from transformers import AutoModelForCausalLM

    from modalities import TextTokenizer, VocabRegistry
    from modalities.llm import StreamLogitsProcessor, extend_model, make_tiny_lm
    from modalities.llm.tiny import make_tiny_tokenizer
    from modalities.stream import unpack

    texts = (REPO / "samples/text/corpus/train.txt").read_text(encoding="utf-8").splitlines()[:5000]
    folder = make_tiny_lm(work / "lm", make_tiny_tokenizer(work / "tok", texts, "byte_bpe", 1000), "llama")
    text = TextTokenizer.from_hf(folder)
    reg = VocabRegistry(base=text.base_vocab)
    text.register(reg, "text")
    reg.add_modality("image", 1024)
    reg.add_modality("audio", 256)
    model = AutoModelForCausalLM.from_pretrained(folder).cuda().eval()
    extend_model(model, reg)
    shapes = {"image": (4, 4), "audio": (2, 8)}
    boost = torch.zeros(reg.vocab_size, device="cuda")
    boost[[reg.special_id("<boi>"), reg.special_id("<boa>"), reg.eos_id]] = 6.0
    counts = {"image": 0, "audio": 0, "sequences": 0}
    for seed in range(4):
        torch.manual_seed(seed)
        out = model.generate(torch.tensor([[reg.bos_id, 5, 6]], device="cuda"), max_new_tokens=120, do_sample=True,
                             num_return_sequences=50, pad_token_id=reg.pad_id, eos_token_id=reg.eos_id,
                             logits_processor=[lambda ids, s: s + boost, StreamLogitsProcessor(reg, shapes)])
        for row in out.cpu().tolist():
            if reg.eos_id not in row[1:]:
                continue  # cut by the length limit: the CPU tests cover trimming
            row = row[: row.index(reg.eos_id, 1) + 1]
            for seg in unpack(torch.tensor(row), reg):
                if seg.modality != "text":
                    assert seg.shape == shapes[seg.modality], (seg.modality, seg.shape)
                    counts[seg.modality] += 1
            counts["sequences"] += 1
    return counts


def lm_hf_bf16(work: Path) -> dict:
    from hydra import compose, initialize_config_dir
    from transformers import AutoModelForCausalLM

    from modalities import MultimodalTokenizer, TextTokenizer
    from modalities.config import register_configs
    from modalities.llm import make_tiny_lm
    from modalities.llm.tiny import make_tiny_tokenizer
    from modalities.multimodal import Text
    from modalities.shards import pretokenize
    from modalities.tasks import run_task

    texts = [s for s in (REPO / "samples/text/corpus/train.txt").read_text(encoding="utf-8").splitlines() if s]
    folder = make_tiny_lm(work / "lm2", make_tiny_tokenizer(work / "tok2", texts[:5000], "byte_bpe", 2000), "llama",
                          hidden=256, layers=4)
    tok = MultimodalTokenizer({"text": TextTokenizer.from_hf(folder)})
    pretokenize([[Text(s)] for s in texts[:3000]], tok, work / "tokens", shard_docs=1000, show_progress=False)
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", ["task=lm_hf", f"task.model={folder}", f"task.tokens={work / 'tokens'}",
                                 "task.seq_len=512", "task.batch_size=8", "task.max_steps=60", "task.lr=2e-3",
                                 "task.save_steps=30", "task.gradient_checkpointing=true", "show_progress=false"])
    t0 = time.perf_counter()
    m = run_task(cfg, work / "run")
    model = AutoModelForCausalLM.from_pretrained(work / "run/model")
    assert model.config.vocab_size == tok.registry.vocab_size
    return {k: m[k] for k in ("steps", "first_loss", "last_loss", "train_seconds")} | {
        "precision": "bf16", "seconds": round(time.perf_counter() - t0, 1), "loss_falls": m["last_loss"] < m["first_loss"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="gpu_suite.json")
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_suite needs a CUDA device")
    results: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parts = {
            "llm_generate_100m": lambda: _script("llm_generate.py", ["--device", "cuda", "--hidden", "1024", "--layers",
                                                                     "8", "--batch", "16", "--new-tokens", "256",
                                                                     "--repeat", "5"], work / "g1.json"),
            "llm_generate_tiny": lambda: _script("llm_generate.py", ["--device", "cuda", "--repeat", "5"],
                                                 work / "g2.json"),
            "stream_cuda": lambda: stream_cuda(work),
            "llm_packed": lambda: _script("llm_packed.py", ["--device", "cuda", "--hidden", "1024", "--layers", "8",
                                                            "--seq-len", "2048", "--batch", "8", "--docs", "20000"],
                                          work / "p.json"),
            "lm_hf_bf16": lambda: lm_hf_bf16(work),
        }
        for name, fn in parts.items():
            if args.only and name not in args.only:
                continue
            t0 = time.perf_counter()
            try:
                results[name] = {"ok": True, "result": fn()}
            except Exception:  # record and go on: one broken part must not hide the others
                results[name] = {"ok": False, "error": traceback.format_exc()[-4000:]}
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
            print(name, json.dumps(results[name], indent=1)[:3000], flush=True)
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
