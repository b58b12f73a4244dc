"""Decoder-only transformer: shapes, causality, KV cache, per-modality loss; constrained generation always unpacks."""

from __future__ import annotations

import pytest
import torch

from modalities import Segment, VocabRegistry, pack, unpack
from modalities.generate import StreamGrammar, generate, segment_prefix
from modalities.stream import StreamFormatError
from models.transformer import Transformer, TransformerConfig, lm_loss, lm_loss_sums


def _registry() -> VocabRegistry:
    reg = VocabRegistry()
    reg.add_modality("text", 40)
    reg.add_modality("image", 16)
    reg.add_modality("audio", 8)
    return reg


def _bias(model: Transformer, reg: VocabRegistry, boost: dict[str, float]) -> Transformer:
    """Adds ``boost`` to the logits of the named specials (steers an untrained model into media segments)."""
    extra = torch.zeros(reg.vocab_size)
    for name, value in boost.items():
        extra[reg.special_id(name)] = value
    forward = model.forward
    model.forward = lambda ids, cache=None: forward(ids, cache) + extra
    return model


def _model(reg: VocabRegistry, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(vocab_size=reg.vocab_size, dim=32, n_layers=2, n_heads=2,
                                         max_seq_len=256)).eval()


def test_shapes_causality_and_tying():
    reg = _registry()
    model = _model(reg)
    ids = torch.randint(0, reg.vocab_size, (2, 12))
    logits = model(ids)
    assert logits.shape == (2, 12, reg.vocab_size)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % reg.vocab_size
    assert torch.allclose(model(changed)[:, :-1], logits[:, :-1], atol=1e-5)  # the future is not seen
    assert model.head.weight is model.embed.weight
    with pytest.raises(ValueError, match="ids must be in"):
        model(torch.tensor([[reg.vocab_size]]))
    with pytest.raises(ValueError, match="max_seq_len=256"):
        model(torch.zeros(1, 257, dtype=torch.long))
    with pytest.raises(ValueError, match="even size"):
        Transformer(TransformerConfig(dim=30, n_heads=2))


def test_kv_cache_matches_full_forward():
    reg = _registry()
    model = _model(reg)
    ids = torch.randint(0, reg.vocab_size, (1, 10))
    full = model(ids)
    cache = model.new_cache()
    parts = [model(ids[:, :6], cache)] + [model(ids[:, i:i + 1], cache) for i in range(6, 10)]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-4)


def test_loss_per_modality_and_training_step():
    reg = _registry()
    model = _model(reg).train()
    seq = pack([Segment("text", [1, 2, 3]), Segment("image", [[1, 2], [3, 4]]), Segment("text", [5])], reg,
               bos=True, eos=True)
    ids, mod = seq.ids[None], seq.modality[None]
    names = {m.index: m.name for m in reg.modalities} | {0: "special"}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss, report = lm_loss(model(ids[:, :-1]), ids[:, 1:], mod[:, 1:], names)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or report
    assert set(first) == {"loss", "loss_text", "loss_image", "loss_special"}
    assert report["loss"] < 0.2 * first["loss"]  # memorises one short document
    n = {k: int((mod[:, 1:] == reg.modality(k).index).sum()) for k in ("text", "image")}
    n["special"] = int((mod[:, 1:] == 0).sum())
    weighted = sum(report[f"loss_{k}"] * v for k, v in n.items()) / sum(n.values())
    assert weighted == pytest.approx(report["loss"], rel=1e-4)


def test_loss_sums_match_a_direct_computation_and_skip_ignored_targets():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 5, 11), torch.randint(0, 11, (2, 5))
    mod = torch.tensor([[0, 1, 1, 2, 2], [1, 1, 3, 3, 0]])
    targets[1, 4] = -100  # ignored: counts nowhere
    loss, sums, counts = lm_loss_sums(logits, targets, mod, 4)
    per = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none",
                                            ignore_index=-100)
    keep = targets.flatten() != -100
    assert loss.item() == pytest.approx(per[keep].mean().item(), rel=1e-6)
    assert counts.tolist() == [1, 4, 2, 2] and sums.sum().item() == pytest.approx(per.sum().item(), rel=1e-6)
    for i in range(4):
        sel = keep & (mod.flatten() == i)
        assert sums[i].item() == pytest.approx(per[sel].sum().item(), rel=1e-6)
    _, report = lm_loss(logits, targets, mod, {0: "special", 1: "text", 2: "image", 3: "audio"})
    assert report["loss_audio"] == pytest.approx(sums[3].item() / 2, rel=1e-6)
    assert set(lm_loss(logits, targets)[1]) == {"loss"}
    # a training loop that checked its ids on the CPU skips the model's own check (no sync, no graph break)
    model = Transformer(TransformerConfig(vocab_size=11, dim=16, n_layers=1, n_heads=2))
    with pytest.raises(ValueError, match="ids must be in \\[0, 11\\), got \\[0, 11\\]"):
        model(torch.tensor([[0, 11]]))
    assert torch.equal(model(targets.clamp_min(0), check_ids=False), model(targets.clamp_min(0)))


