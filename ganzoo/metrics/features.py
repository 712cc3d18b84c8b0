"""Features of image sets for the metrics, and the real set's features cached as ``.safetensors`` with their sha256
(torch-fidelity's own cache unpickles); an entry that does not check out is recomputed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.utils import get_featuresdict_from_dataset

from ..checkpoint import atomic_write_bytes, tensors_sha256

log = logging.getLogger(__name__)

CACHE_FORMAT = "ganzoo-features-1"
CACHE_SUFFIX = ".safetensors"
BATCH_SIZE = 64  # torch-fidelity's default: features do not depend on it, speed does


class ImageTensorDataset(Dataset):
    """A ``uint8`` ``(N, C, H, W)`` tensor as a Dataset of ``(C, H, W)`` images, optionally gray->RGB."""
    def __init__(self, images: torch.Tensor, rgb: bool) -> None:
        self.images = images
        self.rgb = rgb and images.shape[1] == 1

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[index]
        return image.expand(3, -1, -1).contiguous() if self.rgb else image


def extract_features(extractor: FeatureExtractorBase, images: torch.Tensor, rgb: bool, *, cuda: bool = False,
                     verbose: bool = False) -> dict[str, torch.Tensor]:
    """The features (one ``(N, D)`` tensor per layer the extractor was built for) of ``uint8`` images."""
    return get_featuresdict_from_dataset(ImageTensorDataset(images, rgb), extractor, BATCH_SIZE, cuda,
                                         save_cpu_ram=True, verbose=verbose)


def _read_entry(path: Path, key: str, layers: list[str]) -> dict[str, torch.Tensor] | None:
    """A cache entry that checks out (its key, its layers, the sha256 of its tensors), or ``None``."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        features = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        log.warning("ignoring unreadable metric cache entry %s (%s); recomputing it", path, exc)
        return None
    if meta.get("format") != CACHE_FORMAT or meta.get("key") != key or sorted(features) != sorted(layers):
        log.warning("ignoring metric cache entry %s: it is not the entry for this key; recomputing it", path)
        return None
    if meta.get("sha256") != tensors_sha256(features):
        log.warning("ignoring metric cache entry %s: its content does not match its sha256; recomputing it", path)
        return None
    return features


def real_features(key: str, layers: list[str], compute: Callable[[], dict[str, torch.Tensor]],
                  cache_dir: Path) -> dict[str, torch.Tensor]:
    """The real set's features from ``cache_dir/KEY.safetensors``, else ``compute()``d and stored there."""
    path = Path(cache_dir) / f"{key}{CACHE_SUFFIX}"
    cached = _read_entry(path, key, layers) if path.is_file() else None
    if cached is not None:
        return cached
    features = {name: tensor.contiguous() for name, tensor in compute().items()}
    meta = {"format": CACHE_FORMAT, "key": key, "sha256": tensors_sha256(features)}
    try:
        atomic_write_bytes(path, lambda f: f.write(save(features, metadata=meta)))
    except OSError as exc:
        log.warning("cannot write the metric cache entry %s (%s); scoring without the cache", path, exc.strerror or exc)
    return features
