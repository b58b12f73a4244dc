"""Growing a pretrained Hugging Face causal LM's vocabulary to an mmtok registry laid on its tokenizer.

The registry's text range is the base tokenizer's ids (offset 0), so the model's
first ``base.size`` embedding rows keep their meaning and stay bit-identical;
rows for mmtok's controls and each media modality's codes are appended (or
overwrite the unused padding rows some models carry past their tokenizer) and
initialised by a documented rule. Tied and untied heads are both handled by
``transformers``' own ``resize_token_embeddings``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..registry import VocabRegistry

__all__ = ["INIT_RULES", "ExtendReport", "extend_model", "registry_of"]

#: how new rows are initialised: ``mean`` (every new row = the mean of the base rows; the default, as
#: Hewitt's and ``transformers``' ``mean_resizing`` argue: new tokens start with average logits),
#: ``normal`` (the base rows' mean plus Gaussian noise with their per-dimension std, seeded),
#: ``zeros``.
INIT_RULES = ("mean", "normal", "zeros")


@dataclass
class ExtendReport:
    """What :func:`extend_model` did.

    Attributes:
        old_rows: input-embedding rows before (``config.vocab_size`` of the base model).
        new_rows: rows after (the registry's ``vocab_size``).
        base_size: rows kept bit-identical (the base tokenizer's ids).
        tied: whether the output head shares the input embedding.
        ranges: ``name -> (start, stop, rule)`` for ``special`` (mmtok's control slots) and each media modality.
        changed: ``False`` when the model already had this registry's layout (nothing was done).
    """

    old_rows: int
    new_rows: int
    base_size: int
    tied: bool
    ranges: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    changed: bool = True

    def __str__(self) -> str:
        head = (f"embeddings {self.old_rows} -> {self.new_rows} rows ({'tied' if self.tied else 'untied'} head); "
                f"rows [0, {self.base_size}) unchanged")
        rows = [f"  {n:<16} [{a}, {b})  {b - a} rows  init={r}" for n, (a, b, r) in self.ranges.items()]
        return "\n".join([head, *rows])


def registry_of(tokenizer: Any) -> VocabRegistry:
    """The registry of a ``MultimodalTokenizer`` (or a registry itself)."""
    reg = getattr(tokenizer, "registry", tokenizer)
    if not isinstance(reg, VocabRegistry):
        raise TypeError(f"expected a MultimodalTokenizer or a VocabRegistry, got {type(tokenizer).__name__}")
    return reg


def _ids(value: Any) -> set[int]:
    if value is None:
        return set()
    return {int(v) for v in value} if isinstance(value, (list, tuple)) else {int(value)}


def _check_model(model: Any, reg: VocabRegistry, rows: int) -> None:
    base = reg.base
    if base is None:
        raise ValueError("extend_model needs a registry laid on the model's own tokenizer: build the text tokenizer "
                         "with TextTokenizer.from_hf(<model folder>) (this registry is mmtok's own layout, whose text "
                         "ids mean nothing to a pretrained model)")
    if rows < base.size:
        raise ValueError(f"the model has {rows} embedding rows but the base tokenizer {base.name or ''} has "
                         f"{base.size} ids: the model belongs to another tokenizer")
    config = model.config
    for attr, control in (("eos_token_id", "<eos>"), ("bos_token_id", "<bos>")):
        want = reg.special_ids[control]
        have = _ids(getattr(config, attr, None))
        if have and want < base.size and want not in have:
            raise ValueError(f"the model's config.{attr} is {sorted(have)} but its tokenizer {base.name or ''} gives "
                             f"{control} id {want}: the model belongs to another tokenizer")
    done = getattr(config, "mmtok_registry_fingerprint", None)
    if done is not None and done != reg.fingerprint:
        raise ValueError(f"the model was already extended to vocabulary {done} ({rows} rows), not this registry's "
                         f"{reg.fingerprint}: extend the base model instead")


def _rule(init: str | dict[str, str], name: str) -> str:
    rule = init.get(name, init.get("default", "mean")) if isinstance(init, dict) else init
    if rule not in INIT_RULES:
        raise ValueError(f"init rule {rule!r} for {name!r} is not one of {list(INIT_RULES)}")
    return rule


def _fill(weight: torch.Tensor, base_size: int, spans: list[tuple[int, int, str]], gen: torch.Generator) -> None:
    old = weight[:base_size].float()
    mean, std = old.mean(0), old.std(0)
    for a, b, rule in spans:
        if rule == "zeros":
            rows = torch.zeros(b - a, weight.shape[1])
        elif rule == "normal":
            rows = mean + std * torch.randn(b - a, weight.shape[1], generator=gen)
        else:
            rows = mean.expand(b - a, -1)
        weight[a:b] = rows.to(device=weight.device, dtype=weight.dtype)


@torch.no_grad()
def extend_model(model: Any, tokenizer: Any, init: str | dict[str, str] = "mean", seed: int = 0) -> ExtendReport:
    """Resizes a ``transformers`` causal LM to ``tokenizer``'s registry, in place.

    Input and output embeddings and ``config.vocab_size`` become ``registry.vocab_size``; rows
    ``[0, base.size)`` (the base tokenizer's ids) stay bit-identical; every other row (mmtok's control
    slots, each media range, the padding, and any unused rows the model had past its tokenizer) is set by
    ``init``: one of :data:`INIT_RULES`, or a dict ``{"special"|<modality>|"default": rule}``. The model's
    ``config.mmtok_registry_fingerprint`` records the layout (extending again with it is a no-op) and
    ``generation_config.pad_token_id`` is set to the registry's ``<pad>`` when missing.

    Args:
        model: an ``AutoModelForCausalLM`` (tied or untied head).
        tokenizer: a :class:`~modalities.multimodal.MultimodalTokenizer` whose text comes from
            ``TextTokenizer.from_hf(<model folder>)``, or its registry.
        init: the rule for new rows (see :data:`INIT_RULES`).
        seed: for the ``normal`` rule.

    Raises:
        ValueError: the registry is not laid on a base vocabulary, the model has fewer rows than the base
            tokenizer has ids, its ``config.eos_token_id``/``bos_token_id`` disagree with the tokenizer's,
            or it was extended before to another layout (each message names both sizes or ids).
    """
    reg = registry_of(tokenizer)
    emb = model.get_input_embeddings()
    rows = int(emb.weight.shape[0])
    _check_model(model, reg, rows)
    base = reg.base
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is emb.weight
    spans = [("special", base.size, reg.special_start + reg.num_special_slots)]
    spans += [(m.name, m.offset, m.stop) for m in reg.modalities if m.offset >= base.size]
    spans.append(("padding", reg.used_size, reg.vocab_size))
    report = ExtendReport(rows, reg.vocab_size, base.size, tied,
                          {n: (a, b, _rule(init, n if n != "padding" else "special")) for n, a, b in spans if b > a})
    if getattr(model.config, "mmtok_registry_fingerprint", None) == reg.fingerprint and rows == reg.vocab_size:
        report.changed = False
        return report
    model.resize_token_embeddings(reg.vocab_size, mean_resizing=False)
    gen = torch.Generator().manual_seed(seed)
    todo = list(report.ranges.values())
    _fill(model.get_input_embeddings().weight, base.size, todo, gen)
    head = model.get_output_embeddings()
    if head is not None and not tied:
        _fill(head.weight, base.size, todo, gen)
        if getattr(head, "bias", None) is not None:  # new logits start at the base's mean bias
            head.bias[base.size:] = head.bias[:base.size].mean()
    model.config.vocab_size = reg.vocab_size
    model.config.mmtok_registry_fingerprint = reg.fingerprint
    gc = getattr(model, "generation_config", None)
    if gc is not None and gc.pad_token_id is None:
        gc.pad_token_id = reg.pad_id
    return report
