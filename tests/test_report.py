"""``report/index.html`` of ``task=evaluate`` and of the demo, on tiny untrained tokenizers: the page parses, every
image inline and every WAV beside it decodes, each item carries its scores, and a headless Chromium (when one is
installed) opens it without console errors, loads every image and audio file, and takes a non-blank screenshot."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import soundfile as sf
import torch
from PIL import Image

from modalities.audio import SpectrogramTokenizer
from modalities.data.io import IMAGE_SUFFIXES
from modalities.data.runlog import MetricsLog
from modalities.eval.audio_eval import save_wav
from modalities.image import ImageTokenizer
from modalities.multimodal import MultimodalTokenizer
from modalities.tasks import run_task
from modalities.video import VideoTokenizer
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.vocoder import MelVocoder, VocoderConfig
from models.vqae import VQAEConfig

TINY_AE = VQAEConfig(channels=[8, 8, 16, 16], num_res_blocks=1, z_dim=8, attention=False, groups=4)
MEL = MelConfig(n_mels=32, griffin_lim_iters=4)


def _image_tok() -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer.from_configs(TINY_AE, QuantizerConfig(kind="vq", codebook_size=64))


def _audio_tok() -> SpectrogramTokenizer:
    """A spectrogram tokenizer carrying a (tiny, untrained) vocoder: it decodes both ways."""
    torch.manual_seed(0)
    tok = SpectrogramTokenizer.from_configs(MelVQConfig(channels=[8, 16, 16], z_dim=16, band_channels=4, groups=4),
                                            QuantizerConfig(kind="vq", codebook_size=32), MEL)
    return tok.set_vocoder(MelVocoder(VocoderConfig(dim=16, intermediate_dim=32, num_blocks=2), MEL))


# ----------------------------------------------------------------- the page
class Page(HTMLParser):
    """What a report page references and says: image sources, audio sources, section ids, headings, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.audio: list[str] = []
        self.sections: list[str] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._tag = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._tag = tag
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "audio":
            assert "controls" in a, "an <audio> without controls cannot be played"
            self.audio.append(a["src"])
        elif tag == "section":
            self.sections.append(a["id"])

    def handle_data(self, data):
        if self._tag in ("h2", "th"):
            self.headings.append(data.strip())
        self.text.append(data)


def check_page(folder: Path) -> Page:
    """Parses ``folder/index.html``; every image is an inline PNG that decodes and every audio file exists beside
    the page and decodes to samples."""
    page = Page((folder / "index.html").read_text())
    assert page.images and page.audio
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        im.load()
        assert im.width > 8 and im.height > 8
    for src in page.audio:
        assert not src.startswith(("/", "http", "file:")), f"{src}: audio must sit beside the page"
        wave, sr = sf.read(folder / src)
        assert len(wave) > sr // 10 and sr >= 8000, src
    return page


CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  const bad = [];
  for (const img of document.images) if (!img.complete || img.naturalWidth === 0) bad.push("img " + img.alt);
  const audios = [...document.querySelectorAll("audio")];
  Promise.all(audios.map(a => new Promise(done => {
    if (a.readyState >= 1) return done();
    if (a.error || a.networkState === 3) { bad.push("audio " + a.getAttribute("src")); return done(); }
    a.addEventListener("loadedmetadata", done);
    a.addEventListener("error", () => { bad.push("audio " + a.getAttribute("src")); done(); });
    setTimeout(() => { bad.push("audio (timeout) " + a.getAttribute("src")); done(); }, 5000);
  }))).then(() => {
    const out = document.createElement("pre");
    out.id = "mmtok-check";
    out.textContent = JSON.stringify({bad, images: document.images.length, audio: audios.length,
                                      durations: audios.map(a => a.duration)});
    document.body.appendChild(out);
  });
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium): the headless-browser check is skipped")


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def browser_check(folder: Path, tmp: Path, page: Page) -> None:
    """Chromium opens the page: no console message, a screenshot that is not blank; then the same page with a
    checking script appended (a copy beside it, so relative sources resolve): every image has pixels and every
    audio element loads its file's metadata (the browser decoded its header) with a duration."""
    shot = tmp / "shot.png"
    proc = _chromium(["--window-size=1200,1600", f"--screenshot={shot}", (folder / "index.html").as_uri()],
                     tmp / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    im = Image.open(shot).convert("RGB")
    assert im.size == (1200, 1600)
    colours = im.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50, "blank screenshot"
    assert len(im.crop((0, 0, 1200, 200)).getcolors(maxcolors=1 << 20) or range(99)) > 5, "nothing at the top"

    probe = folder / "_browser_check.html"
    probe.write_text((folder / "index.html").read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    try:
        proc = _chromium(["--virtual-time-budget=20000", "--dump-dom", probe.as_uri()], tmp / "profile")
    finally:
        probe.unlink()
    found = re.search(r'<pre id="mmtok-check">(.*?)</pre>', proc.stdout)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["bad"] == [] and result["images"] == len(page.images) and result["audio"] == len(page.audio)
    assert all(d and d > 0.1 for d in result["durations"]), result


# -------------------------------------------------------------------- tests
def test_evaluate_writes_a_report_people_can_open(compose, tmp_path):
    """Image, audio (vocoder and Griffin-Lim) and video tokenizers against JPEG: two items each on the page."""
    _image_tok().save_pretrained(tmp_path / "image")
    _audio_tok().save_pretrained(tmp_path / "audio")
    VideoTokenizer.per_frame(_image_tok()).save_pretrained(tmp_path / "video")
    cfg = compose(["task=evaluate", f"task.tokenizers=[{tmp_path}/image,{tmp_path}/audio,{tmp_path}/video]",
                   "task.max_items=2", "task.report_items=2", "task.image_size=64", "task.rates.image=[1.0]",
                   "task.baselines.image=[jpeg]", "task.baselines.audio=[]", "task.rates.video=[0.1]",
                   "show_progress=false"])
    run_task(cfg, tmp_path / "run")
    report = tmp_path / "run" / "report"
    page = check_page(report)
    assert [s.split("_")[0] for s in page.sections] == ["image"] * 2 + ["audio"] * 2 + ["video"] * 2
    text = " ".join(page.text)
    assert "original" in page.headings and sum(h.startswith("reconstruction: ") for h in page.headings) == 2
    assert text.count("PSNR") >= 4 and text.count("SSIM") >= 4  # two images, two videos, each scored
    for label in ("original", "reconstruction (vocoder)", "reconstruction (Griffin-Lim)"):
        assert text.count(label) >= 2, label  # one player per clip
    assert text.count("PESQ") >= 4 and "lpips: not computed (set eval.lpips_weights)" in text
    assert len(page.audio) == 6  # 2 clips x (original, vocoder, Griffin-Lim)
    # 2 image + 2 video items (original + reconstruction), 2 mel figures, rd: image psnr and ciede2000,
    # audio pesq/stoi, video psnr
    assert len(page.images) == 8 + 2 + 5
    assert text.count("ΔE00") >= 2  # each image reconstruction carries its colour error
    assert "JPEG" in text and "bits_per_second" in page.headings
    browser_check(report, tmp_path, page)


def _fake_demo_run(out: Path, mm: MultimodalTokenizer) -> dict:
    """What the demo's stages leave behind, made in a second: loss logs, generated media, vocoder examples."""
    report = out / "report"
    for stage in ("image", "audio", "lm"):
        log = MetricsLog(out / stage)
        for step in (1, 10, 20):
            log.write(step=step, loss=1.0 / step, loss_recon=0.5 / step, loss_text=2.0 / step)
    image = mm.tokenizers["image"].decode(torch.zeros(1, 4, 4, dtype=torch.long))[0]
    from torchvision.utils import save_image

    report.mkdir(parents=True)
    save_image(image, report / "generated_image.png")
    speech = mm.tokenizers["audio"].decode(torch.zeros(1, 1, 25, dtype=torch.long))[0]
    save_wav(report / "generated_speech.wav", speech, 16000)
    for media, prompt in (("image", "A cat."), ("audio", "Hello <b>world</b>.")):
        (report / f"generated_{media}.json").write_text(json.dumps({"prompt": prompt, "ids": [], "text": [],
                                                                     "media": []}))
    held = report / "vocoder_examples"
    for name in ("original", "vocoder", "griffin_lim", "tokens_vocoder", "tokens_griffin_lim"):
        save_wav(held / f"00_{name}.wav", 0.1 * torch.randn(8000), 16000)
    return {"text": {}, "image": {}, "audio": {}, "vocoder": {"heldout_vocoder_pesq": 1.5, "steps": 1}}


def test_demo_report_shows_held_out_items_generated_media_and_curves(compose, tmp_path, text_tok, samples):
    from modalities.eval.report import loss_figure
    from modalities.tasks.demo import held_out_files, write_report
    from modalities.tasks.vq import media_split

    trained = _image_tok()
    mm = MultimodalTokenizer({"text": text_tok, "image": ImageTokenizer(trained.model, "resize", 64),
                              "audio": _audio_tok()})
    out = tmp_path / "run"
    stages = _fake_demo_run(out, mm)
    cfg = compose(["task.report_items=2", "task.image_size=64", "show_progress=false"])
    losses = loss_figure({"image tokenizer": (out / "image", ["loss", "loss_recon"]),
                          "transformer": (out / "lm", ["loss", "loss_text"])})
    path = write_report(cfg, out, mm, stages, {"task": "demo", "image_psnr": 12.5}, losses)
    assert path == out / "report" / "index.html"
    page = check_page(out / "report")
    assert page.sections == ["images_held_out_photographs", "rate_and_distortion_images", "speech_held_out_clips",
                             "vocoder_from_the_true_mel_and_from_tokens", "generated_by_the_transformer",
                             "loss_curves", "metrics"]
    text = " ".join(page.text)
    assert "Hello <b>world</b>." in text  # the prompt, escaped on the page and read back as text
    assert text.count("PSNR") >= 2 and "reconstruction (Griffin-Lim)" in text and "Griffin-Lim (tokens)" in text
    # held out means held out: every item shown is on the held-out side of the stage's split
    shown = {Path(t.strip()).name for t in page.text if t.strip().endswith((".png", ".jpg", ".flac", ".wav"))}
    held = {f.name for f in held_out_files(cfg, "image", "images", "images", IMAGE_SUFFIXES, 100)}
    trained_on = {f.name for f in media_split(compose(["experiment=image_small"]), "images", "images",
                                              IMAGE_SUFFIXES)[1]}
    images_shown = {n for n in shown if n.endswith((".png", ".jpg")) and not n.startswith("generated")}
    assert images_shown and images_shown <= held and not images_shown & trained_on
    for name in ("image_reconstructions.png", "audio_reconstructions.png", "rd_image_psnr.png"):
        assert Image.open(out / "report" / name).size[0] > 200, name
    assert len([a for a in page.audio if a.startswith("vocoder_examples/")]) == 5
    browser_check(out / "report", tmp_path, page)
