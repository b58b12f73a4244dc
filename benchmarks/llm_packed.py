"""``PackedShards`` read speed against what one ``task=lm_hf`` training step consumes, in one run.

Writes ``--docs`` text documents of the sample corpus as shards on a base tokenizer (a byte-level BPE trained
here), then measures (1) the loader: ``PackedShards`` + ``PackedCollator`` through a ``DataLoader`` with
``--workers`` workers, in tokens/s; (2) the model: forward, backward and AdamW step of a random tiny Llama
(``make_tiny_lm``, or ``--model``) on the same batches, in tokens/s. The ratio loader/model above 1 means
the data keeps up with training (the goal).

    python benchmarks/llm_packed.py
    python benchmarks/llm_packed.py --device cuda --hidden 1024 --layers 8 --seq-len 2048 --batch 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from llm_common import base_model, corpus, model_options

from modalities import MultimodalTokenizer, TextTokenizer
from modalities.llm import PackedCollator, PackedShards, extend_model, packed_loss
from modalities.multimodal import Text
from modalities.shards import pretokenize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_options(p)
    p.add_argument("--docs", type=int, default=4000)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--attn", default="sdpa", help="attention implementation (sdpa, eager, flash_attention_2...)")
    p.add_argument("--flatten", action="store_true", help="one flattened row per batch (for flash attention)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lines = corpus()
        folder = base_model(args, tmp)
        tok = MultimodalTokenizer({"text": TextTokenizer.from_hf(folder)})
        docs = [[Text(lines[i % len(lines)])] for i in range(args.docs)]
        pretokenize(docs, tok, tmp / "tokens", shard_docs=1000, show_progress=False)
        data = PackedShards(tmp / "tokens", args.seq_len)
        collate = PackedCollator(tok.registry.pad_id, flatten=args.flatten)
        loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, collate_fn=collate,
                                             num_workers=args.workers)
        t0 = time.perf_counter()
        n = sum(int(b["input_ids"].numel()) for b in loader)
        load_tps = n / (time.perf_counter() - t0)
        dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation=args.attn).to(args.device)
        extend_model(model, tok)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batches = [b for _, b in zip(range(args.steps + 2), loader, strict=False)]

        def step(b: dict) -> int:
            b = {k: v.to(args.device) for k, v in b.items()}
            with torch.autocast(args.device, dtype=dtype, enabled=args.device == "cuda"):
                logits = model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits
            loss, _ = packed_loss(logits, b["labels"], b["modality"])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return int(b["input_ids"].numel())

        for b in batches[:2]:
            step(b)
        if args.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        m = sum(step(b) for b in batches[2:])
        if args.device == "cuda":
            torch.cuda.synchronize()
        model_tps = m / (time.perf_counter() - t0)
    result = {"device": args.device, "flatten": args.flatten, "attn": args.attn, "tokens": data.num_tokens, "sequences": len(data), "seq_len": args.seq_len,
              "batch": args.batch, "loader_tokens_per_s": round(load_tps), "train_tokens_per_s": round(model_tps),
              "ratio_loader_over_train": round(load_tps / model_tps, 2)}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
