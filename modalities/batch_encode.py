"""Encoding many documents at once: media of equal shape go through their tokenizer in one call.

:func:`encode_documents` takes the documents of a window (lists of parts, as for
:meth:`MultimodalTokenizer.encode`), groups their parts by tokenizer and by the exact shape the tokenizer will
see, encodes each group in calls of at most ``batch_size`` items, and reassembles every document in its own
order. What is batched:

* text: one call of the Hugging Face batch path (``encode_batch``) per window;
* images ``[C, H, W]`` (tensors or PIL) whose size after the tokenizer's size policy is equal;
* videos ``[T, C, H, W]`` with equal frames and size after the policy;
* audio ``[C, T]``/``[T]`` with equal shape and sample rate.

Everything else (file paths, odd shapes, a group of one) is encoded alone, and a batched call that fails or
returns another number of rows (multi-channel audio kept as rows) is redone item by item, so an error lands on
its own document only. The tokenizers prepare each item of a list exactly as they prepare one item, and in fp32
the codes equal those of :meth:`MultimodalTokenizer.encode` bit for bit (``tests/test_batched_pretokenize.py``
checks images, audio, video and text). :func:`precision` runs the encoders under bf16 autocast on CUDA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .multimodal import Audio, Image, MultimodalTokenizer, Text, Video, as_part
from .stream import Segment, TokenSequence, pack

__all__ = ["PRECISIONS", "encode_documents", "precision"]

PRECISIONS = ("fp32", "bf16")
_ERRORS = (ValueError, OSError)  # what MultimodalTokenizer.encode raises for a bad document (FileNotFoundError is an OSError)


def tokenizer_device(tok: MultimodalTokenizer) -> torch.device:
    """The device of the first tokenizer that has one (text tokenizers do not): where encoding runs."""
    for t in tok.tokenizers.values():
        dev = getattr(t, "device", None)
        if dev is not None:
            return torch.device(dev)
    return torch.device("cpu")


@contextlib.contextmanager
def precision(name: str, tok: MultimodalTokenizer) -> Iterator[None]:
    """Runs the block in ``fp32`` (as it is) or under ``bf16`` autocast, which needs the tokenizers on CUDA."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {name!r}")
    if name == "fp32":
        yield
        return
    device = tokenizer_device(tok)
    if device.type != "cuda":
        raise ValueError(f"precision bf16 needs the tokenizers on a CUDA device, they are on {device}; use "
                         "precision=fp32 on the CPU (bf16 autocast there is slower and changes the codes)")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        yield


