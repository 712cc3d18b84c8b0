"""Training data: in-memory tensors batched by indexing (:class:`TensorBatches`), or streamed by DataLoader
workers in the same seeded order (:class:`LoaderBatches`), so the choice never changes the trajectory. Dataset
plugins return ``uint8`` images as one tensor or a lazy ``Dataset``; batches are ``(images, labels)`` pairs."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from .errors import ConfigError, DatasetError, GanzooError, PluginError, UsageError
from .registry import Registry


@dataclass
class ImageData:
    """One dataset split: ``uint8`` images ``(N, C, H, W)`` (a tensor, or a lazy Dataset of ``(C, H, W)`` items)
    or float32 samples ``(N, *shape)`` (:attr:`is_image`), and optional ``int64`` labels."""
    name: str
    split: str
    images: torch.Tensor | Dataset
    labels: torch.Tensor | None
    plugin: str
    image_size: int | None = None  # a lazy dataset's items are resized to this (if they differ) when read
    classes: int | None = None  # what the dataset plugin registered as num_classes

    @property
    def num_classes(self) -> int | None:
        """How many classes the labels index: the registered number, else the largest label + 1 (or ``None``)."""
        if self.labels is None:
            return None
        return self.classes if self.classes is not None else int(self.labels.max()) + 1

    def class_frequencies(self) -> torch.Tensor | None:
        """The share of each class among the labels, ``float64`` ``(num_classes,)``; ``None`` without labels."""
        if self.labels is None:
            return None
        counts = torch.bincount(self.labels.long(), minlength=self.num_classes).double()
        return counts / counts.sum()

    @property
    def is_image(self) -> bool:
        """Whether the samples are images (``uint8``); else float samples in the dataset's own coordinates."""
        return not (self.in_memory and self.images.is_floating_point())  # type: ignore[union-attr]

    @property
    def in_memory(self) -> bool:
        """Whether the images are one tensor (rather than a Dataset read item by item)."""
        return isinstance(self.images, torch.Tensor)

    def __len__(self) -> int:
        return len(self.images)  # type: ignore[arg-type]

    @functools.cached_property
    def image_shape(self) -> tuple[int, ...]:
        """One sample's shape: ``(C, H, W)`` for images (a lazy dataset's at ``image_size``), ``(2,)`` for points."""
        if self.in_memory:
            return tuple(self.images.shape[1:])  # type: ignore[union-attr, return-value]
        shape = tuple(_item_image(self.images[0]).shape)  # type: ignore[index]
        return shape if self.image_size is None else (shape[0], self.image_size, self.image_size)

    def float32_bytes(self) -> int:
        """Bytes of the float32 copy training would hold in memory."""
        return len(self) * math.prod(self.image_shape) * 4

    def tensor(self, workers: int = 0, progress: bool = False, limit: int | None = None) -> torch.Tensor:
        """The (first ``limit``) images as one ``uint8`` tensor, a lazy dataset read by ``workers`` processes."""
        if self.in_memory:
            return self.images[:limit] if limit is not None else self.images  # type: ignore[index,return-value]
        count = len(self) if limit is None else min(limit, len(self))
        out = torch.empty((count, *self.image_shape), dtype=torch.uint8)
        loader = DataLoader(self.images, batch_size=256, sampler=range(count),  # type: ignore[arg-type]
                            num_workers=workers, collate_fn=_CheckedCollate(self), generator=torch.Generator())
        done = 0
        with tqdm(total=count, desc=f"reading {self.name}", unit="img", disable=not progress, leave=False) as bar:
            for batch in loader:
                out[done : done + batch.shape[0]] = batch
                done += batch.shape[0]
                bar.update(batch.shape[0])
        return out


def _dataset_error(plugin: str, name: str, problem: str) -> PluginError:
    return PluginError(plugin, f"dataset {name!r} {problem}", "register_datasets")


