"""MultimodalTokenizer: dispatch by type and wrapper, round trips through the stream, save/load, JSONL manifests."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from modalities import ImageTokenizer, StreamFormatError, TokenizerLoadError, VideoTokenizer, VocabMismatchError
from modalities.audio import SpectrogramTokenizer
from modalities.multimodal import Audio, Image, MultimodalTokenizer, Text, Video, as_part, read_manifest
from modalities.semantic import SemanticAudioTokenizer
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig
from models.vqae3d import VQAE3DConfig

warnings.filterwarnings("ignore", category=UserWarning, module="vector_quantize_pytorch")
FSQ = QuantizerConfig(kind="fsq", levels=[4, 4, 4])


@pytest.fixture(scope="module")
def mm(text_tok, samples) -> MultimodalTokenizer:
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4), FSQ)
    video = VideoTokenizer.from_configs(VQAE3DConfig(channels=[8, 16, 16], z_dim=8, groups=4, temporal_downsample=2),
                                        FSQ)
    spec = SpectrogramTokenizer.from_configs(MelVQConfig(channels=[8, 16, 16], z_dim=16, band_channels=4, groups=4),
                                             FSQ, MelConfig(n_mels=32, griffin_lim_iters=2))
    sem = SemanticAudioTokenizer(k=16)
    sem.fit(sorted((samples / "audio").glob("speech_00*.flac")), iters=3)
    return MultimodalTokenizer({"text": text_tok, "image": image, "video": video, "audio": spec,
                                "audio_semantic": sem})


def test_layout_follows_the_tokenizers(mm, text_tok):
    reg = mm.registry
    assert [m.name for m in reg.modalities] == ["text", "image", "video", "audio", "audio_semantic"]
    assert reg.modality("text").size == text_tok.vocab_size and reg.modality("image").size == 64
    assert reg.modality("audio_semantic").kind == "audio" and reg.modality("audio_semantic").size == 16


def test_encode_decode_mixed_document(mm, samples):
    img = samples / "images/chelsea.png"
    wav = str(samples / "audio/speech_000.flac")
    clip = torch.rand(5, 3, 16, 16)
    seq = mm.encode(["A cat:", img, "says", wav, clip, Audio(torch.zeros(1600), 16000, name="audio_semantic")],
                    bos=True, eos=True)
    assert seq.ids.shape == seq.modality.shape and int(seq.ids[0]) == mm.registry.special_id("<bos>")
    parts = mm.decode(seq.ids)
    assert [type(p).__name__ for p in parts] == ["str", "Tensor", "str", "Audio", "Tensor", "Audio"]
    assert parts[0] == "A cat:" and parts[2] == "says"
    assert parts[1].shape == (3, 256, 256) and parts[4].shape == (5, 3, 16, 16)
    assert parts[3].sample_rate == 16000 and parts[3].name == "audio"
    assert parts[3].data.shape[-1] % 640 == 0 and parts[5].data.shape == (1600,)
    image_ids = seq.ids[seq.modality == mm.registry.modality("image").index]
    assert len(image_ids) == 2 + 6 + 32 * 33  # brackets, header, 32 rows of 32 codes + <eor>


def test_dispatch_rules(tmp_path):
    assert isinstance(as_part("hello world.png"), Text)  # has spaces: text
    assert isinstance(as_part("no file here"), Text)
    with pytest.raises(FileNotFoundError, match="looks like a image file"):
        as_part("missing.png")
    assert isinstance(as_part(torch.rand(3, 8, 8)), Image) and isinstance(as_part(torch.rand(2, 3, 8, 8)), Video)
    with pytest.raises(ValueError, match="Audio\\(x, sample_rate\\)"):
        as_part(torch.rand(16000))
    with pytest.raises(TypeError, match="cannot encode a int"):
        as_part(3)
    with pytest.raises(ValueError, match="cannot tell the modality"):
        as_part(tmp_path / "notes.xyz")


def test_explicit_names_and_missing_kinds(mm, text_tok):
    with pytest.raises(ValueError, match="no image tokenizer named 'audio'"):
        mm.encode([Image(torch.rand(3, 8, 8), name="audio")])
    text_only = MultimodalTokenizer({"text": text_tok})
    with pytest.raises(ValueError, match="no image tokenizer"):
        text_only.encode([torch.rand(3, 8, 8)])
    with pytest.raises(StreamFormatError):
        mm.decode([mm.registry.special_id("<boi>"), 5])


def test_save_load_round_trip(mm, tmp_path, samples):
    doc = ["Hello", samples / "images/coffee.png", Audio(torch.rand(3200) - 0.5, 16000, name="audio_semantic")]
    mm.save_pretrained(tmp_path / "mm")
    assert sorted(p.name for p in (tmp_path / "mm").iterdir()) == [
        "audio", "audio_semantic", "image", "multimodal.json", "registry.json", "text", "video"]
    back = MultimodalTokenizer.from_pretrained(tmp_path / "mm")
    assert back.registry == mm.registry
    assert torch.equal(back.encode(doc).ids, mm.encode(doc).ids)
    cfg = json.loads((tmp_path / "mm/multimodal.json").read_text())
    cfg["registry_fingerprint"] = "0" * 16
    (tmp_path / "mm/multimodal.json").write_text(json.dumps(cfg))
    with pytest.raises(VocabMismatchError, match="made with vocabulary 0000000000000000"):
        MultimodalTokenizer.from_pretrained(tmp_path / "mm")
    with pytest.raises(TokenizerLoadError, match="not a saved MultimodalTokenizer"):
        MultimodalTokenizer.from_pretrained(tmp_path)


def test_manifest(tmp_path, samples, mm):
    img = samples / "images/coins.png"
    lines = [json.dumps([{"text": "Coins:"}, {"image": str(img)}]),
             "",
             json.dumps([{"audio": str(samples / "audio/speech_001.flac"), "name": "audio_semantic"},
                         {"text": "said"}])]
    (tmp_path / "docs.jsonl").write_text("\n".join(lines) + "\n")
    docs = list(read_manifest(tmp_path / "docs.jsonl"))
    assert len(docs) == 2 and isinstance(docs[0][1], Image) and docs[1][0].name == "audio_semantic"
    assert [s for s in mm.decode(mm.encode(docs[1]).ids) if isinstance(s, str)] == ["said"]
    for bad, msg in [("not json", "bad.jsonl:1: not valid JSON"), ("[]", "non-empty list"),
                     ('[{"text": "a", "image": "b"}]', "exactly one of"), ('["a"]', "must be an object"),
                     ('[{"image": 3}]', "must be a string")]:
        (tmp_path / "bad.jsonl").write_text(bad + "\n")
        with pytest.raises(ValueError, match=msg):
            list(read_manifest(tmp_path / "bad.jsonl"))


def test_manifest_lines_take_lists_and_documents_with_a_source(tmp_path, samples):
    from modalities.multimodal import manifest_lines, read_manifest

    img = samples / "images/coffee.png"
    m = tmp_path / "docs.jsonl"
    m.write_text(json.dumps([{"text": "a cup"}, {"image": str(img)}]) + "\n\n"
                 + json.dumps({"parts": [{"text": "b"}], "source": "coffee"}) + "\n")
    rows = list(manifest_lines(m))
    assert [(n, s) for n, _, s in rows] == [(1, None), (3, "coffee")]
    assert [len(d) for d in read_manifest(m)] == [2, 1]
    m.write_text(json.dumps({"parts": [{"text": "b"}], "origin": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"docs\.jsonl:1: a document object has 'parts'"):
        list(read_manifest(m))
