"""Synthesised speech: English sentences spoken by Debian's ``espeak-ng``."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .common import SAMPLE_RATE

# -------------------------------------------------------------------- audio
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A photograph of a cat sitting on a wooden table.",
    "Please turn off the lights when you leave the room.",
    "The rocket stood on the launch pad, ready for the morning flight.",
    "Seven hundred and twenty three people came to the meeting on Tuesday.",
    "She sells sea shells by the sea shore.",
    "Coffee tastes better when it is freshly ground.",
    "How many tokens does it take to describe a single image?",
    "The weather tomorrow will be cloudy with a chance of rain.",
    "Every transformer reads a sequence of numbers, one at a time.",
    "The astronaut waved to the camera before the hatch was closed.",
    "Open the window, the room is far too warm.",
    "A red motorcycle was parked in front of the garage.",
    "Listen carefully, and repeat the sentence after me.",
    "The museum opens at nine and closes at half past five.",
    "Galaxies far away look like small smudges of light.",
    "He bought bread, cheese, apples and a bottle of water.",
    "The train to the airport leaves from platform number four.",
    "Speech can be turned into tokens and back into sound.",
    "My favourite colour is blue, but I also like green.",
    "Can you hear the difference between these two voices?",
    "The library is quiet in the early hours of the morning.",
    "Thirty two by thirty two codes make one small picture.",
    "Bright sunlight came through the leaves of the old oak tree.",
    "Write the answer on a piece of paper and fold it twice.",
    "The children played football in the park until it got dark.",
    "A good dictionary explains every word it contains.",
    "We measured the signal to noise ratio of the reconstruction.",
    "The cat ignored the dog and went back to sleep.",
    "Snow fell silently over the mountains during the night.",
    "Numbers like three, fourteen and one hundred are easy to say.",
    "Thank you for calling, your message has been recorded.",
    "The orchestra tuned their instruments before the concert began.",
    "Mix the flour and the eggs, then add a little milk.",
    "The ship sailed north along the rocky coast.",
    "Is this the right way to the central station?",
    "Every spring the river floods the low fields near the village.",
    "Machine learning models need a lot of data to train well.",
    "The old clock in the hall struck twelve.",
    "Goodbye, and see you again next week.",
]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us+f3", "en-gb+f2", "en-029", "en-us+m3"]


def build_audio(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(t, VOICES[i % len(VOICES)]) for i, t in enumerate(SENTENCES)]
        jobs += [(t, VOICES[(i + 3) % len(VOICES)]) for i, t in enumerate(SENTENCES)]
        for i, (text, voice) in enumerate(jobs):
            speed = 150 + 10 * (i % 4)
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
            x, sr = sf.read(wav, dtype="float32")
            y = AF.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy()
            y = 0.9 * y / max(1e-6, float(np.abs(y).max()))
            fname = f"speech_{i:03d}.flac"
            sf.write(out / fname, y, SAMPLE_RATE, subtype="PCM_16")
            total += len(y) / SAMPLE_RATE
            rows.append({"file": fname, "text": text, "voice": voice, "speed_wpm": speed,
                         "seconds": round(len(y) / SAMPLE_RATE, 3),
                         "source": f"sentence {SENTENCES.index(text):02d}"})  # both voices of a sentence: one source
    with open(out / "transcripts.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"audio: {len(rows)} files, {total:.1f} s")
