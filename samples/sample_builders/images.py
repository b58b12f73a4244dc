"""Images: the scikit-image photographs with their captions and detail crops, and ``captions.jsonl``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from PIL import Image

from .common import _square
from .photos import build_more_photos, build_plasma_photos

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
