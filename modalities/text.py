"""Text subwords: byte-level BPE on Hugging Face ``tokenizers``, lossless for every string.

The model has no normaliser and no special tokens of its own: every Unicode
string maps to bytes, bytes to subwords, and back exactly. Control tokens
(``<bos>``, ``<boi>``...) live in the shared :class:`~modalities.registry.VocabRegistry`,
outside the text range, so a caption containing the literal text ``"<boi>"``
is just text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from .base import Tokenizer, TokenizerLoadError
from .data.fileio import atomic_write_text

__all__ = ["TextTokenizer", "TextTokenizerConfig"]

HF_FILE = "tokenizer.json"


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

    def __init__(self, hf_tokenizer: HFTokenizer) -> None:
        if hf_tokenizer.get_added_tokens_decoder():
            raise TokenizerLoadError("the Hugging Face tokenizer has added/special tokens; mmtok keeps all "
                                     "control tokens in the registry, so text must have none")
        self._tk = hf_tokenizer
        self._size = hf_tokenizer.get_vocab_size(with_added_tokens=False)

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
                return self._tk.encode(text, add_special_tokens=False).ids
            except (TypeError, UnicodeError):
                _check_unicode([text], single=True)
                raise
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
        return [e.ids for e in encs]

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
        return {"vocab_size": self._size, "model": "byte-level BPE"}

    def _save_files(self, directory: Path) -> None:
        atomic_write_text(directory / HF_FILE, self._tk.to_str())

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> TextTokenizer:
        path = directory / HF_FILE
        if not path.is_file():
            raise TokenizerLoadError(f"{path} is missing")
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
        return f"TextTokenizer(vocab_size={self._size})"


def _checked_strings(items: Iterable[str]) -> Iterator[str]:
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise TypeError(f"training item {i} is a {type(s).__name__}, not a str")
        yield s
