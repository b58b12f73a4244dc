"""Documents: the demo's mixed caption/image and transcript/audio documents (``documents.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path


def build_documents(out: Path) -> None:
    """``documents.jsonl``: the mixed documents of the demo, a caption then its image (the scikit-image
    photographs), a transcript then its audio."""
    rows = [[{"text": r["caption"]}, {"image": f"images/{r['file']}"}]
            for r in map(json.loads, (out / "images/captions.jsonl").read_text().splitlines())
            if r["source"].startswith("skimage/")]
    rows += [[{"text": r["text"]}, {"audio": f"audio/{r['file']}"}]
             for r in map(json.loads, (out / "audio/transcripts.jsonl").read_text().splitlines())]
    (out / "documents.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"documents: {len(rows)}")
