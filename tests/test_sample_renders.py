"""``samples/build_samples.py --only renders``: an experiment folder, the bundled images plus renders pinned to the
training side, built here from a fake package prefix (solid-colour stand-ins for the ukui-wallpapers files)."""

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from modalities.data.sources import read_held_out, read_trained

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture
def renders():
    sys.path.insert(0, str(SAMPLES))
    try:
        from sample_builders import renders
        yield renders
    finally:
        sys.path.remove(str(SAMPLES))


def _fake_prefix(root: Path, renders) -> Path:
    folder = root / renders.UKUI
    folder.mkdir(parents=True)
    for i, name in enumerate(renders.RENDERS):
        Image.new("RGB", (640, 400), (20 * i, 255 - 20 * i, 128)).save(folder / name)
    return root


@pytest.mark.parametrize("crops", [False, True])
def test_render_folder_pins_renders_to_training(tmp_path, renders, crops):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (256, 256), (0, 0, 255)).save(images / "photo.png")
    (images / "captions.jsonl").write_text(json.dumps({"file": "photo.png", "caption": "blue",
                                                       "source": "p", "split": "held_out"}) + "\n")
    out = tmp_path / "out"
    renders.build_render_folder(images, out, _fake_prefix(tmp_path / "pkg", renders), crops=crops)
    rows = [json.loads(x) for x in (out / "captions.jsonl").read_text().splitlines()]
    per = 3 if crops else 1
    assert len(rows) == 1 + per * len(renders.RENDERS)
    assert rows[0]["file"] == "photo.png"
    assert all((out / r["file"]).is_file() for r in rows)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["file"] for r in rows)
    assert all(Image.open(out / r["file"]).size == (256, 256) for r in rows)
    assert all(r["split"] == "train" and r["kind"] == "render" for r in rows[1:])
    assert len(read_trained(out)) == len(renders.RENDERS)
    assert read_held_out(out) == {"p"}
    with pytest.raises(SystemExit, match="exists"):
        renders.build_render_folder(images, out, tmp_path / "pkg")


def test_render_folder_names_a_missing_package(tmp_path, renders):
    images = tmp_path / "images"
    images.mkdir()
    (images / "captions.jsonl").write_text("")
    with pytest.raises(SystemExit, match="ukui-wallpapers"):
        renders.build_render_folder(images, tmp_path / "out", tmp_path / "nothing")
