"""Image classification data sets, registered by name and loaded into one immutable container.

`digits` (scikit-learn's bundled 8x8 digits) needs no files. `mnist`, `fashion_mnist`, `cifar10`,
`cifar100` and `npz` read the standard files from a directory or file the caller names. Nothing is
ever downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import logging
import os
import pickle
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np
import torch

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "digits"

_IDX_IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_CIFAR_IMAGE_SIZE = 3 * 32 * 32
_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{index}" for index in range(1, 6))

_NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")

# Keyword arguments that load_dataset passes to every loader itself, so they are not loader options.
_COMMON_ARGUMENTS = ("data_dir", "max_train_samples", "max_test_samples")


class DatasetError(ValueError):
    """Raised for a missing data directory, a missing or malformed file, an unknown name or an invalid option."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test images with integer labels, plus the per-channel statistics of the training images.

    Images are float32 tensors of shape (N, C, H, W) and labels are int64 tensors of shape (N,).
    The dataclass is frozen, but the tensors themselves are mutable. Callers must not modify them in
    place, because `fingerprint()` is computed once and cached.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """Check dtypes and shapes, so every consumer can rely on them."""
        for attribute in ("x_train", "x_test"):
            images = getattr(self, attribute)
            if images.dtype != torch.float32 or images.dim() != 4:
                raise DatasetError(
                    f"Dataset '{self.name}': {attribute} must be a float32 tensor of shape (N, C, H, W), "
                    f"got {images.dtype} with shape {tuple(images.shape)}."
                )

        for attribute in ("y_train", "y_test"):
            labels = getattr(self, attribute)
            if labels.dtype != torch.int64 or labels.dim() != 1:
                raise DatasetError(
                    f"Dataset '{self.name}': {attribute} must be an int64 tensor of shape (N,), "
                    f"got {labels.dtype} with shape {tuple(labels.shape)}."
                )

        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise DatasetError(
                f"Dataset '{self.name}': image and label counts differ "
                f"(train {len(self.x_train)} vs {len(self.y_train)}, test {len(self.x_test)} vs {len(self.y_test)})."
            )

        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DatasetError(
                f"Dataset '{self.name}': training images have shape {tuple(self.x_train.shape[1:])} "
                f"but test images have shape {tuple(self.x_test.shape[1:])}."
            )

        channels = self.x_train.shape[1]
        if len(self.mean) != channels or len(self.std) != channels:
            raise DatasetError(
                f"Dataset '{self.name}': mean and std need one value per channel ({channels}), "
                f"got {len(self.mean)} and {len(self.std)}."
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one image."""
        channels, height, width = self.x_train.shape[1:]
        return (channels, height, width)

    def fingerprint(self) -> str:
        """Return a sha256 hex digest of the name and the four arrays (dtype, shape and bytes).

        The digest is computed on the first call and cached.
        """
        if self._fingerprint is None:
            object.__setattr__(self, "_fingerprint", _hash_arrays(self))
        return self._fingerprint


def _hash_arrays(dataset: Dataset) -> str:
    """Hash the name and each array's dtype, shape and bytes."""
    digest = hashlib.sha256()
    digest.update(dataset.name.encode("utf-8"))

    for attribute in ("x_train", "y_train", "x_test", "y_test"):
        array = np.ascontiguousarray(getattr(dataset, attribute).detach().cpu().numpy())
        digest.update(f"|{attribute}|{array.dtype.str}|{array.shape}|".encode("ascii"))
        digest.update(memoryview(array).cast("B"))

    return digest.hexdigest()


DATASETS: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Register a loader under `name` in DATASETS.

    A loader is called as `loader(data_dir, *, max_train_samples, max_test_samples, **options)`, where
    `data_dir` is a `Path` or None, and returns a `Dataset`. Its other keyword-only parameters are the
    options that `load_dataset` accepts for that name.

    Args:
        name: Registry key. Registering a name twice raises ValueError.
    """

    def decorator(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        if name in DATASETS:
            raise ValueError(f"A data set named '{name}' is already registered.")
        DATASETS[name] = loader
        return loader

    return decorator


def available_datasets() -> list[str]:
    """Return the registered data set names in sorted order."""
    return sorted(DATASETS)


def load_dataset(
    name: str = DEFAULT_DATASET,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    max_train_samples: int | None = None,
    max_test_samples: int | None = None,
    **options: Any,
) -> Dataset:
    """Load a registered data set.

    Args:
        name: Registered name, one of `available_datasets()`. Defaults to "digits".
        data_dir: Folder (for `npz`, a file or folder) that contains the data set's files. `digits` ignores it;
            every other data set requires it.
        max_train_samples: Keep only the first N training samples, in file order, for faster experiments.
            None keeps all. Mean and std are computed over the samples kept.
        max_test_samples: Keep only the first N test samples, in file order. None keeps all.
        **options: Loader-specific options, for example `test_fraction` and `split_seed` for `digits`,
            or `path` for `npz`.

    Raises:
        DatasetError: For an unknown name or option, an invalid sample limit, or a missing or malformed file.
    """
    loader = DATASETS.get(name)
    if loader is None:
        raise DatasetError(f"Unknown data set '{name}'. Available data sets: {', '.join(available_datasets())}.")

    _check_options(name, loader, options)
    _check_max_samples("max_train_samples", max_train_samples)
    _check_max_samples("max_test_samples", max_test_samples)

    directory = Path(data_dir).expanduser() if data_dir is not None else None
    dataset = loader(directory, max_train_samples=max_train_samples, max_test_samples=max_test_samples, **options)

    logger.info(
        "Loaded data set '%s': %d training and %d test samples, input shape %s, %d classes",
        dataset.name,
        len(dataset.x_train),
        len(dataset.x_test),
        dataset.input_shape,
        dataset.num_classes,
    )
    return dataset


def _check_options(name: str, loader: Callable[..., Dataset], options: dict[str, Any]) -> None:
    """Raise DatasetError for options that the loader does not accept."""
    parameters = inspect.signature(loader).parameters.values()

    # A loader that takes **options checks them itself.
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return

    accepted = [
        parameter.name
        for parameter in parameters
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name not in _COMMON_ARGUMENTS
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(
            f"Unknown option(s) {', '.join(unknown)} for data set '{name}'. "
            f"Accepted options: {', '.join(accepted) or 'none'}."
        )


def _check_max_samples(argument: str, value: int | None) -> None:
    """Raise DatasetError unless `value` is None or a positive int."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DatasetError(f"{argument} must be a positive int or None, got {value!r}.")


# Building the container


def _build_dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    max_train_samples: int | None,
    max_test_samples: int | None,
) -> Dataset:
    """Truncate, scale and convert NCHW arrays into a Dataset with per-channel statistics."""
    x_train, y_train = x_train[:max_train_samples], y_train[:max_train_samples]
    x_test, y_test = x_test[:max_test_samples], y_test[:max_test_samples]

    train_images = torch.from_numpy(_scale_images(x_train))
    test_images = torch.from_numpy(_scale_images(x_test))

    # Population statistics (correction=0) over every pixel of each channel.
    std, mean = torch.std_mean(train_images, dim=(0, 2, 3), correction=0)

    return Dataset(
        name=name,
        x_train=train_images,
        y_train=torch.from_numpy(np.array(y_train, dtype=np.int64)),
        x_test=test_images,
        y_test=torch.from_numpy(np.array(y_test, dtype=np.int64)),
        num_classes=int(num_classes),
        mean=tuple(float(value) for value in mean),
        std=tuple(float(value) for value in std),
    )


