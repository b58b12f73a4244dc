"""Per-token cost of :class:`~modalities.llm.StreamLogitsProcessor` against unconstrained ``model.generate``.

One model, one prompt, the same number of new tokens (``min_new_tokens = max_new_tokens``, no ``<eos>``):
``generate`` without a processor (the baseline) and with it, interleaved ``--repeat`` times in the same run;
the median time per token of each and their ratio are reported (goal: at most 1.10 on a CPU with a tiny model,
1.03 on a GPU). Two workloads: ``image`` (the prompt ends with the begin token and header of a ``--grid``
image, so every new token is a code or a separator under the grammar) and ``free`` (a text prompt: text,
``<eos>`` and media begin tokens allowed). The base is a byte-level BPE trained here on the sample corpus and a
random tiny Llama (``make_tiny_lm``), or ``--model`` a local HF causal LM folder with its tokenizer; the
registry adds ``--image-codes`` image and ``--audio-codes`` audio ids (the processor only needs the layout).

    python benchmarks/llm_generate.py                                     # CPU, tiny Llama
    python benchmarks/llm_generate.py --device cuda --hidden 1024 --layers 8 --batch 16
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from llm_common import base_model, model_options

from modalities import TextTokenizer, VocabRegistry
from modalities.generate import segment_prefix
from modalities.llm import StreamLogitsProcessor, extend_model


def build(args: argparse.Namespace, work: Path) -> tuple[torch.nn.Module, VocabRegistry]:
    from transformers import AutoModelForCausalLM

    folder = base_model(args, work)
    text = TextTokenizer.from_hf(folder)
    reg = VocabRegistry(base=text.base_vocab)
    text.register(reg, "text")
    reg.add_modality("image", args.image_codes)
    reg.add_modality("audio", args.audio_codes)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    extend_model(model, reg)
    return model.to(args.device), reg


def per_token(model: torch.nn.Module, prompt: torch.Tensor, new: int, processor: list, pad: int) -> float:
    """Seconds per new token: wall clock on CUDA (synchronised); on the CPU this thread's CPU time (the run uses
    one thread), which other work on a shared machine barely moves."""
    cuda = prompt.is_cuda
    clock = time.perf_counter if cuda else time.thread_time
    if cuda:
        torch.cuda.synchronize()
    t0 = clock()
    model.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=True, logits_processor=processor,
                   pad_token_id=pad, eos_token_id=None)
    if cuda:
        torch.cuda.synchronize()
    return (clock() - t0) / new


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_options(p)
    p.add_argument("--image-codes", type=int, default=16384)
    p.add_argument("--audio-codes", type=int, default=2048)
    p.add_argument("--grid", type=int, default=16, help="image segment of grid x grid codes")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: timed by thread CPU time)")
    args = p.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model, reg = build(args, Path(tmp))
    shape = (args.grid, args.grid)
    device = args.device
    prompts = {"image": torch.cat([torch.tensor([reg.bos_id, 5, 6, 7]), segment_prefix(reg, "image", shape)]),
               "free": torch.tensor([reg.bos_id, 5, 6, 7])}
    rows = []
    for workload, prompt in prompts.items():
        ids = prompt[None].expand(args.batch, -1).to(device)
        new = args.new_tokens
        procs = {"unconstrained": [], "stream": [StreamLogitsProcessor(reg, {"image": shape, "audio": (4, 50)})]}
        for lp in procs.values():  # warm-up
            per_token(model, ids, 4, lp, reg.pad_id)
        times: dict[str, list[float]] = {k: [] for k in procs}
        for _ in range(args.repeat):  # interleaved, so load on a shared machine hits both alike
            for name, lp in procs.items():
                times[name].append(per_token(model, ids, new, lp, reg.pad_id))
        base, con = statistics.median(times["unconstrained"]), statistics.median(times["stream"])
        rows.append({"workload": workload, "batch": args.batch, "new_tokens": new,
                     "ms_per_token_unconstrained": round(base * 1e3, 3), "ms_per_token_stream": round(con * 1e3, 3),
                     "ratio": round(con / base, 3)})
        print(f"{workload:>6}: unconstrained {base * 1e3:.3f} ms/token, stream {con * 1e3:.3f} ms/token, "
              f"ratio {con / base:.3f}")
    result = {"device": device if device == "cpu" else torch.cuda.get_device_name(), "platform": platform.machine(),
              "vocab_size": reg.vocab_size, "parameters": sum(p.numel() for p in model.parameters()),
              "torch_threads": torch.get_num_threads(), "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
