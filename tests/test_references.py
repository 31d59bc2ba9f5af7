"""Reference models: accuracy on digits, the content-addressed cache, corruption and safe loading."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from unlearning.checkpoints import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from unlearning.references import build_references, reference_key
from unlearning.training import TrainingRecipe, accuracy

SMALL_RECIPE = TrainingRecipe(epochs=2)


def test_original_accuracy_on_digits(digits, digits_references):
    original = digits_references.original()

    assert accuracy(original, digits.x_test, digits.y_test) >= 0.95


def test_retrain_never_sees_forget_set(digits_references):
    original = digits_references.original_state
    retrain = digits_references.retrain_state

    assert any(not torch.equal(original[name], retrain[name]) for name in original)


def test_second_request_is_cache_hit(tmp_path, digits, digits_split, digits_spec):
    first = build_references(digits, digits_split, digits_spec, SMALL_RECIPE, seed=0, cache_dir=tmp_path, device="cpu")
    second = build_references(digits, digits_split, digits_spec, SMALL_RECIPE, seed=0, cache_dir=tmp_path, device="cpu")

    assert first.cache_hit is False
    assert second.cache_hit is True
    assert second.key == first.key
    assert all(torch.equal(first.original_state[name], second.original_state[name]) for name in first.original_state)


def test_key_depends_on_every_input(digits, digits_split, digits_spec):
    base = reference_key(digits, digits_split, digits_spec, SMALL_RECIPE, 0)
    other_split = type(digits_split)("random", 1, digits_split.retain_idx[:10], digits_split.retain_idx[10:], digits_split.test_idx)

    assert reference_key(digits, digits_split, digits_spec, SMALL_RECIPE, 1) != base
    assert reference_key(digits, digits_split, digits_spec, TrainingRecipe(epochs=3), 0) != base
    assert reference_key(digits, other_split, digits_spec, SMALL_RECIPE, 0) != base


def test_corrupted_entry_is_rebuilt(tmp_path, caplog, digits, digits_split, digits_spec):
    first = build_references(digits, digits_split, digits_spec, SMALL_RECIPE, seed=0, cache_dir=tmp_path, device="cpu")
    checkpoint = tmp_path / first.key / "retrain.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-100] + b"\x00" * 100)

    with caplog.at_level(logging.WARNING, logger="unlearning.checkpoints"):
        rebuilt = build_references(digits, digits_split, digits_spec, SMALL_RECIPE, seed=0, cache_dir=tmp_path, device="cpu")

    assert rebuilt.cache_hit is False
    assert "corrupted or was modified" in caplog.text
    assert all(torch.equal(first.retrain_state[name], rebuilt.retrain_state[name]) for name in first.retrain_state)


def test_second_store_of_an_entry_keeps_the_first(tmp_path, digits_references, digits_spec):
    """Two sweeps that build the same references at once both store them; the first rename wins."""
    from unlearning.checkpoints import CheckpointCache

    cache = CheckpointCache(tmp_path)
    states = {"original": digits_references.original_state, "retrain": digits_references.retrain_state}
    cache.store("entry", states, digits_spec, {"run": 1})
    cache.store("entry", states, digits_spec, {"run": 2})

    loaded = cache.load("entry", ("original", "retrain"))
    assert loaded is not None
    assert json.loads((tmp_path / "entry" / "manifest.json").read_text())["metadata"] == {"run": 1}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["entry"]


def test_checkpoint_round_trip(tmp_path, digits_references):
    path = save_checkpoint(tmp_path / "model.pt", digits_references.original(), digits_references.spec, {"note": "x"})

    model, spec, metadata = load_checkpoint(path)

    assert spec == digits_references.spec
    assert metadata == {"note": "x"}
    assert all(torch.equal(model.state_dict()[name], digits_references.original_state[name]) for name in digits_references.original_state)


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled arbitrary code",))


def test_checkpoint_with_objects_rejected(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "rcd-sweep-checkpoint/1", "payload": _Payload()}, path)

    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    assert "could not be read safely" in str(error.value)


def test_foreign_checkpoint_rejected(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, path)

    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    assert "not an rcd-sweep checkpoint" in str(error.value)


def test_missing_checkpoint_rejected(tmp_path):
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(tmp_path / "absent.pt")
    assert "absent.pt" in str(error.value)