def _scale_images(images: np.ndarray) -> np.ndarray:
    """Return a contiguous float32 copy, dividing uint8 images by 255 and keeping float values as they are."""
    if images.dtype == np.uint8:
        return np.ascontiguousarray(np.divide(images, np.float32(255), dtype=np.float32))
    return np.array(images, dtype=np.float32, order="C")


# Paths shared by the file-based loaders


def _require_data_dir(name: str, data_dir: Path | None, expected: str) -> Path:
    """Return `data_dir` if it is an existing directory, else raise DatasetError naming the expected files."""
    if data_dir is None:
        raise DatasetError(
            f"Data set '{name}' requires data_dir. Expected {expected}. "
            f"Pass the folder that contains them as data_dir. Nothing is downloaded."
        )
    if not data_dir.exists():
        raise DatasetError(
            f"Data directory '{data_dir}' for '{name}' was not found. Expected {expected}. "
            f"Pass the folder that contains them as data_dir."
        )
    if not data_dir.is_dir():
        raise DatasetError(
            f"Data directory '{data_dir}' for '{name}' is not a directory. Expected {expected}. "
            f"Pass the folder that contains them as data_dir."
        )
    return data_dir


def _missing_file_error(name: str, directory: Path, file_name: str, expected: str) -> DatasetError:
    """Build the error for a required file that is not in `directory`."""
    return DatasetError(
        f"File '{file_name}' for '{name}' was not found in '{directory}'. Expected {expected}. "
        f"Pass the folder that contains them as data_dir."
    )


