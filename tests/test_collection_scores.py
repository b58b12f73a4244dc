"""Held-out scores per collection: the overall mean, and each collection's beside it from the same clips."""

from __future__ import annotations

import pytest

from modalities.eval.collection_scores import by_collection, collection_means


def test_by_collection_groups_in_name_order_and_needs_two_names():
    assert by_collection(["a", "b", "c"], ["y", "x", "y"]) == {"x": ["b"], "y": ["a", "c"]}
    assert by_collection(["a", "b"], ["x", "x"]) == {} and by_collection(["a"], None) == {}
    with pytest.raises(ValueError, match="2 collection names for 3 items"):
        by_collection(["a", "b", "c"], ["x", "y"])


def test_collection_means_weigh_every_clip_once():
    rows = [{"pesq": 1.0, "stoi": 0.5}, {"pesq": 2.0, "stoi": 0.7}, {"pesq": 4.0, "stoi": 0.9}]
    m = collection_means(rows, ["voices", "synth", "voices"], "heldout_")
    assert m == pytest.approx({"heldout_pesq": 7 / 3, "heldout_stoi": 0.7, "heldout_synth_clips": 1,
                               "heldout_synth_pesq": 2.0, "heldout_synth_stoi": 0.7, "heldout_voices_clips": 2,
                               "heldout_voices_pesq": 2.5, "heldout_voices_stoi": 0.7})
    assert collection_means(rows, None, "val_", ndigits=2) == {"val_pesq": 2.33, "val_stoi": 0.7}
    with pytest.raises(ValueError, match="no scores"):
        collection_means([], None, "val_")