def test_grammar_masks():
    reg = _registry()
    g = StreamGrammar(reg, {"image": (2, 3)})
    text = reg.modality("text")
    allowed = g.allowed()
    assert allowed[text.offset:text.stop].all() and allowed[reg.eos_id]
    boi, boa = reg.special_id("<boi>"), reg.special_id("<boa>")
    assert allowed[boi] and not allowed[boa] and not allowed[reg.eor_id]
    g.advance(boi)
    header = [reg.digit_id(d) for d in (0, 0, 2, 0, 0, 3)]
    for h in header:
        assert g.allowed().nonzero().flatten().tolist() == [h]
        g.advance(h)
    img = reg.modality("image")
    assert g.allowed().nonzero().flatten().tolist() == list(range(img.offset, img.stop))
    with pytest.raises(ValueError, match="not allowed here"):
        g.advance(reg.eor_id)


@pytest.mark.parametrize("seed", range(6))
def test_constrained_generation_always_unpacks(seed):
    reg = _registry()
    model = _bias(_model(reg, seed), reg, {"<boi>": 3.0, "<boa>": 3.0})
    shapes = {"image": (2, 3), "audio": (2, 4)}
    prompt = pack([Segment("text", [1, 2])], reg, bos=True).ids
    g = torch.Generator().manual_seed(seed)
    out = generate(model, reg, prompt, shapes, max_new_tokens=40, temperature=1.5, top_k=50, top_p=0.95,
                   generator=g)
    assert torch.equal(out[: len(prompt)], prompt)
    media = [s for s in unpack(out, reg) if s.modality != "text"]
    assert media and all(tuple(s.codes.shape) == shapes[s.modality] for s in media)
    greedy = generate(model, reg, prompt, shapes, max_new_tokens=10, temperature=0)
    assert torch.equal(greedy, generate(model, reg, prompt, shapes, max_new_tokens=10, temperature=0))


def test_generation_finishes_an_open_segment():
    reg = _registry()
    model = _bias(_model(reg), reg, {"<boi>": 100.0})
    out = generate(model, reg, [reg.special_id("<bos>")], {"image": (3, 3)}, max_new_tokens=2, temperature=0)
    segs = unpack(out, reg)
    assert [s.modality for s in segs] == ["image"] and tuple(segs[0].codes.shape) == (3, 3)
    with pytest.raises(StreamFormatError, match="does not follow the shapes"):
        generate(model, reg, out[:-1], {"image": (2, 3)})  # open segment of another shape
    with pytest.raises(StreamFormatError):
        generate(model, reg, out[:-1], {"audio": (2, 2)})  # no image shape: the open segment cannot go on


def test_prompt_ending_inside_a_segment_continues_it():
    """Text-to-image: caption + begin-image header; the model (steered to end the document at once) must
    still fill exactly the requested geometry, keeping the prompt's codes."""
    reg = _registry()
    model = _bias(_model(reg), reg, {"<eos>": 100.0})
    head = segment_prefix(reg, "image", (2, 3))
    assert head[0] == reg.special_id("<boi>") and len(head) == 1 + 2 * 3  # begin + two 3-digit sizes
    img = reg.modality("image")
    prompt = torch.cat([pack([Segment("text", [5, 6])], reg, bos=True).ids, head, torch.tensor([img.offset + 7])])
    out = generate(model, reg, prompt, {"image": (2, 3)}, max_new_tokens=30, temperature=0)
    segs = unpack(out, reg)
    assert [s.modality for s in segs] == ["text", "image"]
    assert tuple(segs[1].codes.shape) == (2, 3) and int(segs[1].codes[0, 0]) == 7
    assert out[-1] == reg.eos_id  # the biased model ends the document once the image is closed


def test_save_and_load_pretrained(tmp_path):
    reg = _registry()
    model = _model(reg)
    model.save_pretrained(tmp_path / "lm")
    back = Transformer.from_pretrained(tmp_path / "lm")
    ids = torch.randint(0, reg.vocab_size, (2, 9))
    assert back.cfg == model.cfg and torch.equal(back(ids), model(ids))
    assert back.head.weight is back.embed.weight  # tying survives the round trip
    (tmp_path / "lm/config.json").write_text('{"class": "Transformer", "dim": "wide"}')
    with pytest.raises(ValueError, match="cannot load a Transformer from"):
        Transformer.from_pretrained(tmp_path / "lm")
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        Transformer.from_pretrained(tmp_path)
