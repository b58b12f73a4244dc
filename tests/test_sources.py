"""Held-out splits by source: no photograph, video or sentence on both sides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modalities.data.io import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_media
from modalities.data.sources import read_held_out, read_sources, read_trained, source_of, split_by_source, split_folder

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FOLDERS = {"images": IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES, "video": VIDEO_SUFFIXES}
RECORDED = ("recordings", "klettres", "ktuberling")  # the collections of recorded human speech


def _folder(sub: str) -> tuple[Path, list[Path], dict[str, str]]:
    folder = SAMPLES / sub
    return folder, list_media(folder, FOLDERS[sub], sub), read_sources(folder)


def test_every_sample_file_has_a_source():
    for sub in FOLDERS:
        folder, files, sources = _folder(sub)
        assert sorted(f.name for f in files) == sorted(sources), sub
    _, _, images = _folder("images")
    assert images["astronaut_crop2.png"] == images["astronaut.png"] == "skimage/data/astronaut.png"
    assert images["motorcycle_left.png"] == images["motorcycle_right.png"]  # a stereo pair: one scene
    _, _, audio = _folder("audio")
    rows = [json.loads(x) for x in (SAMPLES / "audio/transcripts.jsonl").read_text().splitlines()]
    by_text: dict[str, set[str]] = {}
    for r in rows:
        by_text.setdefault(r["text"], set()).add(audio[r["file"]])
    assert all(len(s) == 1 for s in by_text.values())  # one sentence, one source, whichever voice
    assert len({audio[r["file"]] for r in rows}) == len(by_text) == 40
    recorded = [json.loads(x) for name in RECORDED for x in (SAMPLES / f"audio/{name}.jsonl").read_text().splitlines()]
    by_speaker: dict[str, set[str]] = {}
    for r in recorded:  # every clip of a speaker, whatever it says: one source, and one speaker per source
        by_speaker.setdefault(r["speaker"], set()).add(audio[r["file"]])
    assert all(len(s) == 1 for s in by_speaker.values()) and len(by_speaker) == 12
    assert len(set().union(*by_speaker.values())) == 12


@settings(max_examples=60, deadline=None)
@given(sub=st.sampled_from(sorted(FOLDERS)), val_fraction=st.floats(0.01, 0.99), data=st.data())
def test_split_never_puts_a_source_on_both_sides(sub, val_fraction, data):
    folder, files, sources = _folder(sub)
    subset = data.draw(st.lists(st.sampled_from(files), min_size=1, unique=True))
    if len({source_of(f, folder, sources) for f in subset}) < 2:
        with pytest.raises(ValueError, match="at least 2 sources"):
            split_by_source(subset, val_fraction, folder, sources)
        return
    train, val = split_by_source(subset, val_fraction, folder, sources)
    assert train and val and sorted(train + val) == sorted(subset)
    assert not {source_of(f, folder, sources) for f in train} & {source_of(f, folder, sources) for f in val}


def test_image_task_holds_out_eighteen_photographs_with_their_crops():
    """conf/task/image.yaml (val_fraction 0.4): 15 of the 38 unpinned photographic sources by hash, plus the 3
    pinned plasma photographs whose palettes the training set lacks: 18 of 41 sources, 46 of 106 files."""
    folder, files, sources = _folder("images")
    train, val = split_folder(files, 0.4, folder)
    held = {source_of(f, folder, sources) for f in val}
    assert (len(files), len(val), len(set(sources.values())), len(held)) == (106, 46, 41, 18)
    pinned = read_held_out(folder)
    assert {Path(s).parts[5] for s in pinned} == {"ColorfulCups", "FallenLeaf", "OneStandsOut"}
    assert pinned <= held
    assert {f.name for f in val} >= {f"plasma_{Path(s).parts[5]}{c}.png" for s in pinned for c in ("", "_crop0")}
    assert not held & {source_of(f, folder, sources) for f in train}
    # the photographs' whole frames are held out with their crops
    assert {f.name for f in val} >= {f"{Path(s).stem}.png" for s in held if "stereo" not in s and "plasma" not in s}


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 30), pins=st.sets(st.integers(0, 29), max_size=5), val_fraction=st.floats(0.05, 0.95))
def test_pinned_sources_are_held_out_and_leave_the_rest_alone(tmp_path_factory, n, pins, val_fraction):
    root = tmp_path_factory.mktemp("pins")
    files = [root / f"img{i}.png" for i in range(n)]
    pinned = {f"img{i}.png" for i in pins if i < n}
    if len(pinned) == n:
        with pytest.raises(ValueError, match="nothing is left to train on"):
            split_by_source(files, val_fraction, root, None, pinned)
        return
    train, val = split_by_source(files, val_fraction, root, None, pinned)
    assert sorted(train + val) == sorted(files) and train
    assert pinned <= {f.name for f in val}
    rest = [f for f in files if f.name not in pinned]
    if len(rest) >= 2:  # the unpinned sources split as they would without the pinned ones
        assert [f for f in val if f.name not in pinned] == split_by_source(rest, val_fraction, root)[1]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 30), kept=st.sets(st.integers(0, 40), max_size=6), pins=st.sets(st.integers(0, 29), max_size=3),
       val_fraction=st.floats(0.05, 0.95))
def test_train_pins_are_trained_on_and_move_no_other_source(tmp_path_factory, n, kept, pins, val_fraction):
    """Sources pinned to training (``"split": "train"``) land on the training side, and every other source splits
    exactly as it would without them: adding training-only material changes neither the held-out nor the
    validation split."""
    root = tmp_path_factory.mktemp("train_pins")
    files = [root / f"img{i}.png" for i in range(n)]
    extra = [root / f"extra{i}.png" for i in sorted(kept)]
    pinned = {f"img{i}.png" for i in pins if i < n} if len(pins) < n else set()
    try:
        expected = split_by_source(files, val_fraction, root, None, pinned)
    except ValueError:
        return
    everything = files + extra
    train, val = split_by_source(everything, val_fraction, root, None, pinned, {f.name for f in extra})
    assert val == expected[1]
    assert train == [f for f in everything if f not in set(expected[1])]
    # and again on the training side, as task.split=validation does
    if len(expected[0]) >= 2:
        inner = split_by_source(train, val_fraction, root, None, pinned, {f.name for f in extra})
        assert inner[1] == split_by_source(expected[0], val_fraction, root, None, pinned)[1]


def test_train_pins_are_read_from_metadata_and_checked(tmp_path):
    rows = [{"file": "a.png", "source": "a", "split": "train"}, {"file": "a_crop.png", "source": "a"},
            {"file": "b.png", "source": "b"}, {"file": "c.png", "source": "c"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = [tmp_path / r["file"] for r in rows]
    assert read_trained(tmp_path) == {"a"} and read_held_out(tmp_path) == set()
    train, val = split_folder(files, 0.5, tmp_path)
    assert {f.name for f in train} >= {"a.png", "a_crop.png"} and len(val) == 1
    with pytest.raises(ValueError, match="nothing is left to hold out"):
        split_by_source(files[:2], 0.5, tmp_path, read_sources(tmp_path), (), {"a"})
    (tmp_path / "n.jsonl").write_text(json.dumps({"file": "b.png", "source": "a", "split": "held_out"}) + "\n")
    with pytest.raises(ValueError, match=r"n\.jsonl:1: source 'a' is pinned to 'held_out' here and to 'train'"):
        read_trained(tmp_path)


def test_read_held_out_refuses_other_split_values(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"file": "a.png", "source": "a", "split": "held_out"}) + "\n"
                                      + json.dumps({"file": "b.png", "source": "b"}) + "\n")
    assert read_held_out(tmp_path) == {"a"}
    (tmp_path / "n.jsonl").write_text(json.dumps({"file": "c.png", "source": "c", "split": "test"}) + "\n")
    with pytest.raises(ValueError, match=r"n\.jsonl:1: split must be \"held_out\" or \"train\""):
        read_held_out(tmp_path)


def test_split_is_stable_when_files_are_added(tmp_path):
    files = [tmp_path / f"img{i}.png" for i in range(20)]
    train, val = split_by_source(files, 0.2, tmp_path)
    sources = {"img0.png": "a", "img1.png": "a", "new.png": "a"}
    assert split_by_source(files, 0.2, tmp_path) == (train, val)  # every file its own source without metadata
    _, held = split_by_source([*files, tmp_path / "late.png"], 0.2, tmp_path)
    assert len(held) == len(val) == 4 and len(set(held) & set(val)) >= 3  # a new source displaces at most one
    a_train, a_val = split_by_source(files, 0.5, tmp_path, sources)
    assert (files[0] in a_val) == (files[1] in a_val)


def test_read_sources_refuses_contradictions(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"file": "x.png", "source": "one"}) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"file": "x.png", "source": "two"}) + "\n")
    with pytest.raises(ValueError, match=r"x\.png.*two.*a\.jsonl:1"):
        read_sources(tmp_path)
    (tmp_path / "b.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"b\.jsonl:1: not a JSON line"):
        read_sources(tmp_path)
    (tmp_path / "b.jsonl").write_text(json.dumps({"file": "y.png", "caption": "no source"}) + "\n")
    assert read_sources(tmp_path) == {"x.png": "one"}


def test_split_refuses_one_source(tmp_path):
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    with pytest.raises(ValueError, match="2 file.*1 source"):
        split_by_source(files, 0.5, tmp_path, {"a.png": "s", "b.png": "s"})
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_source(files, 1.0, tmp_path)


def test_collections_name_the_metadata_file_of_each_clip():
    from modalities.data.sources import read_collections

    audio = read_collections(SAMPLES / "audio")
    assert audio["speech_000.flac"] == "transcripts" and audio["real_it_03.flac"] == "recordings"
    assert audio["klettres_cs_00.flac"] == "klettres" and audio["ktuberling_uk_03.flac"] == "ktuberling"
    assert sorted(set(audio.values())) == ["klettres", "ktuberling", "recordings", "transcripts"]
    assert len(audio) == 152


def test_audio_tasks_hold_out_whole_speakers_and_a_whole_collection():
    """conf/task/audio_*.yaml (val_fraction 0.15): 7 of the 47 unpinned speech sources by hash (6 sentences with
    both their voices, and the Italian asterisk speaker) plus the 5 pinned speakers (two of KLettres, the three
    KTuberling voices): 12 of 52 sources, 44 of 152 clips. Recorded speech is held out by speaker: no voice that
    is held out is heard in training, every recorded collection has such a voice, and the KTuberling recording
    chain is held out whole."""
    from modalities.data.sources import read_collections

    folder, files, sources = _folder("audio")
    train, val = split_folder(files, 0.15, folder)
    held = {source_of(f, folder, sources) for f in val}
    assert (len(files), len(val), len(set(sources.values())), len(held)) == (152, 44, 52, 12)
    assert read_held_out(folder) == {"speaker Eva Mikulčíková", "speaker Robert Wadley"} | {
        f"speaker KTuberling {lang} voice (uncredited)" for lang in ("el", "gl", "uk")}
    rows = [json.loads(x) for name in RECORDED for x in (folder / f"{name}.jsonl").read_text().splitlines()]
    speaker = {r["file"]: r["speaker"] for r in rows}
    trained = {speaker[f.name] for f in train if f.name in speaker}
    unheard = {speaker[f.name] for f in val if f.name in speaker} - trained
    assert unheard == {"Carlo Flora", "Eva Mikulčíková", "Robert Wadley"} | {
        f"KTuberling {lang} voice (uncredited)" for lang in ("el", "gl", "uk")}
    assert {speaker[f.name] for f in val if f.name in speaker} == unheard  # no recorded voice on both sides
    collection = read_collections(folder)
    assert {collection[f.name] for f in val} == {"transcripts", "recordings", "klettres", "ktuberling"}
    assert {collection[f.name] for f in train} == {"transcripts", "recordings", "klettres"}  # ktuberling: none
    assert sum(collection[f.name] == "ktuberling" for f in val) == sum(c == "ktuberling" for c in collection.values())
    for name in ("recordings", "klettres"):  # each also has a held-out voice of its own
        assert {speaker[f.name] for f in val if collection[f.name] == name} & unheard, name
    assert len(trained) == 6 and sum(f.name.startswith("speech_") for f in val) == 12
