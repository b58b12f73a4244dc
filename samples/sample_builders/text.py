"""Text: the Python 3.11 documentation sources (Debian ``python3.11-doc``)."""

from __future__ import annotations

from pathlib import Path

DOC_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")

# --------------------------------------------------------------------- text
TEXT_TRAIN_DIRS = ["tutorial", "howto", "reference", "library/stdtypes.rst.txt",
                   "library/functions.rst.txt", "library/exceptions.rst.txt",
                   "library/re.rst.txt", "library/collections.rst.txt",
                   "library/itertools.rst.txt", "library/os.rst.txt"]
TEXT_HELDOUT_DIRS = ["faq"]


def _collect(paths: list[str]) -> str:
    parts = []
    for rel in paths:
        p = DOC_SOURCES / rel
        files = sorted(p.rglob("*.rst.txt")) if p.is_dir() else [p]
        for f in files:
            parts.append(f.read_text(encoding="utf-8"))
    return "\n".join(parts)


def build_text(out: Path) -> None:
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    train = _collect(TEXT_TRAIN_DIRS)
    heldout = _collect(TEXT_HELDOUT_DIRS)
    (out / "corpus" / "train.txt").write_text(train, encoding="utf-8")
    (out / "corpus" / "heldout.txt").write_text(heldout, encoding="utf-8")
    print(f"text: train {len(train.encode()) / 1e6:.2f} MB, heldout {len(heldout.encode()) / 1e6:.2f} MB")
