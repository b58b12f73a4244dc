"""A tiny MultimodalTokenizer (text, FSQ image and video, spectrogram and semantic audio) and tar helpers for the
pre-tokenisation tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from modalities import ImageTokenizer, MultimodalTokenizer, SemanticAudioTokenizer, VideoTokenizer
from modalities.audio import SpectrogramTokenizer
from models.melspec import MelConfig
from models.melvq import MelVQConfig
from models.quantizer import QuantizerConfig
from models.vqae import VQAEConfig
from models.vqae3d import VQAE3DConfig

warnings.filterwarnings("ignore", category=UserWarning, module="vector_quantize_pytorch")
FSQ = QuantizerConfig(kind="fsq", levels=[4, 4, 4])


def tiny_mm(text_tok, samples: Path) -> MultimodalTokenizer:
    """Untrained (seeded) tiny tokenizers; images resized to 32x32 so that different files batch together."""
    torch.manual_seed(0)
    image = ImageTokenizer.from_configs(VQAEConfig(channels=[8, 8, 16, 16], z_dim=8, groups=4), FSQ,
                                        size_policy="resize", size=32)
    video = VideoTokenizer.from_configs(VQAE3DConfig(channels=[8, 16, 16], z_dim=8, groups=4, temporal_downsample=2),
                                        FSQ, size_policy="resize", size=32)
    spec = SpectrogramTokenizer.from_configs(MelVQConfig(channels=[8, 16, 16], z_dim=16, band_channels=4, groups=4),
                                             FSQ, MelConfig(n_mels=32, griffin_lim_iters=2))
    sem = SemanticAudioTokenizer(k=16)
    sem.fit(sorted((samples / "audio").glob("speech_00*.flac"))[:4], iters=3)
    return MultimodalTokenizer({"text": text_tok, "image": image, "video": video, "audio": spec,
                                "audio_semantic": sem})


def write_tar(path: Path, samples: list[dict]) -> Path:
    """Writes ``samples`` (``{"__key__": ..., "000.txt": str | bytes, ...}``) with ``webdataset.TarWriter``."""
    import webdataset as wds

    with wds.TarWriter(str(path), encoder=False) as w:
        for s in samples:
            w.write({k: v.encode() if isinstance(v, str) and k != "__key__" else v for k, v in s.items()})
    return path
