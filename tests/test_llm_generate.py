"""``StreamLogitsProcessor`` in ``model.generate``: every sampled sequence unpacks and every media segment decodes
at the requested shape, for batches of different prompts, prompts ending inside a segment, beam search and
classifier-free guidance; the masks equal ``StreamGrammar``'s step by step."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LogitsProcessor

from modalities.generate import StreamGrammar, segment_prefix
from modalities.llm import SegmentEndCriteria, StreamLogitsProcessor, extend_model, text_to_image, text_to_speech
from modalities.stream import StreamFormatError, segment_length, unpack

from .llm_setup import base_mm, hf_dirs, llama_dir  # noqa: F401

IMAGE, AUDIO = (4, 4), (1, 6)


@pytest.fixture(scope="module")
def model(llama_dir, base_mm):  # noqa: F811
    m = AutoModelForCausalLM.from_pretrained(llama_dir).eval()
    extend_model(m, base_mm)
    return m


class _Boost(LogitsProcessor):
    """Makes a random model open media segments often (it would rarely pick 2 begin ids among 700 text ids)."""

    def __init__(self, ids):
        self.ids = ids

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.ids] += 6.0
        return scores


def _trim(row, reg):
    """A generated row without left padding and without what ``generate`` pads after ``<eos>``."""
    row = row.tolist()
    while row and row[0] == reg.pad_id:
        row.pop(0)
    if reg.eos_id in row[1:]:
        row = row[: row.index(reg.eos_id, 1) + 1]
    return torch.tensor(row)


def test_200_sampled_sequences_unpack_and_decode(model, base_mm):  # noqa: F811
    reg = base_mm.registry
    boost = _Boost([reg.special_id("<boi>"), reg.special_id("<boa>"), reg.eos_id])
    prompt = base_mm.encode(["a photo"], bos=True).ids[None]
    seen = {"image": [], "audio": []}
    for seed in range(4):
        torch.manual_seed(seed)
        proc = StreamLogitsProcessor(reg, {"image": IMAGE, "audio": AUDIO})
        out = model.generate(prompt, max_new_tokens=90, do_sample=True, num_return_sequences=50,
                             logits_processor=[boost, proc], pad_token_id=reg.pad_id, eos_token_id=reg.eos_id)
        for row in out:
            row = _trim(row, reg)
            if row[-1] != reg.eos_id:  # cut by max_new_tokens: only an open segment may be unfinished
                row = row[: _last_closed(row, reg)]
            for seg in unpack(row, reg):
                if seg.modality == "text":
                    continue
                assert seg.shape == (IMAGE if seg.modality == "image" else AUDIO)
                seen[seg.modality].append(seg.codes)
    assert len(seen["image"]) > 20 and len(seen["audio"]) > 20, {k: len(v) for k, v in seen.items()}
    images = base_mm.tokenizers["image"].decode(torch.stack(seen["image"]))  # every segment decodes
    speech = base_mm.tokenizers["audio"].decode(torch.stack(seen["audio"]))
    assert images.shape == (len(seen["image"]), 3, 32, 32) and torch.isfinite(images).all()
    assert speech.shape[0] == len(seen["audio"]) and torch.isfinite(speech).all()


def _last_closed(row, reg):
    """Length of the prefix of ``row`` that ends outside any segment (drops a segment cut by the length limit)."""
    begins = {reg.special_id("<boi>"), reg.special_id("<boa>")}
    ends = {reg.special_id("<eoi>"), reg.special_id("<eoa>")}
    cut = len(row)
    for i, t in enumerate(row.tolist()):
        if t in begins:
            cut = i
        elif t in ends:
            cut = len(row)
    return cut


def test_masks_equal_the_grammar_step_by_step(base_mm):  # noqa: F811
    reg = base_mm.registry
    shapes = {"image": IMAGE, "audio": AUDIO}
    gen = torch.Generator().manual_seed(0)
    grammars = [StreamGrammar(reg, shapes) for _ in range(3)]
    prompts = [torch.tensor([reg.bos_id, 5, 6]), torch.tensor([reg.bos_id]),
               torch.cat([torch.tensor([reg.bos_id, 9]), segment_prefix(reg, "image", IMAGE), torch.tensor([970])])]
    n = max(len(p) for p in prompts)
    ids = torch.stack([torch.cat([torch.full((n - len(p),), reg.pad_id), p]) for p in prompts])
    for g, p in zip(grammars, prompts, strict=True):
        from modalities.generate import _enter_prompt

        _enter_prompt(p, reg, g)
    proc = StreamLogitsProcessor(reg, shapes)
    for step in range(80):
        if step % 10 == 9:  # reorder the rows, as beam search does: the processor must read them again
            order = torch.randperm(3, generator=gen)
            ids, grammars = ids[order], [grammars[i] for i in order.tolist()]
            proc._prompt_tidx, proc._prompt_pos = proc._prompt_tidx[order], proc._prompt_pos[order]
        allowed = proc.allowed(ids)
        for b, g in enumerate(grammars):
            assert torch.equal(allowed[b], g.allowed()), b
        nxt = []
        for b, g in enumerate(grammars):
            choices = allowed[b].nonzero().flatten()
            choices = choices[choices != reg.eos_id] if len(choices) > 1 else choices
            t = int(choices[torch.randint(len(choices), (1,), generator=gen)])
            g.advance(t)
            nxt.append(t)
        ids = torch.cat([ids, torch.tensor(nxt)[:, None]], 1)


def test_text_to_image_batch_of_different_prompts(model, base_mm):  # noqa: F811
    torch.manual_seed(0)
    prompts = ["a cat", "a very long description of a dog on a sofa", "", "x"]
    images = text_to_image(model, base_mm, prompts, shape=IMAGE, top_k=20)
    assert len(images) == 4 and all(im.size == (32, 32) and im.mode == "RGB" for im in images)
    assert text_to_image(model, base_mm, "a cat")[0].size == (32, 32)  # default shape: size // downsample


def test_text_to_speech_and_guidance(model, base_mm):  # noqa: F811
    torch.manual_seed(0)
    speech = text_to_speech(model, base_mm, ["hello", "good morning to you"], shape=AUDIO, guidance_scale=2.0)
    tok = base_mm.tokenizers["audio"]
    assert [s.sample_rate for s in speech] == [tok.sample_rate] * 2
    assert all(s.data.ndim == 1 and s.data.numel() > 0 and torch.isfinite(s.data).all() for s in speech)


def test_beam_search(model, base_mm):  # noqa: F811
    images = text_to_image(model, base_mm, ["a cat", "dog"], shape=IMAGE, num_beams=3, do_sample=False)
    assert [im.size for im in images] == [(32, 32)] * 2


def test_prompt_inside_a_segment_and_the_stop(model, base_mm):  # noqa: F811
    reg = base_mm.registry
    img = reg.modality("image")
    prefix = torch.cat([torch.tensor([reg.bos_id]), segment_prefix(reg, "image", IMAGE),
                        torch.tensor([img.offset + 3, img.offset + 7])])  # two codes already there
    out = model.generate(prefix[None], max_new_tokens=500, do_sample=True,
                         logits_processor=[StreamLogitsProcessor(reg, {"image": IMAGE})],
                         stopping_criteria=[SegmentEndCriteria(reg)], pad_token_id=reg.pad_id, eos_token_id=None)
    left = segment_length(IMAGE) - (len(prefix) - 1)
    assert out.shape[1] == len(prefix) + left  # stopped exactly at <eoi>
    segs = unpack(out[0], reg)
    assert segs[-1].shape == IMAGE and segs[-1].codes[0, :2].tolist() == [3, 7]


def test_bad_requests(model, base_mm):  # noqa: F811
    reg = base_mm.registry
    with pytest.raises(ValueError, match=r"cannot decode codes of shape \(3, 6\)"):
        text_to_speech(model, base_mm, "hi", shape=(3, 6))  # one codebook, not three
    with pytest.raises(ValueError, match="needs 2 positive dims"):
        text_to_image(model, base_mm, "hi", shape=(4,))
    with pytest.raises(ValueError, match="no tokenizer named 'video'"):
        from modalities.llm import generate_media

        generate_media(model, base_mm, "hi", "video", shape=(1, 2, 2))
    proc = StreamLogitsProcessor(reg, {"image": IMAGE})
    bad = torch.tensor([[reg.bos_id, reg.special_id("<eoi>")]])
    with pytest.raises(StreamFormatError, match="position 1"):
        proc(bad, torch.zeros(1, reg.vocab_size))
    other = torch.cat([torch.tensor([reg.bos_id]), segment_prefix(reg, "image", (2, 2))])[None]
    with pytest.raises(StreamFormatError, match="does not follow the shapes given"):
        proc(other, torch.zeros(1, reg.vocab_size))