# MNIST and Fashion-MNIST: IDX files


_IDX_EXPECTED = (
    "the four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])"
)


@register_dataset("mnist")
def _load_mnist(
    data_dir: Path | None, *, max_train_samples: int | None = None, max_test_samples: int | None = None
) -> Dataset:
    """Load MNIST from the four IDX files in `data_dir`."""
    return _load_idx_dataset("mnist", data_dir, max_train_samples, max_test_samples)


@register_dataset("fashion_mnist")
def _load_fashion_mnist(
    data_dir: Path | None, *, max_train_samples: int | None = None, max_test_samples: int | None = None
) -> Dataset:
    """Load Fashion-MNIST, which uses the same IDX file names and format as MNIST, from `data_dir`."""
    return _load_idx_dataset("fashion_mnist", data_dir, max_train_samples, max_test_samples)


def _load_idx_dataset(
    name: str, data_dir: Path | None, max_train_samples: int | None, max_test_samples: int | None
) -> Dataset:
    """Read the train and test IDX image and label files and check that they fit together."""
    directory = _require_data_dir(name, data_dir, _IDX_EXPECTED)
    paths = {key: _find_idx_file(name, directory, file_name) for key, file_name in _IDX_FILES.items()}

    x_train = _read_idx_images(paths["train_images"])
    y_train = _read_idx_labels(paths["train_labels"])
    x_test = _read_idx_images(paths["test_images"])
    y_test = _read_idx_labels(paths["test_labels"])

    _check_idx_counts(paths["train_images"], x_train, paths["train_labels"], y_train)
    _check_idx_counts(paths["test_images"], x_test, paths["test_labels"], y_test)

    return _build_dataset(
        name, x_train[:, None], y_train, x_test[:, None], y_test, 10, max_train_samples, max_test_samples
    )


def _find_idx_file(name: str, directory: Path, file_name: str) -> Path:
    """Return the raw file if it exists, else the `.gz` file, else raise DatasetError."""
    for candidate in (directory / file_name, directory / f"{file_name}.gz"):
        if candidate.is_file():
            return candidate
    raise _missing_file_error(name, directory, f"{file_name}[.gz]", _IDX_EXPECTED)


def _read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX image file into a uint8 array of shape (N, H, W)."""
    return _parse_idx(path, _read_bytes(path), _IDX_IMAGE_MAGIC, "image")


def _read_idx_labels(path: Path) -> np.ndarray:
    """Read an IDX label file into a uint8 array of shape (N,) and check that labels are 0..9."""
    labels = _parse_idx(path, _read_bytes(path), _IDX_LABEL_MAGIC, "label")
    if labels.size and labels.max() > 9:
        raise DatasetError(
            f"IDX file '{path}' is malformed: labels must be in 0..9, found {int(labels.max())}. "
            f"Replace it with an intact copy of the label file."
        )
    return labels


def _read_bytes(path: Path) -> bytes:
    """Return the file's contents, decompressing it when the name ends in `.gz`."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"File '{path}' could not be read: {exc}. Replace it with an intact copy."
        ) from exc


