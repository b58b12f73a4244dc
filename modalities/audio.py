"""Audio to spectrogram tokens and back: ``SpectrogramTokenizer`` (log-mel -> VQ -> mel -> waveform).

Geometry: a waveform at ``sample_rate`` becomes log-mel frames every
``hop_length`` samples; the autoencoder downsamples time by ``downsample``, so
one token (per codebook) covers ``samples_per_token = hop_length * downsample``
samples and ``frame_rate = sample_rate / samples_per_token`` tokens per second.
``encode`` pads the end of the waveform with silence to a whole number of
tokens; ``decode`` returns ``T' * samples_per_token`` samples (pass ``length=``
to trim back to the original length).

Mel to waveform: a learned vocoder (:class:`models.vocoder.MelVocoder`, trained by ``python train.py
task=vocoder``) when the tokenizer carries one, Griffin-Lim otherwise; ``decode(..., vocoder="griffin_lim")``
keeps Griffin-Lim available as the fallback and the baseline. The vocoder lives in the tokenizer's folder as
``vocoder.safetensors`` with its shape under ``settings.vocoder`` in ``config.json``, and its mel front end is the
tokenizer's own (``settings.mel``), so it cannot be fed a mel it was not trained for. A standalone vocoder
folder (:func:`save_vocoder` / :func:`load_vocoder`) holds the same two things under ``class: MelVocoder``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch

from models.melspec import LogMel, MelConfig
from models.melvq import MelVQAutoencoder, MelVQConfig
from models.quantizer import QuantizerConfig
from models.vocoder import MelVocoder, VocoderConfig

from . import __version__
from .base import CONFIG_NAME, TokenizerLoadError, VQTokenizer, batched_codes, load_model, read_config, save_weights
from .data.fileio import atomic_path, atomic_write_text
from .data.waveform import AudioInputConfig, prepare_audio

__all__ = ["VOCODER_WEIGHTS", "SpectrogramTokenizer", "audio_codes", "load_vocoder", "model_codes", "save_vocoder"]

VOCODER_WEIGHTS = "vocoder.safetensors"
#: ``decode(..., vocoder=)`` choices: the learned vocoder when there is one (``auto``), it or an error, Griffin-Lim.
SYNTHESIS = ("auto", "vocoder", "griffin_lim")


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


def _normalised(out: torch.Tensor) -> torch.Tensor:
    """The autoencoder's output in ``[-1, 1]`` -> a normalised log-mel in ``[0, 1]`` (clamped)."""
    return ((out.float() + 1) / 2).clamp(0, 1)


def _save_vocoder_weights(vocoder: MelVocoder, directory: Path) -> None:
    from safetensors.torch import save_model

    with atomic_path(directory / VOCODER_WEIGHTS) as tmp:
        save_model(vocoder, str(tmp))


def _load_vocoder(directory: Path, settings: Any, mel: MelConfig) -> MelVocoder:
    """The vocoder declared by ``settings`` (``asdict(VocoderConfig)``) for ``mel``, checked against and filled
    from ``directory/vocoder.safetensors`` (:func:`models.weights.build_and_load`)."""
    from models.weights import WeightsMismatchError, build_and_load

    path = directory / VOCODER_WEIGHTS
    if not path.is_file():
        raise TokenizerLoadError(f"{directory / CONFIG_NAME} declares a vocoder but {path} is missing")
    source = f"{directory / CONFIG_NAME} settings.vocoder"
    try:
        if not isinstance(settings, dict):
            raise TypeError(f"expected an object, got {type(settings).__name__}")
        cfg = VocoderConfig(**settings)
        return build_and_load(lambda: MelVocoder(cfg, mel), path, source).eval()
    except WeightsMismatchError as e:
        raise TokenizerLoadError(str(e)) from None
    except (KeyError, TypeError, ValueError) as e:
        raise TokenizerLoadError(f"{source}: bad vocoder settings ({type(e).__name__}: {e})") from None


