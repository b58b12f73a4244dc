"""The shared vocabulary: one global id space for every modality.

Layout (ids grow left to right, nothing ever moves)::

    [ special slots (num_special_slots) | modality 1 | modality 2 | ... | padding ]

* Special slots come first. The base specials (``<pad> <bos> <eos> <eor> <eof>``
  and the 64 geometry digits ``<#0> ... <#63>`` used by segment headers) take the
  first ids; each media modality adds its begin/end pair when it is added; the
  remaining slots are room for more specials without moving any modality.
* Each modality owns one contiguous range ``[offset, offset + size)``, in the
  order added. Adding a modality at the end keeps every existing id.
* ``vocab_size`` is padded up to a multiple of ``pad_multiple`` (128) so the
  embedding and output layers have GPU-friendly shapes; ids in the padding are
  never valid.

The layout serialises to JSON with a fingerprint (a hash of the layout).
A model or a token file records the fingerprint of the registry it was made
with and refuses any other.

**On top of a base LLM** (``VocabRegistry(base=BaseVocab...)``, what
:class:`~modalities.multimodal.MultimodalTokenizer` builds when its text
tokenizer comes from :meth:`TextTokenizer.from_hf <modalities.text.TextTokenizer.from_hf>`)::

    [ base tokenizer's ids (text, offset 0) | mmtok special slots | modality 2 | ... | padding ]

* Text ids are the base tokenizer's own ids, so a prompt means to the LLM what it always meant.
* ``<bos>``/``<eos>``/``<pad>`` are the base's own tokens where its ``tokenizer_config.json``
  names them; every other mmtok control (begin/end of each modality, ``<eor>``, ``<eof>``,
  the geometry digits, a ``<pad>`` the base lacks) gets a slot after the base range.
* The base's other special tokens (chat markers, reserved slots) have modality 0 like
  controls but belong to no mmtok stream: text never produces them and the stream
  grammar never allows them.
* The fingerprint covers the base (the SHA-256 of its ``tokenizer.json``), so token
  files made on another base are refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .data.fileio import atomic_write_text, read_json

__all__ = [
    "BaseVocab",
    "KINDS",
    "KIND_NDIM",
    "Modality",
    "RegistryError",
    "VocabMismatchError",
    "VocabRegistry",
]

FORMAT = "mmtok-registry"
FORMAT_VERSION = 1  #: written for the own layout (unchanged since the first release)
FORMAT_VERSION_BASE = 2  #: written for a layout on a base vocabulary

#: modality kinds and the number of dimensions of their local codes
#: (text ``[n]``, image ``[h, w]``, audio ``[K, T]``, video ``[t, h, w]``).
KIND_NDIM = {"text": 1, "image": 2, "audio": 2, "video": 3}
KINDS = tuple(KIND_NDIM)

#: base of the geometry digits ``<#0>..<#63>`` and digits per dimension in a header
DIGIT_BASE = 64
DIGITS_PER_DIM = 3
MAX_DIM = DIGIT_BASE**DIGITS_PER_DIM - 1

BASE_SPECIALS = ("<pad>", "<bos>", "<eos>", "<eor>", "<eof>") + tuple(f"<#{d}>" for d in range(DIGIT_BASE))

#: short begin/end names for the standard media modalities; others get
#: ``<|begin:NAME|>`` and ``<|end:NAME|>``.
_BRACKETS = {"image": ("<boi>", "<eoi>"), "video": ("<bov>", "<eov>"), "audio": ("<boa>", "<eoa>")}


#: mmtok controls that a base LLM's tokenizer may provide itself
BASE_CONTROLS = ("<pad>", "<bos>", "<eos>")


class RegistryError(ValueError):
    """Bad use of the registry: unknown modality, out-of-range id, duplicate name..."""


class VocabMismatchError(RegistryError):
    """Two vocabulary layouts disagree (a range moved or resized, a fingerprint differs)."""


@dataclass(frozen=True)
class Modality:
    """One modality's place in the global vocabulary.

    Attributes:
        name: unique name, e.g. ``"text"``, ``"image"``, ``"audio_semantic"``.
        kind: one of :data:`KINDS`; fixes the shape of local codes and the stream layout.
        size: number of local codes (the tokenizer's codebook or vocabulary size).
        offset: first global id of the range.
        index: stable modality index (``0`` is reserved for specials).
        begin, end: names of the special tokens that open/close a segment
            (``None`` for text, which is written bare in a stream).
    """

    name: str
    kind: str
    size: int
    offset: int
    index: int
    begin: str | None
    end: str | None

    @property
    def stop(self) -> int:
        """One past the last global id of the range."""
        return self.offset + self.size

    @property
    def ndim(self) -> int:
        """Number of dimensions of this modality's local codes."""
        return KIND_NDIM[self.kind]


@dataclass(frozen=True)
class BaseVocab:
    """A pretrained LLM's tokenizer that a registry is laid on top of.

    Attributes:
        size: ids the base tokenizer uses, added tokens included (its ``len(tokenizer)``);
            the text range is ``[0, size)``.
        sha256: SHA-256 of the base's ``tokenizer.json`` (part of the registry fingerprint).
        controls: mmtok control name (``"<bos>"``, ``"<eos>"``, ``"<pad>"``) -> the base's own id for it,
            as pairs sorted by name.
        reserved: the base's special tokens as ``(id, content)`` pairs sorted by id (controls among them):
            ids of the text range that text never produces and streams never hold, except as controls.
        name: a label for messages (the folder it came from); not part of the fingerprint, nor of equality.
    """

    size: int
    sha256: str
    controls: tuple[tuple[str, int], ...] = ()
    reserved: tuple[tuple[int, str], ...] = ()
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise RegistryError(f"base vocabulary size must be a positive int, got {self.size!r}")
        for n, i in self.controls:
            if n not in BASE_CONTROLS:
                raise RegistryError(f"base control {n!r} is not one of {list(BASE_CONTROLS)}")
            if not 0 <= i < self.size:
                raise RegistryError(f"base control {n} has id {i}, outside the base vocabulary [0, {self.size})")
        for i, _ in self.reserved:
            if not 0 <= i < self.size:
                raise RegistryError(f"base special token id {i} is outside the base vocabulary [0, {self.size})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the name is left out: it does not change the layout)."""
        return {"size": self.size, "sha256": self.sha256, "controls": dict(self.controls),
                "reserved": {str(i): c for i, c in self.reserved}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> BaseVocab:
        return cls(int(d["size"]), str(d["sha256"]), tuple(sorted((str(k), int(v)) for k, v in d["controls"].items())),
                   tuple(sorted((int(k), str(v)) for k, v in d["reserved"].items())), name)


def _as_ids(ids: Any, what: str) -> torch.Tensor:
    """Turns ints, lists, numpy arrays or tensors into an int64 tensor, refusing floats."""
    if isinstance(ids, torch.Tensor):
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise RegistryError(f"{what} must be an integer tensor, got dtype {ids.dtype}")
        return ids.long()
    t = torch.as_tensor(ids)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise RegistryError(f"{what} must be integers, got {t.dtype} values")
    return t.long()


def _first_bad(mask: torch.Tensor) -> tuple[int, ...]:
    """Index (as a tuple) of the first True in ``mask``."""
    idx = mask.nonzero()[0]
    return tuple(int(i) for i in idx)


def _fmt_pos(pos: tuple[int, ...]) -> str:
    return str(pos[0]) if len(pos) == 1 else str(pos)


class VocabRegistry:
    """The global vocabulary layout shared by every tokenizer and the transformer.

    Example::

        reg = VocabRegistry()
        reg.add_modality("text", 8192)
        reg.add_modality("image", 1024)
        g = reg.to_global("image", torch.tensor([[0, 5], [7, 1023]]))  # LongTensor[2, 2]
        mod, local = reg.to_local(g)         # mod == reg.modality("image").index everywhere
        reg.vocab_size                       # padded to a multiple of 128

    Args:
        num_special_slots: ids reserved for specials before the first media modality.
            Fixed for the life of a layout; leave room for future specials.
        pad_multiple: ``vocab_size`` is rounded up to a multiple of this.
        base: lay the registry on top of a pretrained LLM's tokenizer (see the module
            docstring): the first modality added must be its text range ``[0, base.size)``,
            the special slots follow it.

    The ids of ``<pad>``, ``<bos>``, ``<eos>``, ``<eor>`` and ``<eof>`` are properties of a
    layout (:attr:`pad_id`, :attr:`bos_id`...), not constants.
    """

    def __init__(self, num_special_slots: int = 256, pad_multiple: int = 128, base: BaseVocab | None = None) -> None:
        if num_special_slots < len(BASE_SPECIALS) + 2:
            raise RegistryError(f"num_special_slots={num_special_slots} is too small: the base specials alone "
                                f"need {len(BASE_SPECIALS)}")
        if pad_multiple < 1:
            raise RegistryError(f"pad_multiple must be >= 1, got {pad_multiple}")
        if base is not None and not isinstance(base, BaseVocab):
            raise RegistryError(f"base must be a BaseVocab, got {type(base).__name__}")
        self.num_special_slots = int(num_special_slots)
        self.pad_multiple = int(pad_multiple)
        self.base = base
        #: first id of the special slots (0, or the base vocabulary's size)
        self.special_start = base.size if base is not None else 0
        controls = dict(base.controls) if base is not None else {}
        self._specials: list[str] = [s for s in BASE_SPECIALS if s not in controls]
        self._special_ids: dict[str, int] = {s: self.special_start + i for i, s in enumerate(self._specials)}
        self._special_ids.update(controls)
        self._names: dict[int, str] = {i: s for s, i in self._special_ids.items()}
        if base is not None:
            for i, content in base.reserved:
                self._names.setdefault(i, content)
        self._modalities: list[Modality] = []
        self._by_name: dict[str, Modality] = {}
        self._cache: dict[tuple[str, torch.device], torch.Tensor] = {}

    # ------------------------------------------------------- control ids
    @property
    def pad_id(self) -> int:
        """Id of ``<pad>`` (the base's own pad token on a base vocabulary that has one)."""
        return self._special_ids["<pad>"]

    @property
    def bos_id(self) -> int:
        """Id of ``<bos>`` (the base's own when it has one)."""
        return self._special_ids["<bos>"]

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>`` (the base's own when it has one)."""
        return self._special_ids["<eos>"]

    @property
    def eor_id(self) -> int:
        """Id of ``<eor>``, the end of a row in image/audio/video segments."""
        return self._special_ids["<eor>"]

    @property
    def eof_id(self) -> int:
        """Id of ``<eof>``, the end of a frame in video segments."""
        return self._special_ids["<eof>"]

    @property
    def special_ids(self) -> dict[str, int]:
        """Every mmtok control name -> its global id (slots and the base's own controls)."""
        return dict(self._special_ids)

    @property
    def _slots_stop(self) -> int:
        return self.special_start + self.num_special_slots

    # ------------------------------------------------------------------ build
    def add_special(self, name: str) -> int:
        """Adds a special token and returns its id (existing ids never move)."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"special token name must be a non-empty string, got {name!r}")
        if name in self._special_ids:
            raise RegistryError(f"special token {name!r} already exists (id {self._special_ids[name]})")
        if len(self._specials) >= self.num_special_slots:
            raise RegistryError(f"no free special slot for {name!r}: all {self.num_special_slots} are used; "
                                f"create the registry with a larger num_special_slots")
        self._specials.append(name)
        self._special_ids[name] = self.special_start + len(self._specials) - 1
        self._names[self._special_ids[name]] = name
        self._cache.clear()
        return self._special_ids[name]

    def add_modality(self, name: str, size: int, kind: str | None = None) -> Modality:
        """Appends a modality range of ``size`` ids after the existing ones.

        Args:
            name: unique modality name.
            size: number of local codes (vocabulary or codebook size), >= 1.
            kind: one of :data:`KINDS`; defaults to ``name`` when that is a kind.
        """
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise RegistryError(f"modality name must be a non-empty alphanumeric string (with _ or -), got {name!r}")
        if name in self._by_name or name == "special":
            raise RegistryError(f"modality {name!r} already exists" if name != "special"
                                else "'special' is reserved for the special-token range")
        kind = kind if kind is not None else name
        if kind not in KIND_NDIM:
            raise RegistryError(f"modality {name!r}: unknown kind {kind!r}; expected one of {list(KINDS)} "
                                f"(pass kind= when the name is not a kind)")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise RegistryError(f"modality {name!r}: size must be a positive int, got {size!r}")
        if self.base is not None and not self._modalities and (kind != "text" or size != self.base.size):
            raise RegistryError(f"modality {name!r}: a registry on a base vocabulary of {self.base.size} ids "
                                f"({self.base.name or self.base.sha256[:12]}) starts with that base's text range; "
                                f"got {kind} of size {size} (use TextTokenizer.from_hf on the base's folder)")
        begin = end = None
        if kind != "text":
            begin, end = _BRACKETS.get(name, (f"<|begin:{name}|>", f"<|end:{name}|>"))
            if len(self._specials) + 2 > self.num_special_slots:
                raise RegistryError(f"modality {name!r}: no free special slots for its begin/end tokens")
            for s in (begin, end):
                if s in self._special_ids:
                    raise RegistryError(f"modality {name!r}: special {s!r} already exists")
            self.add_special(begin)
            self.add_special(end)
        offset = 0 if self.base is not None and not self._modalities else self.used_size
        m = Modality(name, kind, size, offset, len(self._modalities) + 1, begin, end)
        self._modalities.append(m)
        self._by_name[name] = m
        self._cache.clear()
        return m

    # ---------------------------------------------------------------- lookups
    @property
    def modalities(self) -> tuple[Modality, ...]:
        """All modalities in the order added."""
        return tuple(self._modalities)

    @property
    def specials(self) -> tuple[str, ...]:
        """Names of the special slots in use; the id of ``specials[i]`` is ``special_start + i``
        (so the position is the id in the own layout). Base-provided controls are in :attr:`special_ids`."""
        return tuple(self._specials)

    @property
    def used_size(self) -> int:
        """Number of ids in use: special slots plus every modality range."""
        return max(self._modalities[-1].stop, self._slots_stop) if self._modalities else self._slots_stop

    @property
    def vocab_size(self) -> int:
        """``used_size`` rounded up to a multiple of ``pad_multiple``."""
        m = self.pad_multiple
        return -(-self.used_size // m) * m

    def modality(self, name_or_index: str | int) -> Modality:
        """The :class:`Modality` with this name or index (index 0 is specials and is not a modality)."""
        if isinstance(name_or_index, str):
            try:
                return self._by_name[name_or_index]
            except KeyError:
                raise RegistryError(f"unknown modality {name_or_index!r}; registered: {list(self._by_name)}") from None
        i = int(name_or_index)
        if not 1 <= i <= len(self._modalities):
            raise RegistryError(f"no modality with index {i}; valid indices are 1..{len(self._modalities)}")
        return self._modalities[i - 1]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def special_id(self, name: str) -> int:
        """Global id of a special token such as ``"<boi>"``."""
        try:
            return self._special_ids[name]
        except KeyError:
            raise RegistryError(f"unknown special token {name!r}") from None

    def special_name(self, token_id: int) -> str:
        """Name of the special token with this id (a control, or one of the base's own special tokens)."""
        try:
            return self._names[token_id]
        except KeyError:
            raise RegistryError(f"id {token_id} is not an assigned special token") from None

    def digit_id(self, d: int) -> int:
        """Id of geometry digit ``<#d>``."""
        if not 0 <= d < DIGIT_BASE:
            raise RegistryError(f"geometry digit must be in [0, {DIGIT_BASE}), got {d}")
        return self._special_ids["<#0>"] + d

    def describe(self, token_id: int) -> str:
        """Human-readable name of any valid global id (for error messages)."""
        if token_id in self._names:
            return self._names[token_id]
        for m in self._modalities:
            if m.offset <= token_id < m.stop:
                return f"{m.name}:{token_id - m.offset}"
        return f"invalid id {token_id}"

    # -------------------------------------------------------------- vectorised
    def to_global(self, modality: str, local_ids: Any) -> torch.Tensor:
        """Maps local codes of ``modality`` to global ids (any shape, same shape out).

        Raises :class:`RegistryError` naming the first position out of ``[0, size)``.
        """
        m = self.modality(modality)
        t = _as_ids(local_ids, f"local ids for modality {modality!r}")
        bad = (t < 0) | (t >= m.size)
        if bad.any():
            pos = _first_bad(bad)
            raise RegistryError(f"local id {int(t[pos])} at position {_fmt_pos(pos)} is out of range "
                                f"[0, {m.size}) for modality {m.name!r}")
        return t + m.offset

    def _table(self, what: str, device: torch.device) -> torch.Tensor:
        """Cached per-device tensors: range ``stops`` (specials first), ``offsets`` (by modality index), or
        ``index`` (the modality index of every id below ``used_size``; -1 where an id is not valid)."""
        key = (what, device)
        if key not in self._cache:
            if what == "index":
                vals = torch.full((self.used_size,), -1, dtype=torch.long)
                for m in self._modalities:
                    vals[m.offset:m.stop] = m.index
                vals[list(self._names)] = 0  # controls, and the base's own special tokens
                self._cache[key] = vals.to(device)
            else:
                vals = ([self.num_special_slots] + [m.stop for m in self._modalities] if what == "stops"
                        else [0] + [m.offset for m in self._modalities])
                self._cache[key] = torch.tensor(vals, dtype=torch.long, device=device)
        return self._cache[key]

    def ids_of(self, name: str, device: torch.device | str = "cpu") -> torch.Tensor:
        """BoolTensor[vocab_size]: the ids that are codes of modality ``name`` (on a base vocabulary the
        text range without the base's special tokens)."""
        m = self.modality(name)
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        mask[:self.used_size] = self._table("index", torch.device("cpu")) == m.index
        return mask.to(device)

    def modality_of(self, ids: Any) -> torch.Tensor:
        """Modality index of each global id (``0`` for specials), same shape as ``ids``.

        Raises :class:`RegistryError` naming the first id that is negative, in the
        padding, beyond the vocabulary, or an unassigned special slot.
        """
        t = _as_ids(ids, "global ids")
        if self.base is None:  # ranges only: a binary search, no table
            bad = (t < 0) | (t >= self.used_size) | ((t >= len(self._specials)) & (t < self.num_special_slots))
            index = None
        else:
            index = self._table("index", t.device)[t.clamp(0, self.used_size - 1)]
            bad = (t < 0) | (t >= self.used_size) | (index < 0)
        if bad.any():
            pos = _first_bad(bad)
            v = int(t[pos])
            free = self.special_start + len(self._specials) <= v < self._slots_stop
            why = "an unassigned special slot" if free else f"outside the vocabulary [0, {self.used_size})"
            raise RegistryError(f"global id {v} at position {_fmt_pos(pos)} is {why}")
        return torch.bucketize(t, self._table("stops", t.device), right=True) if index is None else index

    def to_local(self, global_ids: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Splits global ids into ``(modality_index, local_id)`` tensors of the same shape.

        Specials have modality index 0 and local id equal to their global id.
        """
        t = _as_ids(global_ids, "global ids")
        mod = self.modality_of(t)
        return mod, t - self._table("offsets", t.device)[mod]

    # ----------------------------------------------------------- serialisation
    def _layout(self) -> dict[str, Any]:
        out = {
            "num_special_slots": self.num_special_slots,
            "pad_multiple": self.pad_multiple,
            "specials": list(self._specials),
            "modalities": [{k: v for k, v in asdict(m).items() if k != "index"} for m in self._modalities],
        }
        if self.base is not None:  # absent in the own layout, so its fingerprints never change
            out["base"] = self.base.to_dict()
        return out

    @property
    def fingerprint(self) -> str:
        """Hex digest identifying this exact layout (16 chars of SHA-256)."""
        blob = json.dumps(self._layout(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, with format, version, vocab_size and fingerprint."""
        version = FORMAT_VERSION if self.base is None else FORMAT_VERSION_BASE
        return {"format": FORMAT, "version": version, **self._layout(),
                "vocab_size": self.vocab_size, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "registry dict") -> VocabRegistry:
        """Rebuilds a registry, checking format, consistency and fingerprint."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise RegistryError(f"{source}: not an mmtok registry (format field is "
                                f"{d.get('format') if isinstance(d, dict) else type(d).__name__!r})")
        if d.get("version") not in (FORMAT_VERSION, FORMAT_VERSION_BASE):
            raise RegistryError(f"{source}: registry format version {d.get('version')} is not supported "
                                f"(this mmtok reads versions {FORMAT_VERSION} and {FORMAT_VERSION_BASE})")
        try:
            return cls._replay(d, source)
        except KeyError as e:
            raise RegistryError(f"{source}: missing field {e.args[0]!r}") from None
        except (TypeError, AttributeError, IndexError) as e:
            raise RegistryError(f"{source}: malformed registry ({e})") from None

    @classmethod
    def _replay(cls, d: dict[str, Any], source: str) -> VocabRegistry:
        base = BaseVocab.from_dict(d["base"], source) if d.get("base") is not None else None
        reg = cls(d["num_special_slots"], d["pad_multiple"], base)
        specials = d["specials"]
        mods = d["modalities"]
        first = list(reg._specials)
        if list(specials[: len(first)]) != first:
            raise RegistryError(f"{source}: base special tokens differ from this mmtok version's")
        extra = list(specials[len(first):])
        for m in mods:
            # replay the history: specials added before this modality's brackets come first
            if m.get("begin") in extra:
                for s in extra[: extra.index(m["begin"])]:
                    reg.add_special(s)
                extra = extra[extra.index(m["begin"]) + 2:]
            added = reg.add_modality(m["name"], m["size"], m["kind"])
            if added.offset != m["offset"] or added.begin != m.get("begin") or added.end != m.get("end"):
                raise VocabMismatchError(f"{source}: modality {m['name']!r} is inconsistent with its position "
                                         f"(stored offset {m['offset']}, recomputed {added.offset})")
        for s in extra:
            reg.add_special(s)
        if reg.specials != tuple(specials):
            raise RegistryError(f"{source}: special tokens are not in the order this layout implies")
        fp = d.get("fingerprint")
        if fp is not None and fp != reg.fingerprint:
            raise VocabMismatchError(f"{source}: fingerprint {fp} does not match its contents "
                                     f"({reg.fingerprint}); the file was edited or is corrupt")
        return reg

    def save(self, path: str | Path) -> Path:
        """Writes the layout as JSON (atomically: write, then rename)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path, compatible_with: VocabRegistry | None = None) -> VocabRegistry:
        """Reads a layout written by :meth:`save`.

        Args:
            compatible_with: an earlier layout that this one must extend (same
                specials and modality ranges, possibly more appended); a conflict
                raises :class:`VocabMismatchError` naming the modality.
        """
        path = Path(path)
        d = read_json(path, RegistryError, "registry file")
        reg = cls.from_dict(d, source=str(path))
        if compatible_with is not None:
            compatible_with.check_extended_by(reg)
        return reg

    def check_extended_by(self, other: VocabRegistry) -> None:
        """Raises :class:`VocabMismatchError` unless ``other`` keeps every id of ``self``.

        ``other`` may add specials and append modalities; it may not move,
        resize or re-kind an existing modality, nor renumber a special.
        """
        if other.base != self.base:
            def what(b: BaseVocab | None) -> str:
                return "the own layout" if b is None else f"base {b.name or '?'} ({b.size} ids, sha256 {b.sha256[:12]})"
            raise VocabMismatchError(f"base vocabularies differ: {what(self.base)} vs {what(other.base)}")
        if other.num_special_slots != self.num_special_slots:
            raise VocabMismatchError(f"special slots differ: {self.num_special_slots} vs {other.num_special_slots}; "
                                     f"every modality range would move")
        for s, i in self._special_ids.items():
            if other._special_ids.get(s) != i:
                got = other._names.get(i, "nothing")
                raise VocabMismatchError(f"special token {s!r} (id {i}) is {got!r} in the other layout")
        for m in self._modalities:
            if m.name not in other:
                raise VocabMismatchError(f"modality {m.name!r} is missing from the other layout")
            o = other.modality(m.name)
            if (o.offset, o.size, o.kind) != (m.offset, m.size, m.kind):
                raise VocabMismatchError(
                    f"modality {m.name!r} conflicts: ids [{m.offset}, {m.stop}) kind {m.kind} here, "
                    f"[{o.offset}, {o.stop}) kind {o.kind} in the other layout")

    def require_fingerprint(self, expected: str, what: str = "this model") -> None:
        """Raises :class:`VocabMismatchError` if this layout is not the one ``what`` was made with."""
        if expected != self.fingerprint:
            raise VocabMismatchError(f"{what} was made with vocabulary {expected}, but the registry is "
                                     f"{self.fingerprint}; re-tokenise or load the matching registry")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VocabRegistry) and self._layout() == other._layout()

    def __repr__(self) -> str:
        mods = ", ".join(f"{m.name}[{m.offset}:{m.stop}]" for m in self._modalities)
        on = f"base={self.base.name or self.base.sha256[:12]}({self.base.size}), " if self.base is not None else ""
        return f"VocabRegistry({on}specials={len(self._specials)}/{self.num_special_slots}, {mods}, " \
               f"vocab_size={self.vocab_size}, fingerprint={self.fingerprint})"