def _parse_idx(path: Path, data: bytes, magic: int, kind: str) -> np.ndarray:
    """Parse a big-endian IDX header (magic number, one 32-bit size per dimension) and its uint8 payload."""
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"IDX file '{path}' is malformed: it has {len(data)} bytes, fewer than the {header_size}-byte "
            f"header of an IDX {kind} file. Replace it with an intact copy."
        )

    found_magic = int.from_bytes(data[:4], "big")
    if found_magic != magic:
        raise DatasetError(
            f"IDX file '{path}' is malformed: magic number 0x{found_magic:08x} does not match 0x{magic:08x}, "
            f"the magic number of an IDX {kind} file (unsigned bytes, {ndim} dimensions). "
            f"Check that the file is the {kind} file it is named after and that it is intact."
        )

    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected_size = int(np.prod(shape, dtype=np.int64))
    payload_size = len(data) - header_size
    if payload_size != expected_size:
        raise DatasetError(
            f"IDX file '{path}' is malformed: its header declares shape {shape}, which is {expected_size} bytes "
            f"of data, but the file has {payload_size}. The file is probably truncated. Replace it with an intact copy."
        )

    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _check_idx_counts(images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray) -> None:
    """Raise DatasetError when an image file and its label file contain different sample counts."""
    if len(images) != len(labels):
        raise DatasetError(
            f"IDX files do not match: '{images_path}' has {len(images)} images but '{labels_path}' "
            f"has {len(labels)} labels. Check that both files come from the same data set and split."
        )


# CIFAR-10 and CIFAR-100: python pickle batches


_CIFAR10_EXPECTED = (
    "the CIFAR-10 python version (data_batch_1 to data_batch_5 and test_batch, "
    "in data_dir or in data_dir/cifar-10-batches-py)"
)
_CIFAR100_EXPECTED = "the CIFAR-100 python version (train and test, in data_dir or in data_dir/cifar-100-python)"


@register_dataset("cifar10")
def _load_cifar10(
    data_dir: Path | None, *, max_train_samples: int | None = None, max_test_samples: int | None = None
) -> Dataset:
    """Load CIFAR-10 from the five training batches and the test batch."""
    directory = _find_cifar_dir("cifar10", data_dir, "cifar-10-batches-py", _CIFAR10_EXPECTED)
    paths = _find_cifar_files("cifar10", directory, (*_CIFAR10_TRAIN_FILES, "test_batch"), _CIFAR10_EXPECTED)

    train_batches = [_read_cifar_batch(paths[file_name], "labels", 10) for file_name in _CIFAR10_TRAIN_FILES]
    x_train = np.concatenate([images for images, _ in train_batches])
    y_train = np.concatenate([labels for _, labels in train_batches])
    x_test, y_test = _read_cifar_batch(paths["test_batch"], "labels", 10)

    return _build_dataset("cifar10", x_train, y_train, x_test, y_test, 10, max_train_samples, max_test_samples)


@register_dataset("cifar100")
def _load_cifar100(
    data_dir: Path | None, *, max_train_samples: int | None = None, max_test_samples: int | None = None
) -> Dataset:
    """Load CIFAR-100 with its 100 fine labels."""
    directory = _find_cifar_dir("cifar100", data_dir, "cifar-100-python", _CIFAR100_EXPECTED)
    paths = _find_cifar_files("cifar100", directory, ("train", "test"), _CIFAR100_EXPECTED)

    x_train, y_train = _read_cifar_batch(paths["train"], "fine_labels", 100)
    x_test, y_test = _read_cifar_batch(paths["test"], "fine_labels", 100)

    return _build_dataset("cifar100", x_train, y_train, x_test, y_test, 100, max_train_samples, max_test_samples)


def _find_cifar_dir(name: str, data_dir: Path | None, subfolder: str, expected: str) -> Path:
    """Return `data_dir/subfolder` if it exists, else `data_dir` itself."""
    directory = _require_data_dir(name, data_dir, expected)
    nested = directory / subfolder
    return nested if nested.is_dir() else directory


def _find_cifar_files(name: str, directory: Path, file_names: tuple[str, ...], expected: str) -> dict[str, Path]:
    """Map each required file name to its path, raising DatasetError for the first one missing."""
    paths = {file_name: directory / file_name for file_name in file_names}
    for file_name, path in paths.items():
        if not path.is_file():
            raise _missing_file_error(name, directory, file_name, expected)
    return paths


