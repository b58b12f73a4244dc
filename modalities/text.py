"""Text subwords on Hugging Face ``tokenizers``: mmtok's own byte-level BPE, or a pretrained LLM's tokenizer.

**Own vocabulary** (:meth:`TextTokenizer.train`): byte-level BPE with no normaliser
and no special tokens of its own: every Unicode string maps to bytes, bytes to
subwords, and back exactly. Control tokens (``<bos>``, ``<boi>``...) live in the
shared :class:`~modalities.registry.VocabRegistry`, outside the text range, so a
caption containing the literal text ``"<boi>"`` is just text.

**A base LLM's vocabulary** (:meth:`TextTokenizer.from_hf`): wraps a local
``tokenizer.json`` (and ``tokenizer_config.json`` when present). ``encode(s)`` is
``AutoTokenizer.from_pretrained(folder)(s, add_special_tokens=False).input_ids`` for
every string that does not contain the text of one of the base's special tokens. In
one that does, that text is split into ordinary subwords (mmtok's rule: text never
becomes a control id, so a caption cannot forge ``<|endoftext|>``): for BPE bases
this is ``AutoTokenizer.from_pretrained(folder, split_special_tokens=True)``; for
Unigram bases, whose model holds its special tokens as pieces, those pieces are also
kept out of the segmentation. The model's unknown token (``<unk>``) is ordinary text.
Decoding is the base's own ``decode``: exact for byte-level BPE and SentencePiece BPE
with byte fallback; for models with a normaliser or an unknown token (T5's Unigram)
``decode(encode(s))`` is the normalised string, with unknown characters lost, exactly as
with the base tokenizer (:attr:`TextTokenizer.lossless` says which).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from .base import Tokenizer, TokenizerLoadError
from .data.fileio import atomic_write_bytes, atomic_write_text
from .registry import BASE_CONTROLS, BaseVocab, RegistryError

__all__ = ["TextTokenizer", "TextTokenizerConfig"]

HF_FILE = "tokenizer.json"
HF_CONFIG = "tokenizer_config.json"


@dataclass
class TextTokenizerConfig:
    """Settings for training a :class:`TextTokenizer`.

    Attributes:
        vocab_size: target number of subwords, including the 256 byte symbols.
        min_frequency: a pair must occur this often to be merged.
    """

    vocab_size: int = 8192
    min_frequency: int = 2


def _new_hf() -> HFTokenizer:
    tk = HFTokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    return tk


def _check_unicode(texts: Sequence[str], single: bool = False) -> None:
    """Raises ``ValueError`` at the first lone surrogate (a ``str`` that cannot be UTF-8), naming item and position."""
    for i, s in enumerate(texts):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as e:
            where = "" if single else f"item {i}, "
            raise ValueError(f"encode: text is not valid Unicode: lone surrogate {s[e.start]!r} at {where}position "
                             f"{e.start} (decode bytes with errors='replace', not 'surrogateescape')") from None


class TextTokenizer(Tokenizer):
    """Byte-level BPE text tokenizer.

    ``encode(str) -> list[int]`` and ``encode(list[str]) -> list[list[int]]`` give
    *local* ids in ``[0, codebook_size)``; ``decode`` inverts them exactly.

    Example::

        tok = TextTokenizer.train(["samples/text/corpus/train.txt"], vocab_size=4096)
        ids = tok.encode("A photo of a cat: <boi>")   # list[int], ordinary text ids
        assert tok.decode(ids) == "A photo of a cat: <boi>"
    """

    kind: ClassVar[str] = "text"

    def __init__(self, hf_tokenizer: HFTokenizer, base: BaseVocab | None = None, raw: bytes | None = None) -> None:
        if base is None and hf_tokenizer.get_added_tokens_decoder():
            raise TokenizerLoadError("the Hugging Face tokenizer has added/special tokens; mmtok keeps all "
                                     "control tokens in the registry, so text must have none "
                                     "(use TextTokenizer.from_hf for a pretrained LLM's tokenizer)")
        self._tk = hf_tokenizer
        self._base = base
        self._raw = raw  # the base's tokenizer.json bytes, saved verbatim (its hash is in the fingerprint)
        self._reserved: frozenset[int] = frozenset()
        if base is not None:
            hf_tokenizer = _without_reserved_pieces(hf_tokenizer, base, raw)
            hf_tokenizer.encode_special_tokens = True  # text never becomes one of the base's special tokens
            self._reserved = frozenset(i for i, _ in base.reserved)
            self._tk = hf_tokenizer
            self._size = base.size
        else:
            self._size = hf_tokenizer.get_vocab_size(with_added_tokens=False)

    # ------------------------------------------------------- a base LLM's
    @classmethod
    def from_hf(cls, folder: str | Path) -> TextTokenizer:
        """Wraps a pretrained LLM's tokenizer from a local folder (never the network).

        Reads ``folder/tokenizer.json`` (the ``tokenizers`` fast format) and, when present,
        ``folder/tokenizer_config.json`` for the names of its ``bos``/``eos``/``pad`` tokens,
        which become the registry's ``<bos>``/``<eos>``/``<pad>``. Global text ids are then the
        base's own ids (see :mod:`modalities.registry`).

        Raises:
            TokenizerLoadError: no such folder, no ``tokenizer.json``, a file that is not valid
                JSON or not a tokenizers file, or a control token named in the config that the
                vocabulary lacks; each naming the file.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise TokenizerLoadError(f"{folder}: no such folder (TextTokenizer.from_hf reads a local folder "
                                     f"holding tokenizer.json; nothing is downloaded)")
        path = folder / HF_FILE
        if not path.is_file():
            raise TokenizerLoadError(f"{folder} has no {HF_FILE}: TextTokenizer.from_hf needs the tokenizers fast "
                                     f"format (AutoTokenizer.from_pretrained(...).save_pretrained(...) writes it)")
        raw = path.read_bytes()
        tk = _parse_hf(raw, path)
        config: dict[str, Any] = {}
        cfg_path = folder / HF_CONFIG
        if cfg_path.is_file():
            try:
                config = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise TokenizerLoadError(f"{cfg_path} is not valid JSON: {e}") from None
            if not isinstance(config, dict):
                raise TokenizerLoadError(f"{cfg_path}: expected a JSON object, got {type(config).__name__}")
        return cls(tk, _base_vocab(tk, raw, config, cfg_path, str(folder)), raw)

    @property
    def base_vocab(self) -> BaseVocab | None:
        """The base LLM vocabulary this tokenizer wraps (``None`` for mmtok's own BPE)."""
        return self._base

    @property
    def lossless(self) -> bool:
        """Whether ``decode(encode(s)) == s`` for every string: true for mmtok's own BPE and for bases
        without a normaliser whose model cannot emit an unknown token (byte-level BPE, BPE with byte
        fallback); false for e.g. T5's Unigram (normaliser, ``<unk>``)."""
        if self._base is None:
            return True
        spec = _spec(self._tk, self._raw)
        model = spec.get("model") or {}
        byte_level = "ByteLevel" in json.dumps(spec.get("pre_tokenizer")) or model.get("byte_fallback") is True
        return spec.get("normalizer") is None and model.get("type") == "BPE" and byte_level

    def register(self, registry: Any, name: str | None = None) -> Any:
        """As :meth:`Tokenizer.register`; a base LLM's tokenizer needs a registry laid on that base."""
        if self._base is not None and registry.base != self._base:
            raise RegistryError(f"this text tokenizer wraps the base vocabulary of {self._base.name or 'a base LLM'} "
                                f"({self._base.size} ids); it needs a registry on that base "
                                f"(VocabRegistry(base=tokenizer.base_vocab); MultimodalTokenizer lays one out itself)")
        return super().register(registry, name)

    # -------------------------------------------------------------- training
    @classmethod
    def train(cls, files_or_iterator: Iterable[str] | Sequence[str | Path], vocab_size: int = 8192,
              min_frequency: int = 2, show_progress: bool = True) -> TextTokenizer:
        """Learns merges from text files (paths) or an iterator of strings.

        Args:
            files_or_iterator: a path or a list/tuple of paths to UTF-8 text files, or any
                other iterable (a generator, ``iter(list_of_strings)``) of strings.
            vocab_size: target vocabulary size (>= 257: the 256 bytes plus merges).
            min_frequency: minimum pair count for a merge.
            show_progress: show the library's progress bar.
        """
        if vocab_size < 257:
            raise ValueError(f"vocab_size must be at least 257 (256 byte symbols + 1 merge), got {vocab_size}")
        tk = _new_hf()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=show_progress)
        if isinstance(files_or_iterator, (str, Path)):
            files_or_iterator = [files_or_iterator]
        if isinstance(files_or_iterator, (list, tuple)):
            for f in files_or_iterator:
                if not isinstance(f, (str, Path)) or not Path(f).is_file():
                    raise FileNotFoundError(f"text corpus file not found: {str(f)[:200]!r} (a list is read as file "
                                            f"paths; pass iter(strings) to train on strings)")
            tk.train([str(f) for f in files_or_iterator], trainer)
        else:
            tk.train_from_iterator(_checked_strings(files_or_iterator), trainer)
        return cls(tk)

    # ------------------------------------------------------------ properties
    @property
    def codebook_size(self) -> int:
        """Number of subwords (the size of the registry's text range)."""
        return self._size

    @property
    def vocab_size(self) -> int:
        return self._size

    @property
    def hf_tokenizer(self) -> HFTokenizer:
        """The underlying Hugging Face tokenizer (for direct use and benchmarks)."""
        return self._tk

    # ------------------------------------------------------------ encode/decode
    def encode(self, text: str | Sequence[str]) -> list[int] | list[list[int]]:
        """Encodes one string to a list of local ids, or a list of strings to a list of lists.

        Batches go through the library's parallel batch path.
        A string that is not valid Unicode (a lone surrogate such as ``"\\ud800"``, e.g. from
        ``errors="surrogateescape"`` decoding) raises ``ValueError`` naming the item and position.
        """
        if isinstance(text, str):
            try:
                ids = self._tk.encode(text, add_special_tokens=False).ids
            except (TypeError, UnicodeError):
                _check_unicode([text], single=True)
                raise
            if self._base is not None:
                self._check_no_reserved(ids, text)
            return ids
        if not isinstance(text, Sequence):
            raise TypeError(f"encode expects a str or a list of str, got {type(text).__name__}")
        for i, s in enumerate(text):
            if not isinstance(s, str):
                raise TypeError(f"encode: item {i} is a {type(s).__name__}, not a str")
        batch = list(text)
        fast = getattr(self._tk, "encode_batch_fast", None)
        try:
            encs = (fast or self._tk.encode_batch)(batch, add_special_tokens=False)
        except (TypeError, UnicodeError):
            _check_unicode(batch)
            raise
        out = [e.ids for e in encs]
        if self._base is not None:
            for ids, s in zip(out, batch, strict=True):
                self._check_no_reserved(ids, s)
        return out

    def _check_no_reserved(self, ids: list[int], text: str) -> None:
        """The rule that text never becomes a control id, checked (the base model itself could break it)."""
        if self._reserved and not self._reserved.isdisjoint(ids):
            bad = next(i for i in ids if i in self._reserved)
            raise ValueError(f"the base tokenizer {self._base.name} turned text {text[:80]!r} into its special "
                             f"token id {bad}; mmtok keeps control ids out of text and cannot encode it")

    def _check_ids(self, ids: Sequence[int] | torch.Tensor, what: str) -> list[int]:
        if isinstance(ids, torch.Tensor):
            if ids.dtype.is_floating_point or ids.ndim != 1:
                raise ValueError(f"{what}: expected a 1-D integer tensor, got {ids.dtype} of shape {tuple(ids.shape)}")
            ids = ids.tolist()
        ids = list(ids)
        for p, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self._size:
                raise ValueError(f"{what}: text id {i!r} at position {p} is out of range [0, {self._size})")
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Decodes local ids back to the exact string (raises on ids outside ``[0, codebook_size)``)."""
        return self._tk.decode(self._check_ids(ids, "decode"), skip_special_tokens=False)

    def decode_batch(self, batch: Sequence[Sequence[int] | torch.Tensor]) -> list[str]:
        """Decodes many id lists at once."""
        checked = [self._check_ids(ids, f"decode_batch item {k}") for k, ids in enumerate(batch)]
        return self._tk.decode_batch(checked, skip_special_tokens=False)

    # --------------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        if self._base is not None:
            return {"vocab_size": self._size, "model": "base", "base": self._base.to_dict()}
        return {"vocab_size": self._size, "model": "byte-level BPE"}

    def _save_files(self, directory: Path) -> None:
        if self._raw is not None:
            atomic_write_bytes(directory / HF_FILE, self._raw)
        else:
            atomic_write_text(directory / HF_FILE, self._tk.to_str())

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> TextTokenizer:
        path = directory / HF_FILE
        if not path.is_file():
            raise TokenizerLoadError(f"{path} is missing")
        if settings.get("model") == "base":
            raw = path.read_bytes()
            tk = _parse_hf(raw, path)
            try:
                base = BaseVocab.from_dict(settings["base"], str(directory))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise TokenizerLoadError(f"{directory / 'config.json'}: bad 'base' settings ({e})") from None
            if hashlib.sha256(raw).hexdigest() != base.sha256:
                raise TokenizerLoadError(f"{path} is not the base tokenizer this folder was saved with "
                                         f"(sha256 {hashlib.sha256(raw).hexdigest()[:12]}, expected {base.sha256[:12]})")
            return cls(tk, base, raw)
        try:
            tk = HFTokenizer.from_file(str(path))
        except Exception as e:  # the library raises a bare Exception on bad JSON
            raise TokenizerLoadError(f"{path} is not a valid tokenizers file: {e}") from None
        tok = cls(tk)
        if "vocab_size" in settings and settings["vocab_size"] != tok.codebook_size:
            raise TokenizerLoadError(f"{path}: vocabulary has {tok.codebook_size} entries but config.json "
                                     f"says {settings['vocab_size']}")
        return tok

    def __repr__(self) -> str:
        on = f", base={self._base.name!r}" if self._base is not None else ""
        return f"TextTokenizer(vocab_size={self._size}{on})"


def _parse_hf(raw: bytes, path: Path) -> HFTokenizer:
    try:
        return HFTokenizer.from_str(raw.decode("utf-8"))
    except Exception as e:  # the library raises a bare Exception on bad JSON
        raise TokenizerLoadError(f"{path} is not a valid tokenizers file: {e}") from None


def _model_unk(spec: dict[str, Any], tk: HFTokenizer) -> int | None:
    """Id of the model's unknown token (ordinary text: the base emits it for characters it cannot spell)."""
    model = spec.get("model") or {}
    if model.get("unk_id") is not None:
        return int(model["unk_id"])
    token = model.get("unk_token")
    return tk.token_to_id(token) if isinstance(token, str) else None


