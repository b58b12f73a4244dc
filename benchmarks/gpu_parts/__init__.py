"""The parts of ``benchmarks/gpu_suite.py``, one module per job: each part is a function ``part(ctx) -> dict`` that
measures one thing against its baseline in the same run (see :mod:`gpu_parts.common`) and returns its table rows
(``rows``), its pass/fail checks (``checks``) and whatever detail it has. :data:`PARTS` names them in run order."""

from __future__ import annotations

from collections.abc import Callable

from . import codecs, llm, lm, pretok, text, vq_train
from .common import Context

PARTS: dict[str, Callable[[Context], dict]] = {
    "vq_train": vq_train.run,
    "pretok": pretok.run,
    "lm": lm.run,
    "codecs": codecs.run,
    "text": text.run,
    "llm_generate_100m": llm.generate_100m,
    "llm_generate_tiny": llm.generate_tiny,
    "stream_cuda": llm.stream_cuda,
    "llm_packed": llm.packed,
    "lm_hf_bf16": llm.lm_hf_bf16,
}

__all__ = ["PARTS", "Context"]