def _read_cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled batch into uint8 images of shape (N, 3, 32, 32) and int64 labels."""
    batch = _unpickle(path)
    if not isinstance(batch, dict):
        raise DatasetError(
            f"CIFAR file '{path}' is malformed: expected a pickled dict, got {type(batch).__name__}. "
            f"Replace it with a file from the CIFAR python version."
        )

    images = np.asarray(_get_batch_entry(batch, "data", path))
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != _CIFAR_IMAGE_SIZE:
        raise DatasetError(
            f"CIFAR file '{path}' is malformed: 'data' must be a uint8 array of shape (N, {_CIFAR_IMAGE_SIZE}), "
            f"got {images.dtype} with shape {images.shape}. Replace it with a file from the CIFAR python version."
        )

    labels = np.asarray(_get_batch_entry(batch, label_key, path))
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"CIFAR file '{path}' is malformed: '{label_key}' must contain one integer label per image "
            f"({len(images)}), got {labels.dtype} with shape {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"CIFAR file '{path}' is malformed: '{label_key}' must be in 0..{num_classes - 1}, "
            f"found values from {int(labels.min())} to {int(labels.max())}."
        )

    # Each row stores the red, then green, then blue 32x32 plane in row-major order.
    return images.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _get_batch_entry(batch: dict[Any, Any], key: str, path: Path) -> Any:
    """Return `batch[key]`, accepting the bytes keys of Python 2 pickles and str keys."""
    for candidate in (key.encode("ascii"), key):
        if candidate in batch:
            return batch[candidate]
    raise DatasetError(
        f"CIFAR file '{path}' is malformed: the key '{key}' is missing. "
        f"Replace it with a file from the CIFAR python version."
    )


def _unpickle(path: Path) -> Any:
    """Load a pickle with `_RestrictedUnpickler`, turning every decoding failure into DatasetError."""
    try:
        with path.open("rb") as stream:
            return _RestrictedUnpickler(stream, path).load()
    except DatasetError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        # The pickle documentation lists AttributeError, EOFError, ImportError and IndexError
        # among the errors a malformed pickle can raise, besides UnpicklingError.
        raise DatasetError(
            f"CIFAR file '{path}' could not be unpickled: {exc!r}. Replace it with an intact copy."
        ) from exc


def _numpy_core_multiarray() -> Any:
    """Return numpy's multiarray module, named `numpy._core` since numpy 2.0 and `numpy.core` before."""
    try:
        from numpy._core import multiarray
    except ImportError:
        from numpy.core import multiarray
    return multiarray


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild numpy arrays, bytes and plain containers.

    Pickles can call any importable function while loading, so every other global is rejected before
    anything is called.
    """

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        # The CIFAR files were written by Python 2, whose str objects must load as bytes.
        super().__init__(stream, encoding="bytes")
        self._path = path

        multiarray = _numpy_core_multiarray()
        self._allowed: dict[tuple[str, str], Any] = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy.core.multiarray", "scalar"): multiarray.scalar,
            ("numpy._core.multiarray", "scalar"): multiarray.scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            # Python 3 writes bytes as _codecs.encode(text, "latin1") under pickle protocols 0 to 2,
            # and an empty bytes object as a call to bytes() without arguments.
            ("_codecs", "encode"): self._encode_latin1,
            ("__builtin__", "bytes"): self._empty_bytes,
            ("builtins", "bytes"): self._empty_bytes,
        }

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global, or raise DatasetError naming the file and the rejected global."""
        allowed = self._allowed.get((module, name))
        if allowed is None:
            raise DatasetError(
                f"File '{self._path}' was rejected: its pickle references the global '{module}.{name}', "
                f"which is not needed to load a data batch. Loading it could run arbitrary code. "
                f"Use only data files from a trusted source."
            )
        return allowed

    def _encode_latin1(self, text: str, encoding: str = "latin1") -> bytes:
        """Rebuild a bytes object from its latin-1 text, rejecting every other codec."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise DatasetError(
                f"File '{self._path}' was rejected: its pickle calls _codecs.encode with encoding {encoding!r}, "
                f"but only 'latin1' is used to store bytes. Use only data files from a trusted source."
            )
        return text.encode("latin1")

    def _empty_bytes(self, *args: Any) -> bytes:
        """Return an empty bytes object, rejecting arguments because bytes(n) allocates n bytes."""
        if args:
            raise DatasetError(
                f"File '{self._path}' was rejected: its pickle calls bytes with arguments {args!r}, "
                f"but only bytes() is used to store an empty bytes object. Use only data files from a trusted source."
            )
        return b""


# NumPy archives


_NPZ_EXPECTED = "an .npz file with the arrays x_train, y_train, x_test and y_test"


@register_dataset("npz")
def _load_npz(
    data_dir: Path | None,
    *,
    path: str | os.PathLike[str] | None = None,
    max_train_samples: int | None = None,
    max_test_samples: int | None = None,
) -> Dataset:
    """Load the caller's arrays from an `.npz` file.

    `data_dir` may be the file itself or a folder that contains exactly one `.npz` file. The option
    `path` names the file instead and, when relative, is resolved against `data_dir`. Images may have
    shape (N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3}. When both dims 1 and 3 hold 1 or 3,
    the layout is read as (N, C, H, W). uint8 images are divided by 255 and float images are kept
    as float32. Labels are non-negative integers of shape (N,) or (N, 1), and num_classes is the
    largest label in either split plus one, computed before any truncation.
    """
    archive_path = _find_npz_file(data_dir, path)
    arrays = _read_npz_arrays(archive_path)

    x_train = _to_nchw(archive_path, "x_train", arrays["x_train"])
    x_test = _to_nchw(archive_path, "x_test", arrays["x_test"])
    y_train = _to_labels(archive_path, "y_train", arrays["y_train"], len(x_train))
    y_test = _to_labels(archive_path, "y_test", arrays["y_test"], len(x_test))

    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"NPZ file '{archive_path}' is invalid: x_train images have shape {x_train.shape[1:]} (C, H, W) "
            f"but x_test images have shape {x_test.shape[1:]}."
        )
    if len(x_train) == 0:
        raise DatasetError(f"NPZ file '{archive_path}' is invalid: x_train has no samples.")

    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return _build_dataset("npz", x_train, y_train, x_test, y_test, num_classes, max_train_samples, max_test_samples)


def _find_npz_file(data_dir: Path | None, path: str | os.PathLike[str] | None) -> Path:
    """Resolve `data_dir` and the `path` option to one existing `.npz` file."""
    if path is not None:
        target = Path(path).expanduser()
        if data_dir is not None and not target.is_absolute():
            target = data_dir / target
    elif data_dir is not None:
        target = data_dir
    else:
        raise DatasetError(
            f"Data set 'npz' requires data_dir (or the option path). Expected {_NPZ_EXPECTED}. "
            f"Pass the file, or a folder that contains exactly one .npz file, as data_dir."
        )

    if target.is_file():
        return target
    if not target.exists():
        raise DatasetError(
            f"Path '{target}' for 'npz' was not found. Expected {_NPZ_EXPECTED}. "
            f"Pass the file, or a folder that contains exactly one .npz file, as data_dir."
        )

    candidates = sorted(target.glob("*.npz"))
    if len(candidates) != 1:
        found = ", ".join(candidate.name for candidate in candidates) or "none"
        raise DatasetError(
            f"Folder '{target}' for 'npz' must contain exactly one .npz file, found {len(candidates)} ({found}). "
            f"Pass the file itself as data_dir or with the option path."
        )
    return candidates[0]


def _read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read the four required arrays without allowing pickled objects."""
    # The file is opened here because np.load (numpy 2.4) leaves its own handle open when the zip archive is invalid.
    with path.open("rb") as stream:
        try:
            archive = np.load(stream, allow_pickle=False)
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise DatasetError(
                f"NPZ file '{path}' could not be read: {exc}. "
                f"Expected {_NPZ_EXPECTED}, saved without pickled objects."
            ) from exc

        # np.load returns a bare ndarray for a .npy file.
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DatasetError(f"File '{path}' is a .npy file, not an .npz archive. Expected {_NPZ_EXPECTED}.")

        with archive:
            return _extract_npz_arrays(path, archive)


