"""Pretrained ``transformers`` tokenizers through mmtok's adapters against the same model called directly.

Each model is built at its config class's default size (the released checkpoints' architecture) with random
weights (speed does not depend on their values), saved, and opened with ``from_hf``; the baseline is the
adapter's own ``model`` called directly on input already in the model's form (normalised pixels, a
``[B, 1, T]`` waveform), so ``overhead = adapter seconds / direct seconds`` is the whole cost of the adapter
(input checks and conversion, normalisation, reshaping, output conversion). Adapter and direct call are timed
in turn (best of ``--repeat``, default 1 as the models are large, after a warm-up call of each), which keeps a
busy machine from favouring either. On 2 CPU cores the full run takes an estimated hour, most of it Emu3 at 512x512
(270M parameters; an image is coded as 4 frames); ``--sizes 256`` or ``--only`` for less.

- image VQ (Emu3, Janus, Chameleon): images/s at ``--sizes`` (256 and 512), encode and decode (Chameleon:
  encode only; ``transformers`` has no decoder for it). Janus's direct decode takes only its config's grid,
  so the baseline sets that grid to the image's for the call.
- audio codecs (EnCodec 24 kHz, DAC, Mimi, X-codec): real-time factor (seconds of audio per second) on
  ``--seconds`` of sample speech at the model's rate, encode and decode, the adapters' default options.

``--quick`` uses tiny configs (the smoke test); ``--device cuda`` measures a GPU (bf16 autocast for both).

    python benchmarks/external_throughput.py                                  # all, default sizes (slow on a CPU)
    python benchmarks/external_throughput.py --only janus chameleon --sizes 256 --repeat 1
    python benchmarks/external_throughput.py --quick --out /tmp/external.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from timing import timed

from modalities.data.io import load_image
from modalities.data.samples import samples_root
from modalities.data.sizing import fit_size
from modalities.data.waveform import AudioInputConfig, prepare_audio
from modalities.external import from_hf

IMAGE_MODELS = ("emu3", "janus", "chameleon")
AUDIO_MODELS = ("encodec", "dac", "mimi", "xcodec")
TINY_HUBERT = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8,) * 7,
                   num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)


def build(name: str, quick: bool) -> torch.nn.Module:
    """The ``transformers`` model ``name`` at its default config (``quick``: a tiny one), random weights."""
    import transformers as t

    tiny = {
        "emu3": lambda: t.Emu3VQVAEConfig(codebook_size=64, embed_dim=4, latent_channels=4, base_channels=32,
                                          channel_multiplier=[1, 1, 1], num_res_blocks=1, attn_resolutions=[],
                                          hidden_size=32),
        "janus": lambda: t.JanusVQVAEConfig(num_embeddings=64, embed_dim=4, latent_channels=32, base_channels=32,
                                            channel_multiplier=[1, 1, 1], num_res_blocks=1, num_patches=8,
                                            projection_dim=16, image_token_embed_dim=16),
        "chameleon": lambda: t.ChameleonVQVAEConfig(num_embeddings=64, embed_dim=4, latent_channels=32,
                                                    base_channels=32, channel_multiplier=[1, 1, 1], num_res_blocks=1),
        "encodec": lambda: t.EncodecConfig(hidden_size=16, num_filters=4, codebook_dim=16, num_lstm_layers=1),
        "dac": lambda: t.DacConfig(encoder_hidden_size=4, decoder_hidden_size=16, n_codebooks=3, codebook_dim=4),
        "mimi": lambda: t.MimiConfig(hidden_size=16, num_filters=4, codebook_dim=8, num_quantizers=4,
                                     vector_quantization_hidden_dimension=8, upsample_groups=16, num_hidden_layers=2,
                                     intermediate_size=32, num_attention_heads=2, num_key_value_heads=2,
                                     sliding_window=8),
        "xcodec": lambda: t.XcodecConfig(acoustic_model_config=dict(encoder_hidden_size=4, decoder_hidden_size=16),
                                         semantic_model_config=dict(model_type="hubert", **TINY_HUBERT)),
    }
    classes = {"emu3": (t.Emu3VQVAE, t.Emu3VQVAEConfig), "janus": (t.JanusVQVAE, t.JanusVQVAEConfig),
               "chameleon": (t.ChameleonVQVAE, t.ChameleonVQVAEConfig), "encodec": (t.EncodecModel, t.EncodecConfig),
               "dac": (t.DacModel, t.DacConfig), "mimi": (t.MimiModel, t.MimiConfig),
               "xcodec": (t.XcodecModel, t.XcodecConfig)}
    model_class, config_class = classes[name]
    torch.manual_seed(0)
    return model_class(tiny[name]() if quick else config_class()).eval()


def paired(adapter: Callable[[], object], direct: Callable[[], object], repeat: int, cuda: bool) -> tuple[float, float]:
    """Best seconds of ``adapter`` and of ``direct`` over ``repeat`` alternating calls, after a warm-up of each."""
    adapter(), direct()
    best_a = best_d = math.inf
    for _ in range(repeat):
        best_a, best_d = min(best_a, timed(adapter, cuda)), min(best_d, timed(direct, cuda))
    return best_a, best_d


def row(what: str, op: str, unit: str, items: float, t_adapter: float, t_direct: float, **extra) -> dict:
    return {"model": what, "op": op, "unit": unit, "adapter_per_s": items / t_adapter, "direct_per_s": items / t_direct,
            "adapter_s": t_adapter, "direct_s": t_direct, "overhead": t_adapter / t_direct, **extra}


def image_rows(name: str, tok, sizes: list[int], batch: int, repeat: int, cuda: bool) -> list[dict]:
    """Encode/decode images/s of the adapter and of ``tok.model`` called directly, per size."""
    model, f = tok.model, tok.downsample
    files = sorted((samples_root() / "images").glob("*.png"))
    rows = []
    for size in sizes:
        x = torch.stack([fit_size(load_image(files[i % len(files)]), f, "resize", size)
                         for i in range(batch)]).to(tok.device)  # float [B, 3, size, size] in [0, 1]
        pixels = tok.normalize(x)
        if name == "emu3":
            sizes_t = torch.tensor([[size, size]] * batch)
            direct_enc = lambda p=pixels, s=sizes_t: model.encode(p, image_sizes=s, return_dict=True)  # noqa: E731
        else:
            direct_enc = lambda p=pixels: model.encode(p, return_dict=True)  # noqa: E731
        head = {"size": size, "batch": batch, "codebook_size": tok.codebook_size, "downsample": f}
        rows.append(row(name, "encode", "images", batch,
                        *paired(lambda x=x: tok.encode(x), direct_enc, repeat, cuda), **head))
        if name == "chameleon":
            continue
        codes = tok.encode(x)
        if name == "janus":
            model.quantize.quant_state_dims = list(codes.shape[1:])  # transformers' decode takes only this grid
            direct_dec = lambda c=codes: model.decode(c.flatten(1))  # noqa: E731
        else:
            direct_dec = lambda c=codes: model.decode(c)  # noqa: E731
        rows.append(row(name, "decode", "images", batch,
                        *paired(lambda c=codes: tok.decode(c), direct_dec, repeat, cuda), **head))
    return rows


def audio_rows(name: str, tok, seconds: float, repeat: int, cuda: bool) -> list[dict]:
    """Encode/decode real-time factors of the adapter and of ``tok.model`` called directly."""
    model, sr = tok.model, tok.sample_rate
    files = sorted((samples_root() / "audio").glob("*.flac"))
    parts, n = [], int(seconds * sr)
    for f in files:
        parts.append(prepare_audio(f, AudioInputConfig(sample_rate=sr))[0, 0])
        if sum(len(p) for p in parts) >= n:
            break
    wave = torch.cat(parts)[:n]
    n = len(wave) // tok.downsample * tok.downsample  # whole frames: the direct call gets no padding to do
    wave = wave[:n].to(tok.device)
    batch = wave[None, None]  # [1, 1, T]
    direct_enc = {
        "encodec": lambda: model.encode(batch, bandwidth=tok.bandwidth, return_dict=True),
        "dac": lambda: model.encode(batch, n_quantizers=tok.num_codebooks, return_dict=True),
        "mimi": lambda: model.encode(batch, num_quantizers=tok.num_codebooks, return_dict=True),
        "xcodec": lambda: model.encode(batch, bandwidth=max(model.config.target_bandwidths), return_dict=True),
    }[name]
    head = {"seconds": n / sr, "sample_rate": sr, "num_codebooks": tok.num_codebooks,
            "codebook_size": tok.codebook_size, "frame_rate": tok.frame_rate}
    rows = [row(name, "encode", "seconds of audio", n / sr,
                *paired(lambda: tok.encode(wave, sample_rate=sr), direct_enc, repeat, cuda), **head)]
    codes = tok.encode(wave, sample_rate=sr)
    direct_dec = {
        "encodec": lambda: model.decode(codes[None], [None], return_dict=True),
        "dac": lambda: model.decode(audio_codes=codes, return_dict=True),
        "mimi": lambda: model.decode(codes, return_dict=True),
        "xcodec": lambda: model.decode(codes, return_dict=True),
    }[name]
    rows.append(row(name, "decode", "seconds of audio", n / sr,
                    *paired(lambda: tok.decode(codes), direct_dec, repeat, cuda), **head))
    return rows


def run(only: list[str], sizes: list[int], batch: int = 1, seconds: float = 10.0, repeat: int = 1,
        device: str = "cpu", quick: bool = False) -> dict:
    cuda = device.startswith("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    rows = []
    for name in only:
        with tempfile.TemporaryDirectory() as folder:
            model = build(name, quick)
            params = sum(p.numel() for p in model.parameters())
            model.save_pretrained(folder)
            del model
            tok = from_hf(folder).to(device)
        t0 = time.perf_counter()
        with amp, torch.inference_mode():
            got = (image_rows(name, tok, sizes, batch, repeat, cuda) if name in IMAGE_MODELS
                   else audio_rows(name, tok, seconds, repeat, cuda))
        for r in got:
            r.update(adapter=type(tok).__name__, model_type=tok.model_type, params_m=round(params / 1e6, 1))
        rows += got
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return {"benchmark": "external_throughput", "device": torch.cuda.get_device_name() if cuda else
            (platform.processor() or platform.machine()), "threads": torch.get_num_threads(), "quick": quick,
            "repeat": repeat, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=[*IMAGE_MODELS, *AUDIO_MODELS], default=[*IMAGE_MODELS, *AUDIO_MODELS])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="image sides")
    ap.add_argument("--batch", type=int, default=1, help="images per call")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of audio per call")
    ap.add_argument("--repeat", type=int, default=1, help="timed calls of each after the warm-up; the best counts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="tiny configs at 32x32 and 1 s (the smoke test)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/external_throughput.json"))
    args = ap.parse_args()
    sizes, seconds = ([32], 1.0) if args.quick else (args.sizes, args.seconds)
    res = run(args.only, sizes, args.batch, seconds, args.repeat, args.device, args.quick)
    print(f"transformers models through mmtok adapters vs called directly, {res['device']}, {res['threads']} threads"
          f"{' (tiny configs)' if args.quick else ''}; overhead = adapter seconds / direct seconds")
    print(f"{'model':<10} {'op':<7} {'input':>12} {'adapter/s':>10} {'direct/s':>10} {'overhead':>9}  unit")
    for r in res["rows"]:
        what = f"{r['size']}x{r['size']}" if "size" in r else f"{r['seconds']:.1f} s"
        print(f"{r['model']:<10} {r['op']:<7} {what:>12} {r['adapter_per_s']:>10.3f} {r['direct_per_s']:>10.3f} "
              f"{r['overhead']:>9.3f}  {r['unit']}/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
