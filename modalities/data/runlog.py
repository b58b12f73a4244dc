"""Run outputs: metrics appended to ``metrics.jsonl`` in the run directory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .fileio import disk_error


class MetricsLog:
    """Appends one JSON object per call to ``<out_dir>/metrics.jsonl``.

    A failed append (disk full, read-only folder) raises :class:`~modalities.data.fileio.DiskWriteError` and cuts
    the file back to its last complete line, so the rows already written stay readable.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / "metrics.jsonl"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            err = disk_error(e, self.path)
            if err is None:
                raise
            raise err from e

    def write(self, **metrics: Any) -> None:
        row = {"time": round(time.time(), 3), **metrics}
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            err = disk_error(e, self.path)
            if err is None:
                raise
            if self.path.exists() and self.path.stat().st_size > size:
                try:
                    os.truncate(self.path, size)  # drop the half row
                except OSError:
                    pass
            raise err from e

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
