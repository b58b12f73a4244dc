"""``extend_model``: old rows bit-identical, tied and untied heads, padded vocabularies, init rules, refusals."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from modalities import MultimodalTokenizer, TextTokenizer, VocabRegistry
from modalities.llm import extend_model, make_tiny_lm

from .llm_setup import base_mm, gpt2_dir, hf_dirs, llama_dir, media_tokenizers  # noqa: F401


def _snapshot(model):
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    return emb.detach().clone(), head.detach().clone()


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_old_rows_bit_identical(which, llama_dir, gpt2_dir, base_mm):  # noqa: F811
    model = AutoModelForCausalLM.from_pretrained(llama_dir if which == "llama" else gpt2_dir)
    emb0, head0 = _snapshot(model)
    others = {n: p.detach().clone() for n, p in model.named_parameters() if "embed" not in n and "wte" not in n
              and "lm_head" not in n}
    reg = base_mm.registry
    report = extend_model(model, base_mm)
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    B = reg.base.size
    assert emb.shape[0] == head.shape[0] == model.config.vocab_size == reg.vocab_size
    assert torch.equal(emb[:B], emb0[:B]) and torch.equal(head[:B], head0[:B])
    assert report.tied == (which == "gpt2") and (head is emb) == report.tied
    assert all(torch.equal(p, others[n]) for n, p in model.named_parameters() if n in others)
    # mean rule: every new row is the mean of the base rows
    img = reg.modality("image")
    assert torch.allclose(emb[img.offset:img.stop], emb0[:B].mean(0).expand(img.size, -1), atol=1e-6)
    assert report.ranges["image"] == (img.offset, img.stop, "mean") and report.ranges["special"][0] == B
    assert "rows [0, 704) unchanged" in str(report)
    # the model still runs on every id, and extending again is a no-op
    assert model(torch.tensor([[0, B - 1, img.offset, reg.vocab_size - 1]])).logits.shape[-1] == reg.vocab_size
    assert not extend_model(model, base_mm).changed and torch.equal(model.get_input_embeddings().weight, emb)


def test_saved_extended_model_reloads(llama_dir, base_mm, tmp_path):  # noqa: F811
    model = AutoModelForCausalLM.from_pretrained(llama_dir)
    extend_model(model, base_mm)
    model.save_pretrained(tmp_path / "x")
    back = AutoModelForCausalLM.from_pretrained(tmp_path / "x")
    assert back.config.mmtok_registry_fingerprint == base_mm.registry.fingerprint
    assert torch.equal(back.get_input_embeddings().weight, model.get_input_embeddings().weight)
    assert back.generation_config.pad_token_id == base_mm.registry.pad_id


def test_padded_vocabulary(hf_dirs, base_mm, tmp_path):  # noqa: F811
    folder = make_tiny_lm(tmp_path / "padded", hf_dirs["byte_bpe"], "llama", hidden=32, heads=2, vocab_size=704 + 100)
    model = AutoModelForCausalLM.from_pretrained(folder)
    emb0, head0 = _snapshot(model)
    report = extend_model(model, base_mm)
    assert report.old_rows == 804 and report.new_rows == base_mm.registry.vocab_size
    assert torch.equal(model.get_input_embeddings().weight[:704], emb0[:704])
    assert torch.equal(model.get_output_embeddings().weight[:704], head0[:704])
    # the rows past the tokenizer were unused padding: they now follow the init rule like every new row
    assert torch.allclose(model.get_input_embeddings().weight[704:804], emb0[:704].mean(0).expand(100, -1), atol=1e-6)


def test_init_rules_per_modality(llama_dir, base_mm):  # noqa: F811
    model = AutoModelForCausalLM.from_pretrained(llama_dir)
    emb0, _ = _snapshot(model)
    report = extend_model(model, base_mm, init={"image": "normal", "audio": "zeros"}, seed=3)
    reg, emb = base_mm.registry, model.get_input_embeddings().weight
    img, aud = reg.modality("image"), reg.modality("audio")
    assert report.ranges["image"][2] == "normal" and report.ranges["special"][2] == "mean"
    assert (emb[aud.offset:aud.stop] == 0).all()
    rows = emb[img.offset:img.stop]
    assert rows.std(0).mean() > 0.5 * emb0[:704].std(0).mean()  # noisy, with the base rows' spread
    with pytest.raises(ValueError, match="init rule 'uniform'"):
        extend_model(AutoModelForCausalLM.from_pretrained(llama_dir), base_mm, init="uniform")


def test_refusals(hf_dirs, llama_dir, base_mm, tmp_path, text_tok):  # noqa: F811
    # a model with fewer rows than the base tokenizer has ids
    small = make_tiny_lm(tmp_path / "t5", hf_dirs["unigram"], "llama", hidden=32, heads=2)
    with pytest.raises(ValueError, match="600 embedding rows but the base tokenizer .* has 704 ids"):
        extend_model(AutoModelForCausalLM.from_pretrained(small), base_mm)
    # a model of another tokenizer (big enough, but its eos is another id)
    other = make_tiny_lm(tmp_path / "llama2", hf_dirs["sp_bpe"], "llama", hidden=32, heads=2)
    with pytest.raises(ValueError, match=r"config.eos_token_id is \[2\] but its tokenizer .* gives <eos> id 700"):
        extend_model(AutoModelForCausalLM.from_pretrained(other), base_mm)
    # mmtok's own layout
    own = MultimodalTokenizer({"text": text_tok, **media_tokenizers()})
    with pytest.raises(ValueError, match="needs a registry laid on the model's own tokenizer"):
        extend_model(AutoModelForCausalLM.from_pretrained(llama_dir), own)
    # extended before to another layout
    model = AutoModelForCausalLM.from_pretrained(llama_dir)
    extend_model(model, base_mm)
    text = TextTokenizer.from_hf(llama_dir)
    reg = VocabRegistry(base=text.base_vocab)
    text.register(reg, "text")
    reg.add_modality("image", 2048)
    with pytest.raises(ValueError, match="already extended to vocabulary"):
        extend_model(model, reg)
