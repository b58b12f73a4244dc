"""The mixed token stream: packing segments of any modality into one id sequence and back.

Layout of one document (``[...]`` optional)::

    [<bos>] segment segment ... [<eos>]

* **text** segments are written bare: their global ids are in the text range,
  so a run of text ids is a text segment. Adjacent text segments of the same
  modality therefore merge, and empty ones vanish (see :func:`canonical`).
* **media** segments (image ``[h, w]``, audio ``[K, T]``, video ``[t, h, w]``)
  are bracketed and carry their geometry twice, once as a header and once as
  separators::

      <boi> <#..><#..><#..> <#..><#..><#..>  c c c <eor> c c c <eor>  <eoi>
            '---- h ----'   '---- w ----'    '--- row 0 ---' '- row 1 -'

  The header writes each dimension as three base-64 digits (``<#0>..<#63>``,
  so up to 262143). Every row ends with ``<eor>``; in video every frame ends
  with ``<eof>`` after its last row's ``<eor>``. Audio rows are codebooks.

Because the header fixes the length and the separators fix the positions,
every token after ``<boi>`` has exactly one allowed class, so a decoder can
recover every segment and its geometry from the ids alone, a malformed stream
fails at the first wrong position, and a constrained sampler can follow the
same grammar (:func:`segment_template`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from .registry import DIGIT_BASE, DIGITS_PER_DIM, MAX_DIM, Modality, RegistryError, VocabRegistry

__all__ = ["Segment", "StreamFormatError", "TokenSequence", "canonical", "pack", "segment_length", "segment_template",
           "unpack"]

#: marker for "a code of the segment's modality" in a segment template
CODE = -1
#: the layout of local codes per modality kind
SHAPE_DOC = {"text": "[n]", "image": "[h, w]", "audio": "[K, T] (codebooks x frames)", "video": "[t, h, w]"}


class StreamFormatError(ValueError):
    """A token stream breaks the format; ``position`` is the index of the first bad id."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message if position is None else f"position {position}: {message}")
        self.position = position


@dataclass(eq=False)
class Segment:
    """One piece of a document: local codes of a single modality.

    Attributes:
        modality: registry name, e.g. ``"text"`` or ``"image"``.
        codes: LongTensor of *local* ids; shape by kind: text ``[n]``,
            image ``[h, w]``, audio ``[K, T]`` (codebooks x frames), video ``[t, h, w]``.
    """

    modality: str
    codes: torch.Tensor = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.codes, torch.Tensor):
            self.codes = torch.as_tensor(self.codes, dtype=torch.long)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Segment) and self.modality == other.modality
                and self.codes.shape == other.codes.shape and torch.equal(self.codes.cpu(), other.codes.cpu()))

    def __repr__(self) -> str:
        return f"Segment({self.modality!r}, shape={self.shape})"


@dataclass
class TokenSequence:
    """A packed document.

    Attributes:
        ids: LongTensor[T] of global ids.
        modality: LongTensor[T]; the registry index of the modality each position
            belongs to. Structural tokens of a media segment (brackets, header,
            separators) count as that segment's modality; ``<bos>``/``<eos>`` are 0.
    """

    ids: torch.Tensor
    modality: torch.Tensor

    def __len__(self) -> int:
        return int(self.ids.numel())

    def to(self, device: torch.device | str) -> TokenSequence:
        return TokenSequence(self.ids.to(device), self.modality.to(device))