class _CheckedCollate:
    """Stack ``uint8`` ``(C, H, W)`` items into a batch (resized if asked), in the DataLoader workers."""
    def __init__(self, data: ImageData) -> None:
        self.name, self.plugin, self.image_size = data.name, data.plugin, data.image_size

    def __call__(self, items: list[Any]) -> torch.Tensor:
        items = [_item_image(item) for item in items]
        first = items[0]
        if not (isinstance(first, torch.Tensor) and first.dtype == torch.uint8 and first.ndim == 3):
            got = f"{first.dtype} {tuple(first.shape)}" if isinstance(first, torch.Tensor) else type(first).__name__
            raise _dataset_error(self.plugin, self.name, f"items must be uint8 tensors (C, H, W), got {got}")
        batch = torch.stack(items)
        return batch if self.image_size is None else resize_uint8(batch, self.image_size)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``uint8`` NCHW images to ``size x size`` with antialiased bilinear interpolation."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.cat([F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True,
                                    align_corners=False).round().clamp_(0, 255).to(torch.uint8)
                      for chunk in images.split(1024)])


def load_images(registry: Registry, name: str, *, split: str = "train", root: str | Path = "~/.cache/ganzoo/data",
                download: bool = True, image_size: int | None = None) -> ImageData:
    """Load a registered dataset split and check what its plugin returned."""
    entry = registry.datasets.get(name)
    spec = entry.item
    try:
        result = spec.load(Path(root).expanduser(), split, download, image_size)
    except GanzooError:
        raise
    except Exception as exc:
        raise _dataset_error(entry.plugin, spec.name, f"failed to load: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise _dataset_error(entry.plugin, spec.name, "load() must return (images, labels)")
    images, labels = result
    if isinstance(images, Dataset) and not isinstance(images, torch.Tensor):
        return _lazy_image_data(spec.name, split, images, labels, entry.plugin, image_size, spec.num_classes)
    vectors = isinstance(images, torch.Tensor) and images.is_floating_point() and images.ndim >= 2
    if not (vectors or (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4)):
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images)
        raise _dataset_error(entry.plugin, spec.name, "must return uint8 images (N, C, H, W), a Dataset of uint8 "
                             f"(C, H, W) items, or float samples (N, *shape), got {got}")
    if vectors and not torch.isfinite(images).all():
        raise _dataset_error(entry.plugin, spec.name, "returned samples that are not all finite")
    if images.shape[0] == 0:
        raise DatasetError(f"dataset {spec.name!r} split {split!r} is empty")
    _check_labels(entry.plugin, spec.name, labels, images.shape[0], spec.num_classes)
    if vectors:
        if image_size is not None:
            raise UsageError(f"dataset {spec.name!r} holds samples of shape {tuple(images.shape[1:])}, not images: "
                             "image_size does not apply; leave it unset")
        images = images.float()
    elif image_size is not None:
        images = resize_uint8(images, image_size)
    return ImageData(spec.name, split, images.contiguous(), labels, entry.plugin, classes=spec.num_classes)


def _check_labels(plugin: str, name: str, labels: Any, count: int, num_classes: int | None = None) -> None:
    if labels is None:
        return
    if (not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.shape[0] != count
            or labels.dtype.is_floating_point or labels.dtype == torch.bool):
        raise _dataset_error(plugin, name, f"labels must be an integer tensor of shape ({count},) or None")
    if count and (int(labels.min()) < 0 or (num_classes is not None and int(labels.max()) >= num_classes)):
        raise _dataset_error(plugin, name, f"labels must lie in [0, {num_classes or 'num_classes'}), got "
                             f"{int(labels.min())}..{int(labels.max())}")


