"""Neural audio codecs of ``transformers`` as mmtok audio tokenizers: EnCodec, DAC, Mimi, X-codec.

Every adapter has the face of :class:`~modalities.audio.SpectrogramTokenizer`:
``encode(audio, sample_rate=None) -> LongTensor[B, K, T']`` (codebooks x
frames, the mmtok audio layout) and ``decode(codes, length=None)`` back to a
waveform, with ``codebook_size``, ``num_codebooks``, ``frame_rate``,
``sample_rate``, ``downsample`` (samples per frame), ``register`` and
``save_pretrained``/``from_pretrained``. The codes are the model's own
(``model.encode`` is called, nothing is re-implemented).

Inputs go through :func:`~modalities.data.waveform.prepare_audio` (paths,
tensors, numpy, lists; resampled to the model's rate, mixed to mono, or kept
stereo for a two-channel model). Each clip is padded at the end with silence to
a whole number of frames (``T' = ceil(T / downsample)``; chunked EnCodec: see
:class:`EncodecTokenizer`), as mmtok's own audio tokenizers do.

**Batches.** A tensor ``[B, C, T]`` is one model call, exactly the model's own
call on it. A list is one model call per item, so **clips of different
lengths** each get exactly the codes they get alone: ``encode`` returns
``[B, K, max T'_i]`` with :data:`PAD_CODE` (-1, never a valid code) after each
clip's ``frame_count(T_i)`` frames, ``encode_clips`` the list of ``[K, T'_i]``.
(Padding clips into one batch does not give their solo codes in
``transformers`` 5: EnCodec's padding mask only zeroes the input, and reflect
padding of a short clip sees the zeros; Mimi ignores its ``padding_mask``; DAC
and X-codec are not causal; and a batch changes float rounding of LSTMs and
attention by ~1e-7, enough to flip a code at a near tie.)

**Long audio**: ``encode(..., chunk_seconds=s)`` encodes each clip in chunks of
whole frames, so memory does not grow with the clip. Whether chunked codes equal
whole-file codes depends on the model (``chunking_is_exact``): Mimi streams with
its own caches (equal), chunked EnCodec (48 kHz) cuts on its own chunk grid
(equal), DAC is convolutional and gets a context of its whole receptive field on
both sides (equal); causal EnCodec (LSTM state) and X-codec (a HuBERT with
global attention) get ``context_seconds`` of context and agree only approximately.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..base import batched_codes
from ..data.waveform import AudioInputConfig, prepare_audio
from .hf import HFTokenizer

__all__ = ["PAD_CODE", "DacTokenizer", "EncodecTokenizer", "HFAudioCodec", "MimiTokenizer", "XcodecTokenizer"]

PAD_CODE = -1  # frames past a clip's end in a ragged batch; out of every codebook, so decode refuses it


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class HFAudioCodec(HFTokenizer):
    """Base of the audio codec adapters (kind ``audio``): inputs, padding, ragged batches, chunking, decode checks.

    Subclasses implement :meth:`_encode` (the model call on ``float[B, C, T]`` with ``T`` a whole number of
    frames) and :meth:`_decode` and set the geometry.
    """

    kind: ClassVar[str] = "audio"
    option_names: ClassVar[tuple[str, ...]] = ()
    # chunked == whole-file codes when encoding with chunk_seconds (stated in the README, checked by the tests)
    chunking_is_exact: ClassVar[bool] = False
    context_seconds: ClassVar[float] = 1.0  # default context around each chunk when chunking is not exact

    def __init__(self, model: Any, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            raise TypeError(f"{type(self).__name__} options: unknown {unknown}; accepted: {list(self.option_names)}")
        super().__init__(model, **options)
        self.options = self._resolve_options(**options)
        self.audio_cfg = AudioInputConfig(sample_rate=self.sample_rate, mono=self.channels == 1)

    def _resolve_options(self, **options: Any) -> dict[str, Any]:
        """Checks the options and returns them resolved (defaults filled in), as saved in ``config.json``."""
        return dict(options)

    # ------------------------------------------------------------ geometry
    @property
    def codebook_size(self) -> int:
        return int(self.model.config.codebook_size)

    @property
    def num_codebooks(self) -> int:
        """Codebooks kept (``K`` of the codes), resolved from the options."""
        return self._k

    def _keep_codebooks(self, num_codebooks: Any, lo: int, top: int, source: str) -> int:
        """Checks ``num_codebooks`` (``None``: ``top``) is an int in ``[lo, top]``, keeps it as ``K`` and returns it."""
        if num_codebooks is None:
            num_codebooks = top
        if not _is_count(num_codebooks) or not lo <= num_codebooks <= top:
            raise ValueError(f"{self.model_type} num_codebooks must be an int in [{lo}, {top}] ({source}), "
                             f"got {num_codebooks!r}")
        self._k = num_codebooks
        return num_codebooks

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    @property
    def channels(self) -> int:
        """Channels the model takes (1, or 2 for stereo EnCodec); inputs are mixed or duplicated to it."""
        return int(getattr(self.model.config, "audio_channels", 1))

    @property
    def downsample(self) -> int:
        """Samples per frame (the codec's hop)."""
        raise NotImplementedError

    @property
    def samples_per_token(self) -> int:
        return self.downsample

    @property
    def frame_rate(self) -> float:
        """Frames (tokens per codebook) per second."""
        return self.sample_rate / self.downsample

    @property
    def bits_per_second(self) -> float:
        return self.frame_rate * self.num_codebooks * math.log2(self.codebook_size)

    @property
    def causal(self) -> bool:
        """Whether a frame's codes depend only on the audio up to it (chunks then need context on the left only)."""
        return False

    def frame_count(self, num_samples: int) -> int:
        """Frames ``encode`` gives for a clip of ``num_samples`` samples at :attr:`sample_rate`."""
        return -(-num_samples // self.downsample)

    def decoded_length(self, num_frames: int) -> int:
        """Samples ``decode`` gives for ``num_frames`` frames (before ``length=``)."""
        return num_frames * self.downsample

    # -------------------------------------------------------------- inputs
    def _fit_channels(self, x: torch.Tensor, what: str) -> torch.Tensor:
        """``float[B, C, T]`` -> ``float[B, channels, T]`` (mono duplicated for a stereo model)."""
        if x.shape[1] == self.channels:
            return x
        if x.shape[1] == 1:
            return x.expand(-1, self.channels, -1)
        raise ValueError(f"{what}: {x.shape[1]} channels; this {self.model_type} model takes {self.channels} "
                         "(mix the audio down to mono or stereo first)")

    def batches(self, audio: Any, sample_rate: int | None = None) -> list[torch.Tensor]:
        """Any accepted input -> model batches ``float[b, C, T]`` at :attr:`sample_rate` with the model's channels,
        zero-padded at the end to whole frames, in the model's dtype on its device.

        A list or tuple gives one batch per item (paths, tensors ``[C, T]``/``[T]``, arrays; lengths may differ);
        a single tensor or array ``[B, C, T]`` is one batch of ``B`` clips.
        """
        items = list(audio) if isinstance(audio, (list, tuple)) else [audio]
        if not items:
            raise ValueError("encode got an empty list of audio")
        dtype = next(self.model.parameters()).dtype
        out = []
        for i, item in enumerate(items):
            what = str(item) if isinstance(item, (str, Path)) else f"audio {i}" if len(items) > 1 else "audio"
            try:
                x = prepare_audio(item, self.audio_cfg, sample_rate)
            except ValueError as e:
                if len(items) == 1 or isinstance(item, (str, Path)):  # the message names it already
                    raise
                raise ValueError(f"{what}: {e}") from None
            x = self._fit_channels(x, what)
            x = torch.nn.functional.pad(x, (0, -x.shape[-1] % self.downsample))
            out.append(x.to(self.device, dtype))
        return out

    # ------------------------------------------------------------- encode
    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        """The model's codes ``long[B, K, T']`` of ``wave[B, C, T]`` (``T`` a whole number of frames)."""
        raise NotImplementedError

    @torch.inference_mode()
    def encode_clips(self, audio: Any, sample_rate: int | None = None, chunk_seconds: float | None = None,
                     context_seconds: float | None = None) -> list[torch.Tensor]:
        """Codes ``long[K, T'_i]`` per clip, ``T'_i = frame_count(T_i)``; see :meth:`encode`."""
        if chunk_seconds is not None:
            if not _is_number(chunk_seconds) or chunk_seconds <= 0:
                raise ValueError(f"chunk_seconds must be a positive number of seconds, got {chunk_seconds!r}")
            context_seconds = self.context_seconds if context_seconds is None else context_seconds
            if not _is_number(context_seconds) or context_seconds < 0:
                raise ValueError(f"context_seconds must be a non-negative number of seconds, got {context_seconds!r}")
        out = []
        for wave in self.batches(audio, sample_rate):
            if chunk_seconds is None:
                out.extend(self._encode(wave))
            else:
                out.extend(self._encode_chunked(row[None], float(chunk_seconds), float(context_seconds))[0]
                           for row in wave)
        return out

    @torch.inference_mode()
    def encode(self, audio: Any, sample_rate: int | None = None, chunk_seconds: float | None = None,
               context_seconds: float | None = None) -> torch.Tensor:
        """Codes ``long[B, K, T']``, ``T' = frame_count(T)`` (``sample_rate`` for tensors/arrays).

        A tensor ``[B, C, T]`` is one model call; a list is one call per item, so each clip gets exactly the
        codes it gets alone, and clips of different lengths give ``T' = max T'_i`` with :data:`PAD_CODE` after
        each clip's ``frame_count(T_i)`` frames (:meth:`encode_clips` gives the list instead).
        ``chunk_seconds`` encodes each clip in chunks of about that many seconds (whole frames) with
        ``context_seconds`` of context (default: the model's); ``chunking_is_exact`` says whether that equals
        the whole-file codes.
        """
        rows = self.encode_clips(audio, sample_rate, chunk_seconds, context_seconds)
        longest = max(r.shape[-1] for r in rows)
        return torch.stack([torch.nn.functional.pad(r, (0, longest - r.shape[-1]), value=PAD_CODE) for r in rows])

    def _encode_chunked(self, wave: torch.Tensor, chunk_seconds: float, context_seconds: float) -> torch.Tensor:
        """Codes ``long[1, K, T']`` of one clip ``wave[1, C, T]``, chunk by chunk with context on both sides
        (left only for a causal model); the context's codes are dropped."""
        hop, n = self.downsample, wave.shape[-1] // self.downsample
        size = max(1, round(chunk_seconds * self.frame_rate))
        left = self._context_frames(context_seconds)
        right = 0 if self.causal else left
        parts = []
        for start in range(0, n, size):
            a, b = max(0, start - left), min(n, start + size + right)
            codes = self._encode(wave[..., a * hop: b * hop])
            parts.append(codes[..., start - a: start - a + min(size, n - start)])
        return torch.cat(parts, dim=-1)

    def _context_frames(self, context_seconds: float) -> int:
        return math.ceil(context_seconds * self.frame_rate)

    # ------------------------------------------------------------- decode
    def check_codes(self, codes: Any) -> torch.Tensor:
        """``codes`` as ``long[B, K, T']`` on the device, checked: ``K == num_codebooks``, ``T' > 0``, every code in
        ``[0, codebook_size)`` (so :data:`PAD_CODE` frames must be cut off first)."""
        codes = batched_codes(codes, "K, T", 1)
        if codes.shape[1] != self.num_codebooks:
            raise ValueError(f"audio codes have {codes.shape[1]} codebooks (shape {tuple(codes.shape)}), "
                             f"this {type(self).__name__} has {self.num_codebooks}")
        if codes.shape[-1] == 0:
            raise ValueError(f"audio codes of shape {tuple(codes.shape)} hold no frames")
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= self.codebook_size:
            raise ValueError(f"audio codes must be in [0, {self.codebook_size}), got values in [{lo}, {hi}]"
                             + (f" ({PAD_CODE} marks frames past a clip's end: cut them off)" if lo == PAD_CODE
                                else ""))
        return codes.to(self.device)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Waveform ``float[B, C, T]`` of checked codes."""
        raise NotImplementedError

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Waveform ``float[B, T]`` (``float[B, C, T]`` for a stereo model) at :attr:`sample_rate`,
        ``decoded_length(T')`` samples (``T' * downsample``); ``length`` trims or pads the end."""
        codes = self.check_codes(codes)
        return self._finish(self._decode(codes), codes.shape[-1], length)

    def _finish(self, wave: torch.Tensor, frames: int, length: int | None) -> torch.Tensor:
        """``float[B, C, T]`` from the model -> ``length`` (default ``decoded_length(frames)``) samples, zero-padded
        or cut at the end (DAC's decoder gives a few samples less for odd strides), mono as ``[B, T]``."""
        wave = wave.float()
        length = self.decoded_length(frames) if length is None else length
        wave = torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))
        return wave[:, 0] if self.channels == 1 else wave


