"""Small local tokenizer folders of the three families a base LLM may bring (built here, nothing downloaded):
see :func:`modalities.llm.tiny.make_tiny_tokenizer`. Each folder holds ``tokenizer.json`` and
``tokenizer_config.json`` as ``save_pretrained`` writes them."""

from __future__ import annotations

from pathlib import Path

from modalities.llm.tiny import TOKENIZER_FAMILIES as FAMILIES
from modalities.llm.tiny import make_tiny_tokenizer

from .conftest import REPO

__all__ = ["FAMILIES", "build", "corpus"]


def corpus(n: int = 3000) -> list[str]:
    lines = (REPO / "samples/text/corpus/train.txt").read_text(encoding="utf-8").splitlines()
    return [s for s in lines if s.strip()][:n]


def build(family: str, folder: Path) -> Path:
    """Writes the ``family`` tokenizer (700 ids for byte_bpe, 858 for sp_bpe, 600 for unigram) into ``folder``."""
    return make_tiny_tokenizer(folder, corpus(), family, {"byte_bpe": 700, "sp_bpe": 859, "unigram": 600}[family])
