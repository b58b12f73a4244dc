"""Frame feature extractors for semantic audio units, looked up by name.

An extractor is a ``torch.nn.Module`` with ``sample_rate``, ``hop_length``
(samples per frame) and ``dim`` attributes whose ``forward(wave[B, T])``
returns ``float[B, T // hop_length, dim]``. Extractors are chosen by *name* in
a table kept in code, never by an import path: a saved tokenizer folder stores
``{"name": "mfcc", <plain settings>}``, so loading a folder from elsewhere can
only build extractors this process registered. Two come with mmtok:

* ``mfcc`` (:class:`MFCCFeatures`, default): MFCCs with deltas and
  delta-deltas (torchaudio, mel filters and DCT as librosa's, so
  ``librosa.feature.inverse.mfcc_to_audio`` inverts the static part);
* ``hubert`` (:class:`HubertFeatures`): one transformer layer of a torchaudio
  HuBERT or wav2vec 2.0 model whose weights the user has on disk. Nothing is
  downloaded; a saved tokenizer carries the weights in its own folder.
* ``hf_hubert`` (:class:`modalities.external.hubert.HFHubertFeatures`): the same
  from a local ``transformers`` ``HubertModel``/``Wav2Vec2Model`` folder
  (``path=``, ``layer=``); ``transformers`` is imported only when one is built.

Your own extractor joins with :func:`register_feature_extractor` in your code::

    @register_feature_extractor("energy")
    class FrameEnergy(nn.Module): ...

    SemanticAudioTokenizer({"name": "energy", "hop_length": 320}, k=64)

An extractor whose weights should travel with a saved tokenizer takes a
``checkpoint`` argument (a ``safetensors`` file) and has a ``weights()``
method returning the state to write there. One built from something outside
the folder (a path) may also have ``saved_settings()``: the plain settings
saved instead of the ones it was built with, so the folder never names the
original path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

__all__ = ["HubertFeatures", "MFCCFeatures", "build_feature_extractor", "feature_extractor_names",
           "register_feature_extractor"]

F = TypeVar("F", bound=Callable[..., nn.Module])
_EXTRACTORS: dict[str, Callable[..., nn.Module]] = {}


def register_feature_extractor(name: str, factory: F | None = None) -> Any:
    """Registers ``factory(**settings) -> nn.Module`` under ``name``; usable as a decorator.

    Names are unique: registering a taken name with another factory raises ``ValueError``.
    """
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"feature extractor name must be alphanumeric (with _ or -), got {name!r}")

    def add(f: F) -> F:
        if _EXTRACTORS.get(name, f) is not f:
            raise ValueError(f"feature extractor {name!r} is already registered ({_EXTRACTORS[name]!r})")
        _EXTRACTORS[name] = f
        return f

    return add if factory is None else add(factory)


def feature_extractor_names() -> list[str]:
    """The registered names."""
    return sorted(_EXTRACTORS)


def build_feature_extractor(name: str, **settings: Any) -> nn.Module:
    """The extractor registered as ``name`` built with ``settings``; an unknown name is a ``KeyError`` naming
    the known ones."""
    if name not in _EXTRACTORS:
        raise KeyError(f"unknown feature extractor {name!r}; registered: {feature_extractor_names()} "
                       "(add yours with modalities.audio_features.register_feature_extractor)")
    return _EXTRACTORS[name](**settings)


@register_feature_extractor("mfcc")
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


# torchaudio builders a saved folder may name (a fixed table: a name from disk never reaches getattr)
HUBERT_ARCHS = ("hubert_base", "hubert_large", "hubert_xlarge", "wav2vec2_base", "wav2vec2_large",
                "wav2vec2_large_lv60k", "wav2vec2_model", "hubert_pretrain_base")


@register_feature_extractor("hubert")
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
        if arch not in HUBERT_ARCHS:
            raise ValueError(f"arch must be one of {list(HUBERT_ARCHS)}, got {arch!r}")
        builder, arch_kwargs = getattr(AM, arch), dict(arch_kwargs or {})
        if path.suffix == ".safetensors":  # declared sizes checked against the file before allocating
            from models.weights import build_and_load

            self.model = build_and_load(lambda: builder(**arch_kwargs), path, f"torchaudio.models.{arch}").eval()
        else:
            self.model = builder(**arch_kwargs).eval()
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

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's state, written into a saved tokenizer's folder so it loads without the original file."""
        return self.model.state_dict()

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        feats, _ = self.model.extract_features(wave.float(), num_layers=self.layer)
        return feats[-1]  # [B, about T // 320, dim]: the conv front end drops the last partial window


@register_feature_extractor("hf_hubert")
def hf_hubert_features(**settings: Any) -> nn.Module:
    """A :class:`modalities.external.hubert.HFHubertFeatures` (``path=``, ``layer=``, ...): a layer of a local
    ``transformers`` HuBERT/wav2vec 2.0; ``transformers`` is imported here, when one is built."""
    from .external.hubert import HFHubertFeatures

    return HFHubertFeatures(**settings)
