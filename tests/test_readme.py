"""The README's Python examples run as written, .ci/run uses the README's commands, and the README stays a
front page (the topics live in docs/, whose examples tests/test_docs.py runs)."""

from __future__ import annotations

import re

from .conftest import REPO
from .test_docs import python_blocks

README = (REPO / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_python_examples_run(monkeypatch, capsys):
    blocks = python_blocks(README)
    assert len(blocks) >= 3
    monkeypatch.chdir(REPO)
    namespace: dict = {"__name__": "readme"}
    for code in blocks:  # blocks build on each other, like a notebook
        exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "image: PSNR" in out and "speech: mel distance" in out
    assert re.search(r"position \d+: expected <eor> in the image segment", out)


def test_ci_runs_the_readme_commands():
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    install, test = _blocks("bash")[:2]
    for line in install.strip().splitlines() + test.strip().splitlines():
        assert line in ci, f"README command not in .ci/run: {line}"


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 300, "the README is the front page; put the details in a docs/ page"
