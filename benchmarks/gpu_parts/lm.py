"""Part ``lm``: training tokens/s and MFU of mmtok's decoder-only transformer (:mod:`models.transformer`, the
model of ``task=lm``) at a size that fills a GPU (about 125M parameters, sequence 2048, batch 8), bf16 autocast,
eager and ``torch.compile``d; and the same for a Hugging Face Llama of the same shape (width, depth, heads,
SwiGLU width, tied embeddings, vocabulary), randomly initialised from a ``LlamaConfig`` with SDPA attention, the
model family ``task=lm_hf`` trains.

The step is the same for all four: bf16 autocast forward on random ids (speed does not depend on the data),
cross-entropy in fp32, backward, fused AdamW on CUDA. The four settings are stepped in alternation; MFU counts
``6 N + 12 L T d`` FLOPs per token (:func:`.common.train_flops_per_token`) against the device's dense bf16 peak,
so it is reported on CUDA only."""

from __future__ import annotations

import torch

from .common import Context, PeakMemory, alternate, mfu, row, train_flops_per_token

SIZES = {  # dim, layers, heads, vocab, seq_len, batch
    "gpu": (768, 12, 12, 50304, 2048, 8),  # about 124M parameters (tied), the size of GPT-2 small
    "smoke": (64, 2, 2, 512, 64, 2),
}
SETTINGS = ("mmtok", "mmtok+compile", "hf_llama", "hf_llama+compile")


def build(setting: str, ctx: Context) -> tuple[torch.nn.Module, float]:
    """The model of ``setting`` on the device and its training FLOPs per token."""
    from models.transformer import Transformer, TransformerConfig

    dim, layers, heads, vocab, seq, _ = SIZES["smoke" if ctx.smoke else "gpu"]
    torch.manual_seed(0)
    mm_cfg = TransformerConfig(vocab_size=vocab, dim=dim, n_layers=layers, n_heads=heads, max_seq_len=seq)
    if setting.startswith("mmtok"):
        model = Transformer(mm_cfg)
        return model.to(ctx.device), model.flops_per_token(seq)
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden = model_hidden(mm_cfg)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=seq,
                      tie_word_embeddings=True, attn_implementation="sdpa")
    model = LlamaForCausalLM(cfg)
    return model.to(ctx.device), train_flops_per_token(model, layers, dim, seq)


def model_hidden(cfg) -> int:
    """mmtok's SwiGLU width for ``cfg`` (the Llama gets the same)."""
    return cfg.mlp_hidden or -(-int(8 * cfg.dim / 3) // 64) * 64


def run(ctx: Context) -> dict:
    _, _, _, vocab, seq, batch = SIZES["smoke" if ctx.smoke else "gpu"]
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq + 1), generator=gen).to(ctx.device)
    steps = {}
    flops, params, peak = {}, {}, {}
    for setting in SETTINGS:
        with PeakMemory(ctx.device) as mem:
            model, flops[setting] = build(setting, ctx)
            params[setting] = sum(p.numel() for p in model.parameters())
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=ctx.cuda)
            net = torch.compile(model, backend=ctx.compile_backend) if "compile" in setting else model
            hf = setting.startswith("hf")

            def step(net=net, opt=opt, hf=hf) -> None:
                with torch.autocast(ctx.device.type, dtype=torch.bfloat16):
                    logits = net(ids[:, :-1]).logits if hf else net(ids[:, :-1], check_ids=False)
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

            for _ in range(2):  # compilation and the optimiser's state
                step()
        steps[setting], peak[setting] = step, mem.mib
    best = alternate(steps, ctx.device, ctx.rounds, warmup=0)
    tok_s = {s: batch * seq / best[s] for s in SETTINGS}
    rows = []
    for s in SETTINGS:
        m = mfu(flops[s], tok_s[s], ctx.device)
        base = "mmtok" if s != "mmtok" else None
        rows.append(row("transformer training (bf16)", s, tok_s[s], "tokens/s", base,
                        None if base is None else tok_s[s] / tok_s[base],
                        mfu=None if m is None else round(m, 4), peak_mib=None if peak[s] is None else round(peak[s]),
                        params_m=round(params[s] / 1e6, 1)))
    dim, layers, heads, vocab, seq, batch = SIZES["smoke" if ctx.smoke else "gpu"]
    return {"rows": rows, "dim": dim, "layers": layers, "heads": heads, "vocab": vocab, "seq_len": seq, "batch": batch,
            "compile_backend": ctx.compile_backend,
            "mmtok_over_hf": {"eager": tok_s["mmtok"] / tok_s["hf_llama"],
                              "compile": tok_s["mmtok+compile"] / tok_s["hf_llama+compile"]}}
