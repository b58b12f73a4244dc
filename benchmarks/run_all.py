"""Runs every benchmark script in this folder, one after another, each writing its JSON to ``benchmarks/results/``.

    python benchmarks/run_all.py                         # all of them on the CPU (about 90 minutes on 2 cores,
                                                         # plus an estimated hour for the real-size external models)
    python benchmarks/run_all.py --device cuda           # the device-aware ones on a GPU, the rest as usual
    python benchmarks/run_all.py --only text image       # a subset, by the names below
    python benchmarks/run_all.py --dry-run               # print the commands only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

# name -> (script, takes --device): the device-aware scripts measure a GPU when asked; "cuda" runs only with one
SCRIPTS: dict[str, tuple[str, bool | str]] = {
    "text": ("text_throughput.py", False),
    "image": ("image_throughput.py", True),
    "audio": ("audio_throughput.py", True),
    "pretokenize": ("pretokenize_throughput.py", True),
    "lm": ("lm_throughput.py", True),
    "quality": ("reconstruction_quality.py", False),
    "external": ("external_throughput.py", True),
    "scaling": ("train_scaling.py", True),  # 1 and 2 ranks under torchrun (gloo on CPU, NCCL with --device cuda)
    "rd": ("rate_distortion.py", False),  # 8 image tokenizers trained and scored (about 50 minutes on 2 CPU cores)
    "heldout": ("image_heldout.py", False),  # the image_small headline, 2 seeds on held-out sources (about 30 minutes)
    "audio_small": ("audio_small.py", False),  # 2 kbit/s speech tokens through the vocoder, 2 seeds (about 60 minutes)
    "vocoder_augment": ("vocoder_augment.py", False),  # the vocoder with and without augmentation, 2 seeds (16 minutes)
    "llm_generate": ("llm_generate.py", True),  # the stream logits processor's cost per token in model.generate
    "llm_packed": ("llm_packed.py", True),  # PackedShards against a training step of a Hugging Face model
    "gpu": ("gpu_suite.py", "cuda"),  # mmtok on a GPU in one run, about 8 minutes: tokenizer training, batched
    # pre-tokenisation, the transformer and a Llama (MFU), codecs through from_hf, text, modalities.llm (--device cuda
    # only; `python benchmarks/gpu_suite.py --smoke` runs it at toy sizes on the CPU)
}

# scripts that score tokenizers a user names (they need --tokenizers), so run_all cannot run them on its own
TOOLS = ("unseen_palettes.py",)


def commands(names: list[str], device: str) -> list[list[str]]:
    """The command line of each named benchmark, ``--device`` passed to those that take it."""
    here = Path(__file__).resolve().parent
    out = []
    for name in names:
        script, takes_device = SCRIPTS[name]
        if takes_device == "cuda":
            if device == "cuda":
                out.append([sys.executable, str(here / script)])
            continue
        out.append([sys.executable, str(here / script), *(["--device", device] if takes_device else [])])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    failed = []
    names = [n for n in args.only if SCRIPTS[n][1] != "cuda" or args.device == "cuda"]
    for name, cmd in zip(names, commands(names, args.device), strict=True):
        print("$", " ".join(cmd), flush=True)
        if not args.dry_run and subprocess.run(cmd).returncode:
            failed.append(name)
    sys.exit(f"failed: {failed}" if failed else 0)


if __name__ == "__main__":
    main()