def _fitted(tok: Any, h: int, w: int) -> tuple[int, int]:
    """Height and width after ``tok``'s size policy (see :mod:`modalities.data.sizing`); for grouping only: a
    wrong guess costs a fallback, never a wrong code."""
    policy, size, f = getattr(tok, "size_policy", "refuse"), getattr(tok, "size", None), getattr(tok, "downsample", 1)
    if policy == "resize" and size:
        return size, size
    if policy == "center_crop":
        return (size, size) if size is not None and size <= min(h, w) else (h // f * f, w // f * f)
    if policy == "pad":
        return h + -h % f, w + -w % f
    return h, w


def _group_key(name: str, tok: Any, part: Any) -> tuple | None:
    """What must be equal for two parts to share a call, or ``None`` for a part encoded alone."""
    from PIL import Image as PILImage

    x = part.data
    if isinstance(part, Image):
        if isinstance(x, PILImage.Image):
            return name, "image", _fitted(tok, x.height, x.width)
        if isinstance(x, torch.Tensor) and x.ndim == 3:
            return name, "image", _fitted(tok, *x.shape[-2:])
    elif isinstance(part, Video):
        if isinstance(x, torch.Tensor) and x.ndim == 4:
            return name, "video", len(x), _fitted(tok, *x.shape[-2:])
    elif isinstance(part, Audio):
        if isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim in (1, 2) and part.sample_rate is not None:
            return name, "audio", int(part.sample_rate), tuple(x.shape)
    return None


def _rows(tok: Any, parts: Sequence[Any]) -> list[torch.Tensor]:
    """Codes of ``parts`` (one tokenizer, one shape), one row per part: ``tok.encode`` of the list."""
    if isinstance(parts[0], Audio):
        codes = tok.encode([p.data for p in parts], sample_rate=parts[0].sample_rate)
    else:
        codes = tok.encode([p.data for p in parts])
    if len(codes) != len(parts):
        raise ValueError(f"{len(parts)} items gave {len(codes)} rows of codes")
    return list(codes)


def _one(tok: Any, part: Any) -> torch.Tensor:
    """Codes of one part, as :meth:`MultimodalTokenizer.encode` computes them."""
    if isinstance(part, Audio):
        return tok.encode(part.data, sample_rate=part.sample_rate)[0]
    return tok.encode(part.data)[0]


def _checked(tok: Any, codes: torch.Tensor, what: str) -> torch.Tensor:
    if tok.kind in ("image", "video") and codes.ndim != {"image": 2, "video": 3}[tok.kind]:
        raise ValueError(f"{what}: a {tok.kind} tokenizer with {tok.num_codebooks} codebooks gives codes of "
                         f"shape {tuple(codes.shape)}; the stream holds one codebook for {tok.kind}")
    return codes


def encode_documents(tok: MultimodalTokenizer, docs: Sequence[Sequence[Any]], batch_size: int = 32,
                     bos: bool = True, eos: bool = True) -> list[TokenSequence | Exception]:
    """``tok.encode(doc, bos, eos)`` for every document, with media of equal shape encoded ``batch_size`` at a
    time; a document that fails gives its exception (``ValueError``, ``OSError``...) in its place."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    errors: dict[int, Exception] = {}
    segments: dict[tuple[int, int], Any] = {}
    names: dict[tuple[int, int], str] = {}
    texts: dict[str, list[tuple[int, int, str]]] = {}
    groups: dict[Any, list[tuple[int, int, Any]]] = {}
    for d, doc in enumerate(docs):
        try:
            for j, x in enumerate([doc] if isinstance(doc, (str, Text, Image, Video, Audio)) else doc):
                part = as_part(x, f"part {j}")
                name, sub = tok.tokenizer_for(part)
                names[d, j] = name
                if isinstance(part, Text):
                    texts.setdefault(name, []).append((d, j, part.text))
                    continue
                key = _group_key(name, sub, part)
                groups.setdefault(key if key is not None else ("alone", d, j), []).append((d, j, part))
        except _ERRORS as e:
            errors[d] = e
    for name, items in texts.items():
        sub = tok.tokenizers[name]
        try:
            ids = sub.encode([t for _, _, t in items])
        except _ERRORS:
            ids = []
            for d, _, t in items:
                try:
                    ids.append(sub.encode(t))
                except _ERRORS as e:
                    errors.setdefault(d, e)
                    ids.append(None)
        for (d, j, _), row in zip(items, ids, strict=True):
            segments[d, j] = row
    for items in groups.values():
        items = [it for it in items if it[0] not in errors]
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            sub = tok.tokenizers[names[chunk[0][0], chunk[0][1]]]
            rows: list[Any] | None = None
            if len(chunk) > 1:
                try:
                    rows = _rows(sub, [p for _, _, p in chunk])
                except Exception:  # noqa: BLE001 - redone item by item below, where errors land on their document
                    rows = None
            for k, (d, j, part) in enumerate(chunk):
                try:
                    segments[d, j] = _checked(sub, rows[k] if rows is not None else _one(sub, part), f"part {j}")
                except _ERRORS as e:
                    errors.setdefault(d, e)
    out: list[TokenSequence | Exception] = []
    for d, doc in enumerate(docs):
        if d in errors:
            out.append(errors[d])
            continue
        n = 1 if isinstance(doc, (str, Text, Image, Video, Audio)) else len(doc)
        try:
            out.append(pack([Segment(names[d, j], segments[d, j]) for j in range(n)], tok.registry, bos=bos, eos=eos))
        except _ERRORS as e:
            out.append(e)
    return out