# ----------------------------------------------------------------------------------------------------- EnCodec
class EncodecTokenizer(HFAudioCodec):
    """EnCodec (``EncodecModel``): 24 kHz mono (causal) and 48 kHz stereo (chunked, normalised) checkpoints.

    Option ``bandwidth`` (kbps, one of ``config.target_bandwidths``; default the smallest, as the model)
    sets ``num_codebooks``.

    The 48 kHz model cuts audio into chunks of ``config.chunk_length_s`` (1 s) every ``chunk_stride`` samples
    (0.99 s) and codes each separately: the codes are the chunks' codes one after another,
    ``frames_per_chunk`` (150) per chunk, the last chunk shorter, so ``frame_rate`` is
    ``frames_per_chunk`` per ``chunk_stride`` (151.5/s), not the nominal 150. With ``config.normalize`` the
    model divides each chunk by its RMS (``audio_scales``) before coding; codes cannot carry that scale, so
    ``decode`` gives each chunk at the level :data:`DEFAULT_SCALE` (RMS 0.1, -20 dBFS) unless you pass the
    ``scales`` that :meth:`encode_with_scales` returns. Loudness changes between chunks are lost without them.
    """

    model_types = ("encodec",)
    option_names = ("bandwidth",)
    DEFAULT_SCALE: ClassVar[float] = 0.1

    @classmethod
    def classes(cls) -> tuple[type, type]:
        from transformers import EncodecConfig, EncodecModel

        return EncodecModel, EncodecConfig

    def _resolve_options(self, bandwidth: float | None = None) -> dict[str, Any]:
        allowed = [float(b) for b in self.model.config.target_bandwidths]
        if bandwidth is None:
            bandwidth = allowed[0]
        if not _is_number(bandwidth) or float(bandwidth) not in allowed:
            raise ValueError(f"EnCodec bandwidth must be one of {allowed} kbps (config.target_bandwidths), "
                             f"got {bandwidth!r}")
        self.bandwidth = float(bandwidth)
        self._k = self.model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth)
        self._model_chunked = self.model.config.chunk_length is not None
        return {"bandwidth": self.bandwidth}

    @property
    def downsample(self) -> int:
        return int(self.model.config.hop_length)

    @property
    def chunking_is_exact(self) -> bool:  # type: ignore[override]
        return self._model_chunked

    @property
    def frames_per_chunk(self) -> int | None:
        """Frames of one model chunk (48 kHz: 150), ``None`` for a model that codes the whole clip at once."""
        cl = self.model.config.chunk_length
        return None if cl is None else -(-cl // self.downsample)

    @property
    def frame_rate(self) -> float:
        if not self._model_chunked:
            return self.sample_rate / self.downsample
        return self.sample_rate * self.frames_per_chunk / self.model.config.chunk_stride

    @property
    def causal(self) -> bool:
        cfg = self.model.config
        return bool(cfg.use_causal_conv) and not cfg.normalize and not self._model_chunked

    def frame_count(self, num_samples: int) -> int:
        n = -(-num_samples // self.downsample) * self.downsample  # padded to whole frames first
        if not self._model_chunked:
            return n // self.downsample
        stride = self.model.config.chunk_stride
        starts = len(range(0, n, stride))
        return (starts - 1) * self.frames_per_chunk + -(-(n - (starts - 1) * stride) // self.downsample)

    def decoded_length(self, num_frames: int) -> int:
        f = self.frames_per_chunk
        if f is None:
            return num_frames * self.downsample
        n = -(-num_frames // f)  # chunks overlap-added every chunk_stride samples
        return (n - 1) * self.model.config.chunk_stride + (num_frames - (n - 1) * f) * self.downsample

    def _model_encode(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(codes long[B, K, T'], scales float[B, n_chunks] or None)`` from ``model.encode``."""
        out = self.model.encode(wave, bandwidth=self.bandwidth, return_dict=True)
        frames = out.audio_codes  # [n_chunks, B, K, F]
        n, b, k, f = frames.shape
        codes = frames.permute(1, 2, 0, 3).reshape(b, k, n * f)[..., : n * f - (out.last_frame_pad_length or 0)]
        scales = None if out.audio_scales[0] is None else torch.cat([s.view(b, 1) for s in out.audio_scales], 1)
        return codes, scales

    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        return self._model_encode(wave)[0]

    @torch.inference_mode()
    def encode_with_scales(self, audio: Any, sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(codes long[B, K, T'], scales float[B, n_chunks])``: the codes of :meth:`encode` and the per-chunk RMS
        the model divided by (``None`` when ``config.normalize`` is off); pass ``scales`` to :meth:`decode` to get
        the original loudness back. Takes one clip or one ``[B, C, T]`` batch (not a list of several)."""
        batches = self.batches(audio, sample_rate)
        if len(batches) != 1:
            raise ValueError("encode_with_scales takes one clip or one [B, C, T] batch; call it once per clip")
        return self._model_encode(batches[0])

    def _encode_chunked(self, wave: torch.Tensor, chunk_seconds: float, context_seconds: float) -> torch.Tensor:
        if not self._model_chunked:
            return super()._encode_chunked(wave, chunk_seconds, context_seconds)
        # on the model's own chunk grid: groups of m model chunks, each with the overlap the next chunk needs
        cl, stride, total = self.model.config.chunk_length, self.model.config.chunk_stride, wave.shape[-1]
        m = max(1, round(chunk_seconds * self.sample_rate / stride))
        parts = []
        for start in range(0, total, m * stride):
            codes = self._encode(wave[..., start: start + (m - 1) * stride + cl])
            if start + m * stride < total:  # the slice's last model chunk is the next group's first: drop it
                codes = codes[..., : m * self.frames_per_chunk]
            parts.append(codes)
        return torch.cat(parts, dim=-1)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, length: int | None = None,
               scales: torch.Tensor | None = None) -> torch.Tensor:
        """Waveform ``float[B, T]`` (``[B, 2, T]`` stereo); ``scales[B, n_chunks]`` from :meth:`encode_with_scales`
        restores each chunk's level of a normalising model (default :data:`DEFAULT_SCALE`)."""
        codes = self.check_codes(codes)
        b, k, t = codes.shape
        f = self.frames_per_chunk or t
        n = -(-t // f)
        frames = torch.nn.functional.pad(codes, (0, n * f - t)).reshape(b, k, n, f).permute(2, 0, 1, 3)
        if not self.model.config.normalize:
            chunk_scales: list[Any] = [None] * n
        else:
            if scales is None:
                scales = torch.full((b, n), self.DEFAULT_SCALE)
            scales = torch.as_tensor(scales, dtype=torch.float32).reshape(b, -1).to(self.device)
            if scales.shape[1] != n:
                raise ValueError(f"scales must be [B, {n}] (one per chunk), got {tuple(scales.shape)}")
            chunk_scales = [scales[:, i: i + 1] for i in range(n)]
        out = self.model.decode(frames, chunk_scales, last_frame_pad_length=n * f - t, return_dict=True)
        return self._finish(out.audio_values, t, length)


# --------------------------------------------------------------------------------------------------------- DAC
class DacTokenizer(HFAudioCodec):
    """Descript Audio Codec (``DacModel``), mono. Option ``num_codebooks`` (default all ``config.n_codebooks``):
    the first ``K`` residual codebooks. Fully convolutional, so chunked encoding with the receptive field as
    context gives the whole-file codes."""

    model_types = ("dac",)
    option_names = ("num_codebooks",)
    chunking_is_exact = True

    @classmethod
    def classes(cls) -> tuple[type, type]:
        from transformers import DacConfig, DacModel

        return DacModel, DacConfig

    def _resolve_options(self, num_codebooks: int | None = None) -> dict[str, Any]:
        return {"num_codebooks": self._keep_codebooks(num_codebooks, 1, int(self.model.config.n_codebooks),
                                                      "config.n_codebooks")}

    @property
    def downsample(self) -> int:
        return int(self.model.config.hop_length)

    def _context_frames(self, context_seconds: float) -> int:
        """The encoder's receptive field on one side, in frames (``context_seconds`` is not needed)."""
        reach, step = 3, 1  # first conv, kernel 7
        for s in self.model.config.downsampling_ratios:  # residual units (kernel 7, dilations 1, 3, 9), strided conv
            reach += 3 * (1 + 3 + 9) * step + 2 * s * step
            step *= s
        return -(-(reach + step) // self.downsample) + 1  # last conv (kernel 3), rounded up

    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model.encode(wave, n_quantizers=self._k, return_dict=True).audio_codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(audio_codes=codes, return_dict=True).audio_values[:, None]


# -------------------------------------------------------------------------------------------------------- Mimi
class MimiTokenizer(HFAudioCodec):
    """Kyutai's Mimi (``MimiModel``): causal and streaming, 12.5 frames/s. Option ``num_codebooks`` (default
    all ``config.num_quantizers``; at least the semantic ones): the first is the semantic codebook. Chunked
    encoding streams through the model's convolution and attention caches, so it equals whole-file codes."""

    model_types = ("mimi",)
    option_names = ("num_codebooks",)

    @classmethod
    def classes(cls) -> tuple[type, type]:
        from transformers import MimiConfig, MimiModel

        return MimiModel, MimiConfig

    def _resolve_options(self, num_codebooks: int | None = None) -> dict[str, Any]:
        cfg = self.model.config
        lo = int(cfg.num_semantic_quantizers)
        return {"num_codebooks": self._keep_codebooks(num_codebooks, max(lo, 1), int(cfg.num_quantizers),
                                                      f"config.num_quantizers; at least the {lo} semantic")}

    @property
    def downsample(self) -> int:
        cfg = self.model.config
        return int(math.prod(cfg.upsampling_ratios)) * int(cfg.latent_stride)

    @property
    def causal(self) -> bool:
        return bool(self.model.config.use_causal_conv)

    @property
    def chunking_is_exact(self) -> bool:  # type: ignore[override]
        return self.causal  # streaming needs the causal convolutions

    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model.encode(wave, num_quantizers=self._k, return_dict=True).audio_codes

    def _encode_chunked(self, wave: torch.Tensor, chunk_seconds: float, context_seconds: float) -> torch.Tensor:
        if not self.causal:
            return super()._encode_chunked(wave, chunk_seconds, context_seconds)
        size = max(1, round(chunk_seconds * self.frame_rate)) * self.downsample
        enc_cache = pad_cache = None
        parts = []
        for start in range(0, wave.shape[-1], size):
            out = self.model.encode(wave[..., start: start + size], num_quantizers=self._k, encoder_cache=enc_cache,
                                    padding_cache=pad_cache, use_streaming=True, return_dict=True)
            enc_cache, pad_cache = out.encoder_cache, out.padding_cache
            parts.append(out.audio_codes)
        return torch.cat(parts, dim=-1)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values


# ------------------------------------------------------------------------------------------------------ X-codec
class XcodecTokenizer(HFAudioCodec):
    """X-codec (``XcodecModel``): DAC-style acoustic and HuBERT semantic encoders, one residual quantiser, 16 kHz
    mono, 50 frames/s. Option ``bandwidth`` (kbps, one of ``config.target_bandwidths``) or ``num_codebooks``
    (the first ``K`` codebooks; default all ``config.num_quantizers``, the model's 4 kbps)."""

    model_types = ("xcodec",)
    option_names = ("bandwidth", "num_codebooks")

    @classmethod
    def classes(cls) -> tuple[type, type]:
        from transformers import XcodecConfig, XcodecModel

        return XcodecModel, XcodecConfig

    def _resolve_options(self, bandwidth: float | None = None, num_codebooks: int | None = None) -> dict[str, Any]:
        cfg, q = self.model.config, self.model.quantizer
        allowed = [float(b) for b in cfg.target_bandwidths]
        top = int(cfg.num_quantizers)
        if bandwidth is not None and num_codebooks is not None:
            raise ValueError("X-codec takes bandwidth or num_codebooks, not both")
        if bandwidth is not None:
            if not _is_number(bandwidth) or float(bandwidth) not in allowed:
                raise ValueError(f"X-codec bandwidth must be one of {allowed} kbps (config.target_bandwidths), "
                                 f"got {bandwidth!r}")
            num_codebooks = q.get_num_quantizers_for_bandwidth(float(bandwidth))
        num_codebooks = self._keep_codebooks(num_codebooks, 1, top, "config.num_quantizers")
        # the smallest model bandwidth that gives at least K codebooks; residual codes are a prefix of longer ones
        fits = [b for b in allowed if q.get_num_quantizers_for_bandwidth(b) >= num_codebooks]
        self._bandwidth = min(fits) if fits else max(allowed)
        return {"num_codebooks": num_codebooks}

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sample_rate)

    @property
    def downsample(self) -> int:
        return int(self.model.config.hop_length)

    def _encode(self, wave: torch.Tensor) -> torch.Tensor:
        codes = self.model.encode(wave, bandwidth=self._bandwidth, return_dict=True).audio_codes
        if codes.shape[1] < self._k:
            raise RuntimeError(f"X-codec gave {codes.shape[1]} codebooks at {self._bandwidth} kbps, need {self._k}")
        return codes[:, : self._k]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values
