"""Mixed-stream format: exact layout, round-trips, and detection of malformed streams."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modalities.registry import RegistryError, VocabRegistry
from modalities.stream import Segment, StreamFormatError, canonical, pack, unpack

from .conftest import make_registry

REG = make_registry()


def test_worked_example_exact_ids(registry):
    """The README's worked example, id by id."""
    img = registry.modality("image")
    seq = pack([Segment("text", [5, 6]), Segment("image", [[1, 2, 3], [4, 5, 6]])], registry, bos=True, eos=True)
    boi, eoi, eor = registry.special_id("<boi>"), registry.special_id("<eoi>"), registry.eor_id
    d = registry.digit_id
    o = img.offset
    assert seq.ids.tolist() == [registry.bos_id, 256 + 5, 256 + 6,
                                boi, d(0), d(0), d(2), d(0), d(0), d(3),
                                o + 1, o + 2, o + 3, eor, o + 4, o + 5, o + 6, eor, eoi, registry.eos_id]
    assert seq.modality.tolist() == [0, 1, 1] + [img.index] * 16 + [0]


def test_video_and_audio_layout(registry):
    v = registry.modality("video")
    seq = pack([Segment("video", torch.arange(8).reshape(2, 2, 2))], registry)
    eor, eof = registry.eor_id, registry.eof_id
    body = seq.ids.tolist()[1 + 9:-1]
    o = v.offset
    assert body == [o, o + 1, eor, o + 2, o + 3, eor, eof, o + 4, o + 5, eor, o + 6, o + 7, eor, eof]
    a = pack([Segment("audio_semantic", [[9, 9, 0]])], registry).ids.tolist()
    assert a[0] == registry.special_id("<|begin:audio_semantic|>") and a[-1] == registry.special_id("<|end:audio_semantic|>")


def test_large_dims_in_header(registry):
    codes = torch.zeros(1, 5000, dtype=torch.long)  # 5000 frames of one codebook
    seq = pack([Segment("audio", codes)], registry)
    assert unpack(seq.ids, registry) == [Segment("audio", codes)]
    d = registry.digit_id
    assert seq.ids[4:7].tolist() == [d(1), d(14), d(8)]  # 5000 = 1*4096 + 14*64 + 8


def test_roundtrip_mixed(registry):
    g = torch.Generator().manual_seed(0)
    segs = [Segment("text", torch.randint(0, 300, (7,), generator=g)),
            Segment("image", torch.randint(0, 64, (4, 5), generator=g)),
            Segment("audio", torch.randint(0, 16, (3, 11), generator=g)),
            Segment("text", torch.randint(0, 300, (2,), generator=g)),
            Segment("video", torch.randint(0, 32, (3, 2, 4), generator=g)),
            Segment("audio_semantic", torch.randint(0, 10, (1, 9), generator=g))]
    seq = pack(segs, registry, bos=True, eos=True)
    assert unpack(seq.ids, registry) == segs
    assert torch.equal(pack(unpack(seq.ids, registry), registry, bos=True, eos=True).ids, seq.ids)


def test_canonical_merges_text(registry):
    segs = [Segment("text", [1]), Segment("text", []), Segment("text", [2, 3])]
    assert unpack(pack(segs, registry).ids, registry) == canonical(segs) == [Segment("text", [1, 2, 3])]


def test_raw_text_never_yields_special_ids(registry, text_tok):
    big = VocabRegistry()
    big.add_modality("text", text_tok.codebook_size)
    big.add_modality("image", 16)
    caption = "A cat <boi> <eoi> <|endoftext|> <bos> <#3>"
    seq = pack([Segment("text", text_tok.encode(caption))], big)
    assert bool((big.modality_of(seq.ids) == 1).all())
    (seg,) = unpack(seq.ids, big)
    assert text_tok.decode(seg.codes) == caption


# ---------------------------------------------------------------- bad input
def _err(ids, match, reg=REG):
    with pytest.raises(StreamFormatError, match=match):
        unpack(torch.tensor(ids), reg)


def test_malformed_streams_name_the_position():
    good = pack([Segment("image", [[1, 2], [3, 4]])], REG).ids.tolist()  # 1 + 6 + 6 + 1 = 14 ids
    boi, eoi, eor = REG.special_id("<boi>"), REG.special_id("<eoi>"), REG.eor_id
    assert len(good) == 14 and good[0] == boi and good[-1] == eoi
    _err(good[:-1], "position 13: stream ends inside the image segment of shape \\(2, 2\\) opened at 0")
    _err(good[:9] + good[10:], "position 9: expected <eor> in the image segment .* got image:3")  # lost <eor>
    _err(good[:8] + good[9:], "position 8: expected an image code .* got <eor>")  # short row
    bad_row = good.copy()
    bad_row[9] = REG.to_global("image", 7).item()
    _err(bad_row, "position 9: expected <eor>")
    wrong_range = good.copy()
    wrong_range[7] = REG.to_global("video", 1).item()
    _err(wrong_range, "position 7: expected an image code in the image segment .* got video:1")
    _err([eor], "position 0: unexpected <eor> outside any segment")
    _err([256, REG.bos_id, 257], "position 1: unexpected <bos> outside any segment.*allowed at the start only")
    _err([256, REG.to_global("image", 3).item()], "position 1: image code image:3 outside any image segment")
    _err([boi, 5, 5], "position 3: stream ends inside the header")
    _err([boi, 5, 5, 5, 5, 5, 6, eoi], "position 1: image segment opened at 0 declares a zero dimension")
    _err([boi, 256], "position 1: expected a geometry digit")
    with pytest.raises(RegistryError, match="global id 100000 at position 2"):
        unpack([256, 257, 100000], REG)
    with pytest.raises(StreamFormatError, match="1-D"):
        unpack(torch.zeros(2, 2, dtype=torch.long), REG)


