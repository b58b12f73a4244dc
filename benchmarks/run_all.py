"""Runs every benchmark script in this folder, one after another: ``python benchmarks/run_all.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = ["text_throughput.py", "image_throughput.py", "audio_throughput.py", "pretokenize_throughput.py",
           "lm_throughput.py"]

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    failed = [s for s in SCRIPTS if subprocess.run([sys.executable, str(here / s), *sys.argv[1:]]).returncode]
    sys.exit(f"failed: {failed}" if failed else 0)
