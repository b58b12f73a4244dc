"""Decoder-only transformer over the registry's global vocabulary.

Pre-norm blocks with ``nn.RMSNorm``, rotary position embeddings (RoPE),
``F.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU)
and a SwiGLU MLP; optional tying of the input embedding and the output head.
``forward`` takes an optional :class:`KVCache` for incremental decoding.
:func:`lm_loss` reports the next-token loss overall and per modality.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KVCache", "Transformer", "TransformerConfig", "lm_loss", "lm_loss_sums", "loss_report"]


@dataclass
class TransformerConfig:
    """Model size.

    Attributes:
        vocab_size: the registry's padded ``vocab_size``.
        dim: model width.
        n_layers: transformer blocks.
        n_heads: attention heads (``dim`` divisible by it, head size even for RoPE).
        mlp_hidden: SwiGLU hidden width (``None``: about ``8/3 * dim`` rounded up to 64).
        max_seq_len: longest sequence (RoPE table size).
        rope_theta: RoPE base.
        tie_weights: share the embedding matrix with the output head.
        dropout: residual dropout during training.
    """

    vocab_size: int = 1024
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 4
    mlp_hidden: Optional[int] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    max_seq_len: int = 2048
    rope_theta: float = 10000.0
    tie_weights: bool = True
    dropout: float = 0.0


def _rope_tables(head_dim: int, n: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
    ang = torch.outer(torch.arange(n).float(), inv)  # [n, head_dim / 2]
    return ang.cos(), ang.sin()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates pairs of channels of ``x[B, H, T, D]`` by the angles of ``cos/sin[T, D/2]``."""
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2).type_as(x)


class KVCache:
    """Keys and values of the positions seen so far, one ``[B, H, T, D]`` pair per layer."""

    def __init__(self, n_layers: int) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers

    @property
    def length(self) -> int:
        """Positions cached (read before a forward pass; layers fill one after another during it)."""
        return self.length_of(0)

    def length_of(self, i: int) -> int:
        kv = self.layers[i]
        return 0 if kv is None else kv[0].shape[2]

    def update(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        old = self.layers[i]
        if old is not None:
            k, v = torch.cat([old[0], k], dim=2), torch.cat([old[1], v], dim=2)
        self.layers[i] = (k, v)
        return k, v


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.dim // cfg.n_heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.out = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None,
                layer: int) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        past = 0
        if cache is not None:
            past = cache.length_of(layer)
            k, v = cache.update(layer, k, v)
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # new queries see every cached position and the new ones up to themselves
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig, hidden: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.RMSNorm(cfg.dim), nn.RMSNorm(cfg.dim)
        self.attn, self.mlp = Attention(cfg), SwiGLU(cfg.dim, hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, cache, layer):
        x = x + self.drop(self.attn(self.norm1(x), cos, sin, cache, layer))
        return x + self.drop(self.mlp(self.norm2(x)))


