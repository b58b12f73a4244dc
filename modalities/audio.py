"""Audio to spectrogram tokens and back: ``SpectrogramTokenizer`` (log-mel -> VQ -> mel -> Griffin-Lim).

Geometry: a waveform at ``sample_rate`` becomes log-mel frames every
``hop_length`` samples; the autoencoder downsamples time by ``downsample``, so
one token (per codebook) covers ``samples_per_token = hop_length * downsample``
samples and ``frame_rate = sample_rate / samples_per_token`` tokens per second.
``encode`` pads the end of the waveform with silence to a whole number of
tokens; ``decode`` returns ``T' * samples_per_token`` samples (pass ``length=``
to trim back to the original length).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch

from models.melspec import LogMel, MelConfig
from models.melvq import MelVQAutoencoder, MelVQConfig
from models.quantizer import QuantizerConfig

from .base import TokenizerLoadError, VQTokenizer, batched_codes, load_model, save_weights
from .data.waveform import AudioInputConfig, prepare_audio

__all__ = ["SpectrogramTokenizer", "audio_codes", "model_codes"]


def audio_codes(codes: torch.Tensor) -> torch.Tensor:
    """Model codes ``[B, T']`` or ``[B, T', K]`` -> the audio layout ``[B, K, T']``."""
    return codes[:, None] if codes.ndim == 2 else codes.transpose(1, 2)


def model_codes(codes: Any, num_codebooks: int) -> torch.Tensor:
    """Audio codes ``[B, K, T']`` (or ``[K, T']``) -> the model layout, checking ``K``."""
    codes = batched_codes(codes, "K, T", 1)
    if codes.shape[1] != num_codebooks:
        raise ValueError(f"audio codes have {codes.shape[1]} codebooks (shape {tuple(codes.shape)}), "
                         f"this tokenizer has {num_codebooks}")
    if codes.shape[-1] == 0:
        raise ValueError(f"audio codes of shape {tuple(codes.shape)} hold no frames")
    return codes[:, 0] if num_codebooks == 1 else codes.transpose(1, 2)


class SpectrogramTokenizer(VQTokenizer):
    """Spectrogram tokens: ``encode(audio) -> LongTensor[B, K, T']``, ``decode(codes) -> float[B, T]``.

    ``K`` is 1 except with residual VQ. Inputs: see :func:`modalities.data.waveform.prepare_audio`;
    with ``mono=False`` each channel is its own batch row (``B * C`` rows, channel-minor).
    """

    kind: ClassVar[str] = "audio"

    def __init__(self, model: MelVQAutoencoder, mel: MelConfig, audio: AudioInputConfig | None = None) -> None:
        audio = audio or AudioInputConfig(sample_rate=mel.sample_rate)
        if audio.sample_rate != mel.sample_rate:
            raise ValueError(f"audio input sample_rate {audio.sample_rate} differs from the mel sample_rate "
                             f"{mel.sample_rate}")
        if model.n_mels != mel.n_mels:
            raise ValueError(f"model expects n_mels={model.n_mels}, mel config has {mel.n_mels}")
        self.model = model.eval()
        self.frontend = LogMel(mel).to(self.device)
        self.audio_cfg = audio

    @classmethod
    def from_configs(cls, autoencoder: MelVQConfig, quantizer: QuantizerConfig, mel: MelConfig,
                     audio: AudioInputConfig | None = None) -> SpectrogramTokenizer:
        """A new, untrained tokenizer."""
        return cls(MelVQAutoencoder(autoencoder, quantizer, mel.n_mels), mel, audio)

    # ------------------------------------------------------------ geometry
    @property
    def sample_rate(self) -> int:
        return self.frontend.cfg.sample_rate

    @property
    def hop_length(self) -> int:
        return self.frontend.cfg.hop_length

    @property
    def samples_per_token(self) -> int:
        return self.hop_length * self.downsample

    @property
    def frame_rate(self) -> float:
        """Tokens per second per codebook."""
        return self.sample_rate / self.samples_per_token

    @property
    def bits_per_second(self) -> float:
        return self.frame_rate * self.model.quantizer.bits_per_code

    def to(self, device: torch.device | str) -> SpectrogramTokenizer:
        super().to(device)
        self.frontend.to(device)
        return self

    # -------------------------------------------------------------- inputs
    def waveform(self, audio: Any, sample_rate: int | None = None) -> torch.Tensor:
        """Any accepted input -> ``float[B, T]`` at :attr:`sample_rate`, padded to whole tokens, on the device."""
        x = prepare_audio(audio, self.audio_cfg, sample_rate).flatten(0, 1)
        n = self.samples_per_token
        return torch.nn.functional.pad(x, (0, -x.shape[-1] % n)).to(self.device)

    def mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``float[B, 1, n_mels, F]`` of a padded waveform ``[B, T]``."""
        return self.frontend(wave)

    # ------------------------------------------------------- encode/decode
    @torch.inference_mode()
    def encode(self, audio: Any, sample_rate: int | None = None) -> torch.Tensor:
        """Codes ``long[B, K, T']`` with ``T' = ceil(T / samples_per_token)`` (``sample_rate`` for tensors/arrays)."""
        return audio_codes(self.model.encode(self.mel(self.waveform(audio, sample_rate)) * 2 - 1))

    @torch.inference_mode()
    def decode_mel(self, codes: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram in decibels ``float[B, n_mels, T' * downsample]``; raises on out-of-range codes."""
        return self.frontend.to_db(self._decode_norm(codes))[:, 0]

    def _decode_norm(self, codes: torch.Tensor) -> torch.Tensor:
        out = self.model.decode(model_codes(codes, self.num_codebooks).to(self.device))
        return ((out.float() + 1) / 2).clamp(0, 1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Waveform ``float[B, T' * samples_per_token]`` at :attr:`sample_rate` (Griffin-Lim, so phase is
        re-estimated: expect the spectrum back, not the exact samples); ``length`` trims or pads the end."""
        wave = self.frontend.invert(self._decode_norm(codes))
        if length is not None:
            wave = torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))
        return wave

    # ----------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        return {"autoencoder": asdict(self.model.cfg), "quantizer": asdict(self.model.quantizer.cfg),
                "mel": asdict(self.frontend.cfg), "audio": asdict(self.audio_cfg),
                "frame_rate": self.frame_rate, "sample_rate": self.sample_rate}

    def _save_files(self, directory: Path) -> None:
        save_weights(self.model, directory)

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> SpectrogramTokenizer:
        try:
            mel = MelConfig(**settings["mel"])
            audio = AudioInputConfig(**settings["audio"])
        except (KeyError, TypeError, ValueError) as e:
            raise TokenizerLoadError(f"{directory}/config.json: bad spectrogram tokenizer settings ({e})") from None
        model = load_model(lambda: MelVQAutoencoder(MelVQConfig(**settings["autoencoder"]),
                                                    QuantizerConfig(**settings["quantizer"]), mel.n_mels),
                           directory, "spectrogram tokenizer")
        try:
            return cls(model, mel, audio)
        except (TypeError, ValueError) as e:
            raise TokenizerLoadError(f"{directory}/config.json: bad spectrogram tokenizer settings ({e})") from None

    def __repr__(self) -> str:
        return (f"SpectrogramTokenizer({self.model.quantizer.cfg.kind}, codebook_size={self.codebook_size}, "
                f"num_codebooks={self.num_codebooks}, frame_rate={self.frame_rate:g} Hz)")