def _extract_npz_arrays(path: Path, archive: np.lib.npyio.NpzFile) -> dict[str, np.ndarray]:
    """Return the four required arrays from an open archive, raising DatasetError for missing or unreadable ones."""
    missing = [key for key in _NPZ_ARRAYS if key not in archive.files]
    if missing:
        raise DatasetError(
            f"NPZ file '{path}' is missing the array(s) {', '.join(missing)}. "
            f"It contains {', '.join(archive.files) or 'no arrays'}. Expected {_NPZ_EXPECTED}."
        )

    try:
        return {key: archive[key] for key in _NPZ_ARRAYS}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"NPZ file '{path}' could not be read: {exc}. Expected {_NPZ_EXPECTED}, saved without pickled objects."
        ) from exc


def _to_nchw(path: Path, key: str, images: np.ndarray) -> np.ndarray:
    """Return images as (N, C, H, W), checking the dtype and the layout."""
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise DatasetError(
            f"NPZ file '{path}' is invalid: {key} must be uint8 (scaled by 1/255) or float, got {images.dtype}."
        )

    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[1] in (1, 3):
        pass
    elif images.ndim == 4 and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(
            f"NPZ file '{path}' is invalid: {key} has shape {images.shape}. Expected (N, H, W), "
            f"(N, C, H, W) or (N, H, W, C) with C equal to 1 or 3."
        )

    if images.dtype != np.uint8:
        _check_float_images(path, key, images)
    return images


