"""More photographs: lomiri wallpapers, matplotlib's sample photograph and the plasma wallpaper photographs."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from .common import _square

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


def _photo_rows(out: Path, img: Image.Image, stem: str, caption: str, meta: dict,
                crops: bool = True) -> list[dict]:
    """Writes the whole-frame 256x256 image and (unless ``crops=False``) the :data:`MORE_CROPS` detail crops of one
    photograph; returns their caption rows, each with ``meta`` (source, author, licence...)."""
    _square(img, 256).save(out / f"{stem}.png", optimize=True)
    rows = [{"file": f"{stem}.png", "caption": caption} | meta]
    for i, (side, (fx, fy)) in enumerate(MORE_CROPS if crops else []):
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