class Transformer(nn.Module):
    """``forward(ids[B, T], cache=None) -> logits float[B, T, vocab_size]``."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        if cfg.dim % cfg.n_heads or (cfg.dim // cfg.n_heads) % 2:
            raise ValueError(f"dim={cfg.dim} must split into n_heads={cfg.n_heads} heads of even size")
        self.cfg = cfg
        hidden = cfg.mlp_hidden or -(-int(8 * cfg.dim / 3) // 64) * 64
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg, hidden) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight
        cos, sin = _rope_tables(cfg.dim // cfg.n_heads, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg.n_layers)

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward): ``6 N`` for the weights (embedding excluded)
        plus ``12 L T d`` for attention scores and values, as in the PaLM appendix."""
        n = self.num_params() - self.embed.weight.numel() * (0 if self.cfg.tie_weights else 1)
        return 6.0 * n + 12.0 * self.cfg.n_layers * seq_len * self.cfg.dim

    def save_pretrained(self, directory: str | Path) -> Path:
        """Writes ``config.json`` and ``model.safetensors`` (tied weights stored once) into ``directory``."""
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_model(self, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps({"class": "Transformer", **asdict(self.cfg)}, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> Transformer:
        """Loads a folder written by :meth:`save_pretrained`; raises ``ValueError`` naming a bad file.

        The declared sizes are checked against the weights' header before anything is allocated
        (:func:`models.weights.build_and_load`), so a config declaring a huge model fails fast."""
        from .weights import build_and_load

        directory = Path(directory)
        cfg_path, weights = directory / "config.json", directory / "model.safetensors"
        for p in (cfg_path, weights):
            if not p.is_file():
                raise FileNotFoundError(f"{p} is missing: not a saved Transformer")
        try:
            cfg = json.loads(cfg_path.read_text())
            if not isinstance(cfg, dict) or cfg.pop("class", None) != "Transformer":
                raise ValueError(f"{cfg_path} is not a Transformer config")
            model = build_and_load(lambda: cls(TransformerConfig(**cfg)), weights, f"{cfg_path}", map_location)
        except Exception as e:  # json, TypeError for unknown keys, safetensors' own errors
            raise ValueError(f"cannot load a Transformer from {directory}: {e}") from None
        return model

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None, check_ids: bool = True) -> torch.Tensor:
        """Logits ``float[B, T, vocab_size]`` for ``ids`` long[B, T] (after ``cache.length`` cached positions).

        ``check_ids`` refuses ids outside the vocabulary with a clear error; it reads the ids' range back
        from the device, so a training loop that has checked its batches on the CPU passes ``False``
        (no host-device sync, no graph break under ``torch.compile``).
        """
        if ids.ndim != 2 or ids.dtype != torch.long:
            raise ValueError(f"ids must be LongTensor[B, T], got {ids.dtype} of shape {tuple(ids.shape)}")
        start = cache.length if cache is not None else 0
        t = ids.shape[1]
        if start + t > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {start + t} positions exceeds max_seq_len={self.cfg.max_seq_len}")
        if check_ids and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.cfg.vocab_size):
            raise ValueError(f"ids must be in [0, {self.cfg.vocab_size}), got [{int(ids.min())}, {int(ids.max())}]")
        cos, sin = self.rope_cos[start:start + t], self.rope_sin[start:start + t]
        x = self.embed(ids)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, i)
        return self.head(self.norm(x))


def lm_loss_sums(logits: torch.Tensor, targets: torch.Tensor, modality: torch.Tensor, num_modalities: int,
                 ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-token loss without a host-device sync: what a training loop calls every step.

    Args:
        logits: float[B, T, V].
        targets: long[B, T] (``ignore_index`` positions are skipped).
        modality: long[B, T] registry modality index of each target, in ``[0, num_modalities)``.
        num_modalities: how many modality indices there are (specials are index 0).
    Returns:
        ``(loss, sums, counts)``: the mean cross-entropy (differentiable), and per modality index the
        summed loss ``float[num_modalities]`` (detached) and the number of targets ``float[num_modalities]``.
    """
    per = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ignore_index,
                          reduction="none")  # 0 at ignored positions
    weight = (targets.flatten() != ignore_index).to(per.dtype)
    loss = per.sum() / weight.sum().clamp_min(1.0)
    mod = modality.flatten()
    sums = per.new_zeros(num_modalities).index_add_(0, mod, per.detach())
    counts = per.new_zeros(num_modalities).index_add_(0, mod, weight)
    return loss, sums, counts


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, modality: torch.Tensor | None = None,
            names: dict[int, str] | None = None, ignore_index: int = -100) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean next-token cross-entropy, and the same per modality of the target position.

    Args:
        logits: float[B, T, V].
        targets: long[B, T] (``ignore_index`` positions are skipped).
        modality: long[B, T] registry modality index of each target (0 = specials).
        names: modality index -> name for the report (default ``m<index>``).
    Returns:
        ``(loss, {"loss": ..., "loss_<name>": ...})`` with floats for the report (this reads the values
        back from the device; training loops use :func:`lm_loss_sums`).
    """
    mod = torch.zeros_like(targets) if modality is None else modality
    n = max([int(mod.max()) if mod.numel() else 0, *(names or {})]) + 1
    loss, sums, counts = lm_loss_sums(logits, targets, mod, n, ignore_index)
    return loss, (loss_report(loss, sums, counts, names) if modality is not None else {"loss": float(loss.detach())})


def loss_report(loss: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor,
                names: dict[int, str] | None = None) -> dict[str, float]:
    """``{"loss": ..., "loss_<name>": ...}`` from :func:`lm_loss_sums` output (modalities with no target left out)."""
    report = {"loss": float(loss.detach())}
    for idx, (s, c) in enumerate(zip(sums.tolist(), counts.tolist(), strict=True)):
        if c > 0:
            report[f"loss_{(names or {}).get(idx, f'm{idx}')}"] = s / c
    return report
