"""Tests for unlearning.data: the digits split, real MNIST files, and files written in the real on-disk formats."""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearning import data
from unlearning.data import Dataset, DatasetError, available_datasets, load_dataset, register_dataset

IDX_IMAGE_MAGIC = 0x00000803
IDX_LABEL_MAGIC = 0x00000801


# Helpers that write the real on-disk formats


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool = False) -> Path:
    """Write a uint8 array as an IDX file: big-endian magic number, one 32-bit size per dimension, then the bytes."""
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    content = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


def write_mnist(directory: Path, seed: int = 0, compress: bool = False, n_train: int = 50, n_test: int = 20):
    """Write the four MNIST IDX files with random 28x28 images and return the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, array in arrays.items():
        magic = IDX_IMAGE_MAGIC if "images" in file_name else IDX_LABEL_MAGIC
        write_idx(directory / file_name, array, magic, compress=compress)
    return arrays


def write_pickle(path: Path, obj: object) -> None:
    """Pickle with protocol 2, the highest protocol that Python 2 reads."""
    with path.open("wb") as stream:
        pickle.dump(obj, stream, protocol=2)


def cifar_batch(
    rng: np.random.Generator, count: int, label_key: bytes, num_classes: int, batch_label: bytes
) -> dict:
    """Build a batch dict with the keys and value types of the real CIFAR python files."""
    batch = {
        b"batch_label": batch_label,
        label_key: [int(label) for label in rng.integers(0, num_classes, size=count)],
        b"data": rng.integers(0, 256, size=(count, 3072), dtype=np.uint8),
        b"filenames": [f"image_{index}.png".encode("ascii") for index in range(count)],
    }
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [int(label) for label in rng.integers(0, 20, size=count)]
    return batch


def write_cifar10(root: Path, per_batch: int = 4, test_count: int = 5) -> dict[str, dict]:
    """Write a cifar-10-batches-py folder under `root` and return the batches written."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for index in range(1, 6):
        batch_label = f"training batch {index} of 5".encode("ascii")
        batches[f"data_batch_{index}"] = cifar_batch(rng, per_batch, b"labels", 10, batch_label)
    batches["test_batch"] = cifar_batch(rng, test_count, b"labels", 10, b"testing batch 1 of 1")
    for file_name, batch in batches.items():
        write_pickle(folder / file_name, batch)
    return batches


def write_cifar100(root: Path) -> dict[str, dict]:
    """Write a cifar-100-python folder under `root` and return the batches written."""
    rng = np.random.default_rng(2)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = {
        "train": cifar_batch(rng, 12, b"fine_labels", 100, b"training batch 1 of 1"),
        "test": cifar_batch(rng, 6, b"fine_labels", 100, b"testing batch 1 of 1"),
    }
    for file_name, batch in batches.items():
        write_pickle(folder / file_name, batch)
    return batches


def write_npz(path: Path, **overrides: np.ndarray) -> dict[str, np.ndarray]:
    """Write an npz file with 1-channel 6x6 uint8 images, replacing or dropping (value None) arrays by name."""
    rng = np.random.default_rng(3)
    arrays = {
        "x_train": rng.integers(0, 256, size=(10, 6, 6), dtype=np.uint8),
        "y_train": np.arange(10) % 4,
        "x_test": rng.integers(0, 256, size=(5, 6, 6), dtype=np.uint8),
        "y_test": np.arange(5) % 4,
    }
    arrays.update(overrides)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    np.savez(path, **arrays)
    return arrays


