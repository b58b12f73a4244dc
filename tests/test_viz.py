"""Plot helpers: right panels and numbers, clear errors; the notebook runs top to bottom."""

from __future__ import annotations

import json
import os

import pytest
import torch

from modalities import Segment, pack
from modalities.eval.viz import (
    axis_label,
    image_scores,
    mel_band_ticks,
    plot_codebook_usage,
    plot_rd,
    plot_token_stream,
    show_mels,
    show_reconstructions,
)

from .conftest import DEMO_TINY, REPO, make_registry


def test_show_reconstructions_titles_carry_psnr_and_ssim():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 16, 16)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    fig = show_reconstructions(list(a), list(b), titles=["x", "y"])
    axes = fig.get_axes()
    assert len(axes) == 4 and [ax.get_title() for ax in axes[:2]] == ["x", "y"]  # originals on top
    s = image_scores(a[0], b[0])
    assert f"{s['psnr']:.2f} dB, SSIM {s['ssim']:.3f}" == axes[2].get_title()
    assert 15 < s["psnr"] < 25 and image_scores(a[0], a[0])["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="as many reconstructions as originals"):
        show_reconstructions(list(a), list(b[:1]))
    with pytest.raises(ValueError, match=r"expected an image float\[3, H, W\]"):
        show_reconstructions([torch.rand(16, 16, 3)], [torch.rand(16, 16, 3)])


def test_show_mels_reports_the_difference():
    a, b = torch.zeros(8, 20), torch.full((8, 22), 2.0)
    fig = show_mels([a], [b], titles=["clip"])
    assert fig.get_axes()[1].get_title().endswith("(L1 2.00 dB)")
    with pytest.raises(ValueError, match="mels must be"):
        show_mels([torch.zeros(1, 8, 20)], [a])


def test_reconstruction_rows_are_labelled():
    a = torch.rand(2, 3, 16, 16)
    axes = show_reconstructions(list(a), list(a), titles=["x", "y"]).get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["original", "", "reconstruction", ""]  # left of each row
    assert not axes[0].get_xticks().size and not axes[0].get_yticks().size  # pictures, not plots


def test_mels_have_seconds_hertz_on_a_mel_axis_and_a_db_colour_bar():
    import numpy as np

    from models.melspec import MelConfig

    cfg = MelConfig(sample_rate=16000, hop_length=160, n_mels=64)
    a, b = torch.linspace(-60, 20, 64 * 300).view(64, 300), torch.zeros(64, 300)
    fig = show_mels([a], [b], titles=["clip.wav"], sample_rate=cfg.sample_rate, hop_length=cfg.hop_length)
    orig, recon, bar = fig.get_axes()
    assert orig.get_title() == "original \N{EM DASH} clip.wav" and recon.get_title().startswith("reconstruction")
    assert orig.get_xlabel() == recon.get_xlabel() == "time (s)"
    assert orig.get_ylabel() == "frequency (Hz, mel scale)"
    assert orig.get_xlim() == pytest.approx((0.0, 3.0))  # 300 frames of 10 ms
    assert bar.get_ylabel() == "level (dB)" and orig.get_images()[0].get_clim() == pytest.approx((-60, 20))
    labels = [t.get_text() for t in orig.get_yticklabels()]
    assert {"500", "1k", "4k"} <= set(labels) and "16k" not in labels  # up to Nyquist only
    # the ticks sit where torchaudio's mel filters put those frequencies: evenly spaced in mel, not in Hz
    pos, names = mel_band_ticks(64, 16000)
    fb = __import__("torchaudio").functional.melscale_fbanks(513, 0.0, 8000.0, 64, 16000)
    centre = fb.argmax(0).float() * 8000 / 512  # Hz of each filter's peak
    k = names.index("1k")
    assert abs(float(np.interp(pos[k], range(64), centre.numpy())) - 1000) < 80
    assert pos[names.index("4k")] - pos[names.index("2k")] < pos[names.index("2k")] - pos[names.index("250")]
    # without the geometry: frames and bands, said so
    ax = show_mels([a], [b]).get_axes()[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("frame", "mel band", "original")


def test_rate_distortion_axes_carry_units():
    rows = [{"name": "tok", "bits_per_pixel": 0.1, "psnr": 20.0}, {"name": "JPEG", "bits_per_pixel": 0.3, "psnr": 24.0},
            {"name": "JPEG", "bits_per_pixel": 0.6, "psnr": 27.0, "lpips": "not computed (set eval.lpips_weights)"}]
    ax = plot_rd(rows, "bits_per_pixel", "psnr").get_axes()[0]
    assert ax.get_xlabel() == "rate (bits per pixel)" and ax.get_ylabel() == "PSNR (dB), higher is better"
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [1, 2]
    ax = plot_rd(rows, "bits_per_pixel", "lpips").get_axes()[0]
    assert ax.get_ylabel() == "LPIPS, lower is better"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["tok (1 not computed)", "JPEG (2 not computed)"]
    assert axis_label("bits_per_second") == "rate (bits per second)" and axis_label("pesq").startswith("PESQ")
    with pytest.raises(ValueError, match="no 'name'"):
        plot_rd([{"psnr": 1.0}], "bits_per_pixel", "psnr")


def test_the_helpers_are_importable_from_modalities_viz():
    import modalities.viz as viz

    for name in ("show_mels", "show_reconstructions", "plot_rd", "axis_label", "save_figure", "mel_axes"):
        assert callable(getattr(viz, name)), name


def test_codebook_usage_counts():
    fig = plot_codebook_usage(torch.tensor([0, 0, 1, 3]), 8, title="t")
    ax = fig.get_axes()[0]
    assert ax.get_title().startswith("t: 37.5% of 8 codes used")
    assert [p.get_height() for p in ax.patches][:4] == [2, 1, 1, 0]
    with pytest.raises(ValueError, match=r"image codes: code 9 at position \(1,\) is out of range \[0, 8\)"):
        plot_codebook_usage(torch.tensor([1, 9]), 8, title="image codes")


def test_token_stream_colours_each_modality():
    reg = make_registry()
    seq = pack([Segment("text", [1, 2, 3]), Segment("image", torch.zeros(2, 2, dtype=torch.long))], reg, bos=True)
    ax = plot_token_stream(seq, reg, width=8).get_axes()[0]
    grid = ax.get_images()[0].get_array()
    assert grid.shape == (-(-len(seq) // 8), 8) and grid.flatten()[len(seq):].sum() == 0  # padding is 0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["special (1)", "text (3)", f"image ({len(seq) - 4})"]  # <bos>; the whole image segment
    ax = plot_token_stream(seq.ids, reg, width=8).get_axes()[0]  # bare ids: structure tokens are specials
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"special ({len(seq) - 7})", "text (3)", "image (4)"]
    with pytest.raises(ValueError):
        plot_token_stream([reg.vocab_size], reg)


def test_notebook_opens_with_contents_says_what_to_look_at_and_has_no_outputs():
    import re

    import nbformat

    nb = nbformat.read(REPO / "notebooks/reconstruction.ipynb", as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    first = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown" and "**Contents**" in first
    headings = [line[3:].strip() for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    assert len(headings) >= 6
    for h in headings:  # the table of contents links every section (Jupyter's anchors: spaces become '-')
        assert f"(#{h.replace(' ', '-')})" in first, h
    sections = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert all(re.search(r"\*\*(Look at|listen)\*\*", s) for s in sections), "each section says what to look at"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "held_out_items(" in code and "documents.jsonl" not in code and "read_manifest" not in code


@pytest.mark.slow
def test_notebook_shows_only_held_out_items_of_a_tiny_run(tmp_path, text_tok):
    """On a run folder holding only a tokenizer (tiny, untrained): runs top to bottom in seconds, and every file it
    shows is on the held-out side of the demo's split."""
    import nbformat
    from nbclient import NotebookClient

    from modalities import MultimodalTokenizer
    from modalities.data.io import AUDIO_SUFFIXES, IMAGE_SUFFIXES
    from modalities.image import ImageTokenizer
    from modalities.tasks.demo import compose_stage
    from modalities.tasks.vq import media_split

    from .test_report import _audio_tok, _image_tok

    MultimodalTokenizer({"text": text_tok, "image": ImageTokenizer(_image_tok().model, "resize", 64),
                         "audio": _audio_tok()}).save_pretrained(tmp_path / "run" / "tokenizer")
    nb = nbformat.read(REPO / "notebooks/reconstruction.ipynb", as_version=4)
    os.environ["MMTOK_RUN_DIR"] = str(tmp_path / "run")
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        del os.environ["MMTOK_RUN_DIR"]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], [o for o in outputs if o.output_type == "error"]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) >= 5
    shown = json.loads(next(o["text"] for o in nb.cells[2].outputs if o.get("name") == "stdout").replace("'", '"'))
    assert shown["image"] and shown["audio"]
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"data": {"root": None, "images": None, "audio": None}, "seed": 0, "show_progress": False,
                            "trainer": {"device": "cpu"}})
    for media, key, suffixes, stage in (("image", "images", IMAGE_SUFFIXES, ["experiment=image_small"]),
                                        ("audio", "audio", AUDIO_SUFFIXES, ["experiment=audio_debug"])):
        _, train, val = media_split(compose_stage(cfg, stage), key, key, suffixes)
        assert set(shown[media]) <= {f.name for f in val} and not set(shown[media]) & {f.name for f in train}


@pytest.mark.slow
def test_reconstruction_notebook_runs(tmp_path, demo_run):
    """Top to bottom with nbclient on a run folder without a tokenizer, so the notebook falls back to
    ``train.py`` in place: on a copy of the shared debug demo run (conftest.py) whose stages are finished, that run
    reuses them (tests/test_demo.py checks the reuse) and writes the tokenizer the notebook then shows."""
    import shutil

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks/reconstruction.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    top = str(demo_run[0])
    shutil.copytree(top, tmp_path / "run", ignore=lambda d, names: ["tokenizer"] if d == top else [])
    assert not (tmp_path / "run/tokenizer").exists() and (tmp_path / "run/image/tokenizer/image").is_dir()
    # the demo run's own command line: a stage is reused only with the settings it was trained with
    os.environ.update(MMTOK_RUN_DIR=str(tmp_path / "run"), MMTOK_DEBUG_ARGS=json.dumps(DEMO_TINY))
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        del os.environ["MMTOK_RUN_DIR"], os.environ["MMTOK_DEBUG_ARGS"]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert "training a debug one" in json.dumps(nb.cells[2].outputs)  # the fallback ran
    assert (tmp_path / "run/tokenizer/multimodal.json").is_file()
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    players = [o for o in outputs if "<audio" in json.dumps(o.get("data", {}))]
    assert len(images) >= 5 and len(players) >= 2  # grids, mels, two usage plots, the stream; audio players

    # again on the same run, with pretrained transformers models in place of its image and audio tokenizers
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    transformers.JanusVQVAE(transformers.JanusVQVAEConfig(
        num_embeddings=256, embed_dim=4, latent_channels=32, base_channels=32, channel_multiplier=[1, 1, 1],
        num_res_blocks=1)).save_pretrained(str(tmp_path / "janus"))
    transformers.EncodecModel(transformers.EncodecConfig(
        hidden_size=16, num_filters=4, codebook_size=1024, codebook_dim=16, num_lstm_layers=1,
        target_bandwidths=[1.5])).save_pretrained(str(tmp_path / "encodec"))
    nb = nbformat.read(REPO / "notebooks/reconstruction.ipynb", as_version=4)
    os.environ.update(MMTOK_RUN_DIR=str(tmp_path / "run"), MMTOK_HF_IMAGE=str(tmp_path / "janus"),
                      MMTOK_HF_AUDIO=str(tmp_path / "encodec"))
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        for key in ("MMTOK_RUN_DIR", "MMTOK_HF_IMAGE", "MMTOK_HF_AUDIO"):
            del os.environ[key]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], [o for o in outputs if o.output_type == "error"]
    assert "JanusVQTokenizer" in json.dumps(nb.cells[2].outputs) and "EncodecTokenizer" in json.dumps(nb.cells[2].outputs)