def _spec(tk: HFTokenizer, raw: bytes | None) -> dict[str, Any]:
    """The tokenizer's JSON description: parsed from the file's bytes when we have them (no re-serialising a
    vocabulary of 100k+ entries), else from the library."""
    return json.loads(raw if raw is not None else tk.to_str())


def _without_reserved_pieces(tk: HFTokenizer, base: BaseVocab, raw: bytes | None) -> HFTokenizer:
    """A Unigram model holds its special tokens as pieces of score 0, which Viterbi would pick for their text
    ("<pad>"); give them a score no segmentation takes, so text keeps out of control ids. Other models are kept."""
    spec = _spec(tk, raw)
    model = spec.get("model") or {}
    if model.get("type") != "Unigram" or not base.reserved:
        return tk
    for i, _ in base.reserved:
        if i < len(model["vocab"]):
            model["vocab"][i][1] = -1e9
    return HFTokenizer.from_str(json.dumps(spec))


def _token_name(value: Any) -> str | None:
    """A token as ``tokenizer_config.json`` names it: a string, or ``{"content": ...}`` (AddedToken form)."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _base_vocab(tk: HFTokenizer, raw: bytes, config: dict[str, Any], cfg_path: Path, name: str) -> BaseVocab:
    """The registry's view of a base tokenizer: size, hash, which of its tokens are bos/eos/pad, and its specials."""
    vocab = tk.get_vocab(with_added_tokens=True)
    size = max(vocab.values()) + 1 if vocab else 0
    if size < 1:
        raise TokenizerLoadError(f"{name}/{HF_FILE} has an empty vocabulary")
    controls = []
    for control in BASE_CONTROLS:
        token = _token_name(config.get(control.strip("<>") + "_token"))
        if token is None:
            continue
        token_id = tk.token_to_id(token)
        if token_id is None:
            raise TokenizerLoadError(f"{cfg_path}: {control.strip('<>')}_token {token!r} is not in "
                                     f"{name}/{HF_FILE}'s vocabulary")
        controls.append((control, int(token_id)))
    unk = _model_unk(_spec(tk, raw), tk)
    reserved = tuple(sorted((int(i), t.content) for i, t in tk.get_added_tokens_decoder().items()
                            if t.special and int(i) != unk))
    return BaseVocab(size, hashlib.sha256(raw).hexdigest(), tuple(sorted(controls)), reserved, name)


def _checked_strings(items: Iterable[str]) -> Iterator[str]:
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise TypeError(f"training item {i} is a {type(s).__name__}, not a str")
        yield s
