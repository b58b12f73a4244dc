"""Part ``pretok``: batched pre-tokenisation of image and audio documents, documents/s at batch 1 against batch
32 and 64 (the aim on a GPU: at least 10 times batch 1), fp32 against bf16 autocast, and the check that the fp32
ids at batch 32 and 64 equal the batch-1 ids document for document.

The documents are those of ``samples/documents.jsonl`` (a caption with a photograph, a transcript with a speech
clip), repeated to ``docs`` documents and held in memory (decoded images, waveforms cut or tiled to a fixed
length, so equal shapes meet in a batch and file decoding is not timed); the tokenizers are those of
``benchmarks/pretokenize_throughput.py`` (text BPE, the demo's f8 image VQ and log-mel RVQ) with untrained seeded
weights. What is timed is :func:`modalities.batch_encode.encode_documents`, the encoder of ``task=tokenize`` and
:func:`modalities.shards.pretokenize`, under :func:`modalities.batch_encode.precision`."""

from __future__ import annotations

import os

import torch

from .common import Context, alternate, check, row

BATCHES = (1, 32, 64)


def documents(kind: str, count: int, seconds: float) -> list[list]:
    """``count`` documents of ``kind`` (``image`` or ``audio``) from the sample manifest, media decoded."""
    from modalities.data.io import load_audio, load_image
    from modalities.data.samples import samples_root
    from modalities.multimodal import Audio, Image, Text, read_manifest

    out = []
    for doc in read_manifest(samples_root() / "documents.jsonl"):
        media = [p for p in doc if isinstance(p, Image if kind == "image" else Audio)]
        if len(media) != 1 or not isinstance(media[0].data, (str, os.PathLike)):
            continue
        texts = [p for p in doc if isinstance(p, Text)]
        if kind == "image":
            part = Image(load_image(media[0].data))
        else:
            wave, sr = load_audio(media[0].data)
            n = int(seconds * sr)
            wave = wave[:1].repeat(1, -(-n // wave.shape[-1]))[:, :n]  # mono, tiled and cut to n samples
            part = Audio(wave, sr)
        out.append([*texts, part])
    if not out:
        raise ValueError(f"samples/documents.jsonl has no {kind} document")
    return [out[i % len(out)] for i in range(count)]


def run(ctx: Context) -> dict:
    from pretokenize_throughput import tokenizer

    from modalities.batch_encode import encode_documents, precision

    image_size, count, seconds = (32, 64, 1.0) if ctx.smoke else (256, 256, 4.0)
    mm = tokenizer(image_size).to(ctx.device)
    precisions = ("fp32", "bf16") if ctx.cuda else ("fp32",)  # bf16 autocast is refused on the CPU
    rows, checks, detail = [], [], {"image_size": image_size, "audio_seconds": seconds, "documents": count,
                                    "precisions": list(precisions)}
    for kind in ("image", "audio"):
        docs = documents(kind, count, seconds)
        # The untrained codebooks initialise by k-means on their first batch: all documents at once, since from
        # fewer vectors than codes it samples duplicate codes, whose exact ties a batch size may break either way.
        with torch.inference_mode():
            encode_documents(mm, docs, batch_size=count)
        ids: dict[tuple[str, int], list] = {}

        def call(p: str, b: int, docs=docs, ids=ids):
            def go() -> None:
                with torch.inference_mode(), precision(p, mm):
                    ids[p, b] = encode_documents(mm, docs, batch_size=b)
            return go

        best = alternate({(p, b): call(p, b) for p in precisions for b in BATCHES}, ctx.device, ctx.rounds)
        tokens = sum(len(s.ids) for s in ids["fp32", 1])
        for (p, b), t in best.items():
            rows.append(row(f"{kind} pre-tokenisation", f"{p} batch {b}", count / t, "docs/s",
                            None if b == 1 else f"{p} batch 1", None if b == 1 else best[p, 1] / t,
                            tokens_per_s=round(tokens / t), vs_fp32=None if p == "fp32" else round(best["fp32", b] / t, 3)))
        for b in BATCHES[1:]:
            bad = [i for i, (x, y) in enumerate(zip(ids["fp32", 1], ids["fp32", b], strict=True))
                   if isinstance(x, Exception) or not torch.equal(x.ids, y.ids)]
            checks.append(check(f"{kind} fp32 ids at batch {b} equal batch 1", not bad,
                                f"{count - len(bad)}/{count} documents equal" + (f"; first differing: {bad[0]}"
                                                                                  if bad else "")))
        top = max(best["fp32", 1] / best["fp32", b] for b in BATCHES[1:])
        checks.append(check(f"{kind} batched pre-tokenisation at least 10x batch 1", top >= 10,
                            f"best batched/batch-1 ratio {top:.1f} (fp32)", applies=ctx.cuda))
        if "bf16" in precisions:
            same = sum(torch.equal(x.ids, y.ids) for x, y in zip(ids["fp32", 64], ids["bf16", 64], strict=True))
            detail[f"{kind}_bf16_docs_equal_to_fp32"] = f"{same}/{count}"
        detail[f"{kind}_tokens_per_doc"] = tokens / count
    return {"rows": rows, "checks": checks, **detail}
