"""Quantiser factory over ``vector-quantize-pytorch``: one face for VQ, FSQ, LFQ and residual VQ.

The library does the quantising; this module only picks the class from a
config, puts feature maps into the ``[B, N, D]`` layout every quantiser
accepts, and returns a :class:`QuantizerOutput` with one code tensor layout:
``codes[B, *spatial]`` for one codebook, ``codes[B, *spatial, K]`` for K.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .nearest import centre_means, nearest

__all__ = ["QUANTIZER_KINDS", "Quantizer", "QuantizerConfig", "QuantizerOutput", "check_range", "code_histogram", "fsq_entropy_loss", "usage_and_perplexity"]

log = logging.getLogger(__name__)

QUANTIZER_KINDS = ("vq", "fsq", "lfq", "rvq")
FSQ_MAX_CODES = 1 << 20
MAX_DIM = 1 << 16


@dataclass
class QuantizerConfig:
    """Which quantiser and its settings (the Hydra group ``quantizer=``).

    Attributes:
        kind: ``vq`` (EMA codebook), ``fsq`` (finite scalar), ``lfq`` (lookup-free), ``rvq`` (residual VQ).
        codebook_size: codes per codebook for vq/lfq/rvq (a power of two for lfq);
            for fsq it is the product of ``levels``.
        levels: FSQ levels per channel, e.g. ``[8, 5, 5, 5]`` (1000 codes).
        num_quantizers: codebooks of residual VQ (``K``).
        decay: EMA decay of vq/rvq codebooks.
        use_cosine_sim: l2-normalised codes and inputs (vq/rvq).
        kmeans_init: initialise vq/rvq codebooks with k-means on the first batch.
        threshold_ema_dead_code: re-seed codes whose EMA usage (vectors per batch, decayed) falls below this
            (0 = off). An absolute count: with fewer vectors per batch than ``codebook_size * threshold`` the
            average code sits below it and codes are re-seeded every step (a warning says so); use
            ``dead_code_share`` for a threshold that follows the batch.
        dead_code_share: when > 0 (vq/rvq), a code is re-seeded when its EMA usage falls below this share of the
            uniform usage, ``vectors per batch / codebook_size`` (all ranks together when codebooks are synced),
            and a re-seeded code starts at the uniform usage; replaces ``threshold_ema_dead_code``. Large
            codebooks on small batches (f16 with 4096 codes sees 256 vectors a batch) need it.
        commitment_weight: weight of the commitment loss (vq/rvq; lfq's commitment too).
        entropy_loss_weight: weight of LFQ's entropy loss.
        fsq_noise_dropout: FSQ only: share of latents left unquantised (with uniform noise) during
            training, which spreads them over more codes (the library's ``noise_dropout``).
        fsq_preserve_symmetry: FSQ only: levels symmetric around zero (the library's ``preserve_symmetry``).
        fsq_entropy_weight: FSQ only: weight of a code-diversity loss (0 = off), LFQ's entropy loss
            (MAGVIT-v2) carried over to FSQ's grid: each latent is softly assigned to the levels of each
            channel, the loss is the mean per-latent entropy minus the entropy of the batch's average
            joint code distribution. It pushes the latents to fill the whole grid rather than the few
            level combinations that correlated channels reach, i.e. it raises codebook usage.
        fsq_entropy_temperature: FSQ only: temperature of that soft assignment, in squared level steps.
    """

    kind: str = "vq"
    codebook_size: int = 1024
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])
    num_quantizers: int = 2
    decay: float = 0.99
    use_cosine_sim: bool = False
    kmeans_init: bool = True
    threshold_ema_dead_code: float = 2.0
    dead_code_share: float = 0.0
    commitment_weight: float = 0.25
    entropy_loss_weight: float = 0.1
    fsq_noise_dropout: float = 0.0
    fsq_preserve_symmetry: bool = False
    fsq_entropy_weight: float = 0.0
    fsq_entropy_temperature: float = 0.5


@dataclass
class QuantizerOutput:
    """Result of :meth:`Quantizer.forward`.

    Attributes:
        quantized: float[B, D, *spatial], same shape as the input.
        codes: long[B, *spatial] (one codebook) or long[B, *spatial, K].
        loss: scalar auxiliary loss (commitment / entropy), already weighted.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor


class Quantizer(nn.Module):
    """Quantises channel-first feature maps ``z[B, D, *spatial]`` with a library quantiser."""

    def __init__(self, dim: int, cfg: QuantizerConfig) -> None:
        super().__init__()
        from vector_quantize_pytorch import FSQ, LFQ, ResidualVQ, VectorQuantize

        if not 1 <= dim <= MAX_DIM:
            raise ValueError(f"quantizer input dim must be in [1, {MAX_DIM}], got {dim}")
        if cfg.dead_code_share < 0 or cfg.threshold_ema_dead_code < 0:
            raise ValueError(f"dead_code_share and threshold_ema_dead_code must be >= 0, got "
                             f"{cfg.dead_code_share} and {cfg.threshold_ema_dead_code}")
        self.cfg = cfg
        self.dim = dim
        self._warned_threshold = False
        # whether EMA codebook updates and k-means init are all-reduced across ranks, decided here and not by the
        # library's cached check, which goes stale when a quantiser is built before the process group exists
        sync = torch.distributed.is_available() and torch.distributed.is_initialized() and \
            torch.distributed.get_world_size() > 1
        self._sync = sync
        # with a share, the library's threshold is set before each training step (_set_dead_code_threshold); any
        # positive value here switches its dead-code replacement on
        threshold = cfg.dead_code_share if cfg.dead_code_share > 0 else cfg.threshold_ema_dead_code
        vq_kwargs = dict(decay=cfg.decay, use_cosine_sim=cfg.use_cosine_sim, kmeans_init=cfg.kmeans_init,
                         threshold_ema_dead_code=threshold, commitment_weight=cfg.commitment_weight,
                         sync_codebook=sync)
        if cfg.kind == "vq":
            self.q = VectorQuantize(dim=dim, codebook_size=cfg.codebook_size, **vq_kwargs)
        elif cfg.kind == "rvq":
            if cfg.num_quantizers < 1:
                raise ValueError(f"rvq needs num_quantizers >= 1, got {cfg.num_quantizers}")
            self.q = ResidualVQ(dim=dim, num_quantizers=cfg.num_quantizers, codebook_size=cfg.codebook_size,
                                **vq_kwargs)
        elif cfg.kind == "fsq":
            if not cfg.levels or any(int(v) < 2 for v in cfg.levels):
                raise ValueError(f"fsq levels must be a non-empty list of ints >= 2, got {list(cfg.levels)}")
            if 2 in [int(v) for v in cfg.levels] and not cfg.fsq_preserve_symmetry:
                raise ValueError(f"fsq levels {list(cfg.levels)} contain a 2, which needs fsq_preserve_symmetry=true "
                                 "(or use levels of 3 and more)")
            if cfg.fsq_noise_dropout and not cfg.fsq_preserve_symmetry:
                raise ValueError("fsq_noise_dropout needs fsq_preserve_symmetry=true")
            if cfg.fsq_entropy_weight and cfg.fsq_preserve_symmetry:
                raise ValueError("fsq_entropy_weight works on the standard FSQ grid; it cannot be combined with "
                                 "fsq_preserve_symmetry=true")
            if cfg.fsq_entropy_temperature <= 0:
                raise ValueError(f"fsq_entropy_temperature must be > 0, got {cfg.fsq_entropy_temperature}")
            if math.prod(int(v) for v in cfg.levels) > FSQ_MAX_CODES:
                raise ValueError(f"fsq levels {list(cfg.levels)} make {math.prod(int(v) for v in cfg.levels):,} codes; "
                                 f"FSQ materialises its codebook, at most {FSQ_MAX_CODES:,} are supported")
            # FSQ reads its level product back with .item(), which a meta tensor cannot do; its tensors are
            # small (bounded above), so under the meta device (shape checks of saved folders) it is built on the CPU
            on_meta = torch.get_default_device().type == "meta"
            with torch.device("cpu") if on_meta else contextlib.nullcontext():
                self.q = FSQ(levels=[int(v) for v in cfg.levels], dim=dim, noise_dropout=cfg.fsq_noise_dropout,
                             preserve_symmetry=cfg.fsq_preserve_symmetry)
        elif cfg.kind == "lfq":
            if cfg.codebook_size < 2 or cfg.codebook_size & (cfg.codebook_size - 1):
                raise ValueError(f"lfq codebook_size must be a power of two, got {cfg.codebook_size}")
            self.q = LFQ(dim=dim, codebook_size=cfg.codebook_size, entropy_loss_weight=cfg.entropy_loss_weight,
                         commitment_loss_weight=cfg.commitment_weight)
        else:
            raise ValueError(f"unknown quantizer kind {cfg.kind!r}; expected one of {list(QUANTIZER_KINDS)}")

    @property
    def codebook_size(self) -> int:
        """Distinct codes per codebook."""
        return math.prod(int(v) for v in self.cfg.levels) if self.cfg.kind == "fsq" else self.cfg.codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.cfg.num_quantizers if self.cfg.kind == "rvq" else 1

    @property
    def bits_per_code(self) -> float:
        """Bits carried by one spatial position (all codebooks together)."""
        return self.num_codebooks * math.log2(self.codebook_size)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantises ``z[B, D, *spatial]``."""
        if z.ndim < 3 or z.shape[1] != self.dim:
            raise ValueError(f"quantizer expects [B, {self.dim}, *spatial], got {tuple(z.shape)}")
        b, d, *spatial = z.shape
        seq = z.flatten(2).transpose(1, 2)  # [B, N, D]
        if self.training and self.cfg.kind in ("vq", "rvq"):
            self._set_dead_code_threshold(seq.shape[0] * seq.shape[1])
        out = self.q(seq)
        quantized, codes = out[0], out[1]
        loss = out[2].sum() if len(out) > 2 and torch.is_tensor(out[2]) else z.new_zeros(())
        if self.cfg.kind == "fsq" and self.cfg.fsq_entropy_weight and self.training:
            loss = loss + self.cfg.fsq_entropy_weight * fsq_entropy_loss(self.q, seq, self.cfg.fsq_entropy_temperature)
        quantized = quantized.transpose(1, 2).reshape(b, d, *spatial)
        codes = codes.reshape(b, *spatial, *([self.num_codebooks] if self.cfg.kind == "rvq" else []))
        return QuantizerOutput(quantized, codes.long(), loss)

    def _codebooks(self) -> list[nn.Module]:
        """The library's codebook modules (one for vq, one per level for rvq)."""
        return [layer._codebook for layer in self.q.layers] if self.cfg.kind == "rvq" else [self.q._codebook]

    def _set_dead_code_threshold(self, vectors: int) -> None:
        """Sets the dead-code threshold from ``dead_code_share`` for a batch of ``vectors`` latents, or warns once
        when an absolute ``threshold_ema_dead_code`` lies at or above the uniform usage (codes re-seeded every step)."""
        if self._sync:
            vectors *= torch.distributed.get_world_size()
        uniform = vectors / self.cfg.codebook_size
        if self.cfg.dead_code_share > 0:
            for book in self._codebooks():
                book.threshold_ema_dead_code = self.cfg.dead_code_share * uniform
                book.reset_cluster_size = uniform
        elif 0 < self.cfg.threshold_ema_dead_code and uniform <= self.cfg.threshold_ema_dead_code \
                and not self._warned_threshold:
            self._warned_threshold = True
            log.warning("quantizer.threshold_ema_dead_code=%g is at or above the average usage of a code "
                        "(%d vectors a batch / %d codes = %.3g): most codes are re-seeded from the batch at every "
                        "step; set quantizer.dead_code_share (e.g. 0.1) or a lower threshold",
                        self.cfg.threshold_ema_dead_code, vectors, self.cfg.codebook_size, uniform)

    @torch.no_grad()
    def refit(self, z: torch.Tensor, iters: int = 10) -> dict[str, float]:
        """Lloyd iterations of the codebook on encoder outputs ``z[N, D]`` (``vq`` with one codebook only): each
        code moves to the mean of the vectors nearest to it, a code no vector chose stays where it is.

        The EMA codebook follows the last few hundred batches, so at the end of training it carries their noise;
        one refit on a few thousand crops removes it. Returns the mean squared quantisation error before and after
        (``refit_mse_before``, ``refit_mse_after``) and the codes used."""
        if self.cfg.kind != "vq" or self.cfg.use_cosine_sim:
            raise ValueError(f"a codebook refit needs a Euclidean vq quantiser, got kind={self.cfg.kind!r}, "
                             f"use_cosine_sim={self.cfg.use_cosine_sim}")
        if z.ndim != 2 or z.shape[1] != self.dim or len(z) < self.codebook_size:
            raise ValueError(f"refit needs z[N, {self.dim}] with N >= {self.codebook_size} codes, got {tuple(z.shape)}")
        book = self.q._codebook
        embed = book.embed[0].float().clone()
        z = z.float()

        before, codes = nearest(z, embed)
        after = before
        for _ in range(iters):
            embed = centre_means(z, codes, embed)[0]
            after, codes = nearest(z, embed)
        counts = torch.bincount(codes, minlength=len(embed)).float()
        book.embed[0].copy_(embed)
        book.embed_avg[0].copy_(embed * book.cluster_size[0][:, None])  # the EMA state stays consistent
        return {"refit_mse_before": float(before.mean()) / self.dim, "refit_mse_after": float(after.mean()) / self.dim,
                "refit_codes_used": int((counts > 0).sum())}

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Quantised vectors ``float[B, D, *spatial]`` for ``codes`` laid out as in :class:`QuantizerOutput`."""
        k = self.num_codebooks
        spatial = codes.shape[1:-1] if self.cfg.kind == "rvq" else codes.shape[1:]
        if self.cfg.kind == "rvq" and codes.shape[-1] != k:
            raise ValueError(f"rvq codes must end with {k} codebooks, got shape {tuple(codes.shape)}")
        check_range(codes, self.codebook_size)
        flat = codes.reshape(codes.shape[0], -1, k) if self.cfg.kind == "rvq" else codes.reshape(codes.shape[0], -1)
        if self.cfg.kind in ("vq", "rvq"):
            vec = self.q.get_output_from_indices(flat)
        else:
            vec = self.q.indices_to_codes(flat)
        return vec.transpose(1, 2).reshape(codes.shape[0], self.dim, *spatial)


def fsq_entropy_loss(fsq: nn.Module, seq: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Code-diversity loss of a library ``FSQ`` on its input ``seq[B, N, D]``: mean per-latent entropy minus
    the entropy of the average joint code distribution (both in nats).

    Each channel ``c`` of the bounded latent (the library's ``bound`` before rounding) is softly assigned
    to its ``L_c`` integer levels by ``softmax(-(z - level)^2 / temperature)``; a latent's joint
    distribution over the codes is the product of its channels', so its entropy is the sum of theirs, and
    the batch average of the joint is one ``einsum`` over the channels (``codebook_size`` numbers).
    """
    z = fsq.project_in(seq.float()).reshape(-1, len(fsq._levels))  # [B*N, C], one codebook
    levels = fsq._levels
    half_l = (levels - 1) * (1 + 1e-3) / 2
    offset = torch.where(levels % 2 == 0, 0.5, 0.0)
    bounded = torch.tanh(z + torch.atanh(offset / half_l)) * half_l - offset  # what the library rounds
    probs = []
    for c, n_levels in enumerate(levels.tolist()):
        grid = torch.arange(n_levels, device=z.device, dtype=z.dtype) - n_levels // 2
        probs.append(torch.softmax(-(bounded[:, c, None] - grid) ** 2 / temperature, dim=-1))  # [M, L_c]
    per_latent = sum(-(p * p.clamp_min(1e-9).log()).sum(-1) for p in probs).mean()
    letters = "abcdefghijklmnopqrstuvwxyz"[: len(probs)]
    avg = torch.einsum(",".join(f"n{a}" for a in letters) + "->" + letters, *probs).flatten() / len(z)
    batch = -(avg * avg.clamp_min(1e-9).log()).sum()
    return per_latent - batch


def check_range(codes: torch.Tensor, size: int, what: str = "code") -> None:
    """Raises ``ValueError`` naming the first entry of ``codes`` outside ``[0, size)`` and its position."""
    bad = (codes < 0) | (codes >= size)
    if bad.any():
        pos = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{what} {int(codes[pos])} at position {pos} is out of range [0, {size})")


def code_histogram(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Counts ``long[codebook_size]`` of each code in ``codes`` (all codebooks pooled for rvq)."""
    return torch.bincount(codes.detach().reshape(-1), minlength=codebook_size)[:codebook_size]


def usage_and_perplexity(hist: torch.Tensor) -> tuple[float, float]:
    """Fraction of codes used at least once, and ``exp(entropy)`` of the code distribution."""
    total = hist.sum()
    if total == 0:
        return 0.0, 0.0
    p = hist.double() / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float((hist > 0).double().mean()), float(entropy.exp())