# --------------------------------------------------------------------- layout
def _header(reg: VocabRegistry, shape: Sequence[int]) -> list[int]:
    ids = []
    for n in shape:
        if not 1 <= n <= MAX_DIM:
            raise RegistryError(f"dimension {n} is out of range [1, {MAX_DIM}] for a segment header")
        ids += [reg.digit_id((n // DIGIT_BASE**k) % DIGIT_BASE) for k in reversed(range(DIGITS_PER_DIM))]
    return ids


def segment_length(shape: Sequence[int]) -> int:
    """Number of ids a media segment of this shape takes, brackets and header included."""
    row = shape[-1] + 1  # codes and their <eor>
    n = shape[0] * row if len(shape) == 2 else shape[0] * (shape[1] * row + 1)  # video frames end with <eof>
    return 2 + len(shape) * DIGITS_PER_DIM + n


def segment_template(reg: VocabRegistry, m: Modality, shape: Sequence[int], limit: int | None = None
                     ) -> torch.Tensor:
    """The token pattern of a media segment of this shape (its first ``limit`` ids, if given).

    Returns a LongTensor with the begin token, the header, ``CODE`` (-1) at each
    code position, separators and the end token. :func:`pack` fills the
    ``CODE`` slots; :func:`unpack` and constrained decoding check against it.
    Built arithmetically, so a prefix of a huge declared shape costs only ``limit``.
    """
    if len(shape) != m.ndim:
        raise RegistryError(f"{m.name} codes must have {m.ndim} dims, got shape {tuple(shape)}")
    full = segment_length(shape)
    n = full if limit is None else min(full, limit)
    head = torch.tensor([reg.special_id(m.begin), *_header(reg, shape)], dtype=torch.long)[:n]
    j = torch.arange(n - head.numel())  # position within body (+ end token)
    w = shape[-1]
    body = torch.full_like(j, CODE)
    frame = j % (shape[1] * (w + 1) + 1) if m.ndim == 3 else j
    body[frame % (w + 1) == w] = reg.eor_id
    if m.ndim == 3:
        body[frame == shape[1] * (w + 1)] = reg.eof_id
    body[j == full - 2 - len(shape) * DIGITS_PER_DIM] = reg.special_id(m.end)  # after begin + header
    return torch.cat([head, body])


# ----------------------------------------------------------------------- pack
def canonical(segments: Iterable[Segment]) -> list[Segment]:
    """The form :func:`unpack` returns: adjacent text segments of one modality merged, empty text dropped."""
    out: list[Segment] = []
    for s in segments:
        if s.codes.ndim == 1 and s.codes.numel() == 0:
            continue
        if out and out[-1].modality == s.modality and s.codes.ndim == 1 and out[-1].codes.ndim == 1:
            out[-1] = Segment(s.modality, torch.cat([out[-1].codes, s.codes.long().cpu()]))
        else:
            out.append(Segment(s.modality, s.codes.long().cpu()))
    return out


def pack(segments: Iterable[Segment], registry: VocabRegistry, *, bos: bool = False, eos: bool = False
         ) -> TokenSequence:
    """Writes segments as one stream of global ids.

    ``unpack(pack(s).ids) == canonical(s)`` for every valid list ``s``, and
    ``pack(unpack(ids)).ids == ids`` for every valid stream.

    Raises:
        RegistryError: unknown modality, wrong number of dims, empty media, or a
            local code out of range (naming segment and position).
    """
    ids: list[torch.Tensor] = []
    mods: list[torch.Tensor] = []
    if bos:
        ids.append(torch.tensor([registry.bos_id]))
        mods.append(torch.zeros(1, dtype=torch.long))
    for k, seg in enumerate(segments):
        if not isinstance(seg, Segment):
            raise TypeError(f"segment {k}: expected a Segment, got {type(seg).__name__}")
        m = registry.modality(seg.modality)
        codes = seg.codes.cpu()
        if codes.ndim != m.ndim:
            raise RegistryError(f"segment {k} ({m.name}): codes must have {m.ndim} dims ({SHAPE_DOC[m.kind]}), "
                                f"got shape {tuple(codes.shape)}")
        try:
            g = registry.to_global(m.name, codes)
        except RegistryError as e:
            raise RegistryError(f"segment {k}: {e}") from None
        if m.kind == "text":
            out = g
        else:
            if codes.numel() == 0:
                raise RegistryError(f"segment {k} ({m.name}): empty codes of shape {tuple(codes.shape)}")
            out = segment_template(registry, m, codes.shape)
            out[out == CODE] = g.flatten()
        ids.append(out)
        mods.append(torch.full_like(out, m.index))
    if eos:
        ids.append(torch.tensor([registry.eos_id]))
        mods.append(torch.zeros(1, dtype=torch.long))
    if not ids:
        return TokenSequence(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    return TokenSequence(torch.cat(ids), torch.cat(mods))


# --------------------------------------------------------------------- unpack
def _a_code(m: Modality) -> str:
    return f"{'an' if m.name[0] in 'aeiou' else 'a'} {m.name} code"


def _read_header(reg: VocabRegistry, ids: torch.Tensor, pos: int, m: Modality) -> list[int]:
    n_digits = m.ndim * DIGITS_PER_DIM
    first_digit = reg.digit_id(0)
    shape = []
    for d in range(m.ndim):
        value = 0
        for k in range(DIGITS_PER_DIM):
            p = pos + d * DIGITS_PER_DIM + k
            if p >= ids.numel():
                raise StreamFormatError(f"stream ends inside the header of the {m.name} segment opened at "
                                        f"{pos - 1} (expected {n_digits} geometry digits <#..>)", p)
            t = int(ids[p])
            if not first_digit <= t < first_digit + DIGIT_BASE:
                raise StreamFormatError(f"expected a geometry digit <#0>..<#{DIGIT_BASE - 1}> in the header of the "
                                        f"{m.name} segment opened at {pos - 1}, got {reg.describe(t)}", p)
            value = value * DIGIT_BASE + (t - first_digit)
        if value == 0:
            raise StreamFormatError(f"{m.name} segment opened at {pos - 1} declares a zero dimension",
                                    pos + d * DIGITS_PER_DIM)
        shape.append(value)
    return shape


def _read_media(reg: VocabRegistry, ids: torch.Tensor, mod: torch.Tensor, start: int, m: Modality
                ) -> tuple[Segment, int]:
    """Reads the media segment whose begin token is at ``start``; returns it and the next position."""
    shape = _read_header(reg, ids, start + 1, m)
    need = segment_length(shape)
    tpl = segment_template(reg, m, shape, limit=ids.numel() - start)
    stop = start + tpl.numel()
    got = ids[start:stop]
    is_code = tpl == CODE  # tpl is cut where the stream ends, so got and tpl have one length
    ok = torch.where(is_code, mod[start:stop] == m.index, got == tpl)
    if not bool(ok.all()):
        off = int((~ok).nonzero()[0])
        want = _a_code(m) if int(tpl[off]) == CODE else reg.special_name(int(tpl[off]))
        raise StreamFormatError(f"expected {want} in the {m.name} segment of shape {tuple(shape)} opened at {start}, "
                                f"got {reg.describe(int(got[off]))}", start + off)
    if tpl.numel() < need:
        raise StreamFormatError(f"stream ends inside the {m.name} segment of shape {tuple(shape)} opened at {start} "
                                f"({need - tpl.numel()} more tokens expected)", ids.numel())
    codes = (got[is_code] - m.offset).reshape(shape)
    return Segment(m.name, codes), stop


def unpack(ids: torch.Tensor | Sequence[int], registry: VocabRegistry) -> list[Segment]:
    """Reads a stream written by :func:`pack` back into segments (in canonical form).

    Accepts one leading ``<bos>`` and one trailing ``<eos>``; anything else out
    of place raises :class:`StreamFormatError` naming the position and what was
    expected there. Invalid ids raise :class:`RegistryError` naming the position.
    """
    t = torch.as_tensor(ids).cpu()
    if t.ndim != 1:
        raise StreamFormatError(f"a stream must be a 1-D sequence of ids, got shape {tuple(t.shape)}")
    mod = registry.modality_of(t)
    t = t.long()
    n = t.numel()
    begin_of = {registry.special_id(m.begin): m for m in registry.modalities if m.begin}
    pos = 1 if n and int(t[0]) == registry.bos_id else 0
    end = n - 1 if n > pos and int(t[-1]) == registry.eos_id else n
    # positions where the modality changes bound text runs without a per-token loop
    change = ((mod[1:] != mod[:-1]).nonzero().flatten() + 1).tolist() + [n]
    segments: list[Segment] = []
    ci = 0
    while pos < end:
        mi = int(mod[pos])
        if mi != 0:
            m = registry.modality(mi)
            if m.kind != "text":
                raise StreamFormatError(f"{m.name} code {registry.describe(int(t[pos]))} outside any {m.name} segment "
                                        f"(expected text or a begin token such as {m.begin})", pos)
            while change[ci] <= pos:
                ci += 1
            stop = min(change[ci], end)
            segments.append(Segment(m.name, t[pos:stop] - m.offset))
            pos = stop
            continue
        tok = int(t[pos])
        if tok not in begin_of:
            where = "at the start only" if tok == registry.bos_id else "at the end only" if tok == registry.eos_id else None
            hint = f" ({registry.special_name(tok)} is allowed {where})" if where else ""
            raise StreamFormatError(f"unexpected {registry.special_name(tok)} outside any segment; expected text "
                                    f"or a begin token{hint}", pos)
        seg, pos = _read_media(registry, t[:end], mod[:end], pos, begin_of[tok])
        segments.append(seg)
    return segments
