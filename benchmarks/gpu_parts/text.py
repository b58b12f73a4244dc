"""Part ``text``: batched text encoding through :class:`modalities.TextTokenizer` against the Hugging Face
``tokenizers`` call it wraps (``encode_batch_fast`` where the library has it, else ``encode_batch``), on the same
vocabulary and text, alternated. Text tokenisation runs on the CPU in any run; on a GPU machine this is its CPU
side (the host that feeds the device)."""

from __future__ import annotations

import torch

from .common import Context, alternate, check, row


def run(ctx: Context) -> dict:
    from modalities import TextTokenizer
    from modalities.data.samples import samples_root

    vocab, mb = (1024, 0.1) if ctx.smoke else (8192, 2.0)
    root = samples_root()
    tok = TextTokenizer.train(root / "text/corpus/train.txt", vocab_size=vocab, show_progress=False)
    hf = tok.hf_tokenizer
    fast = getattr(hf, "encode_batch_fast", hf.encode_batch)
    paragraphs = [p for p in (root / "text/corpus/heldout.txt").read_text(encoding="utf-8").split("\n\n") if p.strip()]
    texts: list[str] = []
    while sum(len(t.encode()) for t in texts) < mb * 1e6:
        texts += paragraphs
    nbytes = sum(len(t.encode()) for t in texts)
    counts = {}

    def ours() -> None:
        counts["mmtok"] = sum(len(i) for i in tok.encode(texts))

    def theirs() -> None:
        counts["hf"] = sum(len(e.ids) for e in fast(texts, add_special_tokens=False))

    best = alternate({"mmtok": ours, "hf": theirs}, torch.device("cpu"), ctx.rounds)
    rows = [row("text encode, batched (CPU)", "hf tokenizers", nbytes / best["hf"] / 1e6, "MB/s",
                tokens_per_s=round(counts["hf"] / best["hf"])),
            row("text encode, batched (CPU)", "mmtok TextTokenizer", nbytes / best["mmtok"] / 1e6, "MB/s",
                "hf tokenizers", best["hf"] / best["mmtok"], tokens_per_s=round(counts["mmtok"] / best["mmtok"]))]
    checks = [check("text: mmtok and tokenizers give the same token count", counts["mmtok"] == counts["hf"],
                    f"{counts['mmtok']} and {counts['hf']} tokens")]
    return {"rows": rows, "checks": checks, "vocab_size": vocab, "text_mb": round(nbytes / 1e6, 3),
            "texts": len(texts), "threads": torch.get_num_threads(), "hf_call": fast.__name__}
