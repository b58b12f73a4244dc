"""Recorded speech: the professional speakers of Debian's ``asterisk-core-sounds-{fr,it,ru}-g722``."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

from .common import SAMPLE_RATE, _speaker_source, _write_jsonl

# Real human speech (issue 18): telephone prompts recorded by three professional speakers, as Debian packages
# them (G.722 wideband, 16 kHz). The English recordings (asterisk-core-sounds-en*) and the Mexican-Spanish ones
# (the same speaker as the English) are reserved for independent evaluation and never used.
ASTERISK = "usr/share/asterisk/sounds"  # under --prefix
# folder under ASTERISK -> (package, language, speaker as the package credits them, licence)
SPEAKERS = {
    "fr_CA_f_June": ("asterisk-core-sounds-fr-g722", "fr-CA", "June Wallack", "CC-BY-SA-3.0"),
    "it_IT_m_Carlo": ("asterisk-core-sounds-it-g722", "it-IT", "Carlo Flora", "CC-BY-3.0"),
    "ru_RU_f_IvrvoiceRU": ("asterisk-core-sounds-ru-g722", "ru-RU", "Maxim Topal (ivrvoice.ru)", "CC-BY-3.0"),
}
RECORDINGS_PER_SPEAKER = 12
RECORDING_SECONDS = (2.0, 5.0)  # whole prompts of this length: sentences, not single words or digits


def _decode_g722(path: Path) -> np.ndarray:
    with av.open(str(path), format="g722") as c:
        stream = c.streams.audio[0]
        if stream.rate != SAMPLE_RATE:
            raise SystemExit(f"{path}: expected {SAMPLE_RATE} Hz G.722, got {stream.rate} Hz")
        parts = [f.to_ndarray().reshape(-1) for f in c.decode(stream)]
    x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return x.astype(np.float32) / 32768 if x.dtype == np.int16 else x.astype(np.float32)


def build_recordings(out: Path, prefix: Path = Path("/")) -> None:
    """``recordings.jsonl`` and ``real_<lang>_NN.flac``: :data:`RECORDINGS_PER_SPEAKER` prompts per speaker, the
    prompts of :data:`RECORDING_SECONDS` taken at even steps through the sorted file names (no listening, no
    choosing). The source of a clip is its speaker (:func:`_speaker_source`)."""
    out.mkdir(parents=True, exist_ok=True)
    rows, total = [], 0.0
    for folder, (package, lang, speaker, licence) in SPEAKERS.items():
        root = prefix / ASTERISK / folder
        if not root.is_dir():
            raise SystemExit(f"{root} is missing: apt-get install {package}")
        clips = []
        for path in sorted(root.rglob("*.g722")):
            x = _decode_g722(path)
            if RECORDING_SECONDS[0] <= len(x) / SAMPLE_RATE <= RECORDING_SECONDS[1]:
                clips.append((path.relative_to(root).with_suffix("").as_posix(), x))
        step = len(clips) / RECORDINGS_PER_SPEAKER
        for i in range(RECORDINGS_PER_SPEAKER):
            prompt, x = clips[int(i * step)]
            fname = f"real_{lang[:2]}_{i:02d}.flac"
            sf.write(out / fname, x, SAMPLE_RATE, subtype="PCM_16")
            total += len(x) / SAMPLE_RATE
            rows.append({"file": fname, "language": lang, "speaker": speaker, "prompt": prompt,
                         "seconds": round(len(x) / SAMPLE_RATE, 3), "package": package, "licence": licence,
                         "source": _speaker_source(speaker)})
    _write_jsonl(out / "recordings.jsonl", rows)
    print(f"recordings: {len(rows)} files, {total:.1f} s")