def save_vocoder(vocoder: MelVocoder, directory: str | Path) -> Path:
    """Writes a standalone vocoder folder: ``config.json`` (``class: MelVocoder``, ``settings.vocoder`` and
    ``settings.mel``) and ``vocoder.safetensors``. Join it to a tokenizer with
    ``tok.set_vocoder(load_vocoder(directory))``."""
    import json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _save_vocoder_weights(vocoder, directory)
    cfg = {"class": "MelVocoder", "mmtok_version": __version__, "kind": "vocoder",
           "settings": {"vocoder": asdict(vocoder.cfg), "mel": asdict(vocoder.mel_cfg),
                        "sample_rate": vocoder.sample_rate}}
    atomic_write_text(directory / CONFIG_NAME, json.dumps(cfg, indent=2) + "\n")
    return directory


def load_vocoder(directory: str | Path) -> MelVocoder:
    """The vocoder of a folder written by :func:`save_vocoder`, or the one a saved :class:`SpectrogramTokenizer`
    carries (a ``TokenizerLoadError`` if it carries none)."""
    directory = Path(directory)
    cfg = read_config(directory)
    settings = cfg.get("settings")
    if cfg["class"] not in ("MelVocoder", "SpectrogramTokenizer") or not isinstance(settings, dict):
        raise TokenizerLoadError(f"{directory} holds a {cfg['class']!r}, not a MelVocoder or SpectrogramTokenizer")
    if "vocoder" not in settings:
        raise TokenizerLoadError(f"{directory / CONFIG_NAME}: this {cfg['class']} carries no vocoder")
    try:
        mel = MelConfig(**settings["mel"])
    except (KeyError, TypeError, ValueError) as e:
        raise TokenizerLoadError(f"{directory / CONFIG_NAME}: bad settings.mel ({type(e).__name__}: {e})") from None
    return _load_vocoder(directory, settings["vocoder"], mel)


