"""Forgetting scenarios: determinism, disjointness, the split seed, and class removal from the test set."""

from __future__ import annotations

import numpy as np
import pytest

from unlearning.splits import SplitData, SplitError, make_split


def test_random_split_disjoint_and_complete(digits):
    split = make_split(digits, "random", fraction=0.1, seed=3)

    assert len(np.intersect1d(split.forget_idx, split.retain_idx)) == 0
    assert len(split.forget_idx) + len(split.retain_idx) == len(digits.y_train)
    assert len(split.forget_idx) == round(0.1 * len(digits.y_train))
    assert len(split.test_idx) == len(digits.y_test)


def test_random_split_deterministic(digits):
    first = make_split(digits, "random", fraction=0.2, seed=7)
    second = make_split(digits, "random", fraction=0.2, seed=7)

    assert np.array_equal(first.forget_idx, second.forget_idx)
    assert first.fingerprint() == second.fingerprint()


def test_seed_zero_is_a_real_seed(digits):
    zero = make_split(digits, "random", fraction=0.1, seed=0)
    zero_again = make_split(digits, "random", fraction=0.1, seed=0)
    one = make_split(digits, "random", fraction=0.1, seed=1)

    assert np.array_equal(zero.forget_idx, zero_again.forget_idx)
    assert not np.array_equal(zero.forget_idx, one.forget_idx)


def test_class_split_removes_test_classes(digits):
    split = make_split(digits, "class", classes=[3, 5])

    forget_labels = digits.y_train.numpy()[split.forget_idx]
    retain_labels = digits.y_train.numpy()[split.retain_idx]
    test_labels = digits.y_test.numpy()[split.test_idx]
    assert set(forget_labels.tolist()) == {3, 5}
    assert not np.isin(retain_labels, [3, 5]).any()
    assert not np.isin(test_labels, [3, 5]).any()
    assert len(split.forget_idx) + len(split.retain_idx) == len(digits.y_train)
    assert split.forgotten_classes == (3, 5)


def test_split_data_indexes_tensors(digits, digits_split):
    data = SplitData.from_split(digits, digits_split)

    assert len(data.y_forget) == len(digits_split.forget_idx)
    assert bool((data.y_forget == digits.y_train[digits_split.forget_idx]).all())
    assert data.x_retain.shape[1:] == digits.x_train.shape[1:]


def test_split_save_round_trip(tmp_path, digits_split):
    path = tmp_path / "split.npz"
    digits_split.save(path)

    saved = np.load(path)
    assert np.array_equal(saved["forget_idx"], digits_split.forget_idx)
    assert np.array_equal(saved["retain_idx"], digits_split.retain_idx)


@pytest.mark.parametrize(
    "scenario, options, message",
    [
        ("random", {"fraction": 0.0}, "must be in (0, 1)"),
        ("random", {"fraction": 1.5}, "must be in (0, 1)"),
        ("class", {"classes": []}, "at least one class"),
        ("class", {"classes": [12]}, "do not exist"),
        ("class", {"classes": list(range(10))}, "no training sample to retain"),
        ("subset", {}, "Unknown forgetting scenario 'subset'"),
    ],
)
def test_invalid_split_rejected(digits, scenario, options, message):
    with pytest.raises(SplitError) as error:
        make_split(digits, scenario, **options)
    assert message in str(error.value)