class SystemCall:
    """Pickles as a call to os.system, like a malicious data file."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class BytesCall:
    """Pickles as a call to bytes with a size, which would allocate that many bytes."""

    def __reduce__(self):
        return (bytes, (10**9,))


class CodecCall:
    """Pickles as a call to _codecs.encode with a codec other than latin1."""

    def __reduce__(self):
        return (codecs.encode, ("text", "rot13"))


# Registry and options


def test_registry_lists_all_names():
    assert available_datasets() == ["cifar10", "cifar100", "digits", "fashion_mnist", "mnist", "npz"]


def test_load_unknown_name():
    with pytest.raises(DatasetError) as error:
        load_dataset("imagenet")
    assert "'imagenet'" in str(error.value)
    assert "digits" in str(error.value)
    assert "mnist" in str(error.value)


def test_load_unknown_option():
    with pytest.raises(DatasetError) as error:
        load_dataset("digits", test_fractoin=0.3)
    assert "test_fractoin" in str(error.value)
    assert "test_fraction" in str(error.value)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_max_samples_invalid(value):
    with pytest.raises(DatasetError) as error:
        load_dataset("digits", max_train_samples=value)
    assert "max_train_samples" in str(error.value)
    assert repr(value) in str(error.value)


def test_register_custom_loader(monkeypatch):
    monkeypatch.setattr(data, "DATASETS", dict(data.DATASETS))

    @register_dataset("tiny")
    def load_tiny(data_dir, *, max_train_samples=None, max_test_samples=None, scale=1.0):
        images = np.full((4, 1, 2, 2), scale, dtype=np.float32)
        labels = np.array([0, 1, 0, 1])
        return data._build_dataset("tiny", images, labels, images, labels, 2, max_train_samples, max_test_samples)

    dataset = load_dataset("tiny", scale=0.5, max_train_samples=3)
    assert "tiny" in available_datasets()
    assert dataset.x_train.shape == (3, 1, 2, 2)
    assert dataset.mean == (0.5,)


def test_register_duplicate_name(monkeypatch):
    monkeypatch.setattr(data, "DATASETS", dict(data.DATASETS))
    with pytest.raises(ValueError, match="'digits'"):
        register_dataset("digits")(lambda data_dir, **options: None)


# digits


def test_digits_shapes_and_range():
    dataset = load_dataset("digits")
    assert dataset.name == "digits"
    assert dataset.x_train.shape == (1437, 1, 8, 8)
    assert dataset.x_test.shape == (360, 1, 8, 8)
    assert dataset.x_train.dtype == torch.float32
    assert dataset.y_train.dtype == torch.int64
    assert dataset.y_train.shape == (1437,)
    assert float(dataset.x_train.min()) == 0.0
    assert float(dataset.x_train.max()) == 1.0
    assert dataset.num_classes == 10
    assert dataset.input_shape == (1, 8, 8)


def test_digits_is_default():
    assert load_dataset().name == "digits"


def test_digits_split_stratified():
    dataset = load_dataset("digits")
    train_counts = torch.bincount(dataset.y_train, minlength=10)
    test_counts = torch.bincount(dataset.y_test, minlength=10)
    test_share = test_counts.double() / (train_counts + test_counts).double()
    assert torch.all((test_share - 0.2).abs() < 0.01)


def test_digits_split_deterministic():
    first = load_dataset("digits")
    second = load_dataset("digits")
    other_seed = load_dataset("digits", split_seed=1)
    assert torch.equal(first.x_train, second.x_train)
    assert torch.equal(first.y_test, second.y_test)
    assert not torch.equal(first.y_train, other_seed.y_train)


def test_digits_test_fraction():
    dataset = load_dataset("digits", test_fraction=0.5)
    assert len(dataset.x_test) == 899
    assert len(dataset.x_train) == 898


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "0.2"])
def test_digits_test_fraction_invalid(value):
    with pytest.raises(DatasetError, match="test_fraction"):
        load_dataset("digits", test_fraction=value)


def test_digits_ignores_data_dir(tmp_path):
    dataset = load_dataset("digits", tmp_path / "does-not-exist")
    assert dataset.x_train.shape == (1437, 1, 8, 8)


def test_digits_mean_std():
    dataset = load_dataset("digits")
    expected_mean = dataset.x_train.double().mean()
    expected_std = dataset.x_train.double().std(correction=0)
    assert len(dataset.mean) == 1
    assert dataset.mean[0] == pytest.approx(float(expected_mean), rel=1e-5)
    assert dataset.std[0] == pytest.approx(float(expected_std), rel=1e-5)


def test_dataset_frozen():
    dataset = load_dataset("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.name = "other"


def test_dataset_rejects_bad_dtype():
    images = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    labels = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(DatasetError, match="x_train"):
        Dataset("bad", images, labels, images.float(), labels, 1, (0.0,), (1.0,))


# Sample limits and fingerprints


def test_max_samples_keep_first():
    full = load_dataset("digits")
    limited = load_dataset("digits", max_train_samples=100, max_test_samples=30)
    assert torch.equal(limited.x_train, full.x_train[:100])
    assert torch.equal(limited.y_train, full.y_train[:100])
    assert torch.equal(limited.x_test, full.x_test[:30])
    assert torch.equal(limited.y_test, full.y_test[:30])
    assert limited.mean[0] == pytest.approx(float(full.x_train[:100].mean()), rel=1e-5)


def test_max_samples_above_size():
    dataset = load_dataset("digits", max_train_samples=10**6)
    assert len(dataset.x_train) == 1437


def test_fingerprint_stable():
    first = load_dataset("digits").fingerprint()
    second = load_dataset("digits").fingerprint()
    assert first == second
    assert len(first) == 64


def test_fingerprint_cached():
    dataset = load_dataset("digits")
    first = dataset.fingerprint()
    assert dataset.fingerprint() is first


def test_fingerprint_changes_with_data(tmp_path):
    original = write_npz(tmp_path / "a.npz")
    changed_image = original["x_train"].copy()
    changed_image[0, 0, 0] ^= 1
    write_npz(tmp_path / "b.npz", x_train=changed_image)
    write_npz(tmp_path / "c.npz", y_test=(original["y_test"] + 1) % 4)

    reference = load_dataset("npz", tmp_path / "a.npz").fingerprint()
    assert load_dataset("npz", tmp_path / "b.npz").fingerprint() != reference
    assert load_dataset("npz", tmp_path / "c.npz").fingerprint() != reference
    assert load_dataset("npz", tmp_path / "a.npz", max_train_samples=9).fingerprint() != reference


def test_fingerprint_changes_with_split():
    assert load_dataset("digits").fingerprint() != load_dataset("digits", split_seed=1).fingerprint()


# Real MNIST files


def test_mnist_real_files(mnist_path):
    dataset = load_dataset("mnist", mnist_path)

    assert dataset.x_train.shape == (60000, 1, 28, 28)
    assert dataset.x_test.shape == (10000, 1, 28, 28)
    assert dataset.y_test.shape == (10000,)
    assert float(dataset.x_train.min()) == 0.0
    assert float(dataset.x_train.max()) == 1.0
    assert dataset.num_classes == 10
    counts = torch.bincount(dataset.y_train, minlength=10)
    assert int(counts[0]) == 5923
    assert int(counts[1]) == 6742
    assert int(counts.sum()) == 60000
    assert dataset.mean[0] == pytest.approx(0.1307, abs=1e-4)
    assert dataset.std[0] == pytest.approx(0.3081, abs=1e-4)


# IDX files written here


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_mnist_written_files(tmp_path, compress):
    arrays = write_mnist(tmp_path, compress=compress)
    dataset = load_dataset("mnist", tmp_path)
    expected_train = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().div(255).unsqueeze(1)
    assert dataset.x_train.shape == (50, 1, 28, 28)
    assert dataset.x_test.shape == (20, 1, 28, 28)
    assert torch.equal(dataset.x_train, expected_train)
    assert dataset.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert dataset.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_prefers_raw_file(tmp_path):
    raw = write_mnist(tmp_path, seed=0)
    write_idx(tmp_path / "train-labels-idx1-ubyte", (raw["train-labels-idx1-ubyte"] + 1) % 10, IDX_LABEL_MAGIC, True)
    dataset = load_dataset("mnist", tmp_path)
    assert dataset.y_train.tolist() == raw["train-labels-idx1-ubyte"].tolist()


def test_fashion_mnist_written_files(tmp_path):
    arrays = write_mnist(tmp_path, compress=True)
    dataset = load_dataset("fashion_mnist", str(tmp_path))
    assert dataset.name == "fashion_mnist"
    assert dataset.x_train.shape == (50, 1, 28, 28)
    assert dataset.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_requires_data_dir():
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist")
    assert "requires data_dir" in str(error.value)
    assert "train-images-idx3-ubyte" in str(error.value)


def test_mnist_missing_dir(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", missing)
    assert str(missing) in str(error.value)
    assert "was not found" in str(error.value)
    assert "t10k-labels-idx1-ubyte" in str(error.value)


def test_mnist_data_dir_is_file(tmp_path):
    file_path = tmp_path / "mnist.txt"
    file_path.write_text("not a folder")
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", file_path)
    assert str(file_path) in str(error.value)
    assert "not a directory" in str(error.value)


def test_mnist_missing_file(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", tmp_path)
    assert "'t10k-labels-idx1-ubyte[.gz]'" in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_mnist_truncated_file(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(error.value)
    assert "truncated" in str(error.value)


def test_mnist_truncated_header(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:6])
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(error.value)
    assert "header" in str(error.value)


def test_mnist_truncated_gzip(tmp_path):
    write_mnist(tmp_path, compress=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(error.value)


def test_mnist_wrong_magic(tmp_path):
    arrays = write_mnist(tmp_path)
    # A label file written where the image file belongs.
    path = write_idx(tmp_path / "train-images-idx3-ubyte", arrays["train-labels-idx1-ubyte"], IDX_LABEL_MAGIC)
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(error.value)
    assert "0x00000801" in str(error.value)
    assert "0x00000803" in str(error.value)


def test_mnist_count_mismatch(tmp_path):
    arrays = write_mnist(tmp_path)
    short_labels = arrays["train-labels-idx1-ubyte"][:40]
    labels_path = write_idx(tmp_path / "train-labels-idx1-ubyte", short_labels, IDX_LABEL_MAGIC)
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", tmp_path)
    assert str(labels_path) in str(error.value)
    assert "50 images" in str(error.value)
    assert "40 labels" in str(error.value)


def test_mnist_label_out_of_range(tmp_path):
    write_mnist(tmp_path)
    labels = np.full(20, 10, dtype=np.uint8)
    path = write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, IDX_LABEL_MAGIC)
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(error.value)
    assert "0..9" in str(error.value)


# CIFAR pickles written here


def test_cifar10_parent_dir(tmp_path):
    batches = write_cifar10(tmp_path)
    dataset = load_dataset("cifar10", tmp_path)
    assert dataset.x_train.shape == (20, 3, 32, 32)
    assert dataset.x_test.shape == (5, 3, 32, 32)
    assert dataset.num_classes == 10
    assert len(dataset.mean) == 3
    expected_labels = [label for index in range(1, 6) for label in batches[f"data_batch_{index}"][b"labels"]]
    assert dataset.y_train.tolist() == expected_labels
    assert dataset.y_test.tolist() == batches["test_batch"][b"labels"]


def test_cifar10_batch_dir(tmp_path):
    write_cifar10(tmp_path)
    dataset = load_dataset("cifar10", tmp_path / "cifar-10-batches-py")
    assert dataset.x_train.shape == (20, 3, 32, 32)


def test_cifar10_channel_major(tmp_path):
    batches = write_cifar10(tmp_path)
    dataset = load_dataset("cifar10", tmp_path)
    row = batches["test_batch"][b"data"][2]
    # Row layout: 1024 red, then 1024 green, then 1024 blue values, each plane row-major.
    channel, y, x = 1, 5, 7
    assert dataset.x_test[2, channel, y, x].item() == pytest.approx(row[channel * 1024 + y * 32 + x] / 255)
    assert torch.equal(dataset.x_test[2], torch.from_numpy(row.reshape(3, 32, 32)).float() / 255)


def test_cifar100_fine_labels(tmp_path):
    batches = write_cifar100(tmp_path)
    dataset = load_dataset("cifar100", tmp_path)
    assert dataset.x_train.shape == (12, 3, 32, 32)
    assert dataset.x_test.shape == (6, 3, 32, 32)
    assert dataset.num_classes == 100
    assert dataset.y_train.tolist() == batches["train"][b"fine_labels"]


def test_cifar10_numpy1_pickle(tmp_path):
    batches = write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    content = path.read_bytes()
    # numpy before 2.0 names its array module numpy.core.multiarray, so older pickles, such as the real
    # CIFAR files, reference that name.
    path.write_bytes(content.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray" in path.read_bytes()

    dataset = load_dataset("cifar10", tmp_path)
    assert dataset.y_test.tolist() == batches["test_batch"][b"labels"]


def test_cifar_empty_bytes(tmp_path):
    batches = write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    write_pickle(path, {**batches["test_batch"], b"batch_label": b""})
    dataset = load_dataset("cifar10", tmp_path)
    assert dataset.x_test.shape == (5, 3, 32, 32)


def test_cifar_bytes_size_rejected(tmp_path):
    batches = write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    write_pickle(path, {**batches["test_batch"], b"batch_label": BytesCall()})
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(error.value)
    assert "1000000000" in str(error.value)


def test_cifar10_requires_data_dir():
    with pytest.raises(DatasetError, match="requires data_dir"):
        load_dataset("cifar10")


def test_cifar10_missing_batch(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar10", tmp_path)
    assert "'data_batch_3'" in str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in str(error.value)


def test_cifar100_missing_dir(tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar100", missing)
    assert str(missing) in str(error.value)
    assert "cifar-100-python" in str(error.value)


def test_cifar_forbidden_global(tmp_path):
    batches = write_cifar10(tmp_path)
    marker = tmp_path / "marker"
    batch = {**batches["data_batch_2"], b"batch_label": SystemCall(f"touch '{marker}'")}
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    write_pickle(path, batch)

    with pytest.raises(DatasetError) as error:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(error.value)
    assert f"{os.system.__module__}.system" in str(error.value)
    assert not marker.exists()


def test_cifar_codec_rejected(tmp_path):
    batches = write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    write_pickle(path, {**batches["test_batch"], b"batch_label": CodecCall()})
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(error.value)
    assert "rot13" in str(error.value)


def test_cifar_truncated_pickle(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(error.value)


def test_cifar_wrong_image_size(tmp_path):
    batches = write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch = {**batches["test_batch"], b"data": np.zeros((5, 1024), dtype=np.uint8)}
    write_pickle(path, batch)
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(error.value)
    assert "(5, 1024)" in str(error.value)


def test_cifar_missing_labels(tmp_path):
    batches = write_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python" / "test"
    batch = {key: value for key, value in batches["test"].items() if key != b"fine_labels"}
    write_pickle(path, batch)
    with pytest.raises(DatasetError) as error:
        load_dataset("cifar100", tmp_path)
    assert str(path) in str(error.value)
    assert "fine_labels" in str(error.value)


# npz files written here


def npz_layout_images(layout: str, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return images in `layout` and the same images as (N, C, H, W)."""
    channels = 3 if layout.endswith("3") else 1
    nchw = rng.integers(0, 256, size=(count, channels, 5, 7), dtype=np.uint8)
    if layout == "nhw":
        return nchw[:, 0], nchw
    if layout.startswith("nchw"):
        return nchw, nchw
    return nchw.transpose(0, 2, 3, 1).copy(), nchw


