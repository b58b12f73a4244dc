"""The package layout keeps its promise: imports only point down the wings (see README "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(ROOT)} imports {m}" for p in _files(folder) for m in sorted(_imports(p))
            if any(m == f or m.startswith(f + ".") for f in forbidden)]


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("models", ("modalities",)),
    ("modalities/data", ("modalities.training", "modalities.eval", "modalities.tasks", "modalities.external",
                         "modalities.text", "modalities.image", "modalities.video", "modalities.audio",
                         "modalities.semantic", "modalities.multimodal", "modalities.shards")),
    ("modalities/eval", ("modalities.training", "modalities.tasks")),
    ("modalities/training", ("modalities.tasks",)),
    ("modalities/external", ("modalities.training", "modalities.tasks", "modalities.eval")),
])
def test_imports_point_down(folder, forbidden):
    assert _violations(folder, forbidden) == []


def test_public_modules_do_not_import_training_or_tasks():
    top = [p for p in (ROOT / "modalities").glob("*.py") if p.name not in ("config.py",)]
    bad = [f"{p.name} imports {m}" for p in top for m in sorted(_imports(p))
           if m.startswith(("modalities.training", "modalities.tasks"))]
    assert bad == []


def test_every_wing_says_what_it_is_for():
    for init in (ROOT / "modalities").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"{init.relative_to(ROOT)} needs a docstring saying what the wing is for"


def test_the_checker_sees_relative_imports(tmp_path):
    # guard against a checker that silently finds nothing
    assert "modalities.data.fileio" in _imports(ROOT / "modalities" / "registry.py")
    assert "modalities.registry" in _imports(ROOT / "modalities" / "eval" / "viz.py")