class SpectrogramTokenizer(VQTokenizer):
    """Spectrogram tokens: ``encode(audio) -> LongTensor[B, K, T']``, ``decode(codes) -> float[B, T]``.

    ``K`` is 1 except with residual VQ. Inputs: see :func:`modalities.data.waveform.prepare_audio`;
    with ``mono=False`` each channel is its own batch row (``B * C`` rows, channel-minor). ``vocoder``: a
    learned mel -> waveform model for :meth:`decode` (see :meth:`set_vocoder`); without one it uses Griffin-Lim.
    """

    kind: ClassVar[str] = "audio"

    def __init__(self, model: MelVQAutoencoder, mel: MelConfig, audio: AudioInputConfig | None = None,
                 vocoder: MelVocoder | None = None) -> None:
        audio = audio or AudioInputConfig(sample_rate=mel.sample_rate)
        if audio.sample_rate != mel.sample_rate:
            raise ValueError(f"audio input sample_rate {audio.sample_rate} differs from the mel sample_rate "
                             f"{mel.sample_rate}")
        if model.n_mels != mel.n_mels:
            raise ValueError(f"model expects n_mels={model.n_mels}, mel config has {mel.n_mels}")
        self.model = model.eval()
        self.frontend = LogMel(mel).to(self.device)
        self.audio_cfg = audio
        self.vocoder: MelVocoder | None = None
        self.set_vocoder(vocoder)

    def set_vocoder(self, vocoder: MelVocoder | None) -> SpectrogramTokenizer:
        """Makes ``vocoder`` the mel -> waveform step of :meth:`decode` (``None``: back to Griffin-Lim) and of the
        saved folder; it must have been built for exactly this tokenizer's mel settings. Returns self."""
        if vocoder is not None:
            if vocoder.mel_cfg != self.frontend.cfg:
                diff = {k: (v, getattr(vocoder.mel_cfg, k)) for k, v in asdict(self.frontend.cfg).items()
                        if getattr(vocoder.mel_cfg, k) != v}
                raise ValueError("the vocoder was built for other mel settings than this tokenizer's "
                                 f"(field: (tokenizer, vocoder)): {diff}")
            vocoder = vocoder.to(self.device).eval()
        self.vocoder = vocoder
        return self

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
        if self.vocoder is not None:
            self.vocoder.to(device)
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

    @torch.no_grad()
    def reconstruct_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """What the tokens keep of a normalised log-mel: ``float[B, 1, n_mels, F]`` -> encoded, quantised and
        decoded, the same shape. ``F`` need not be whole tokens: the end is padded with silence (0) to
        ``downsample`` frames for the encoder and cut off again. The vocoder's ``task.decoded_share`` trains on
        it, so the vocoder learns the mels it will be given at decode time."""
        if mel.dim() != 4 or mel.shape[1] != 1:
            raise ValueError(f"reconstruct_mel expects a normalised log-mel [B, 1, n_mels, F], got {tuple(mel.shape)}")
        frames = mel.shape[-1]
        x = torch.nn.functional.pad(mel.to(self.device).float(), (0, -frames % self.downsample))
        return _normalised(self.model.decode(self.model.encode(x * 2 - 1)))[..., :frames]

    def _decode_norm(self, codes: torch.Tensor) -> torch.Tensor:
        return _normalised(self.model.decode(model_codes(codes, self.num_codebooks).to(self.device)))

    @torch.inference_mode()
    def synthesize(self, mel: torch.Tensor, vocoder: str = "auto") -> torch.Tensor:
        """Waveform ``float[B, F * hop]`` of a normalised log-mel ``[B, 1, n_mels, F]`` or ``[B, n_mels, F]`` (what
        :meth:`mel` returns): ``vocoder="auto"`` uses the learned vocoder when there is one, else Griffin-Lim;
        ``"vocoder"`` insists on the learned one; ``"griffin_lim"`` always uses Griffin-Lim."""
        if vocoder not in SYNTHESIS:
            raise ValueError(f"vocoder={vocoder!r}; expected one of {SYNTHESIS}")
        if vocoder == "vocoder" and self.vocoder is None:
            raise ValueError("vocoder='vocoder' but this tokenizer carries no vocoder (train one with "
                             "python train.py task=vocoder, then tok.set_vocoder(...))")
        mel = mel.to(self.device).float()
        if self.vocoder is not None and vocoder != "griffin_lim":
            return self.vocoder(mel).wave.float()
        return self.frontend.invert(mel)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, length: int | None = None, vocoder: str = "auto") -> torch.Tensor:
        """Waveform ``float[B, T' * samples_per_token]`` at :attr:`sample_rate`; ``length`` trims or pads the end.

        The mel goes through the learned vocoder when the tokenizer carries one, else through Griffin-Lim
        (phase re-estimated: expect the spectrum back, not the exact samples); ``vocoder`` picks as in
        :meth:`synthesize` (``"griffin_lim"`` forces the classical inverse)."""
        wave = self.synthesize(self._decode_norm(codes), vocoder)
        if length is not None:
            wave = torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))
        return wave

    # ----------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        return {"autoencoder": asdict(self.model.cfg), "quantizer": asdict(self.model.quantizer.cfg),
                "mel": asdict(self.frontend.cfg), "audio": asdict(self.audio_cfg),
                "frame_rate": self.frame_rate, "sample_rate": self.sample_rate,
                **({"vocoder": asdict(self.vocoder.cfg)} if self.vocoder is not None else {})}

    def _save_files(self, directory: Path) -> None:
        save_weights(self.model, directory)
        if self.vocoder is not None:
            _save_vocoder_weights(self.vocoder, directory)
        else:
            (directory / VOCODER_WEIGHTS).unlink(missing_ok=True)  # a stale one from an earlier save

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
        vocoder = _load_vocoder(directory, settings["vocoder"], mel) if "vocoder" in settings else None
        try:
            return cls(model, mel, audio, vocoder)
        except (TypeError, ValueError) as e:
            raise TokenizerLoadError(f"{directory}/config.json: bad spectrogram tokenizer settings ({e})") from None

    def __repr__(self) -> str:
        return (f"SpectrogramTokenizer({self.model.quantizer.cfg.kind}, codebook_size={self.codebook_size}, "
                f"num_codebooks={self.num_codebooks}, frame_rate={self.frame_rate:g} Hz, "
                f"decoder={'vocoder' if self.vocoder is not None else 'griffin_lim'})")
