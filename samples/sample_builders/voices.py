"""More recorded speech: the KLettres and KTuberling voices of Debian's ``klettres-data`` and ``ktuberling-data``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .common import SAMPLE_RATE, _speaker_source, _write_jsonl

# More recorded voices (issue 25), each package its own collection (recording chain): volunteers of KDE's
# education programs, recorded at home at 44.1 kHz. KLettres says letters and syllables; its handbook ("Credits
# and License") names the speaker of each language. KTuberling says words; nothing in the package names its
# speakers, so a voice is named by its language. (gcompris-qt-data ships no voice recordings: GCompris downloads
# its voices at run time.) A KLettres speaker's clips are consecutive items of its sounds.xml, a KTuberling
# voice's of its .soundtheme, each trimmed of silence and joined with short pauses into clips of at most
# VOICE_SECONDS; VOICE_CLIPS of those clips (of at least VOICE_MIN_SECONDS) are taken at even steps.
KLETTRES = "usr/share/klettres"  # under --prefix
KTUBERLING = "usr/share/ktuberling/sounds"
KLETTRES_SPEAKERS = {"cs": "Eva Mikulčíková", "de": "Helmut Kriege", "en": "Robert Wadley",
                     "fr": "Ludovic Grossard", "it": "Pietro Pasotti", "nl": "Geert Stams"}
KLETTRES_HELD_OUT = {"cs", "en"}  # whole speakers never trained on: the one woman credited, and a real English voice
KTUBERLING_VOICES = ["el", "gl", "uk"]  # none of them a KLettres language; the whole collection is held out
VOICE_LICENCE = "GPL-2+"  # /usr/share/doc/{klettres,ktuberling}-data/copyright, "Files: *"
VOICE_CLIPS = 4
VOICE_SECONDS, VOICE_MIN_SECONDS, VOICE_PAUSE = 4.0, 2.0, 0.15


def _read_voice(path: Path) -> np.ndarray:
    """A package's sound file as mono float32 at :data:`SAMPLE_RATE`."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(1)
    return x if sr == SAMPLE_RATE else AF.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy()


def _trim(x: np.ndarray, floor_db: float = 30.0, gap: float = 0.3, margin: float = 0.05,
          fade: float = 0.01) -> np.ndarray:
    """The sound of ``x`` without the silence and room noise around it: of the 10 ms frames within ``floor_db`` of
    the loudest, the run around the loudest (gaps of up to ``gap`` seconds allowed, so a pause between two words
    stays and a cough or click away from them goes), ``margin`` seconds wider, faded in and out over ``fade``
    seconds so that the pauses between items do not click."""
    hop = SAMPLE_RATE // 100
    rms = np.sqrt([np.mean(x[i:i + hop] ** 2) + 1e-12 for i in range(0, max(1, len(x) - hop + 1), hop)])
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > -floor_db)
    runs = np.split(loud, np.flatnonzero(np.diff(loud) > gap * 100) + 1)
    run = next(r for r in runs if int(np.argmax(rms)) in r)
    pad = int(margin * SAMPLE_RATE)
    y = x[max(0, run[0] * hop - pad): min(len(x), (run[-1] + 1) * hop + pad)].copy()
    n = min(int(fade * SAMPLE_RATE), len(y) // 2)
    ramp = np.linspace(0, 1, n, dtype=np.float32)
    y[:n] *= ramp
    y[len(y) - n:] *= ramp[::-1]
    return y


def _voice_clips(items: list[tuple[str, Path]]) -> list[tuple[list[str], np.ndarray]]:
    """Consecutive ``(name, file)`` items, trimmed and joined with :data:`VOICE_PAUSE` s of silence into clips of
    at most :data:`VOICE_SECONDS`; the clips of at least :data:`VOICE_MIN_SECONDS`."""
    pause = np.zeros(int(VOICE_PAUSE * SAMPLE_RATE), np.float32)
    clips, names, parts = [], [], []
    for name, path in items:
        x = _trim(_read_voice(path))
        length = sum(len(p) for p in parts) + len(pause) * len(parts) + len(x)
        if parts and length > VOICE_SECONDS * SAMPLE_RATE:
            clips.append((names, np.concatenate([q for p in parts for q in (pause, p)][1:])))
            names, parts = [], []
        names.append(name)
        parts.append(x)
    if parts:
        clips.append((names, np.concatenate([q for p in parts for q in (pause, p)][1:])))
    return [(n, x) for n, x in clips if len(x) >= VOICE_MIN_SECONDS * SAMPLE_RATE]


def _sound_items(xml: Path, root: Path) -> list[tuple[str, Path]]:
    """``(name, file)`` of every ``<sound name=... file=...>`` of a KLettres ``sounds.xml`` or a KTuberling
    ``.soundtheme``, in the file's order (``file`` relative to ``root``)."""
    import xml.etree.ElementTree as ET

    return [(e.get("name"), root / e.get("file")) for e in ET.parse(xml).getroot().iter("sound")]


def build_voices(out: Path, prefix: Path = Path("/")) -> None:
    """``klettres.jsonl`` with ``klettres_<lang>_NN.flac`` and ``ktuberling.jsonl`` with
    ``ktuberling_<lang>_NN.flac``: :data:`VOICE_CLIPS` clips per speaker, built by :func:`_voice_clips` (no
    listening, no choosing). Each row names language, speaker, the items said (the package's names for them),
    package and licence; its source is its speaker; held-out speakers carry ``"split": "held_out"``."""
    out.mkdir(parents=True, exist_ok=True)
    klettres, ktuberling = prefix / KLETTRES, prefix / KTUBERLING
    voices = [("klettres-data", lang, speaker, klettres / lang / "sounds.xml", klettres, lang in KLETTRES_HELD_OUT)
              for lang, speaker in KLETTRES_SPEAKERS.items()]  # (package, language, speaker, index, root, pinned)
    voices += [("ktuberling-data", lang, f"KTuberling {lang} voice (uncredited)", ktuberling / f"{lang}.soundtheme",
                ktuberling, True) for lang in KTUBERLING_VOICES]
    rows: dict[str, list[dict]] = {"klettres-data": [], "ktuberling-data": []}
    for package, lang, speaker, index, root, held_out in voices:
        if not index.is_file():
            raise SystemExit(f"{index} is missing: apt-get install {package}")
        clips = _voice_clips(_sound_items(index, root))
        step = len(clips) / VOICE_CLIPS
        for i in range(VOICE_CLIPS):
            names, x = clips[int(i * step)]
            x = x * min(1.0, 0.99 / float(np.abs(x).max()))  # resampling overshoots clipped originals: no new clipping
            fname = f"{package.split('-')[0]}_{lang}_{i:02d}.flac"
            sf.write(out / fname, x, SAMPLE_RATE, subtype="PCM_16")
            rows[package].append({"file": fname, "language": lang, "speaker": speaker, "items": names,
                                  "seconds": round(len(x) / SAMPLE_RATE, 3), "package": package,
                                  "licence": VOICE_LICENCE, "source": _speaker_source(speaker)}
                                 | ({"split": "held_out"} if held_out else {}))
    for package, part in rows.items():
        _write_jsonl(out / f"{package.split('-')[0]}.jsonl", part)
        print(f"{package}: {len(part)} files, {sum(r['seconds'] for r in part):.1f} s")
