"""Audio to semantic units: ``SemanticAudioTokenizer`` (frame features -> k-means units, optional dedup).

As in HuBERT and the textless-NLP work: frame features (MFCC with deltas by
default, or any extractor registered by name, see :mod:`modalities.audio_features`) are
standardised and assigned to the nearest of ``k`` k-means centroids (k-means++
seeding, mini-batch updates, CPU or GPU). ``encode`` gives one unit per frame,
``long[B, 1, F]`` (the audio layout with one codebook); :func:`run_length_dedup`
collapses repeats and keeps their durations. ``decode`` is approximate by
nature: units keep what the features keep, not the waveform.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from models.kmeans import KMeans

from .audio_features import build_feature_extractor
from .base import WEIGHTS, Tokenizer, TokenizerLoadError, batched_codes, inside
from .data.fileio import atomic_path
from .data.waveform import AudioInputConfig, prepare_audio

__all__ = ["DEFAULT_FEATURES", "SemanticAudioTokenizer", "run_length_dedup"]

DEFAULT_FEATURES: dict[str, Any] = {"name": "mfcc"}
MAX_UNITS = 1 << 20  # k-means units; beyond this the centroid table is a mistake (or a tampered config)
FEATURE_WEIGHTS = "features.safetensors"  # an extractor's own weights (e.g. HuBERT), inside the saved folder
# Folders saved before extractors were named stored a Hydra target; these two are read as names (looked up here,
# never imported). Any other ``_target_`` in a saved folder is refused.
_LEGACY_TARGETS = {"modalities.audio_features.MFCCFeatures": "mfcc",
                   "modalities.audio_features.HubertFeatures": "hubert"}


def features_spec(features: str | dict[str, Any] | None, field: str = "features") -> dict[str, Any]:
    """``{"name": ..., **settings}`` from a name or a mapping; a ``_target_`` (an import path) is refused."""
    if features is None:
        return dict(DEFAULT_FEATURES)
    if isinstance(features, str):
        return {"name": features}
    if not isinstance(features, dict):
        raise ValueError(f"{field} must be a name or a mapping with 'name', got {type(features).__name__}")
    spec = copy.deepcopy(dict(features))
    target = spec.pop("_target_", None)
    if target is not None:
        if target not in _LEGACY_TARGETS or "name" in spec:
            raise ValueError(f"{field}._target_={target!r}: feature extractors are chosen by name, not by import "
                             "path; register yours with modalities.audio_features.register_feature_extractor and "
                             "give features.name")
        spec["name"] = _LEGACY_TARGETS[target]
    if not isinstance(spec.get("name"), str):
        raise ValueError(f"{field}.name is missing: name a registered feature extractor (e.g. 'mfcc')")
    return spec


def run_length_dedup(units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Collapses runs of one unit: ``long[T] -> (long[n], durations long[n])`` with ``durations.sum() == T``."""
    if units.ndim != 1:
        raise ValueError(f"run_length_dedup takes one unit sequence [T], got shape {tuple(units.shape)}")
    out, counts = torch.unique_consecutive(units, return_counts=True)
    return out, counts


