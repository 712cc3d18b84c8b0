"""Datasets as in-memory tensors, batched by indexing.

A dataset plugin returns ``uint8`` images ``(N, C, H, W)``; ganzoo resizes them if asked, converts them
once to float in ``[-1, 1]`` on the training device, and draws batches by indexing a seeded permutation:
no per-sample Python, no DataLoader for data that fits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .errors import DatasetError, GanzooError, PluginError
from .registry import Registry


@dataclass
class ImageData:
    """Images of one dataset split: ``uint8`` ``(N, C, H, W)`` and optional ``int64`` labels."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor | None
    plugin: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``uint8`` NCHW images to ``size x size`` with antialiased bilinear interpolation."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = []
    for chunk in images.split(1024):
        resized = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True,
                                align_corners=False)
        out.append(resized.round().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def load_images(
    registry: Registry,
    name: str,
    *,
    split: str = "train",
    root: str | Path = "~/.cache/ganzoo/data",
    download: bool = True,
    image_size: int | None = None,
) -> ImageData:
    """Load a registered dataset split and check what its plugin returned."""
    entry = registry.datasets.get(name)
    spec = entry.item
    root = Path(root).expanduser()
    try:
        result = spec.load(root, split, download, image_size)
    except GanzooError:
        raise
    except Exception as exc:
        raise PluginError(entry.plugin, f"dataset {spec.name!r} failed to load: {type(exc).__name__}: {exc}",
                          "register_datasets") from exc
    if not (isinstance(result, tuple) and len(result) == 2):
        raise PluginError(entry.plugin, f"dataset {spec.name!r} load() must return (images, labels)",
                          "register_datasets")
    images, labels = result
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4):
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images)
        raise PluginError(entry.plugin, f"dataset {spec.name!r} must return uint8 images (N, C, H, W), got {got}",
                          "register_datasets")
    if images.shape[0] == 0:
        raise DatasetError(f"dataset {spec.name!r} split {split!r} is empty")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != images.shape[0]):
        raise PluginError(entry.plugin, f"dataset {spec.name!r} labels must have shape ({images.shape[0]},)",
                          "register_datasets")
    if image_size is not None:
        images = resize_uint8(images, image_size)
    return ImageData(spec.name, split, images.contiguous(), labels, entry.plugin)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` in [0, 255] to float32 in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] to ``uint8`` in [0, 255] (clamped)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class TensorBatches:
    """Endless shuffled batches from a tensor held on the training device, with resumable state.

    Each epoch draws a permutation from its own seeded generator and yields ``len // batch_size`` full
    batches (the remainder is dropped, so every step sees the same batch size).
    """

    def __init__(self, data: torch.Tensor, batch_size: int, seed: int) -> None:
        if batch_size > data.shape[0]:
            raise DatasetError(f"batch_size {batch_size} is larger than the dataset ({data.shape[0]} images)")
        self.data = data
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self._perm = self._new_perm()

    def _new_perm(self) -> torch.Tensor:
        return torch.randperm(self.data.shape[0], generator=self.generator).to(self.data.device)

    def next(self) -> torch.Tensor:
        if self.position + self.batch_size > self.data.shape[0]:
            self.epoch += 1
            self.position = 0
            self._perm = self._new_perm()
        index = self._perm[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.data.index_select(0, index)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "perm": self._perm.cpu(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._perm = state["perm"].to(self.data.device)
        self.generator.set_state(state["generator"])