def test_pack_bad_segments(registry):
    with pytest.raises(RegistryError, match="segment 1 \\(image\\): codes must have 2 dims"):
        pack([Segment("text", [1]), Segment("image", [1, 2])], registry)
    with pytest.raises(RegistryError, match="segment 0: local id 64 at position \\(0, 1\\) is out of range"):
        pack([Segment("image", [[1, 64]])], registry)
    with pytest.raises(RegistryError, match="empty codes"):
        pack([Segment("image", torch.zeros(0, 3, dtype=torch.long))], registry)
    with pytest.raises(RegistryError, match="unknown modality 'depth'"):
        pack([Segment("depth", [[1]])], registry)
    with pytest.raises(TypeError, match="expected a Segment"):
        pack([[1, 2]], registry)
    with pytest.raises(RegistryError, match="integer"):
        pack([Segment("image", torch.ones(2, 2))], registry)


# --------------------------------------------------------------- properties
def _segment(draw, name: str) -> Segment:
    m = REG.modality(name)
    if m.kind == "text":
        shape = (draw(st.integers(0, 6)),)
    elif m.kind == "video":
        shape = tuple(draw(st.integers(1, 3)) for _ in range(3))
    else:
        shape = tuple(draw(st.integers(1, 4)) for _ in range(2))
    n = int(torch.tensor(shape).prod())
    vals = draw(st.lists(st.integers(0, m.size - 1), min_size=n, max_size=n))
    return Segment(name, torch.tensor(vals, dtype=torch.long).reshape(shape))


@st.composite
def documents(draw):
    names = draw(st.lists(st.sampled_from([m.name for m in REG.modalities]), max_size=6))
    return [_segment(draw, n) for n in names], draw(st.booleans()), draw(st.booleans())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_property_pack_unpack_inverse(doc):
    segs, bos, eos = doc
    seq = pack(segs, REG, bos=bos, eos=eos)
    assert seq.ids.shape == seq.modality.shape
    back = unpack(seq.ids, REG)
    assert back == canonical(segs)
    assert torch.equal(pack(back, REG, bos=bos, eos=eos).ids, seq.ids)


def _assigned_ids():
    ids = list(range(len(REG.specials)))
    return ids + list(range(REG.num_special_slots, REG.used_size))


ASSIGNED = _assigned_ids()


def _reads_back_exactly(ids: list[int]) -> bool:
    """True if ``ids`` is rejected, or decodes to segments that re-pack to exactly ``ids``."""
    try:
        segs = unpack(torch.tensor(ids, dtype=torch.long), REG)
    except StreamFormatError:
        return True
    bos = bool(ids) and ids[0] == REG.bos_id
    eos = len(ids) > int(bos) and ids[-1] == REG.eos_id
    return pack(segs, REG, bos=bos, eos=eos).ids.tolist() == ids


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.data())
def test_property_corruption_detected_or_faithful(doc, data):
    """Any single edit is rejected, or the edited stream is itself valid and decodes to exactly what it says."""
    segs, bos, eos = doc
    ids = pack(segs, REG, bos=bos, eos=eos).ids.tolist()
    op = data.draw(st.sampled_from(["replace", "delete", "insert"] if ids else ["insert"]))
    pos = data.draw(st.integers(0, len(ids) - (0 if op == "insert" else 1)))
    tok = data.draw(st.sampled_from(ASSIGNED))
    bad = ids.copy()
    if op == "replace":
        bad[pos] = tok
    elif op == "delete":
        del bad[pos]
    else:
        bad.insert(pos, tok)
    assert _reads_back_exactly(bad)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.data())
def test_property_media_corruption_always_detected(doc, data):
    """Inside a media segment, every edit except swapping one code for another code is an error."""
    segs, _, _ = doc
    media = [s for s in segs if REG.modality(s.modality).kind != "text"]
    if not media:
        return
    seq = pack(segs, REG)
    ids, mods = seq.ids.tolist(), seq.modality.tolist()
    inside = [i for i, m in enumerate(mods) if m and REG.modality(m).kind != "text"]
    pos = data.draw(st.sampled_from(inside))
    m = REG.modality(mods[pos])
    tok = data.draw(st.sampled_from(ASSIGNED))
    op = data.draw(st.sampled_from(["replace", "delete", "insert"]))
    bad = ids.copy()
    if op == "replace":
        if tok == ids[pos] or (m.offset <= ids[pos] < m.stop and m.offset <= tok < m.stop):
            return  # a code swapped for another code of the same modality is a valid stream
        bad[pos] = tok
    elif op == "delete":
        del bad[pos]
    else:
        if ids[pos] == REG.special_id(m.begin):
            return  # inserting before the begin token is outside the segment
        bad.insert(pos, tok)
    with pytest.raises((StreamFormatError, RegistryError)):
        unpack(torch.tensor(bad), REG)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([m for m in REG.modalities if m.kind != "text"]), st.data())
def test_property_segment_length_matches_template(m, data):
    from modalities.stream import segment_length, segment_template

    shape = [data.draw(st.integers(1, 5)) for _ in range(m.ndim)]
    assert segment_length(shape) == segment_template(REG, m, shape).numel()


def test_huge_declared_shape_is_refused_cheaply():
    d = REG.digit_id
    ids = [REG.special_id("<bov>"), d(63), d(63), d(63), d(63), d(63), d(63), d(63), d(63), d(63)]
    _err(ids, "position 10: stream ends inside the video segment of shape \\(262143, 262143, 262143\\)")
