"""HuBERT / wav2vec 2.0 of ``transformers`` as a frame feature extractor for semantic units (name ``hf_hubert``).

:class:`HFHubertFeatures` gives the hidden states of one transformer layer of a
local ``HubertModel`` or ``Wav2Vec2Model`` folder; it is registered by name in
:mod:`modalities.audio_features` (lazily: ``transformers`` is imported when one
is built), so :class:`~modalities.semantic.SemanticAudioTokenizer` clusters
them into k-means units::

    SemanticAudioTokenizer({"name": "hf_hubert", "path": "/models/hubert-base-ls960", "layer": 6}, k=500)

A saved tokenizer keeps no path: its folder holds the model's weights
(``features.safetensors``, from :meth:`HFHubertFeatures.weights`) and its
``transformers`` config as plain settings (:meth:`HFHubertFeatures.saved_settings`),
and loading rebuilds the model from those (``checkpoint=`` + ``config=``), its
declared sizes checked against the weights before anything is allocated.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["FEATURE_MODELS", "HFHubertFeatures"]

# model_type -> (model class, config class) in transformers: the only classes a folder or saved config may build
FEATURE_MODELS: dict[str, tuple[str, str]] = {"hubert": ("HubertModel", "HubertConfig"),
                                             "wav2vec2": ("Wav2Vec2Model", "Wav2Vec2Config")}
PREPROCESSOR = "preprocessor_config.json"


def _classes(model_type: Any, where: str) -> tuple[type, type]:
    import transformers

    if model_type not in FEATURE_MODELS:
        raise ValueError(f"{where}: model_type {model_type!r} is not a HuBERT/wav2vec 2.0 model; "
                         f"expected one of {sorted(FEATURE_MODELS)}")
    model_name, config_name = FEATURE_MODELS[model_type]
    return getattr(transformers, model_name), getattr(transformers, config_name)


class HFHubertFeatures(nn.Module):
    """``wave[B, T] -> float[B, F, dim]``: hidden states after transformer layer ``layer`` (1-based) of a
    ``transformers`` HuBERT or wav2vec 2.0 model, ``F`` about ``T / hop_length`` (320 for the standard front end).

    Args:
        path: a local ``transformers`` folder (``config.json`` + ``safetensors``) of a ``hubert`` or ``wav2vec2``
            model; loaded with :func:`~modalities.external.hf.load_hf_model` (local, safetensors only).
        layer: the transformer layer whose output is the feature, in ``[1, num_hidden_layers]`` (6 is common for
            HuBERT base units).
        checkpoint: instead of ``path``: a ``safetensors`` state dict of the model, with ``config``.
        config: the model's ``transformers`` config as a plain dict (what :meth:`saved_settings` writes).
        sample_rate: the model's rate; default the folder's ``preprocessor_config.json`` ``sampling_rate``, else 16 kHz.
        normalize: zero-mean unit-variance normalise each clip first, as the model's feature extractor does when
            its ``do_normalize`` is set; default read from ``preprocessor_config.json`` (else off).
    """

    def __init__(self, path: str | Path | None = None, layer: int = 6, checkpoint: str | Path | None = None,
                 config: dict[str, Any] | None = None, sample_rate: int | None = None,
                 normalize: bool | None = None) -> None:
        super().__init__()
        if (path is None) == (checkpoint is None):
            raise ValueError("hf_hubert features take path= (a transformers folder) or checkpoint= with config=")
        pre: dict[str, Any] = {}
        if path is not None:
            from ..base import TokenizerLoadError
            from ..data.fileio import read_json
            from .hf import hf_model_type, load_hf_model

            path = Path(path)
            model_class, config_class = _classes(hf_model_type(path), str(path / "config.json"))
            self.model = load_hf_model(path, model_class, config_class, tuple(FEATURE_MODELS))
            if (path / PREPROCESSOR).is_file():
                pre = read_json(path / PREPROCESSOR, TokenizerLoadError, "preprocessor config")
                pre = pre if isinstance(pre, dict) else {}
        else:
            from models.weights import build_and_load

            if not isinstance(config, dict):
                raise ValueError("hf_hubert features with checkpoint= need config= (the model's config as a dict)")
            model_class, config_class = _classes(config.get("model_type"), "hf_hubert config")
            try:  # transformers validates its configs (types, values)
                cfg = config_class.from_dict({k: v for k, v in config.items() if k not in ("auto_map",)})
            except Exception as e:
                raise ValueError(f"hf_hubert config is not a valid {config_class.__name__}: {e}") from None
            self.model = build_and_load(lambda: model_class(cfg), checkpoint, "hf_hubert config").eval()
        cfg = self.model.config
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= cfg.num_hidden_layers:
            raise ValueError(f"layer must be an int in [1, {cfg.num_hidden_layers}], got {layer!r}")
        from ..data.waveform import check_sample_rate

        self.layer = layer
        self.sample_rate = check_sample_rate(sample_rate if sample_rate is not None
                                             else pre.get("sampling_rate", 16000))
        self.normalize = bool(pre.get("do_normalize", False) if normalize is None else normalize)
        self.hop_length = math.prod(int(s) for s in cfg.conv_stride)
        self.dim = int(cfg.hidden_size)

    def saved_settings(self) -> dict[str, Any]:
        """Plain settings that rebuild this extractor with ``checkpoint=`` (no path to the original folder)."""
        config = self.model.config.to_dict()
        return {"layer": self.layer, "sample_rate": self.sample_rate, "normalize": self.normalize,
                "config": {k: v for k, v in config.items() if k not in ("auto_map", "architectures")}}

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's state, written into a saved tokenizer's folder so it loads without the original one."""
        return self.model.state_dict()

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave.to(next(self.model.parameters()).dtype)
        if self.normalize:  # as Wav2Vec2FeatureExtractor(do_normalize=True)
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-7)
        out = self.model(x, output_hidden_states=True, return_dict=True)
        return out.hidden_states[self.layer].float()
