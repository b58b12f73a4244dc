"""Audio encode/decode speed as real-time factors: spectrogram and semantic tokenizers against baselines.

Real-time factor = seconds of audio processed per second of wall time. In the
same run: the log-mel front end alone (the floor any spectrogram tokenizer
pays), k-means on raw mel frames at the same bits per second, and the MFCC
features alone. Weights are untrained (speed does not depend on them); the
semantic k-means is fitted for a few iterations on the clips themselves.
``--device cuda`` measures a GPU (bf16 autocast for the autoencoder).

    python benchmarks/audio_throughput.py                         # 8 clips of 4 s, mel_f4 + rvq 2x256, k=500
    python benchmarks/audio_throughput.py --batch 2 --seconds 1 --k 50 --out /tmp/audio.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
from pathlib import Path

import torch
from timing import best_of

from modalities.audio import SpectrogramTokenizer
from modalities.data.samples import samples_root
from modalities.data.waveform import AudioInputConfig, prepare_audio
from modalities.eval.baselines import mel_to_vectors
from modalities.semantic import SemanticAudioTokenizer
from models.kmeans import KMeans
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig


def clips(batch: int, seconds: float) -> torch.Tensor:
    """``[batch, 1, seconds * 16000]`` from the sample speech (looped where a file is short)."""
    files = sorted((samples_root() / "audio").glob("*.flac"))
    n = int(seconds * 16000)
    out = []
    for i in range(batch):
        w = prepare_audio(files[i % len(files)], AudioInputConfig())[0, 0]
        out.append(w.repeat(n // len(w) + 1)[:n])
    return torch.stack(out)[:, None]


def run(batch: int = 8, seconds: float = 4.0, k: int = 500, repeat: int = 3, device: str = "cpu") -> dict:
    cuda = device.startswith("cuda")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    x = clips(batch, seconds).to(device)
    audio_s = batch * seconds
    torch.manual_seed(0)
    spec = SpectrogramTokenizer.from_configs(MelVQConfig(channels=[32, 64, 128], z_dim=64, band_channels=8),
                                             QuantizerConfig(kind="rvq", codebook_size=256, num_quantizers=2),
                                             MelConfig()).to(device)
    with amp:
        codes = spec.encode(x, sample_rate=16000)
        t_enc = best_of(lambda: spec.encode(x, sample_rate=16000), repeat, cuda)
        t_dec = best_of(lambda: spec.decode(codes), repeat, cuda)
    wave = spec.waveform(x, 16000)
    t_mel = best_of(lambda: spec.mel(wave), repeat, cuda)
    books = [KMeans(256, 64 * spec.downsample).to(device) for _ in range(2)]
    for b in books:
        b.centroids.copy_(torch.rand_like(b.centroids))

    def kmeans_encode():
        v = mel_to_vectors(spec.mel(wave), spec.downsample)
        for b in books:
            v = v - b.decode(b.predict(v))

    t_km = best_of(kmeans_encode, repeat, cuda)
    sem = SemanticAudioTokenizer(k=k).to(device)
    sem.fit([x[i] for i in range(batch)], iters=3, sample_rate=16000)
    t_sem = best_of(lambda: sem.encode(x, sample_rate=16000), repeat, cuda)
    t_mfcc = best_of(lambda: sem.raw_features(x, 16000), repeat, cuda)
    rows = [
        {"what": "spectrogram encode (log-mel + VQ autoencoder)", "rtf": audio_s / t_enc},
        {"what": "spectrogram decode (autoencoder + Griffin-Lim 32 it.)", "rtf": audio_s / t_dec},
        {"what": "baseline: log-mel front end alone", "rtf": audio_s / t_mel},
        {"what": "baseline: residual k-means on mel frames, same bits/s", "rtf": audio_s / t_km},
        {"what": f"semantic encode (MFCC + k-means, k={k})", "rtf": audio_s / t_sem},
        {"what": "baseline: MFCC features alone", "rtf": audio_s / t_mfcc},
    ]
    return {"benchmark": "audio_throughput", "device": torch.cuda.get_device_name() if cuda else
            (platform.processor() or platform.machine()), "threads": torch.get_num_threads(), "batch": batch,
            "seconds": seconds, "tokens_per_second": spec.frame_rate, "bits_per_second": spec.bits_per_second,
            "encode_ratio_vs_kmeans": t_km / t_enc, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/audio_throughput.json"))
    args = ap.parse_args()
    res = run(args.batch, args.seconds, args.k, args.repeat, args.device)
    print(f"audio tokenizers, {res['batch']} clips of {res['seconds']:g} s at 16 kHz, {res['device']}, "
          f"{res['threads']} threads; spectrogram tokens {res['tokens_per_second']:g}/s, {res['bits_per_second']:g} bits/s")
    print(f"{'':<56} {'real-time factor':>16}")
    for r in res["rows"]:
        print(f"{r['what']:<56} {r['rtf']:>16.1f}")
    print(f"spectrogram encode speed / k-means-on-mel encode speed: {res['encode_ratio_vs_kmeans']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
