"""Saturated renders and illustrations from Debian's ``ukui-wallpapers``, pinned to the training side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from .photos import _photo_rows

# Issue 25, item 5: under 1% of the training photographs' pixels lie near a saturated swatch, and the f8 and f16
# tokenizers turn saturated yellows pink and oranges yellow-green. These twelve wallpapers are renders and
# illustrations made of flat and graded saturated colour (pink, orange, yellow, violet, cyan, green), not
# photographs: they were meant to widen the colours the tokenizer learns from (tried, not adopted: docs/images.md,
# "Saturated renders"). Not bundled; pinned to the training side (``"split": "train"``), so they never score a
# tokenizer and move no photograph across a split. The package's copyright file
# (/usr/share/doc/ukui-wallpapers/copyright) states CC BY-SA 3.0 for all files, copyright "Ubuntu Kylin community
# contributors"; our resized copies are CC BY-SA 3.0 too.
UKUI = "usr/share/backgrounds"  # under --prefix
UKUI_AUTHOR, UKUI_LICENCE = "Ubuntu Kylin community contributors", "CC-BY-SA-3.0"
# file in UKUI -> caption written for it
RENDERS = {
    "2004default.jpg": "A glossy ribbon in pink, red and gold curls across a bright turquoise and blue background.",
    "calla.png": "An orange calla lily on a blue stem inside a pink and peach circle, on pastel pink and blue waves.",
    "city.png": "Flat planes of dark teal and navy meet a pale mint wall, like the corner of a building at night.",
    "desert.png": "The edge of a yellow-orange disc over flat teal and dark green slopes, like a stylised dune.",
    "firstgeneration.jpg": "A white and lime-green robot dragon's head on a deep blue chequered background with "
                           "dark spots.",
    "fluent-color.png": "Soft folds of violet, pink and blue, like fabric, under a pale blue sky.",
    "focal-ubuntukylin.png": "A glowing cyan circuit with the number 20.04 on a dark navy and teal background.",
    "goldfish.png": "A bright pink and red goldfish swims on a purple and violet background.",
    "rhythm.jpg": "A flowing ribbon in red, pink and orange sweeps across a turquoise background.",
    "rollpaper.png": "A sheet rolls over in mint green and salmon pink on a flat dark green background.",
    "string.jpg": "Streaming bands of blue, cyan, yellow and orange swirl into a tunnel.",
    "the-mouse.jpg": "A glowing neon mouse's face in blue, purple and pink on a black background.",
}


def build_renders(out: Path, prefix: Path = Path("/"), crops: bool = True) -> list[dict]:
    """Writes each of :data:`RENDERS` as :func:`~.photos.build_more_photos` does (the whole frame and two detail
    crops, file names ``ukui_<name>``; ``crops=False``: the whole frames only); every row carries
    ``"split": "train"``. ``prefix``: where the package's files are (a folder ``dpkg-deb -x`` unpacked it into;
    default: the installed ones)."""
    rows = []
    for name, caption in RENDERS.items():
        path = prefix / UKUI / name
        if not path.is_file():
            raise SystemExit(f"{path} is missing: apt-get install ukui-wallpapers (or pass --prefix)")
        img = Image.open(path).convert("RGB")
        meta = {"source": f"debian/ukui-wallpapers/{UKUI}/{name}", "author": UKUI_AUTHOR, "licence": UKUI_LICENCE,
                "kind": "render", "split": "train"}
        rows += _photo_rows(out, img, f"ukui_{Path(name).stem.replace('-', '_')}", caption, meta, crops)
    return [r | {"caption": r["caption"].replace("this photograph", "this render")} for r in rows]


def build_render_folder(images: Path, out: Path, prefix: Path = Path("/"), crops: bool = True) -> None:
    """``--only renders --out DIR``: copies the bundled ``images`` folder to ``out`` (which must not exist yet) and
    adds :func:`build_renders` to it, caption rows appended, for ``--set data.images=DIR``."""
    if out.exists():
        raise SystemExit(f"{out} exists: --only renders writes a new folder")
    shutil.copytree(images, out)
    rows = build_renders(out, prefix, crops)
    with open(out / "captions.jsonl", "a", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"images: {out} holds the bundled images and {len(rows)} ukui-wallpapers files pinned to training")
