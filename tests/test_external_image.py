"""transformers image/video VQ models (Emu3, Janus, Chameleon) as mmtok tokenizers, through ``from_hf``.

Every model is a tiny random one built from its config class and saved to a temporary folder (nothing is
downloaded); codes are compared bit for bit with the ``transformers`` model called directly.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from modalities import MultimodalTokenizer, VocabRegistry
from modalities.base import TokenizerLoadError
from modalities.external import adapter_classes, from_hf
from modalities.external.vq_images import (
    ChameleonVQTokenizer,
    Emu3VideoTokenizer,
    Emu3VQTokenizer,
    JanusVQTokenizer,
)
from modalities.multimodal import Image as ImagePart
from modalities.multimodal import Video as VideoPart

transformers = pytest.importorskip("transformers")

# tiny configs: 32 channels (the models' GroupNorms have 32 groups), downsample 4, 64 codes
TINY = {
    "emu3": lambda: (transformers.Emu3VQVAE, transformers.Emu3VQVAEConfig(
        codebook_size=64, embed_dim=4, latent_channels=4, base_channels=32, channel_multiplier=[1, 1, 1],
        num_res_blocks=1, attn_resolutions=[], hidden_size=32, temporal_downsample_factor=4)),
    "janus": lambda: (transformers.JanusVQVAE, transformers.JanusVQVAEConfig(
        num_embeddings=64, embed_dim=4, latent_channels=32, base_channels=32, channel_multiplier=[1, 1, 1],
        num_res_blocks=1, num_patches=8, projection_dim=16, image_token_embed_dim=16)),
    "chameleon": lambda: (transformers.ChameleonVQVAE, transformers.ChameleonVQVAEConfig(
        num_embeddings=64, embed_dim=4, latent_channels=32, base_channels=32, channel_multiplier=[1, 1, 1],
        num_res_blocks=1, resolution=32)),
}
ADAPTER = {"emu3": Emu3VQTokenizer, "janus": JanusVQTokenizer, "chameleon": ChameleonVQTokenizer}
MODEL_TYPE = {"emu3": "emu3_vqgan", "janus": "janus_vqgan", "chameleon": "chameleon_vqgan"}


def model_pixels(name: str, x01: torch.Tensor) -> torch.Tensor:
    """What each model's transformers image processor feeds it, written out independently of the adapters."""
    if name == "chameleon":
        return x01 * 255 * 0.0078 - 1  # ChameleonImageProcessor: rescale_factor 0.0078, mean = std = 1
    return (x01 - 0.5) / 0.5  # Emu3 and Janus checkpoints: mean = std = 0.5


