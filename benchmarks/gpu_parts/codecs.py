"""Part ``codecs``: pretrained ``transformers`` codecs opened with :func:`modalities.external.from_hf` (EnCodec,
DAC, Mimi, Emu3's VQ-VAE at their config classes' default sizes, random weights, nothing downloaded; ``--smoke``:
tiny configs), encode (and decode) throughput of the adapter against the adapter's own ``transformers`` model
called directly on input already in its form. The aim: the adapter costs at most 5% (``overhead`` = adapter
seconds / direct seconds <= 1.05). The measuring is ``benchmarks/external_throughput.py``'s (adapter and direct
call alternated, best of N, bf16 autocast for both on CUDA)."""

from __future__ import annotations

from .common import Context, check, row

MODELS = ("encodec", "dac", "mimi", "emu3")


def run(ctx: Context) -> dict:
    import external_throughput

    sizes, batch, seconds = ([32], 2, 1.0) if ctx.smoke else ([256], 8, 10.0)
    res = external_throughput.run(list(MODELS), sizes, batch, seconds, ctx.rounds, str(ctx.device), quick=ctx.smoke)
    rows, checks = [], []
    for r in res["rows"]:
        what = f"{r['size']}x{r['size']} x{r['batch']}" if "size" in r else f"{r['seconds']:.1f} s"
        measure = f"{r['model']} {r['op']} ({what})"
        unit = f"{r['unit']}/s"
        rows.append(row(measure, "direct transformers call", r["direct_per_s"], unit, params_m=r["params_m"]))
        rows.append(row(measure, f"mmtok {r['adapter']}", r["adapter_per_s"], unit, "direct transformers call",
                        r["adapter_per_s"] / r["direct_per_s"], overhead=round(r["overhead"], 4)))
        if r["op"] == "encode":
            checks.append(check(f"{r['model']} encode: adapter overhead at most 5%", r["overhead"] <= 1.05,
                                f"adapter/direct seconds {r['overhead']:.3f}", applies=not ctx.smoke))
    return {"rows": rows, "checks": checks, "sizes": sizes, "batch": batch, "audio_seconds": seconds,
            "quick_configs": ctx.smoke, "raw": res["rows"]}
