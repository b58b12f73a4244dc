"""Small file helpers: atomic writes (write, then rename) and JSON reads with clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes ``text`` to ``path`` via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def read_json(path: Path, error: type[Exception], what: str) -> Any:
    """Parses a JSON file; a missing file raises FileNotFoundError, bad JSON raises ``error``, both naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path} is not valid JSON ({e})") from None