def direct_codes(name: str, model, x01: torch.Tensor) -> torch.Tensor:
    """The transformers model called directly: codes ``[B, h, w]`` of images ``[B, 3, H, W]`` in [0, 1]."""
    b, _, h, w = x01.shape
    with torch.no_grad():
        if name == "emu3":
            out = model.encode(model_pixels(name, x01), image_sizes=torch.tensor([[h, w]] * b))
            return torch.stack(out.image_tokens)
        return model.encode(model_pixels(name, x01)).image_tokens.view(b, h // 4, w // 4)


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    """name -> (folder saved with transformers' save_pretrained, the model itself)."""
    out = {}
    for name, build in TINY.items():
        torch.manual_seed(0)
        model_class, config = build()
        model = model_class(config).eval()
        folder = tmp_path_factory.mktemp(name)
        model.save_pretrained(folder)
        out[name] = (folder, model)
    return out


@pytest.fixture(scope="module")
def images():
    """Two RGB uint8 images [2, 3, 32, 32] with structure (random noise codes to one or two ids)."""
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(0, 1, 32)
    base = torch.stack([ramp[None, :].expand(32, 32), ramp[:, None].expand(32, 32), torch.full((32, 32), 0.3)])
    noisy = (base[None] + 0.3 * torch.rand(2, 3, 32, 32, generator=g)).clamp(0, 1)
    return (noisy * 255).round().to(torch.uint8)


@pytest.mark.parametrize("name", list(TINY))
def test_codes_equal_the_transformers_model(hf_folders, images, name):
    folder, model = hf_folders[name]
    tok = from_hf(folder)
    assert type(tok) is ADAPTER[name] and tok.kind == "image" and tok.model_type == MODEL_TYPE[name]
    assert (tok.codebook_size, tok.downsample, tok.num_codebooks) == (64, 4, 1)
    codes = tok.encode(images)
    assert codes.dtype == torch.long and codes.shape == (2, 8, 8)
    assert codes.unique().numel() > 3  # a meaningful comparison, not one constant code
    assert torch.equal(codes, direct_codes(name, model, images.float() / 255))


@pytest.mark.parametrize("name", list(TINY))
def test_normalisation_is_the_transformers_processors(hf_folders, name):
    """The adapters' explicit normalisation matches each model's transformers image processor (resizing off)."""
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    if name == "chameleon":
        proc = transformers.ChameleonImageProcessor(do_resize=False, do_center_crop=False)
    elif name == "janus":
        proc = transformers.JanusImageProcessor(do_resize=False, do_pad=False, image_mean=[0.5] * 3,
                                                image_std=[0.5] * 3)
    else:
        proc = transformers.Emu3ImageProcessor(do_resize=False, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    expected = proc(images=[x], return_tensors="pt")["pixel_values"].reshape(3, 32, 32)
    tok = from_hf(hf_folders[name][0])
    got = tok.normalize(torch.from_numpy(x).permute(2, 0, 1).float() / 255)
    assert torch.allclose(got, expected, atol=1e-6)


def test_every_input_form_gives_the_same_codes(hf_folders, images, tmp_path):
    tok = from_hf(hf_folders["janus"][0])
    ref = tok.encode(images[:1])
    hwc = images[0].permute(1, 2, 0).numpy()
    Image.fromarray(hwc).save(tmp_path / "im.png")
    forms = [images[0], images[0].float() / 255, hwc, hwc[None], Image.fromarray(hwc), str(tmp_path / "im.png"),
             tmp_path / "im.png", [tmp_path / "im.png"], torch.cat([images[:1], torch.full_like(images[:1, :1], 255)], 1)]
    for x in forms:  # the last one is RGBA with an opaque alpha channel
        assert torch.equal(tok.encode(x), ref), type(x)
    gray = tok.encode(hwc[..., 0])  # numpy [H, W] grayscale
    assert gray.shape == (1, 8, 8)
    with pytest.raises(ValueError, match="float values must be in"):
        tok.encode(images.float())  # 0..255 floats
    with pytest.raises(ValueError, match="channels-last"):
        tok.encode(np.zeros((3, 4, 32, 32), dtype=np.uint8)[0])  # [C, H, W] numpy is not an image layout here


def test_sizes_follow_the_size_policy(hf_folders, images):
    folder = hf_folders["janus"][0]
    with pytest.raises(ValueError, match="not divisible by the downsample factor 4"):
        from_hf(folder).encode(images[:, :, :30, :30])
    assert from_hf(folder, size_policy="pad").encode(images[:, :, :30, :30]).shape == (2, 8, 8)
    assert from_hf(folder, size_policy="resize", size=16).encode(images).shape == (2, 4, 4)
    with pytest.raises(ValueError, match="multiple of the downsample factor 4"):
        from_hf(folder, size_policy="resize", size=18)


@pytest.mark.parametrize("name", ["emu3", "janus"])
def test_decode_gives_images_in_unit_range(hf_folders, images, name):
    tok = from_hf(hf_folders[name][0])
    codes = tok.encode(images)
    pixels = tok.decode(codes)
    assert pixels.shape == (2, 3, 32, 32) and pixels.dtype == torch.float32
    assert 0 <= float(pixels.min()) and float(pixels.max()) <= 1
    assert torch.equal(tok.decode(codes[0]), tok.decode(codes[:1]))  # a single [h, w] grid gets a batch axis
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 64\)"):
        tok.decode(codes + 64)


def test_janus_decode_is_transformers_decode_on_its_grid_and_takes_any_grid(hf_folders, images):
    folder, model = hf_folders["janus"]
    tok = from_hf(folder)
    codes = tok.encode(images)  # 8 x 8 = the config's num_patches grid
    with torch.no_grad():
        direct = model.decode(codes.flatten(1))
    assert torch.equal(tok.decode(codes), ((direct * 0.5) + 0.5).clamp(0, 1))
    assert tok.decode(codes[:, :4, :6]).shape == (2, 3, 16, 24)  # transformers' decode refuses this grid


def test_chameleon_decode_says_transformers_has_no_decoder(hf_folders, images):
    tok = from_hf(hf_folders["chameleon"][0])
    with pytest.raises(NotImplementedError, match="no decoder for Chameleon"):
        tok.decode(tok.encode(images))


def test_emu3_video_codes_equal_the_transformers_model(hf_folders):
    folder, model = hf_folders["emu3"]
    vid = from_hf(folder, video=True)
    assert type(vid) is Emu3VideoTokenizer and vid.kind == "video" and vid.temporal_downsample == 4
    clip = torch.rand(2, 8, 3, 32, 16, generator=torch.Generator().manual_seed(2))  # not square
    codes = vid.encode(clip)
    assert codes.shape == (2, 2, 8, 4) and codes.unique().numel() > 3
    with torch.no_grad():
        out = model.encode(clip * 2 - 1, image_sizes=torch.tensor([[10**4, 10**4]] * 2))
    assert torch.equal(codes, torch.stack(out.image_tokens))
    assert vid.decode(codes).shape == (2, 8, 3, 32, 16)
    # an image is coded as a clip of 4 copies of itself (what transformers' Emu3VQVAE.encode does)
    image = (clip[:, 0] * 255).round().to(torch.uint8)
    still = image[:, None].expand(-1, 4, -1, -1, -1)
    assert torch.equal(from_hf(folder).encode(image)[:, None], vid.encode(still))
    with pytest.raises(ValueError, match="multiple of 4"):
        vid.encode(clip[:, :5])


def test_emu3_video_files_are_trimmed_to_a_multiple_of_four(hf_folders, samples):
    vid = from_hf(hf_folders["emu3"][0], video=True, size_policy="resize", size=32)
    path = samples / "video/bikes.mp4"
    with pytest.warns(UserWarning, match="dropping the last 2"):
        assert vid.load(path, max_frames=6).shape[0] == 4
    assert vid.encode(path).shape == (1, 10, 8, 8)  # 40 frames


@pytest.mark.parametrize("name", [*TINY, "emu3_video"])
def test_saved_adapter_loads_without_the_original_folder(hf_folders, images, tmp_path, name):
    original = tmp_path / "original"
    shutil.copytree(hf_folders[name.removesuffix("_video")][0], original)
    video = name == "emu3_video"
    tok = from_hf(original, size_policy="pad", **({"video": True} if video else {}))
    x = images[:, None].expand(-1, 4, -1, -1, -1) if video else images
    codes = tok.encode(x)
    tok.save_pretrained(tmp_path / "saved")
    shutil.rmtree(original)
    cfg = json.loads((tmp_path / "saved/config.json").read_text())
    assert cfg["class"] == type(tok).__name__ and cfg["settings"]["options"] == {"size_policy": "pad", "size": None}
    again = type(tok).from_pretrained(tmp_path / "saved")
    assert again.size_policy == "pad" and torch.equal(again.encode(x), codes)


def test_joins_a_multimodal_tokenizer(hf_folders, images, text_tok, tmp_path):
    image_tok = from_hf(hf_folders["janus"][0])
    video_tok = from_hf(hf_folders["emu3"][0], video=True)
    mm = MultimodalTokenizer({"text": text_tok, "image": image_tok, "video": video_tok})
    clip = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    doc = ["A photo:", ImagePart(images[0]), "and a clip:", VideoPart(clip)]
    seq = mm.encode(doc, bos=True, eos=True)
    parts = mm.decode(seq.ids)
    assert parts[0] == "A photo:" and parts[2] == "and a clip:"
    assert parts[1].shape == (3, 32, 32) and parts[3].shape == (8, 3, 32, 32)
    assert torch.equal(parts[1], image_tok.decode(image_tok.encode(images[:1]))[0])
    mm.save_pretrained(tmp_path / "mm")
    again = MultimodalTokenizer.from_pretrained(tmp_path / "mm")
    assert torch.equal(again.encode(doc, bos=True, eos=True).ids, seq.ids)
    assert {"Emu3VQTokenizer", "Emu3VideoTokenizer", "JanusVQTokenizer", "ChameleonVQTokenizer"} <= set(adapter_classes())


def test_register_claims_the_codebook(hf_folders):
    reg = VocabRegistry()
    m = from_hf(hf_folders["chameleon"][0]).register(reg)
    assert (m.name, m.kind, m.size) == ("image", "image", 64)


def test_a_folder_of_another_model_type_is_refused_by_name(hf_folders, tmp_path):
    with pytest.raises(TokenizerLoadError, match="'chameleon_vqgan' model, not 'janus_vqgan'"):
        JanusVQTokenizer.from_hf(hf_folders["chameleon"][0])
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "emu3"}))  # the whole Emu3 model
    with pytest.raises(TokenizerLoadError, match="no mmtok adapter for model_type 'emu3'"):
        from_hf(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        from_hf(tmp_path / "BAAI/Emu3-VisionTokenizer")


def test_tampered_configs_and_weights_are_refused(hf_folders, tmp_path):
    folder = tmp_path / "janus"
    shutil.copytree(hf_folders["janus"][0], folder)
    cfg = json.loads((folder / "config.json").read_text())
    # a 2^34-entry codebook (256 GiB of float32) must be refused from the headers, before anything is allocated
    (folder / "config.json").write_text(json.dumps({**cfg, "num_embeddings": 2**34}))
    with pytest.raises(TokenizerLoadError, match="declares a model of .* elements but its weights hold"):
        from_hf(folder)
    # a file that lacks a declared tensor: transformers would fill it with random values
    from safetensors.torch import load_file, save_file

    (folder / "config.json").write_text(json.dumps(cfg))
    weights = load_file(folder / "model.safetensors")
    del weights["quantize.embedding.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(TokenizerLoadError, match="lack 1 tensor.*quantize.embedding.weight"):
        from_hf(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(TokenizerLoadError, match="safetensors only"):
        from_hf(folder)
    # a saved adapter whose options the adapter refuses
    from_hf(hf_folders["janus"][0]).save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved/config.json").read_text())
    saved["settings"]["options"]["size_policy"] = "stretch"
    (tmp_path / "saved/config.json").write_text(json.dumps(saved))
    with pytest.raises(TokenizerLoadError, match="settings.options: unknown size policy 'stretch'"):
        JanusVQTokenizer.from_pretrained(tmp_path / "saved")
