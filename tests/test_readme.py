"""The README's Python examples run as written, and .ci/run uses the README's commands."""

from __future__ import annotations

import re

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_python_examples_run(monkeypatch, capsys):
    blocks = _blocks("python")
    assert len(blocks) >= 4
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    for code in blocks:  # blocks build on each other, like a notebook
        exec(compile(code, "README.md", "exec"), namespace)
    assert "position 13: expected <eor>" in capsys.readouterr().out


def test_ci_runs_the_readme_commands():
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    install, test = _blocks("bash")[:2]
    for line in install.strip().splitlines() + test.strip().splitlines():
        assert line in ci, f"README command not in .ci/run: {line}"
