"""``PackedShards`` and ``PackedCollator``: every id once per epoch, positions restart per document, labels masked
as asked, and the packed forward pass equals documents run one by one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from modalities.llm import IGNORE, PackedCollator, PackedShards, extend_model, packed_loss
from modalities.shards import ShardReader

from .llm_setup import base_mm, base_tokens, hf_dirs, llama_dir  # noqa: F401


@pytest.mark.parametrize("seq_len", [7, 64, 100000])
def test_every_id_once_and_positions_restart(base_tokens, seq_len):  # noqa: F811
    data = PackedShards(base_tokens, seq_len)
    reader = ShardReader(base_tokens)
    docs = [np.asarray(reader[i], dtype=np.int64) for i in range(len(reader))]
    flat = np.concatenate(docs)
    items = [data[i] for i in range(len(data))]
    assert all(len(it["input_ids"]) == seq_len for it in items[:-1]) and 0 < len(items[-1]["input_ids"]) <= seq_len
    assert np.array_equal(torch.cat([it["input_ids"] for it in items]).numpy(), flat)
    starts = np.cumsum([0] + [len(d) for d in docs[:-1]])
    pos = torch.cat([it["position_ids"] for it in items]).numpy()
    is_start = np.zeros(len(flat), bool)
    is_start[starts] = True
    is_start[np.arange(0, len(flat), seq_len)] = True  # each sequence starts afresh too
    assert np.array_equal(pos == 0, is_start)
    assert np.array_equal(np.diff(pos)[~is_start[1:]], np.ones(int((~is_start[1:]).sum())))
    labels = torch.cat([it["labels"] for it in items]).numpy()
    assert np.array_equal(labels == IGNORE, is_start)  # no loss where nothing precedes in the document


@pytest.mark.parametrize("loss_on", ["text", "image", ["text", "special"]])
def test_labels_masked_by_modality(base_tokens, base_mm, loss_on):  # noqa: F811
    data = PackedShards(base_tokens, 64, loss_on=loss_on, registry=base_mm.registry)
    names = [loss_on] if isinstance(loss_on, str) else loss_on
    keep = {0 if n == "special" else base_mm.registry.modality(n).index for n in names}
    for i in range(len(data)):
        it = data[i]
        allowed = torch.tensor([int(m) in keep for m in it["modality"]]) & (it["position_ids"] != 0)
        assert torch.equal(it["labels"] != IGNORE, allowed)
        assert torch.equal(it["labels"][allowed], it["input_ids"][allowed])


def test_bad_arguments(base_tokens, tmp_path, hf_dirs):  # noqa: F811
    with pytest.raises(ValueError, match="seq_len must be an int >= 2"):
        PackedShards(base_tokens, 1)
    with pytest.raises(ValueError, match="loss_on names 'video'"):
        PackedShards(base_tokens, 8, loss_on="video")
    with pytest.raises(FileNotFoundError, match="registry.json is missing"):
        PackedShards(tmp_path, 8)
    from modalities import VocabRegistry

    with pytest.raises(ValueError, match="was tokenised with vocabulary .* not .*own layout"):
        PackedShards(base_tokens, 8, registry=VocabRegistry())


@pytest.mark.parametrize("flatten", [True, False])
def test_packed_forward_equals_documents_alone(base_tokens, base_mm, llama_dir, flatten):  # noqa: F811
    model = AutoModelForCausalLM.from_pretrained(llama_dir).eval()
    extend_model(model, base_mm)
    data = PackedShards(base_tokens, 96)
    batch = PackedCollator(base_mm.registry.pad_id, flatten=flatten)([data[0], data[len(data) - 1]])
    if flatten:
        assert batch["input_ids"].shape == (1, 96 + len(data[len(data) - 1]["input_ids"]))
    else:
        assert batch["input_ids"].shape == (2, 96) and (batch["labels"][1, len(data[len(data) - 1]["input_ids"]):]
                                                        == IGNORE).all()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        row, pos = batch["input_ids"][0], batch["position_ids"][0]
        starts = (pos == 0).nonzero().flatten().tolist() + [len(pos)]
        for a, b in zip(starts[:-1], starts[1:], strict=True):  # each document piece run alone
            alone = model(input_ids=row[a:b][None], use_cache=False).logits[0]
            assert torch.allclose(logits[0, a:b], alone, atol=1e-4), (a, b)
    loss, stats = packed_loss(logits, batch["labels"], batch["modality"])
    total = sum(s for s, _ in stats.values()) / sum(c for _, c in stats.values())
    assert abs(float(loss) - total) < 1e-4 and set(stats) >= {1, 2}  # text and image targets
