"""Prompt in, media out: text-to-image and text-to-speech with ``model.generate`` and the stream grammar.

Each prompt is encoded by the :class:`~modalities.multimodal.MultimodalTokenizer`
(``<bos>`` + text), followed by the begin token and header of the requested
segment (:func:`~modalities.generate.segment_prefix`); the prompts are left-padded
into one batch; ``generate`` runs under :class:`~modalities.llm.logits.StreamLogitsProcessor`
for exactly the segment's remaining length (every row ends at its end token), and
each row's segment is decoded by the modality's tokenizer. Classifier-free guidance
is ``transformers``' own (``guidance_scale`` with the bare segment prefix as the
negative prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..generate import segment_prefix
from ..multimodal import Audio
from ..stream import segment_length, unpack
from .logits import SegmentEndCriteria, StreamLogitsProcessor

__all__ = ["default_shape", "generate_media", "text_to_image", "text_to_speech"]


def default_shape(tokenizer: Any, name: str, seconds: float = 2.0) -> tuple[int, ...]:
    """The segment shape a tokenizer gives for its usual input: an image tokenizer with a fixed ``size``,
    ``(size // downsample,) * 2``; an audio tokenizer, ``(num_codebooks, frames in `seconds`)``."""
    tok = tokenizer.tokenizers[name]
    if tok.kind == "image" and getattr(tok, "size", None):
        side = tok.size // tok.downsample
        return (side, side)
    if tok.kind == "audio":
        return (int(getattr(tok, "num_codebooks", 1)), max(1, round(tok.frame_rate * seconds)))
    raise ValueError(f"no default shape for {name!r} ({type(tok).__name__}); pass shape=")


def _check_shape(tokenizer: Any, name: str, shape: Sequence[int]) -> tuple[int, ...]:
    """Refuses a shape the modality's tokenizer cannot decode, naming it (tries a zero grid of that shape)."""
    if name not in tokenizer.tokenizers:
        raise ValueError(f"no tokenizer named {name!r}; have {list(tokenizer.tokenizers)}")
    tok = tokenizer.tokenizers[name]
    m = tokenizer.registry.modality(name)
    shape = tuple(int(d) for d in shape)
    if len(shape) != m.ndim or min(shape) < 1:
        raise ValueError(f"shape {shape} for {name!r}: a {m.kind} segment needs {m.ndim} positive dims")
    try:
        with torch.inference_mode():
            tok.decode(torch.zeros((1, *shape), dtype=torch.long))
    except Exception as e:
        raise ValueError(f"the {name} tokenizer ({type(tok).__name__}) cannot decode codes of shape {shape}: "
                         f"{e}") from None
    return shape


@torch.inference_mode()
def generate_media(model: Any, tokenizer: Any, prompts: str | Sequence[str], name: str,
                   shape: Sequence[int] | None = None, guidance_scale: float | None = None, do_sample: bool = True,
                   **generate_kwargs: Any) -> list[Any]:
    """Generates one ``name`` segment per prompt and decodes it.

    Args:
        model: a causal LM extended to ``tokenizer``'s registry (:func:`~modalities.llm.extend_model`).
        tokenizer: the :class:`~modalities.multimodal.MultimodalTokenizer`.
        prompts: a string or a list of strings (a batch).
        name: the media modality to generate (``"image"``, ``"audio"``...).
        shape: the segment's code shape (default: :func:`default_shape`).
        guidance_scale: classifier-free guidance (``None`` or 1: off).
        do_sample, generate_kwargs: passed to ``model.generate`` (``top_k``, ``temperature``, ``num_beams``...).

    Returns:
        one decoded item per prompt: the tokenizer's ``decode`` of ``codes[shape]`` (images ``float[3, H, W]``,
        audio :class:`~modalities.multimodal.Audio`).
    """
    reg = tokenizer.registry
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    shape = _check_shape(tokenizer, name, shape or default_shape(tokenizer, name))
    prefix = segment_prefix(reg, name, shape)
    rows = [torch.cat([tokenizer.encode([p], bos=True).ids if p else torch.tensor([reg.bos_id]), prefix])
            for p in prompts]
    n = max(len(r) for r in rows)
    device = next(model.parameters()).device
    ids = torch.full((len(rows), n), reg.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, n - len(r):], mask[i, n - len(r):] = r, 1
    todo = segment_length(shape) - len(prefix)
    kwargs: dict[str, Any] = {}
    if guidance_scale is not None and guidance_scale != 1:
        uncond = torch.cat([torch.tensor([reg.bos_id]), prefix])[None].expand(len(rows), -1)
        kwargs = {"guidance_scale": guidance_scale, "negative_prompt_ids": uncond.to(device)}
    out = model.generate(ids.to(device), attention_mask=mask.to(device), max_new_tokens=todo, min_new_tokens=todo,
                         do_sample=do_sample, logits_processor=[StreamLogitsProcessor(reg, {name: shape})],
                         stopping_criteria=[SegmentEndCriteria(reg, [name])], pad_token_id=reg.pad_id,
                         eos_token_id=None, **kwargs, **generate_kwargs)
    items = []
    for i, r in enumerate(rows):
        seq = torch.cat([r, out[i, n:].cpu()])
        segment = unpack(seq, reg)[-1]
        items.append(tokenizer.tokenizers[name].decode(segment.codes[None])[0])
    tok = tokenizer.tokenizers[name]
    if tok.kind == "audio":
        items = [Audio(x, tok.sample_rate, name) for x in items]
    return items


def text_to_image(model: Any, tokenizer: Any, prompts: str | Sequence[str], shape: Sequence[int] | None = None,
                  name: str = "image", **kwargs: Any) -> list[Any]:
    """Images for each prompt, as PIL images (see :func:`generate_media` for the arguments)."""
    from torchvision.transforms.functional import to_pil_image

    return [to_pil_image(x.clamp(0, 1).float().cpu()) for x in
            generate_media(model, tokenizer, prompts, name, shape, **kwargs)]


def text_to_speech(model: Any, tokenizer: Any, prompts: str | Sequence[str], shape: Sequence[int] | None = None,
                   name: str = "audio", **kwargs: Any) -> list[Audio]:
    """Waveforms for each prompt, as :class:`~modalities.multimodal.Audio` (``data`` float[T], ``sample_rate``)."""
    return generate_media(model, tokenizer, prompts, name, shape, **kwargs)
