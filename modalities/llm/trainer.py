"""``transformers.Trainer`` for packed mmtok shards: loss per modality, and training only the new rows.

:class:`PackedTrainer` computes the next-token loss itself (:func:`~modalities.llm.packed.packed_loss`),
so it can log it per modality (``loss_text``, ``loss_image``...) beside the overall ``loss``, and calls the
model without a cache so that ``transformers`` builds the block-diagonal mask from the packed
``position_ids``. :func:`train_new_rows_only` freezes everything but the rows :func:`extend_model` added.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from ..registry import VocabRegistry
from .packed import packed_loss

__all__ = ["PackedTrainer", "last_checkpoint", "train_new_rows_only"]


class PackedTrainer(Trainer):
    """A ``Trainer`` whose batches come from :class:`~modalities.llm.packed.PackedCollator`.

    Args:
        registry: names the modality indices in the logged losses.
        *args, **kwargs: as ``transformers.Trainer``.
    """

    def __init__(self, *args: Any, registry: VocabRegistry, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # the Trainer scales the loss for gradient accumulation
        self._names = {0: "special"} | {m.index: m.name for m in registry.modalities}
        self._sums: dict[int, list[float]] = {}

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        inputs = dict(inputs)
        modality, labels = inputs.pop("modality"), inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        loss, stats = packed_loss(outputs.logits, labels, modality)
        for m, (total, count) in stats.items():
            acc = self._sums.setdefault(m, [0.0, 0])
            acc[0] += total
            acc[1] += count
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs:  # a training log: add the per-modality means since the last one
            for m, (total, count) in sorted(self._sums.items()):
                if count:
                    logs[f"loss_{self._names.get(m, m)}"] = round(total / count, 4)
            self._sums = {}
        super().log(logs, *args, **kwargs)


def train_new_rows_only(model: Any, base_size: int) -> list[torch.nn.Parameter]:
    """Freezes every parameter but the input embedding and output head, and zeroes the gradient of their first
    ``base_size`` rows, so only the rows added by :func:`~modalities.llm.extend_model` learn (use no weight decay:
    AdamW's decay would still shrink the frozen rows). Returns the trainable parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = []
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is None or any(module.weight is p for p in params):
            continue
        module.weight.requires_grad_(True)
        module.weight.register_hook(lambda g: torch.cat([torch.zeros_like(g[:base_size]), g[base_size:]]))
        params.append(module.weight)
    return params


def last_checkpoint(folder: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` in ``folder`` that was written completely (its ``trainer_state.json``, which
    the Trainer writes last, exists); a checkpoint cut short by a kill is skipped."""
    folder = Path(folder)
    done = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
            and (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1])) if done else None
