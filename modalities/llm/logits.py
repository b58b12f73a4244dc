"""The stream grammar as a ``transformers`` ``LogitsProcessor``: ``model.generate`` output that always unpacks.

:class:`StreamLogitsProcessor` masks the scores of every row of a batch to the ids
:class:`~modalities.generate.StreamGrammar` allows next: outside a segment, text
ids, ``<eos>`` and the begin token of each media modality given a shape; inside a
media segment, exactly its header, its own codes at code positions and the right
``<eor>``/``<eof>``/end token elsewhere. Each row's prompt is checked once (it may
end inside an open segment, after :func:`~modalities.generate.segment_prefix`);
after that the state of a row is read from its generated ids alone (the position
of its last begin token), vectorised over the batch, so beam search, which
reorders rows between steps, is followed correctly. :class:`SegmentEndCriteria`
ends a row when it closes a media segment.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..generate import StreamGrammar, _enter_prompt
from ..registry import VocabRegistry
from ..stream import CODE

__all__ = ["SegmentEndCriteria", "StreamLogitsProcessor"]

try:  # subclass the library's base classes when it is installed (it is a dependency; this keeps imports light)
    from transformers import LogitsProcessor, StoppingCriteria
except ImportError:  # pragma: no cover
    LogitsProcessor = StoppingCriteria = object  # type: ignore[misc,assignment]


class StreamLogitsProcessor(LogitsProcessor):
    """Masks ``scores`` ``[B, V]`` to the stream grammar, batched.

    Args:
        registry: the vocabulary layout the model was extended to.
        shapes: media modality name -> the shape of the segments it may generate (``{"image": (16, 16)}``).
        allow_eos: whether ``<eos>`` may be sampled outside a segment.

    Call ``generate(..., logits_processor=[proc], stopping_criteria=[SegmentEndCriteria(registry)])``; pass
    ``max_new_tokens`` large enough to finish a segment (a row cut inside one does not unpack). Left-padded
    prompts are fine (leading ``registry.pad_id`` is skipped when it differs from ``<bos>``). A processor
    follows one ``generate`` call: it resets itself when it sees a new prompt (fewer ids than last time).

    Raises:
        StreamFormatError: a prompt is malformed, or ends inside a segment whose shape is not in ``shapes``.
    """

    def __init__(self, registry: VocabRegistry, shapes: dict[str, Sequence[int]], allow_eos: bool = True) -> None:
        self.registry = registry
        self.shapes = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
        self.allow_eos = allow_eos
        grammar = StreamGrammar(registry, self.shapes, allow_eos)
        self._outside = grammar.outside
        begins = list(grammar.templates)
        tpls = [grammar.templates[b] for b in begins]
        n = max((len(t[0]) for t in tpls), default=1)
        self._begin_ids = torch.tensor(begins, dtype=torch.long)
        self._tpl = torch.full((max(len(tpls), 1), n + 1), -2, dtype=torch.long)
        for i, (t, _, _) in enumerate(tpls):
            self._tpl[i, :len(t)] = t
        self._len = torch.tensor([len(t[0]) for t in tpls] or [0], dtype=torch.long)
        self._lo = torch.tensor([t[1] for t in tpls] or [0], dtype=torch.long)
        self._hi = torch.tensor([t[2] for t in tpls] or [0], dtype=torch.long)
        self._which = torch.full((registry.vocab_size,), -1, dtype=torch.long)
        self._which[self._begin_ids] = torch.arange(len(begins))
        self._dev: dict[torch.device, dict[str, torch.Tensor]] = {}
        self._prompt_tidx = torch.zeros(0, dtype=torch.long)
        self.prompt_len: int | None = None

    def _on(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device not in self._dev:
            t = {k: getattr(self, "_" + k).to(device) for k in ("begin_ids", "tpl", "len", "which")}
            # blocked[k]: the ids a row of state k may not take; 0 outside any segment, 1 + i at a code position
            # of template i, and the last row (everything blocked) at a fixed position, whose one id is put back
            v = self.registry.vocab_size
            blocked = torch.ones(len(self._len) + 2, v, dtype=torch.bool)
            blocked[0] = ~self._outside
            for i, (lo, hi) in enumerate(zip(self._lo.tolist(), self._hi.tolist(), strict=True)):
                blocked[1 + i, lo:hi] = False
            t["blocked"] = blocked.to(device)
            self._dev[device] = t
        return self._dev[device]

    def _strip(self, row: torch.Tensor) -> torch.Tensor:
        reg = self.registry
        if reg.pad_id == reg.bos_id:
            return row
        keep = (row != reg.pad_id).nonzero()
        return row[int(keep[0]):] if len(keep) else row[:0]

    def start(self, input_ids: torch.Tensor) -> None:
        """Checks each row's prompt and records where it leaves the grammar (done by the first call)."""
        tidx, pos = [], []
        for row in input_ids.cpu():
            grammar = StreamGrammar(self.registry, self.shapes, self.allow_eos)
            ids = self._strip(row)
            if ids.numel():
                _enter_prompt(ids, self.registry, grammar)
            if grammar.template is None:
                tidx.append(-1)
                pos.append(0)
            else:
                tidx.append(int(self._which[int(grammar.template[0][0])]))
                pos.append(grammar.pos)
        self.prompt_len = int(input_ids.shape[1])
        self._prompt_tidx = torch.tensor(tidx, dtype=torch.long, device=input_ids.device)
        self._prompt_pos = torch.tensor(pos, dtype=torch.long, device=input_ids.device)

    def _state(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Per row: the index into the ``blocked`` table and the one id a fixed position allows (or -1)."""
        if self.prompt_len is None or input_ids.shape[1] < self.prompt_len or \
                input_ids.shape[0] != self._prompt_tidx.shape[0]:
            self.start(input_ids)
        t = self._on(input_ids.device)
        gen = input_ids[:, self.prompt_len:]
        steps = gen.shape[1]
        tidx, pos = self._prompt_tidx, self._prompt_pos + steps
        if steps:
            is_begin = torch.isin(gen, t["begin_ids"])
            last = torch.where(is_begin, torch.arange(steps, device=gen.device), -1).max(1).values
            has = last >= 0
            began = t["which"][gen.gather(1, last.clamp(min=0)[:, None])[:, 0]]
            tidx = torch.where(has, began, tidx)
            pos = torch.where(has, steps - last, pos)
        safe = tidx.clamp(min=0)
        inside = (tidx >= 0) & (pos < t["len"][safe])
        want = torch.where(inside, t["tpl"][safe, pos.clamp(max=t["tpl"].shape[1] - 1)], -2)
        fixed_row = len(self._len) + 1
        kind = torch.where(inside, torch.where(want == CODE, 1 + safe, fixed_row), 0)
        return kind, torch.where(want >= 0, want, -1), t

    def allowed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """BoolTensor ``[B, V]``: the ids each row may take next."""
        kind, one, t = self._state(input_ids)
        ok = ~t["blocked"][kind]
        return ok.scatter(1, one.clamp(min=0)[:, None], (one >= 0)[:, None] | ok.gather(1, one.clamp(min=0)[:, None]))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        kind, one, t = self._state(input_ids)
        v = scores.shape[1]
        out = scores.masked_fill(t["blocked"][kind][:, :v], float("-inf"))
        idx = one.clamp(min=0)[:, None]
        return out.scatter(1, idx, torch.where((one >= 0)[:, None], scores.gather(1, idx), out.gather(1, idx)))


class SegmentEndCriteria(StoppingCriteria):
    """Ends each row of ``generate`` as soon as it closes a media segment it generated (its end token).

    Args:
        registry: the vocabulary layout.
        modalities: names whose segment end stops a row (default: every media modality).
    """

    def __init__(self, registry: VocabRegistry, modalities: Sequence[str] | None = None) -> None:
        names = modalities or [m.name for m in registry.modalities if m.kind != "text"]
        self.end_ids = torch.tensor([registry.special_id(registry.modality(n).end) for n in names], dtype=torch.long)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        # called after each new token: the last id is always a generated one
        return torch.isin(input_ids[:, -1], self.end_ids.to(input_ids.device))
