"""The stream grammar as a ``transformers`` ``LogitsProcessor``: ``model.generate`` output that always unpacks.

:class:`StreamLogitsProcessor` masks the scores of every row of a batch to the ids
:class:`~modalities.generate.StreamGrammar` allows next: outside a segment, text
ids, ``<eos>`` and the begin token of each media modality given a shape; inside a
media segment, exactly its header, its own codes at code positions and the right
``<eor>``/``<eof>``/end token elsewhere. Each row's prompt is checked once (it may
end inside an open segment, after :func:`~modalities.generate.segment_prefix`);
after that each row's state follows its newest id, or is read again from its
generated ids when the rows were reordered (beam search), vectorised over the batch. :class:`SegmentEndCriteria`
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

    Each row's state is a template (or "outside") and a position in it. It is updated from the newest id alone
    while the rows are the ones seen at the last call plus one id each (sampling, greedy); when they are not
    (beam search reorders rows), it is read again from the generated ids (the position of each row's last begin
    token). Each state maps to one row of a precomputed table of blocked ids (outside; a code position of each
    modality; each fixed id), so a step costs one table lookup and one ``masked_fill`` on the scores.

    Raises:
        StreamFormatError: a prompt is malformed, or ends inside a segment whose shape is not in ``shapes``.
    """

    def __init__(self, registry: VocabRegistry, shapes: dict[str, Sequence[int]], allow_eos: bool = True) -> None:
        self.registry = registry
        self.shapes = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
        self.allow_eos = allow_eos
        grammar = StreamGrammar(registry, self.shapes, allow_eos)
        begins = list(grammar.templates)
        tpls = [grammar.templates[b] for b in begins]
        self.outside = len(tpls)  #: the template index of "outside any segment"
        longest = max((len(t[0]) for t in tpls), default=1)
        fixed = sorted({int(x) for t, _, _ in tpls for x in t[1:].tolist() if x != CODE})
        row_of = {x: 1 + len(tpls) + k for k, x in enumerate(fixed)}
        v = registry.vocab_size
        blocked = torch.ones(1 + len(tpls) + len(fixed), v, dtype=torch.bool)
        blocked[0] = ~grammar.outside
        kind = torch.zeros(len(tpls) + 1, longest + 1, dtype=torch.long)  # positions past the end: outside (0)
        for i, (t, lo, hi) in enumerate(tpls):
            blocked[1 + i, lo:hi] = False
            for p in range(1, len(t)):
                kind[i, p] = 1 + i if int(t[p]) == CODE else row_of[int(t[p])]
        for x, r in row_of.items():
            blocked[r, x] = False
        which = torch.full((v,), -1, dtype=torch.long)
        which[torch.tensor(begins, dtype=torch.long)] = torch.arange(len(begins))
        self._cpu = {"blocked": blocked, "kind": kind, "which": which,
                     "begin_ids": torch.tensor(begins, dtype=torch.long)}
        self._dev: dict[torch.device, dict[str, torch.Tensor]] = {}
        self.prompt_len: int | None = None
        self._seen: torch.Tensor | None = None

    def _on(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device not in self._dev:
            self._dev[device] = {k: x.to(device) for k, x in self._cpu.items()}
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
        which = self._cpu["which"]
        for row in input_ids.cpu():
            grammar = StreamGrammar(self.registry, self.shapes, self.allow_eos)
            ids = self._strip(row)
            if ids.numel():
                _enter_prompt(ids, self.registry, grammar)
            if grammar.template is None:
                tidx.append(self.outside)
                pos.append(0)
            else:
                tidx.append(int(which[int(grammar.template[0][0])]))
                pos.append(grammar.pos)
        self.prompt_len = int(input_ids.shape[1])
        self._prompt_tidx = torch.tensor(tidx, dtype=torch.long, device=input_ids.device)
        self._prompt_pos = torch.tensor(pos, dtype=torch.long, device=input_ids.device)
        self._tidx, self._pos = self._prompt_tidx, self._prompt_pos

    def _rescan(self, input_ids: torch.Tensor, t: dict[str, torch.Tensor]) -> None:
        """Each row's state read from its generated ids: after its last begin token, else where its prompt left it."""
        gen = input_ids[:, self.prompt_len:]
        steps = gen.shape[1]
        tidx, pos = self._prompt_tidx, self._prompt_pos + steps
        if steps:
            is_begin = torch.isin(gen, t["begin_ids"])
            last = torch.where(is_begin, torch.arange(steps, device=gen.device), -1).max(1).values
            has = last >= 0
            tidx = torch.where(has, t["which"][gen.gather(1, last.clamp(min=0)[:, None])[:, 0]], tidx)
            pos = torch.where(has, steps - last, pos)
        self._tidx, self._pos = tidx, pos

    def _state(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The ``blocked`` table row of each row of ``input_ids``."""
        seen = self._seen
        if self.prompt_len is None or input_ids.shape[1] < self.prompt_len or \
                input_ids.shape[0] != self._prompt_tidx.shape[0]:
            self.start(input_ids)
            seen = None
        t = self._on(input_ids.device)
        if seen is None or input_ids.shape[1] == seen.shape[1]:
            pass  # the prompt itself (or the same ids again): the state is current
        elif input_ids.shape[1] == seen.shape[1] + 1 and torch.equal(input_ids[:, :-1], seen):
            w = t["which"][input_ids[:, -1]]
            began = w >= 0
            self._tidx = torch.where(began, w, self._tidx)
            self._pos = torch.where(began, 1, self._pos + 1)
        else:
            self._rescan(input_ids, t)
        self._seen = input_ids
        kind = t["kind"]
        return kind[self._tidx, self._pos.clamp(max=kind.shape[1] - 1)], t

    def allowed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """BoolTensor ``[B, V]``: the ids each row may take next."""
        kind, t = self._state(input_ids)
        return ~t["blocked"][kind]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        kind, t = self._state(input_ids)
        return scores.masked_fill(t["blocked"][kind][:, :scores.shape[1]], float("-inf"))


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