class SemanticAudioTokenizer(Tokenizer):
    """Semantic units: ``encode(audio) -> LongTensor[B, 1, F]``, one unit per feature frame.

    Args:
        features: the feature extractor: a registered name (``"mfcc"``, ``"hubert"``, yours) or
            ``{"name": ..., **settings}`` (see :mod:`modalities.audio_features`).
        k: number of units (k-means clusters).
        audio: how inputs are read (sample rate, mono, normalisation).
        dedup: whether users of this tokenizer (e.g. the mixed stream) should
            run-length deduplicate units; ``encode`` itself always returns every frame.
    """

    kind: ClassVar[str] = "audio"

    def __init__(self, features: str | dict[str, Any] | None = None, k: int = 500,
                 audio: AudioInputConfig | None = None, dedup: bool = False) -> None:
        self.features_cfg = features_spec(features)
        settings = {key: v for key, v in self.features_cfg.items() if key != "name"}
        self.extractor: nn.Module = build_feature_extractor(self.features_cfg["name"], **settings)
        for attr in ("sample_rate", "hop_length", "dim"):
            if not hasattr(self.extractor, attr):
                raise ValueError(f"feature extractor {self.features_cfg['name']!r} has no {attr!r} attribute")
        if not isinstance(k, int) or not 1 <= k <= MAX_UNITS:
            raise ValueError(f"k must be an int in [1, {MAX_UNITS}], got {k!r}")
        self.audio_cfg = audio or AudioInputConfig(sample_rate=int(self.extractor.sample_rate))
        if self.audio_cfg.sample_rate != self.extractor.sample_rate:
            raise ValueError(f"audio sample_rate {self.audio_cfg.sample_rate} differs from the feature extractor's "
                             f"{self.extractor.sample_rate}")
        self.kmeans = KMeans(k, int(self.extractor.dim))
        self.stats = {"mean": torch.zeros(self.kmeans.dim), "std": torch.ones(self.kmeans.dim)}
        self.dedup, self.fitted = dedup, False

    # ------------------------------------------------------------ geometry
    @property
    def codebook_size(self) -> int:
        return self.kmeans.k

    num_codebooks = 1

    @property
    def sample_rate(self) -> int:
        return int(self.extractor.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.extractor.hop_length)

    @property
    def frame_rate(self) -> float:
        """Units per second before deduplication."""
        return self.sample_rate / self.hop_length

    @property
    def device(self) -> torch.device:
        return self.kmeans.centroids.device

    def to(self, device: torch.device | str) -> SemanticAudioTokenizer:
        self.kmeans.to(device)
        self.extractor.to(device)
        self.stats = {k: v.to(device) for k, v in self.stats.items()}
        return self

    # ------------------------------------------------------------ features
    @torch.inference_mode()
    def raw_features(self, audio: Any, sample_rate: int | None = None) -> torch.Tensor:
        """Extractor output ``float[B, F, dim]`` (channels become batch rows when ``mono=False``)."""
        wave = prepare_audio(audio, self.audio_cfg, sample_rate).flatten(0, 1).to(self.device)
        if wave.shape[-1] < self.hop_length:
            raise ValueError(f"audio of {wave.shape[-1]} samples is shorter than one feature frame "
                             f"({self.hop_length} samples)")
        return self.extractor(wave).float()

    def _standardise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.stats["mean"]) / self.stats["std"]

    @torch.inference_mode()
    def fit(self, audio: Sequence[Any], iters: int = 20, batch_size: int | None = 4096, seed: int = 0,
            sample_rate: int | None = None) -> dict[str, float]:
        """Fits the feature standardisation and k-means to the frames of ``audio`` (items may differ in length).

        Returns ``{"frames", "inertia", "usage"}``: training frames, mean squared distance to the nearest
        centroid (standardised features), and the fraction of units used on the training frames.
        """
        if isinstance(audio, (str, Path, torch.Tensor)) or not len(audio):
            raise ValueError("fit takes a non-empty list of clips (paths, tensors or arrays)")
        feats = torch.cat([self.raw_features(a, sample_rate).flatten(0, 1) for a in audio])
        mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
        self.stats = {"mean": mean, "std": std}
        x = self._standardise(feats)
        self.kmeans.fit(x, iters=iters, seed=seed, batch_size=batch_size)
        self.fitted = True
        units = self.kmeans.predict(x)
        return {"frames": float(len(x)), "inertia": self.kmeans.inertia(x),
                "usage": float(torch.bincount(units, minlength=self.kmeans.k).gt(0).float().mean())}

    @torch.inference_mode()
    def evaluate(self, audio: Sequence[Any], sample_rate: int | None = None) -> dict[str, float]:
        """Over a list of clips: ``inertia`` (mean squared distance to the nearest centroid, standardised
        features), ``usage`` (fraction of the ``k`` units that occur), ``units_per_second`` before and
        ``dedup_units_per_second`` after run-length deduplication."""
        self._require_fitted()
        dist = frames = runs = seconds = 0.0
        hist = torch.zeros(self.kmeans.k, dtype=torch.long, device=self.device)
        for clip in audio:
            x = self._standardise(self.raw_features(clip, sample_rate)).flatten(0, 1)
            units = self.kmeans.predict(x)
            dist += float(((x - self.kmeans.centroids[units]) ** 2).sum(1).sum())
            frames += len(x)
            runs += len(run_length_dedup(units)[0])
            seconds += len(x) / self.frame_rate
            hist += torch.bincount(units, minlength=self.kmeans.k)
        return {"inertia": dist / frames, "usage": float((hist > 0).float().mean()),
                "units_per_second": frames / seconds, "dedup_units_per_second": runs / seconds}

    # ------------------------------------------------------- encode/decode
    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("this SemanticAudioTokenizer has not been fitted; call fit(...) or from_pretrained")

    @torch.inference_mode()
    def encode(self, audio: Any, sample_rate: int | None = None) -> torch.Tensor:
        """Units ``long[B, 1, F]``, ``F = T // hop_length`` frames (``sample_rate`` for tensors/arrays)."""
        self._require_fitted()
        feats = self._standardise(self.raw_features(audio, sample_rate))
        b, f, d = feats.shape
        return self.kmeans.predict(feats.reshape(b * f, d)).reshape(b, 1, f)

    def encode_dedup(self, audio: Any, sample_rate: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Run-length deduplicated units per item: ``[(long[1, n_i], durations long[n_i]), ...]``."""
        out = []
        for row in self.encode(audio, sample_rate)[:, 0]:
            units, durations = run_length_dedup(row)
            out.append((units[None], durations))
        return out

    @torch.inference_mode()
    def decode_features(self, codes: torch.Tensor, durations: torch.Tensor | None = None) -> torch.Tensor:
        """Centroid features ``float[B, F, dim]`` (un-standardised) of units ``[B, 1, F]``.

        ``durations[B, F]`` (from :meth:`encode_dedup`) repeats each unit that many frames.
        Raises on units outside ``[0, k)``.
        """
        self._require_fitted()
        codes = batched_codes(codes, "K, T", 1)
        if codes.shape[1] != 1:
            raise ValueError(f"semantic units have one codebook, got shape {tuple(codes.shape)}")
        if codes.shape[-1] == 0:
            raise ValueError(f"semantic units of shape {tuple(codes.shape)} hold no frames")
        feats = self.kmeans.decode(codes[:, 0].to(self.device)) * self.stats["std"] + self.stats["mean"]
        if durations is not None:
            durations = durations.reshape(codes.shape[0], -1).to(self.device)
            if durations.shape[-1] != codes.shape[-1] or (durations < 1).any():
                raise ValueError(f"durations must be positive and shaped like the units {tuple(codes.shape[::2])}, "
                                 f"got {tuple(durations.shape)}")
            feats = torch.stack([f.repeat_interleave(d, dim=0) for f, d in zip(feats, durations, strict=True)])
        return feats

    def decode(self, codes: torch.Tensor, durations: torch.Tensor | None = None) -> torch.Tensor:
        """Approximate waveform ``float[B, F * hop_length]`` of units: centroids back to features, then audio.

        Only an approximation, and only for extractors with a ``to_audio`` method (MFCC: librosa's
        ``mfcc_to_audio``, i.e. the spectral envelope with Griffin-Lim phase and no pitch). It lets a
        user hear what the units keep; it is not a vocoder.
        """
        if not hasattr(self.extractor, "to_audio"):
            raise NotImplementedError(f"{self.features_cfg['name']!r} features cannot be turned back into "
                                      "audio; use decode_features")
        return self.extractor.to_audio(self.decode_features(codes, durations))

    # ----------------------------------------------------------- save/load
    def settings(self) -> dict[str, Any]:
        features = dict(self.features_cfg)
        if hasattr(self.extractor, "saved_settings"):  # e.g. hf_hubert: its config instead of the folder it came from
            features = {"name": features["name"], **self.extractor.saved_settings()}
        if hasattr(self.extractor, "weights"):  # its weights travel in the folder, not as a path to elsewhere
            features["checkpoint"] = FEATURE_WEIGHTS
        return {"features": features, "k": self.kmeans.k, "audio": asdict(self.audio_cfg),
                "dedup": self.dedup, "fitted": self.fitted, "frame_rate": self.frame_rate}

    def _save_files(self, directory: Path) -> None:
        from safetensors.torch import save_file

        files = {WEIGHTS: {"centroids": self.kmeans.centroids, **self.stats}}
        if hasattr(self.extractor, "weights"):
            files[FEATURE_WEIGHTS] = self.extractor.weights()
        for name, tensors in files.items():
            with atomic_path(directory / name) as tmp:
                save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))

    @classmethod
    def _load_files(cls, directory: Path, settings: dict[str, Any]) -> SemanticAudioTokenizer:
        from safetensors.torch import load_file

        from models.weights import WeightsMismatchError, stored_shapes

        where = f"{directory}/config.json settings"
        path = directory / WEIGHTS
        if not path.is_file():
            raise TokenizerLoadError(f"{path} is missing")
        try:
            features = features_spec(settings["features"], f"{where}.features")
            if "checkpoint" in features:
                ckpt = inside(directory, features["checkpoint"], f"{where}.features.checkpoint")
                if ckpt.suffix != ".safetensors":
                    raise ValueError(f"{where}.features.checkpoint must be a .safetensors file in the folder")
                features["checkpoint"] = str(ckpt)
            k = settings["k"]
            stored = stored_shapes(path).get("centroids")
            if stored is None or stored[0] != k:  # before allocating k centroids
                raise ValueError(f"{where}.k={k!r} but {path} holds centroids of shape {stored}")
            tok = cls(features, k, AudioInputConfig(**settings["audio"]), bool(settings.get("dedup", False)))
        except TokenizerLoadError:
            raise
        except (KeyError, TypeError, ValueError, WeightsMismatchError) as e:
            raise TokenizerLoadError(f"{where}: bad semantic tokenizer settings ({type(e).__name__}: {e})") from None
        try:
            tensors = load_file(str(path))
            tok.kmeans.centroids.copy_(tensors["centroids"])
            tok.stats = {"mean": tensors["mean"], "std": tensors["std"]}
        except Exception as e:  # safetensors raises several types for corrupt files
            raise TokenizerLoadError(f"{path} does not match the saved config: {e}") from None
        tok.fitted = bool(settings.get("fitted", True))
        return tok

    def __repr__(self) -> str:
        return (f"SemanticAudioTokenizer({self.features_cfg['name']}, "
                f"k={self.codebook_size}, frame_rate={self.frame_rate:g} Hz)")
