"""mmtok on a GPU, measured in one command: what a session with a device runs first (about 8 minutes on one
H100/H200), writing ``benchmarks/results/gpu_suite.json`` and a Markdown table beside it (``.md``).

Parts (``benchmarks/gpu_parts/``, one module each), every figure a ratio to its baseline in the same run
(the two alternated, best of N) plus the absolute rate on the named device:

- ``vq_train``: image, video and spectrogram tokenizer training steps/s and peak memory, fp32 vs bf16 autocast
  vs bf16 + ``torch.compile`` (the trainer's ``precision`` and ``compile`` options);
- ``pretok``: batched pre-tokenisation of image and audio documents, documents/s at batch 1 vs 32 and 64, fp32 vs
  bf16, and the check that fp32 ids at batch 32/64 equal batch-1 ids;
- ``lm``: mmtok's transformer at about 125M parameters, sequence 2048: tokens/s and MFU in bf16, eager and
  compiled, and a Hugging Face Llama of the same shape;
- ``codecs``: EnCodec, DAC, Mimi and Emu3's VQ through ``from_hf`` (default sizes, random weights) against the
  direct ``transformers`` call (aim: overhead at most 5%);
- ``text``: batched text encoding against raw ``tokenizers`` ``encode_batch`` (the CPU side);
- ``llm_generate_100m``, ``llm_generate_tiny``, ``stream_cuda``, ``llm_packed``, ``lm_hf_bf16``: the checks of
  :mod:`modalities.llm` on the device.

Each part is timed and its result or error recorded; nothing stops the others. ``--smoke`` runs them all at toy
sizes on the CPU (about a minute on 2 cores; ``tests/test_gpu_suite.py``); without ``--smoke`` a CUDA device is
required.

    python benchmarks/gpu_suite.py                                   # the full suite on a GPU
    python benchmarks/gpu_suite.py --only lm,pretok                  # a subset
    python benchmarks/gpu_suite.py --smoke --out /tmp/gpu_suite.json # toy sizes on the CPU
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # modalities, models
sys.path.insert(0, str(REPO / "benchmarks"))  # gpu_parts, timing and the scripts it reuses


def parse_only(value: str | None, names: list[str]) -> list[str]:
    """``--only a,b`` (or ``a b``) as a list of part names, each checked against ``names``."""
    if not value:
        return names
    got = [n for n in value.replace(",", " ").split() if n]
    unknown = [n for n in got if n not in names]
    if unknown:
        raise SystemExit(f"--only: unknown part(s) {unknown}; the parts are {', '.join(names)}")
    return got


def main() -> None:
    from gpu_parts import PARTS, Context
    from gpu_parts import report as rep
    from gpu_parts.common import device_name, free_memory

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="the JSON report (the Markdown table goes beside it, .md; "
                   "default benchmarks/results/gpu_suite.json, with --smoke gpu_suite_smoke.json)")
    p.add_argument("--only", nargs="*", default=None, metavar="PART[,PART]",
                   help=f"run these parts only: {', '.join(PARTS)}")
    p.add_argument("--smoke", action="store_true", help="toy sizes on the CPU (about a minute)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per setting (default 3, smoke 2)")
    args = p.parse_args()
    names = parse_only(" ".join(args.only) if args.only else None, list(PARTS))
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("gpu_suite: no CUDA device (torch.cuda.is_available() is False). The full suite measures a GPU; "
                 "run it where one is, or add --smoke for the toy-size run on the CPU.")
    device = torch.device("cpu" if args.smoke else "cuda")
    out = args.out or REPO / f"benchmarks/results/gpu_suite{'_smoke' if args.smoke else ''}.json"
    import transformers

    res: dict = {"suite": "gpu_suite", "device": device_name(device), "device_type": device.type,
                 "smoke": args.smoke, "torch": torch.__version__, "transformers": transformers.__version__,
                 "threads": torch.get_num_threads(),
                 "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "seconds": 0.0,
                 "parts": {}}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            work = Path(tmp) / name
            work.mkdir()
            ctx = Context(device, args.smoke, work, args.rounds or (2 if args.smoke else 3))
            t0 = time.perf_counter()
            try:
                part = {"ok": True, "result": PARTS[name](ctx)}
            except Exception:  # record and go on: one broken part must not hide the others
                part = {"ok": False, "error": traceback.format_exc()[-4000:]}
            part["seconds"] = round(time.perf_counter() - t0, 1)
            res["parts"][name] = part
            res["seconds"] = round(time.perf_counter() - t_all, 1)
            free_memory()
            print(f"{name}: {'ok' if part['ok'] else 'ERROR'} in {part['seconds']} s"
                  + ("" if part["ok"] else "\n" + part["error"][-1500:]), flush=True)
            md = rep.write(res, out)  # after every part: a killed run keeps what it measured
    print(md.read_text())
    print(f"wrote {out} and {md}")
    failed = [n for n, part in res["parts"].items() if not part["ok"]]
    if failed:
        sys.exit(f"gpu_suite: parts failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