def _check_float_images(path: Path, key: str, images: np.ndarray) -> None:
    """Raise DatasetError for NaN or infinite values, and warn about values outside [0, 1]."""
    if not np.isfinite(images).all():
        raise DatasetError(f"NPZ file '{path}' is invalid: {key} contains NaN or infinite values.")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        logger.warning(
            "NPZ file '%s': %s has values in [%g, %g], outside [0, 1]. They are used as given.",
            path,
            key,
            float(images.min()),
            float(images.max()),
        )


def _to_labels(path: Path, key: str, labels: np.ndarray, count: int) -> np.ndarray:
    """Return labels as int64 of shape (N,), checking dtype, shape, count and sign."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]

    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"NPZ file '{path}' is invalid: {key} must contain integer labels, got {labels.dtype}.")
    if labels.ndim != 1 or len(labels) != count:
        raise DatasetError(
            f"NPZ file '{path}' is invalid: {key} has shape {labels.shape}, expected ({count},) "
            f"to match the number of images."
        )
    if labels.size and labels.min() < 0:
        raise DatasetError(f"NPZ file '{path}' is invalid: {key} contains the negative label {int(labels.min())}.")

    return labels.astype(np.int64)


# scikit-learn digits


@register_dataset("digits")
def _load_digits(
    data_dir: Path | None,
    *,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    max_train_samples: int | None = None,
    max_test_samples: int | None = None,
) -> Dataset:
    """Load scikit-learn's bundled 8x8 digits with a stratified train/test split.

    The 1797 images have values 0..16, which are divided by 16. The data set has no official test
    split, so `test_fraction` of the samples of each class go to the test set, chosen by
    `split_seed`. `data_dir` is ignored because the data ships with scikit-learn.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise DatasetError(f"test_fraction must be a number between 0 and 1 (exclusive), got {test_fraction!r}.")
    if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)):
        raise DatasetError(f"split_seed must be an int, got {split_seed!r}.")
    if data_dir is not None:
        logger.debug("Data set 'digits' ignores data_dir '%s' because scikit-learn bundles the data.", data_dir)

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    labels = digits.target.astype(np.int64)

    try:
        x_train, x_test, y_train, y_test = train_test_split(
            images, labels, test_size=test_fraction, stratify=labels, random_state=int(split_seed)
        )
    except ValueError as exc:
        raise DatasetError(
            f"test_fraction={test_fraction} cannot split the {len(labels)} digits with every class "
            f"in both sets: {exc}"
        ) from exc

    return _build_dataset("digits", x_train, y_train, x_test, y_test, 10, max_train_samples, max_test_samples)