@pytest.mark.parametrize("layout", ["nhw", "nchw1", "nchw3", "nhwc1", "nhwc3"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(4)
    x_train, expected_train = npz_layout_images(layout, 8, rng)
    x_test, expected_test = npz_layout_images(layout, 3, rng)
    write_npz(tmp_path / "own.npz", x_train=x_train, y_train=np.arange(8) % 2, x_test=x_test, y_test=np.arange(3) % 2)

    dataset = load_dataset("npz", tmp_path / "own.npz")
    assert dataset.x_train.shape == expected_train.shape
    assert dataset.x_test.shape == expected_test.shape
    assert torch.equal(dataset.x_train, torch.from_numpy(expected_train).float() / 255)
    assert torch.equal(dataset.x_test, torch.from_numpy(expected_test).float() / 255)


def test_npz_float_images_kept(tmp_path):
    images = np.linspace(0, 1, 10 * 36, dtype=np.float64).reshape(10, 6, 6)
    write_npz(tmp_path / "own.npz", x_train=images)
    dataset = load_dataset("npz", tmp_path / "own.npz")
    assert dataset.x_train.dtype == torch.float32
    assert torch.equal(dataset.x_train, torch.from_numpy(images.astype(np.float32)).unsqueeze(1))


def test_npz_num_classes(tmp_path):
    write_npz(tmp_path / "own.npz", y_test=np.array([0, 1, 6, 2, 3]))
    dataset = load_dataset("npz", tmp_path / "own.npz", max_test_samples=2)
    assert dataset.num_classes == 7
    assert dataset.y_test.dtype == torch.int64


def test_npz_column_labels(tmp_path):
    labels = (np.arange(10) % 4).reshape(10, 1).astype(np.uint8)
    write_npz(tmp_path / "own.npz", y_train=labels)
    dataset = load_dataset("npz", tmp_path / "own.npz")
    assert dataset.y_train.tolist() == labels[:, 0].tolist()


def test_npz_folder_with_one_file(tmp_path):
    write_npz(tmp_path / "own.npz")
    dataset = load_dataset("npz", tmp_path)
    assert dataset.x_train.shape == (10, 1, 6, 6)


def test_npz_path_option(tmp_path):
    write_npz(tmp_path / "own.npz")
    write_npz(tmp_path / "other.npz")
    absolute = load_dataset("npz", path=tmp_path / "own.npz")
    relative = load_dataset("npz", tmp_path, path="own.npz")
    assert absolute.x_train.shape == (10, 1, 6, 6)
    assert relative.fingerprint() == absolute.fingerprint()


def test_npz_requires_data_dir():
    with pytest.raises(DatasetError) as error:
        load_dataset("npz")
    assert "requires data_dir" in str(error.value)
    assert "x_train" in str(error.value)


def test_npz_missing_file(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", missing)
    assert str(missing) in str(error.value)
    assert "was not found" in str(error.value)


def test_npz_folder_with_two_files(tmp_path):
    write_npz(tmp_path / "a.npz")
    write_npz(tmp_path / "b.npz")
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", tmp_path)
    assert str(tmp_path) in str(error.value)
    assert "a.npz, b.npz" in str(error.value)


def test_npz_folder_without_file(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", tmp_path)
    assert str(tmp_path) in str(error.value)
    assert "found 0" in str(error.value)


def test_npz_missing_array(tmp_path):
    path = tmp_path / "own.npz"
    write_npz(path, y_test=None)
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)
    assert "y_test" in str(error.value)


def test_npz_object_array(tmp_path):
    path = tmp_path / "own.npz"
    labels = np.empty(10, dtype=object)
    labels[:] = list(range(10))
    np.savez(
        path,
        x_train=np.zeros((10, 6, 6), np.uint8),
        y_train=labels,
        x_test=np.zeros((5, 6, 6), np.uint8),
        y_test=np.zeros(5, int),
    )
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)


def test_npz_npy_file(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, np.zeros((3, 6, 6), np.uint8))
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)
    assert ".npy" in str(error.value)


def test_npz_not_an_archive(tmp_path):
    path = tmp_path / "own.npz"
    path.write_bytes(b"PK\x03\x04 this is no zip archive")
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)


