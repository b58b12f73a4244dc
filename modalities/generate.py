"""Sampling from a transformer with grammar-constrained decoding over the mixed-stream format.

:class:`StreamGrammar` follows the ids as they are produced and masks the
logits so that only ids the format allows next can be sampled: outside a media
segment, text ids, ``<eos>`` and the begin token of each media modality given
a shape; after a begin token, exactly the header of that shape, then only the
modality's own codes at code positions and the right ``<eor>``/``<eof>``/end
tokens elsewhere (from :func:`~modalities.stream.segment_template`). Every
finished sequence therefore unpacks, and every media segment decodes.

Media geometry is fixed per modality when generating (``shapes={"image":
(32, 32), "audio": (2, 50)}``): the shape a tokenizer produces for the media
one wants back. To ask for a given modality (text-to-image, say), end the
prompt with :func:`segment_prefix` (the begin token and header); generation
then starts inside that segment.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .registry import VocabRegistry
from .stream import CODE, StreamFormatError, segment_template, unpack

__all__ = ["StreamGrammar", "generate", "segment_prefix"]


class StreamGrammar:
    """Allowed-next-id masks for the stream format, tracking one sequence as it grows.

    Args:
        registry: the vocabulary layout.
        shapes: media modality name -> the shape its generated segments take; media
            without a shape cannot be started.
        allow_eos: whether ``<eos>`` may end the sequence (outside a segment).
    """

    def __init__(self, registry: VocabRegistry, shapes: dict[str, Sequence[int]], allow_eos: bool = True) -> None:
        self.registry = registry
        v = registry.vocab_size
        self.outside = torch.zeros(v, dtype=torch.bool)
        for m in registry.modalities:
            if m.kind == "text":  # on a base LLM's vocabulary: its text ids, not its own special tokens
                self.outside |= registry.ids_of(m.name)
        if allow_eos:
            self.outside[registry.eos_id] = True
        self.templates: dict[int, tuple[torch.Tensor, int, int]] = {}
        for name, shape in shapes.items():
            m = registry.modality(name)
            if m.kind == "text":
                raise ValueError(f"{name!r} is text; shapes are for media modalities")
            template = segment_template(registry, m, list(shape))
            self.templates[int(template[0])] = (template, m.offset, m.stop)
            self.outside[int(template[0])] = True
        self.reset()

    def reset(self) -> None:
        """Back to outside any segment."""
        self.template: tuple[torch.Tensor, int, int] | None = None
        self.pos = 0

    @property
    def inside(self) -> bool:
        """Whether the ids so far end inside an unfinished media segment."""
        return self.template is not None

    def allowed(self) -> torch.Tensor:
        """BoolTensor[vocab_size] of the ids that may come next."""
        if self.template is None:
            return self.outside
        template, lo, hi = self.template
        mask = torch.zeros_like(self.outside)
        want = int(template[self.pos])
        if want == CODE:
            mask[lo:hi] = True
        else:
            mask[want] = True
        return mask

    def advance(self, token: int) -> None:
        """Moves past ``token``; raises ``ValueError`` if the format does not allow it here."""
        if not bool(self.allowed()[token]):
            raise ValueError(f"id {token} ({self.registry.describe(token)}) is not allowed here")
        if self.template is None:
            if token in self.templates:
                self.template, self.pos = self.templates[token], 1
            return
        self.pos += 1
        if self.pos == len(self.template[0]):
            self.reset()


def segment_prefix(registry: VocabRegistry, name: str, shape: Sequence[int]) -> torch.Tensor:
    """LongTensor of the begin token and header of a ``name`` segment of ``shape``: append it to a prompt
    to make the model continue with that media."""
    template = segment_template(registry, registry.modality(name), list(shape))
    return template[: int((template == CODE).nonzero()[0])]


def _enter_prompt(ids: torch.Tensor, registry: VocabRegistry, grammar: StreamGrammar) -> None:
    """Checks the prompt and moves ``grammar`` to where it ends: outside any segment, or inside an unfinished
    media segment whose shape is in the grammar (replayed from its begin token)."""
    try:
        unpack(ids, registry)
        return
    except StreamFormatError as err:
        begins = [i for i, t in enumerate(ids.tolist()) if t in grammar.templates]
        if not begins:
            raise
        start = begins[-1]
        unpack(ids[:start], registry)  # what comes before the open segment must be well-formed
        try:
            for t in ids[start:].tolist():
                grammar.advance(t)
        except ValueError as e:
            raise StreamFormatError(f"the prompt's last segment (from position {start}) does not follow the "
                                    f"shapes given for generation: {e}", start) from None
        if not grammar.inside:
            raise err


def _filter(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    if top_k is not None and top_k > 0:
        kth = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = logits.sort(descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > top_p  # keep the smallest set whose mass reaches top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return logits


@torch.inference_mode()
def generate(model: torch.nn.Module, registry: VocabRegistry, prompt: torch.Tensor | Sequence[int],
             shapes: dict[str, Sequence[int]], max_new_tokens: int = 256, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None
             ) -> torch.Tensor:
    """Continues ``prompt`` under :class:`StreamGrammar`: global ids ending outside any media segment, or
    inside a media segment of one of ``shapes`` (see :func:`segment_prefix`).

    Stops at ``<eos>`` or after ``max_new_tokens``; a media segment open at that point is finished first
    (forced to its end), so the result always unpacks. ``temperature=0`` is greedy. Uses the model's
    KV cache (``model.new_cache()``). Returns LongTensor[T] with the prompt.
    """
    ids = torch.as_tensor(prompt, dtype=torch.long).flatten()
    if ids.numel() == 0:
        raise ValueError("generate needs a non-empty prompt (e.g. [<bos>])")
    grammar = StreamGrammar(registry, shapes)
    _enter_prompt(ids, registry, grammar)  # raises if the prompt is malformed
    device = next(model.parameters()).device
    cache = model.new_cache()
    out = ids.tolist()
    step_in = ids[None].to(device)
    new = 0
    while True:
        logits = model(step_in, cache)[0, -1].float().cpu()
        logits = logits.masked_fill(~grammar.allowed(), float("-inf"))
        if temperature <= 0:
            token = int(logits.argmax())
        else:
            probs = _filter(logits / temperature, top_k, top_p).softmax(-1)
            token = int(torch.multinomial(probs, 1, generator=generator))
        grammar.advance(token)
        out.append(token)
        new += 1
        if not grammar.inside and (token == registry.eos_id or new >= max_new_tokens):
            break
        step_in = torch.tensor([[token]], device=device)
    return torch.tensor(out, dtype=torch.long)
