"""ImageTokenizer: input conversion, shapes, save/load equality of codes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from modalities import ImageTokenizer, Segment, TokenizerLoadError, VocabRegistry, pack, unpack
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig

TINY = VQAEConfig(channels=[16, 16, 32, 32], z_dim=8, groups=8)


@pytest.fixture(scope="module")
def tok() -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer.from_configs(TINY, QuantizerConfig(kind="fsq", levels=[4, 4, 4]))


def test_encode_paths_pil_and_tensors_agree(tok, samples):
    path = samples / "images/coffee.png"
    x = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)
    by_path = tok.encode(path)
    assert by_path.shape == (1, 32, 32) and by_path.dtype == torch.long
    assert torch.equal(tok.encode(Image.open(path)), by_path)
    assert torch.equal(tok.encode(x), by_path)  # uint8 [C, H, W]
    assert torch.equal(tok.encode(x.float()[None] / 255), by_path)
    img = tok.decode(by_path)
    assert img.shape == (1, 3, 256, 256) and 0 <= float(img.min()) and float(img.max()) <= 1


def test_grayscale_rgba_16bit_convert(tok, tmp_path):
    gray = Image.fromarray(np.full((64, 64), 128, np.uint8), "L")
    rgba = Image.fromarray(np.dstack([np.full((64, 64, 3), 128, np.uint8), np.full((64, 64), 255, np.uint8)]), "RGBA")
    deep = Image.fromarray(np.full((64, 64), 128 * 257, np.uint16))
    deep.save(tmp_path / "deep.png")
    ref = tok.encode(torch.full((3, 64, 64), 128 / 255))
    for im in (gray, rgba, tmp_path / "deep.png"):
        assert torch.equal(tok.encode(im), ref)


def test_save_load_same_codes(tok, tmp_path, samples):
    path = tok.save_pretrained(tmp_path / "img")
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    loaded = ImageTokenizer.from_pretrained(path)
    x = samples / "images/chelsea.png"
    assert torch.equal(loaded.encode(x), tok.encode(x))
    assert loaded.downsample == 8 and loaded.codebook_size == 64


def test_stream_roundtrip_decodes_to_pixels(tok, samples):
    reg = VocabRegistry()
    reg.add_modality("text", 10)
    reg.add_modality("image", tok.codebook_size)
    codes = tok.encode(samples / "images/rocket.png")[0]
    (seg,) = unpack(pack([Segment("image", codes)], reg).ids, reg)
    assert torch.equal(seg.codes, codes)
    assert torch.equal(tok.decode(seg.codes), tok.decode(codes))


def test_bad_input(tok, tmp_path):
    with pytest.raises(ValueError, match="not divisible by the downsample factor 8"):
        tok.encode(torch.rand(3, 60, 64))
    with pytest.raises(ValueError, match="expected \\[C, H, W\\] with C in 1/3/4, got shape \\(2, 64, 64\\)"):
        tok.encode(torch.rand(2, 64, 64))
    bad = torch.rand(3, 64, 64)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        tok.encode(bad)
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        tok.encode(torch.rand(3, 64, 64) * 255)
    with pytest.raises(ValueError, match="empty"):
        tok.encode(torch.zeros(0, 3, 64, 64))
    with pytest.raises(ValueError, match="empty list"):
        tok.encode([])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        tok.encode(tmp_path / "broken.png")
    with pytest.raises(FileNotFoundError, match="image file not found"):
        tok.encode(tmp_path / "none.png")
    with pytest.raises(ValueError, match="code 64 at position"):
        tok.decode(torch.full((1, 2, 2), 64))
    with pytest.raises(ValueError, match="integer tensor"):
        tok.decode(torch.zeros(1, 2, 2))


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    """A phone JPEG stores pixels sideways plus an EXIF tag; every reader must return it upright."""
    from modalities.data.io import load_image, pil_to_tensor
    from modalities.multimodal import Image as ImagePart
    from modalities.multimodal import as_part

    rng = np.random.default_rng(orientation)
    upright = np.kron(rng.integers(0, 256, (6, 4, 3)), np.ones((16, 16, 1))).astype(np.uint8)  # 96x64 blocks
    stored = np.rot90(upright, k=-turn).copy()  # what the camera wrote; the tag says how to turn it back
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"phone_{orientation}.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    want = torch.from_numpy(upright).permute(2, 0, 1).float() / 255
    got = load_image(path)
    assert got.shape == want.shape == (3, 96, 64)
    assert (got - want).abs().mean() < 0.03  # JPEG noise only; a sideways image would not even have this shape
    with Image.open(path) as im:
        assert torch.equal(pil_to_tensor(im), got)  # a PIL image the user opened is turned too
    assert isinstance(as_part(str(path)), ImagePart)


def test_load_mismatched_weights(tok, tmp_path):
    path = tok.save_pretrained(tmp_path / "img")
    other = ImageTokenizer.from_configs(VQAEConfig(channels=[16, 32], z_dim=8, groups=8), QuantizerConfig(kind="fsq"))
    other.save_pretrained(tmp_path / "other")
    (path / "model.safetensors").write_bytes((tmp_path / "other/model.safetensors").read_bytes())
    with pytest.raises(TokenizerLoadError, match="config.json settings declares tensor .* missing from .*model.safetensors|holds tensor"):
        ImageTokenizer.from_pretrained(path)


@pytest.mark.parametrize(("policy", "size", "expect"), [("pad", None, (1, 8, 9)), ("center_crop", None, (1, 7, 8)),
                                                        ("center_crop", 32, (1, 4, 4)), ("resize", 48, (1, 6, 6))])
def test_size_policies(tok, policy, size, expect, tmp_path):
    t = ImageTokenizer(tok.model, size_policy=policy, size=size)
    x = torch.rand(3, 60, 70)
    assert tuple(t.encode(x).shape) == expect
    assert torch.equal(t.encode([x, torch.rand(3, 60, 70)])[0], t.encode(x)[0])
    loaded = ImageTokenizer.from_pretrained(t.save_pretrained(tmp_path / policy))
    assert (loaded.size_policy, loaded.size) == (policy, size)
    if policy == "pad":  # replicate padding keeps the original pixels in the top-left corner
        from modalities.data.sizing import fit_size

        padded = fit_size(x, 8, "pad")
        assert padded.shape == (3, 64, 72) and torch.equal(padded[:, :60, :70], x)
        assert torch.equal(padded[:, 63, :70], x[:, 59])


def test_bad_size_policy(tok):
    with pytest.raises(ValueError, match="unknown size policy 'stretch'"):
        ImageTokenizer(tok.model, size_policy="stretch")
    with pytest.raises(ValueError, match="'resize' needs a target size"):
        ImageTokenizer(tok.model, size_policy="resize")
    with pytest.raises(ValueError, match="target size 30 must be a positive multiple of the downsample factor 8"):
        ImageTokenizer(tok.model, size_policy="center_crop", size=30)


@pytest.mark.gpu
def test_cuda_codes_agree_with_cpu(tok, samples):
    """The same weights on CUDA give (almost) the same codes: only latents on a rounding boundary may flip."""
    x = tok.encode(samples / "images/coffee.png")
    gpu = ImageTokenizer.from_configs(TINY, QuantizerConfig(kind="fsq", levels=[4, 4, 4]))
    gpu.model.load_state_dict(tok.model.state_dict())
    gpu = gpu.to("cuda")
    y = gpu.encode(samples / "images/coffee.png")
    assert y.device.type == "cuda" and (y.cpu() == x).float().mean() > 0.99
    assert gpu.decode(y).device.type == "cuda"