def _lazy_image_data(name: str, split: str, dataset: Dataset, labels: Any, plugin: str, image_size: int | None,
                     classes: int | None) -> ImageData:
    try:
        count = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise _dataset_error(plugin, name, "returned a Dataset without __len__; ganzoo needs a map-style "
                             "Dataset") from None
    if count == 0:
        raise DatasetError(f"dataset {name!r} split {split!r} is empty")
    _check_labels(plugin, name, labels, count)
    data = ImageData(name, split, dataset, labels, plugin, image_size, classes)  # items of that size stay as read
    try:
        first = dataset[0]
    except Exception as exc:
        raise _dataset_error(plugin, name, f"failed to read item 0: {type(exc).__name__}: {exc}") from exc
    _CheckedCollate(data)([first])  # the same check every streamed batch gets
    return data


def _item_image(item: Any) -> torch.Tensor:
    return item[0] if isinstance(item, (tuple, list)) else item


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` in [0, 255] to float32 in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] to ``uint8`` in [0, 255] (clamped)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class BatchOrder:
    """The seeded, resumable order of training batches, the same on every rank (each takes its slice)."""
    def __init__(self, count: int, batch_size: int, seed: int, world_size: int = 1, rank: int = 0) -> None:
        if batch_size * world_size > count:
            raise DatasetError(f"batch_size {batch_size} x {world_size} process(es) is larger than the dataset "
                               f"({count} images)")
        self.count, self.batch_size, self.world_size, self.rank = count, batch_size, world_size, rank
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.position = 0, 0
        self.perm = torch.randperm(count, generator=self.generator)

    def next(self) -> slice:
        """This rank's part of the next batch, as a slice of :attr:`perm` (which changes with the epoch)."""
        span = self.batch_size * self.world_size
        if self.position + span > self.count:
            self.epoch, self.position = self.epoch + 1, 0
            self.perm = torch.randperm(self.count, generator=self.generator)
        start = self.position + self.rank * self.batch_size
        self.position += span
        return slice(start, start + self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "perm": self.perm.clone(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.perm = state["perm"].cpu()
        self.generator.set_state(state["generator"])

    def copy(self) -> BatchOrder:
        """An independent order at the same place (advancing one does not advance the other)."""
        twin = copy.copy(self)
        twin.generator = torch.Generator()
        twin.load_state_dict(self.state_dict())
        return twin


class TensorBatches:
    """Endless batches indexed from a tensor held on the training device (see :class:`BatchOrder`)."""
    def __init__(self, data: torch.Tensor, batch_size: int, seed: int, world_size: int = 1, rank: int = 0,
                 labels: torch.Tensor | None = None) -> None:
        self.data = data
        self.labels = labels.to(data.device, torch.int64) if labels is not None else None
        self.order = BatchOrder(data.shape[0], batch_size, seed, world_size, rank)
        self._epoch, self._perm = -1, torch.empty(0)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's next ``(images, labels)``; ``labels`` is ``None`` for unlabelled data."""
        part = self.order.next()
        if self._epoch != self.order.epoch:  # one host-to-device copy of the permutation per epoch
            self._epoch, self._perm = self.order.epoch, self.order.perm.to(self.data.device)
        index = self._perm[part]
        labels = self.labels.index_select(0, index) if self.labels is not None else None
        return self.data.index_select(0, index), labels

    def state_dict(self) -> dict[str, Any]:
        return self.order.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.load_state_dict(state)
        self._epoch = -1

    def close(self) -> None:
        """Nothing to release (the streamed counterpart stops its workers)."""


class _Labelled(Dataset):
    """A dataset's images paired with the labels the plugin returned beside them: ``(image, label)`` items."""
    def __init__(self, images: Dataset, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        return _item_image(self.images[index]), self.labels[index]


class _PairCollate:
    """Stack a batch of ``(image, label)`` items into ``(images, labels)`` (labels ``None`` when unlabelled)."""
    def __init__(self, images: _CheckedCollate, labelled: bool) -> None:
        self.images, self.labelled = images, labelled

    def __call__(self, items: list[Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        labels = torch.stack([torch.as_tensor(item[1]) for item in items]).long() if self.labelled else None
        return self.images(items), labels


def _order_batches(order: BatchOrder) -> Iterator[list[int]]:
    """This rank's batches of ``order`` (a copy of the one consumed), endlessly: a DataLoader's batch sampler."""
    while True:
        part = order.next()
        yield order.perm[part].tolist()


class LoaderBatches:
    """Endless batches streamed by DataLoader workers in the order of a :class:`BatchOrder` (the batches of
    :class:`TensorBatches`), converted on the device; the saved order is the one consumed, not read ahead."""
    def __init__(self, data: ImageData, batch_size: int, seed: int, device: torch.device, *, workers: int = 2,
                 world_size: int = 1, rank: int = 0, channels_last: bool = False) -> None:
        # data held on the host is streamed as (image,) items, which the collate unpacks like (image, label) pairs
        images = TensorDataset(data.images) if data.in_memory else data.images  # type: ignore[arg-type]
        self.dataset = _Labelled(images, data.labels) if data.labels is not None else images
        self.collate = _PairCollate(_CheckedCollate(data), labelled=data.labels is not None)
        self.device, self.workers, self.channels_last = device, workers, channels_last
        self.pin_memory = device.type == "cuda"
        self.order = BatchOrder(len(data), batch_size, seed, world_size, rank)
        self._batches: Iterator[tuple[torch.Tensor, torch.Tensor | None]] | None = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's next ``(images, labels)``; ``labels`` is ``None`` for unlabelled data."""
        if self._batches is None:  # its own generator: starting workers must not draw from the global RNG stream
            self._batches = iter(DataLoader(self.dataset, batch_sampler=_order_batches(self.order.copy()),
                                            num_workers=self.workers, collate_fn=self.collate,
                                            pin_memory=self.pin_memory, prefetch_factor=4 if self.workers else None,
                                            generator=torch.Generator().manual_seed(self.order.epoch)))
        try:
            batch, labels = next(self._batches)
        except PluginError:
            raise
        except Exception as exc:  # from a worker, which PyTorch re-raises with the worker's traceback
            raise _dataset_error(self.collate.images.plugin, self.collate.images.name, "failed while streaming a "
                                 f"batch: {type(exc).__name__}: {exc}") from exc
        self.order.next()  # keep the consumed order in step with what the loader delivered
        batch = to_model_range(batch.to(self.device, non_blocking=self.pin_memory))
        labels = labels.to(self.device, non_blocking=self.pin_memory) if labels is not None else None
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch, labels

    def state_dict(self) -> dict[str, Any]:
        return self.order.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.close()
        self.order.load_state_dict(state)

    def close(self) -> None:
        """Stop the worker processes (a later :meth:`next` starts them again)."""
        self._batches = None


def make_batches(data: ImageData, batch_size: int, seed: int, device: torch.device, *, mode: str = "auto",
                 workers: int = 2, memory_limit_gb: float = 4.0, world_size: int = 1, rank: int = 0,
                 channels_last: bool = False, progress: bool = False) -> TensorBatches | LoaderBatches:
    """The batch source for ``data``: in memory (``'memory'``, or ``'auto'`` if it fits) or streamed."""
    if mode not in ("auto", "memory", "stream"):
        raise ConfigError(f"data_loading must be 'auto', 'memory' or 'stream', not {mode!r}")
    if not data.is_image:  # float samples are small and already in the model's coordinates
        if mode == "stream":
            raise ConfigError(f"data_loading: 'stream' reads image files in worker processes; dataset "
                              f"{data.name!r} holds float samples, which train from memory: use 'auto' or 'memory'")
        return TensorBatches(data.images.to(device), batch_size, seed, world_size, rank,  # type: ignore[union-attr]
                             labels=data.labels)
    if mode == "auto":
        mode = "memory" if data.float32_bytes() <= memory_limit_gb * 1e9 else "stream"
    if mode == "stream":
        return LoaderBatches(data, batch_size, seed, device, workers=workers, world_size=world_size, rank=rank,
                             channels_last=channels_last)
    images = to_model_range(data.tensor(workers=workers, progress=progress)).to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return TensorBatches(images, batch_size, seed, world_size, rank, labels=data.labels)
