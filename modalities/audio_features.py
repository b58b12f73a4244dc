"""Frame feature extractors for semantic audio units.

An extractor is a ``torch.nn.Module`` with ``sample_rate``, ``hop_length``
(samples per frame) and ``dim`` attributes whose ``forward(wave[B, T])``
returns ``float[B, T // hop_length, dim]``. Hydra builds one from
``tokenizer/audio_semantic.features._target_``, so any module with that face
plugs in. Two come with mmtok:

* :class:`MFCCFeatures` (default): MFCCs with deltas and delta-deltas
  (torchaudio, mel filters and DCT as librosa's, so
  ``librosa.feature.inverse.mfcc_to_audio`` inverts the static part);
* :class:`HubertFeatures`: one transformer layer of a torchaudio HuBERT or
  wav2vec 2.0 model whose weights the user has on disk. Nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["HubertFeatures", "MFCCFeatures"]


class MFCCFeatures(nn.Module):
    """``wave[B, T] -> float[B, T // hop_length, 3 * n_mfcc]``: MFCC, delta, delta-delta.

    Args:
        sample_rate: Hz of the input.
        n_mfcc: cepstral coefficients (the static part).
        n_fft: FFT size (also the window length).
        hop_length: samples between frames.
        n_mels: mel bands under the DCT.
        deltas: append first and second differences (``dim = 3 * n_mfcc``; else ``n_mfcc``).
    """

    def __init__(self, sample_rate: int = 16000, n_mfcc: int = 13, n_fft: int = 400, hop_length: int = 160,
                 n_mels: int = 40, deltas: bool = True) -> None:
        super().__init__()
        import torchaudio.transforms as AT

        self.sample_rate, self.hop_length, self.n_fft, self.n_mels = sample_rate, hop_length, n_fft, n_mels
        self.n_mfcc, self.deltas = n_mfcc, deltas
        self.dim = n_mfcc * (3 if deltas else 1)
        self.mfcc = AT.MFCC(sample_rate, n_mfcc=n_mfcc, norm="ortho", log_mels=False,
                            melkwargs={"n_fft": n_fft, "hop_length": hop_length, "n_mels": n_mels, "center": True,
                                       "norm": "slaney", "mel_scale": "slaney", "power": 2.0})

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        import torchaudio.functional as AF

        c = self.mfcc(wave.float())[..., : wave.shape[-1] // self.hop_length]  # [B, n_mfcc, F]
        if self.deltas:
            d1 = AF.compute_deltas(c)
            c = torch.cat([c, d1, AF.compute_deltas(d1)], dim=1)
        return c.transpose(1, 2)

    def to_audio(self, feats: torch.Tensor) -> torch.Tensor:
        """Approximate waveform ``float[B, F * hop_length]`` from features ``[B, F, dim]`` (static MFCCs only,
        through librosa's ``mfcc_to_audio``: mel inversion and Griffin-Lim)."""
        import librosa

        mfcc = feats[..., : self.n_mfcc].transpose(1, 2).detach().float().cpu().numpy()
        mfcc = np.concatenate([mfcc, mfcc[..., -1:]], axis=-1)  # the centred STFT has one frame more
        n = feats.shape[1] * self.hop_length
        out = [librosa.feature.inverse.mfcc_to_audio(m, n_mels=self.n_mels, sr=self.sample_rate, n_fft=self.n_fft,
                                                     hop_length=self.hop_length, length=n) for m in mfcc]
        return torch.from_numpy(np.stack(out)).float()


class HubertFeatures(nn.Module):
    """Hidden states of layer ``layer`` of a HuBERT/wav2vec 2.0 model built by torchaudio, weights from a local file.

    Args:
        checkpoint: path to a state dict for ``torchaudio.models.<arch>()`` (``.safetensors``, or a
            ``.pt``/``.pth`` read with ``weights_only=True``).
        layer: transformer layer whose output is the feature (1-based; 6 is common for HuBERT base units).
        arch: a torchaudio model builder, ``hubert_base`` by default (``wav2vec2_model`` builds any shape).
        sample_rate: the model's rate (16 kHz for the torchaudio builders).
        arch_kwargs: keyword arguments of the builder.
    """

    def __init__(self, checkpoint: str, layer: int = 6, arch: str = "hubert_base", sample_rate: int = 16000,
                 arch_kwargs: dict | None = None) -> None:
        super().__init__()
        import torchaudio.models as AM

        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"HuBERT checkpoint not found: {path} (mmtok never downloads weights)")
        builder = getattr(AM, arch, None)
        if builder is None:
            raise ValueError(f"torchaudio.models has no builder {arch!r}")
        arch_kwargs = dict(arch_kwargs or {})
        self.model = builder(**arch_kwargs).eval()
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            self.model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{path} is not a state dict of torchaudio.models.{arch}: {e}") from None
        n_layers = len(self.model.encoder.transformer.layers)
        if not 1 <= layer <= n_layers:
            raise ValueError(f"layer must be in [1, {n_layers}], got {layer}")
        convs = arch_kwargs.get("extractor_conv_layer_config") or [(0, 0, 5)] + [(0, 0, 2)] * 6
        self.layer, self.sample_rate = layer, sample_rate
        self.hop_length = math.prod(int(c[2]) for c in convs)  # 320 for the standard front end
        self.dim = self.model.encoder.transformer.layers[layer - 1].final_layer_norm.normalized_shape[0]

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        feats, _ = self.model.extract_features(wave.float(), num_layers=self.layer)
        return feats[-1]  # [B, about T // 320, dim]: the conv front end drops the last partial window
