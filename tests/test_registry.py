"""Vocabulary registry: layout, vectorised lookups, serialisation, compatibility."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities.registry import BASE_SPECIALS, KINDS, RegistryError, VocabMismatchError, VocabRegistry


def test_layout_exact_ids():
    reg = VocabRegistry(num_special_slots=256)
    t = reg.add_modality("text", 1000)
    i = reg.add_modality("image", 8192)
    assert (t.offset, t.stop, t.index) == (256, 1256, 1)
    assert (i.offset, i.stop, i.index) == (1256, 9448, 2)
    assert reg.used_size == 9448 and reg.vocab_size == 9472 and reg.vocab_size % 128 == 0
    assert reg.specials[:5] == ("<pad>", "<bos>", "<eos>", "<eor>", "<eof>")
    assert (reg.pad_id, reg.bos_id, reg.eos_id, reg.eor_id, reg.eof_id) == (0, 1, 2, 3, 4)
    assert reg.special_id("<boi>") == len(BASE_SPECIALS) and reg.special_id("<eoi>") == len(BASE_SPECIALS) + 1
    assert t.begin is None and (i.begin, i.end) == ("<boi>", "<eoi>")
    assert reg.digit_id(0) == 5 and reg.digit_id(63) == 68


def test_to_global_to_local_roundtrip_and_shapes(registry):
    codes = torch.tensor([[0, 5, 63], [7, 1, 2]])
    g = registry.to_global("image", codes)
    m = registry.modality("image")
    assert g.shape == codes.shape and torch.equal(g, codes + m.offset)
    mod, local = registry.to_local(g)
    assert torch.equal(local, codes) and bool((mod == m.index).all())
    assert torch.equal(registry.modality_of(torch.tensor([0, 1, m.offset, m.stop - 1])), torch.tensor([0, 0, 2, 2]))


def test_to_global_accepts_lists_numpy_and_ints(registry):
    import numpy as np

    assert registry.to_global("text", 3).item() == 259
    assert registry.to_global("text", [1, 2]).tolist() == [257, 258]
    assert registry.to_global("text", np.array([1, 2], dtype=np.int32)).tolist() == [257, 258]


@pytest.mark.parametrize("bad, msg", [
    (torch.tensor([0, 64]), "local id 64 at position 1 is out of range [0, 64) for modality 'image'"),
    (torch.tensor([[1, 2], [-1, 3]]), "local id -1 at position (1, 0)"),
])
def test_to_global_out_of_range(registry, bad, msg):
    with pytest.raises(RegistryError, match=__import__("re").escape(msg)):
        registry.to_global("image", bad)


def test_float_ids_refused(registry):
    with pytest.raises(RegistryError, match="integer"):
        registry.to_global("image", torch.tensor([1.0]))
    with pytest.raises(RegistryError, match="integer"):
        registry.modality_of(torch.tensor([1.5]))


def test_modality_of_rejects_invalid_ids(registry):
    used = registry.used_size
    with pytest.raises(RegistryError, match=f"global id {used} at position 2 is outside the vocabulary"):
        registry.modality_of([1, 2, used])
    with pytest.raises(RegistryError, match="global id -3 at position 0"):
        registry.modality_of([-3])
    with pytest.raises(RegistryError, match="global id 200 at position 0 is an unassigned special slot"):
        registry.modality_of([200])
    with pytest.raises(RegistryError, match="outside the vocabulary"):
        registry.modality_of([registry.vocab_size - 1])  # padding is never valid


def test_unknown_and_duplicate_names(registry):
    with pytest.raises(RegistryError, match="unknown modality 'depth'; registered: \\['text', 'image'"):
        registry.modality("depth")
    with pytest.raises(RegistryError, match="modality 'image' already exists"):
        registry.add_modality("image", 10)
    with pytest.raises(RegistryError, match="special token '<bos>' already exists"):
        registry.add_special("<bos>")
    with pytest.raises(RegistryError, match="unknown kind 'depth'"):
        registry.add_modality("depth", 10)
    with pytest.raises(RegistryError, match="size must be a positive int"):
        registry.add_modality("image2", 0, kind="image")


def test_special_slots_run_out():
    reg = VocabRegistry(num_special_slots=len(BASE_SPECIALS) + 3)
    reg.add_special("<sep>")
    reg.add_special("<mask>")
    with pytest.raises(RegistryError, match="no free special slots for its begin/end"):
        reg.add_modality("image", 10)
    reg.add_special("<cls>")
    with pytest.raises(RegistryError, match="no free special slot for '<x>'"):
        reg.add_special("<x>")


def test_adding_keeps_existing_ids(registry):
    before = {m.name: (m.offset, m.size) for m in registry.modalities}
    specials = registry.specials
    fp = registry.fingerprint
    registry.add_special("<sep>")
    registry.add_modality("depth", 100, kind="image")
    assert {m.name: (m.offset, m.size) for m in registry.modalities if m.name in before} == before
    assert registry.specials[: len(specials)] == specials
    assert registry.fingerprint != fp
    assert registry.modality("depth").begin == "<|begin:depth|>"


def test_save_load_roundtrip(tmp_path, registry):
    registry.add_special("<sep>")
    registry.add_modality("depth", 100, kind="image")
    path = registry.save(tmp_path / "registry.json")
    loaded = VocabRegistry.load(path)
    assert loaded == registry and loaded.fingerprint == registry.fingerprint
    assert loaded.specials == registry.specials
    d = json.loads(path.read_text())
    assert d["vocab_size"] == registry.vocab_size and d["fingerprint"] == registry.fingerprint


def test_load_refuses_edited_file(tmp_path, registry):
    path = registry.save(tmp_path / "r.json")
    d = json.loads(path.read_text())
    d["modalities"][1]["size"] += 1
    d["modalities"][2]["offset"] += 1
    path.write_text(json.dumps(d))
    with pytest.raises(VocabMismatchError):
        VocabRegistry.load(path)
    path.write_text("{not json")
    with pytest.raises(RegistryError, match="not valid JSON"):
        VocabRegistry.load(path)
    with pytest.raises(FileNotFoundError, match="registry file not found"):
        VocabRegistry.load(tmp_path / "missing.json")


def test_compatibility_names_the_modality(tmp_path, registry):
    earlier = VocabRegistry()
    earlier.add_modality("text", 300)
    earlier.add_modality("image", 64)
    VocabRegistry.load(registry.save(tmp_path / "ok.json"), compatible_with=earlier)  # appended: fine
    resized = VocabRegistry()
    resized.add_modality("text", 300)
    resized.add_modality("image", 128)
    with pytest.raises(VocabMismatchError, match="modality 'image' conflicts"):
        VocabRegistry.load(resized.save(tmp_path / "bad.json"), compatible_with=earlier)
    moved = VocabRegistry()
    moved.add_modality("image", 64)
    moved.add_modality("text", 300)
    with pytest.raises(VocabMismatchError, match="modality 'text' conflicts"):
        earlier.check_extended_by(moved)
    with pytest.raises(VocabMismatchError, match="was made with vocabulary"):
        earlier.require_fingerprint(moved.fingerprint)


# ----------------------------------------------------------------- properties
modality_specs = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(1, 5000)), min_size=1, max_size=6)


def _build(specs, slots=256):
    reg = VocabRegistry(num_special_slots=slots)
    for k, (kind, size) in enumerate(specs):
        reg.add_modality(f"m{k}", size, kind=kind)
    return reg


@settings(max_examples=60, deadline=None)
@given(modality_specs, st.data())
def test_property_ranges_contiguous_and_roundtrip(specs, data):
    reg = _build(specs)
    assert reg.vocab_size % 128 == 0 and reg.vocab_size >= reg.used_size
    prev = reg.num_special_slots
    for m in reg.modalities:
        assert m.offset == prev
        prev = m.stop
        local = torch.tensor(data.draw(st.lists(st.integers(0, m.size - 1), min_size=1, max_size=20)))
        mod, back = reg.to_local(reg.to_global(m.name, local))
        assert torch.equal(back, local) and bool((mod == m.index).all())


@settings(max_examples=60, deadline=None)
@given(modality_specs, modality_specs)
def test_property_appending_never_moves_ids(first, more):
    reg = _build(first)
    snapshot = _build(first)
    for k, (kind, size) in enumerate(more):
        reg.add_modality(f"x{k}", size, kind=kind)
    snapshot.check_extended_by(reg)  # raises on any moved id
    assert VocabRegistry.from_dict(reg.to_dict()) == reg


@settings(max_examples=60, deadline=None)
@given(modality_specs, st.integers(-10_000, 40_000))
def test_property_modality_of_agrees_with_ranges(specs, gid):
    reg = _build(specs)
    valid = 0 <= gid < len(reg.specials) or reg.num_special_slots <= gid < reg.used_size
    if not valid:
        with pytest.raises(RegistryError):
            reg.modality_of([gid])
        return
    idx = int(reg.modality_of([gid])[0])
    if gid < reg.num_special_slots:
        assert idx == 0
    else:
        m = reg.modality(idx)
        assert m.offset <= gid < m.stop


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 10_000) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                           max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_property_malformed_registry_json_gives_clear_error(data):
    """Any edit of a saved layout loads to an equal layout or raises RegistryError; nothing else escapes."""
    reg = VocabRegistry()
    reg.add_modality("text", 100)
    reg.add_modality("image", 50)
    d = reg.to_dict()
    key = data.draw(st.sampled_from(sorted(d)))
    if data.draw(st.booleans()):
        d.pop(key)
    elif key == "modalities" and data.draw(st.booleans()):
        field_ = data.draw(st.sampled_from(["name", "kind", "size", "offset", "begin", "end"]))
        d["modalities"][data.draw(st.integers(0, 1))][field_] = data.draw(json_values)
    else:
        d[key] = data.draw(json_values)
    try:
        loaded = VocabRegistry.from_dict(d)
    except RegistryError:
        return
    assert loaded == reg