def test_npz_bad_image_shape(tmp_path):
    path = tmp_path / "own.npz"
    write_npz(path, x_train=np.zeros((10, 6, 6, 4), np.uint8))
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)
    assert "(10, 6, 6, 4)" in str(error.value)


def test_npz_bad_image_dtype(tmp_path):
    path = tmp_path / "own.npz"
    write_npz(path, x_train=np.zeros((10, 6, 6), np.int32))
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)
    assert "int32" in str(error.value)


def test_npz_nan_images(tmp_path):
    path = tmp_path / "own.npz"
    images = np.zeros((10, 6, 6), np.float32)
    images[3, 2, 1] = np.nan
    write_npz(path, x_train=images)
    with pytest.raises(DatasetError, match="NaN"):
        load_dataset("npz", path)


def test_npz_negative_labels(tmp_path):
    path = tmp_path / "own.npz"
    write_npz(path, y_train=np.array([0, 1, -1, 2, 0, 1, 2, 3, 0, 1]))
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)
    assert "-1" in str(error.value)


def test_npz_float_labels(tmp_path):
    path = tmp_path / "own.npz"
    write_npz(path, y_train=np.zeros(10, np.float32))
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert "y_train" in str(error.value)
    assert "float32" in str(error.value)


def test_npz_label_count_mismatch(tmp_path):
    path = tmp_path / "own.npz"
    write_npz(path, y_test=np.zeros(4, np.int64))
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert "y_test" in str(error.value)
    assert "(5,)" in str(error.value)


def test_npz_sample_shape_mismatch(tmp_path):
    path = tmp_path / "own.npz"
    write_npz(path, x_test=np.zeros((5, 7, 7), np.uint8))
    with pytest.raises(DatasetError) as error:
        load_dataset("npz", path)
    assert str(path) in str(error.value)
    assert "x_test" in str(error.value)
