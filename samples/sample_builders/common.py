"""Paths, constants and helpers that several sample builders share."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent.parent  # samples/
SAMPLE_RATE = 16_000


def _square(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.LANCZOS)


def _speaker_source(speaker: str) -> str:
    """The source of every recorded clip: its speaker, so that a voice is heard on one side of a split only (and
    one person in two packages would be one source)."""
    return f"speaker {speaker}"


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
