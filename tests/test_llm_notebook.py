"""``notebooks/llm.ipynb`` runs top to bottom on a demo-like run folder (tiny untrained tokenizers): a tiny
Llama on the demo's text tokenizer, shards on it, ``task=lm_hf`` for a few steps, an image and speech back."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from modalities import MultimodalTokenizer

from .conftest import REPO
from .llm_setup import media_tokenizers

NB = REPO / "notebooks/llm.ipynb"


def test_notebook_has_contents_notes_and_no_outputs():
    nb = nbformat.read(NB, as_version=4)
    assert "Contents" in nb.cells[0].source and "docs/llm.md" in nb.cells[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    assert sum("**Look at" in c.source for c in nb.cells if c.cell_type == "markdown") >= 3


@pytest.mark.slow
def test_notebook_runs_on_a_demo_like_run(tmp_path, text_tok, samples):
    run = tmp_path / "run"
    MultimodalTokenizer({"text": text_tok, **media_tokenizers()}).save_pretrained(run / "tokenizer")
    text_tok.save_pretrained(run / "text/tokenizer/text")
    docs = [json.loads(x) for x in (samples / "documents.jsonl").read_text().splitlines()][:16]
    manifest = tmp_path / "docs.jsonl"
    manifest.write_text("\n".join(json.dumps([{k: (str(samples / v) if k != "text" else v) for k, v in p.items()}
                                               for p in d]) for d in docs) + "\n")
    nb = nbformat.read(NB, as_version=4)
    env = {"MMTOK_RUN": str(run), "MMTOK_LLM_STEPS": "10", "MMTOK_MANIFEST": str(manifest)}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        for k in env:
            del os.environ[k]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "[(32, 32), (32, 32)]" in text  # two images at the tokenizer's size
    assert json.loads((run / "llm/lm_hf/lm_hf.json").read_text())["steps"] == 10
