"""The small MNIST classifier behind the ``ganzoo-mnist`` feature extractor: :func:`load_classifier` refuses
weights whose sha256 is not :data:`WEIGHTS_SHA256` (retrain with ``benchmarks/train_feature_extractor.py``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanzooError
from .thread_pools import scoring_threads

WEIGHTS_PATH = Path(__file__).parent / "weights" / "mnist_cnn.safetensors"
#: sha256 of ``weights/mnist_cnn.safetensors`` as written by ``benchmarks/train_feature_extractor.py``.
WEIGHTS_SHA256 = "057ded40dbc0abcf981703cbe5d996270ff7f4ebbefcd09519c9c773562fc7bd"
FEATURE_DIM = 128
NUM_CLASSES = 10
#: Identifies :func:`uint8_to_input`; part of the real-statistics cache key. Bump it when that changes.
PREPROCESSING = "ganzoo-mnist-v1:gray601,bilinear-antialias-28,uint8/127.5-1"


class WeightsIntegrityError(GanzooError):
    """A feature-extractor weights file does not have the expected sha256."""


def _block(c_in: int, c_out: int, padding: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class MnistCNN(nn.Module):
    """A compact CNN digit classifier (~140k parameters) without a bias in its last layer."""
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_block(1, 32), *_block(32, 32), nn.MaxPool2d(2),  # 14x14
            *_block(32, 64), *_block(64, 64), nn.MaxPool2d(2),  # 7x7
            *_block(64, FEATURE_DIM, padding=0), nn.AdaptiveAvgPool2d(1), nn.Flatten())  # 5x5, then pooled
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES, bias=False)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(penultimate features (N, 128), logits (N, 10))`` for inputs in ``[-1, 1]``."""
        feats = self.body(x)
        return feats, self.head(self.dropout(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the 10 digit logits for inputs ``(N, 1, 28, 28)`` in ``[-1, 1]``."""
        return self.features(x)[1]


def uint8_to_input(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images ``(N, C, H, W)`` as the classifier's input: float ``(N, 1, 28, 28)`` in [-1, 1]."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images (N, 1|3, H, W), got {images.dtype} {tuple(images.shape)}")
    x = images.float()
    if x.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True)
    if x.shape[-2:] != (28, 28):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return (x / 127.5 - 1.0).clamp_(-1.0, 1.0)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: str | Path, expected_sha256: str = WEIGHTS_SHA256) -> str:
    """Check a weights file's sha256 and return it; raise :class:`WeightsIntegrityError` on a mismatch."""
    path = Path(path)
    if not path.is_file():
        raise WeightsIntegrityError(
            f"ganzoo-mnist classifier weights not found at {str(path)!r}; reinstall ganzoo (the file ships "
            f"with the package) or recreate it with benchmarks/train_feature_extractor.py")
    # a file of another size is refused unread, and no digest of it is shown (a profile may name any file)
    bundled_size = WEIGHTS_PATH.stat().st_size if WEIGHTS_PATH.is_file() else None
    wrong_size = expected_sha256 == WEIGHTS_SHA256 and bundled_size is not None and path.stat().st_size != bundled_size
    actual = None if wrong_size else sha256_file(path)
    if actual != expected_sha256:
        raise WeightsIntegrityError(
            f"{str(path)!r} is not the ganzoo-mnist classifier weights (sha256 {expected_sha256}): the file is "
            f"corrupt, tampered with, another file or not the classifier this ganzoo version was released with. "
            f"Reinstall ganzoo, or retrain with benchmarks/train_feature_extractor.py and update WEIGHTS_SHA256 in "
            f"ganzoo/metrics/classifier.py.")
    return actual  # type: ignore[return-value]


def load_classifier(path: str | Path | None = None, *, expected_sha256: str = WEIGHTS_SHA256) -> MnistCNN:
    """The trained classifier (eval mode, no grad) from ``path`` (default: bundled), its sha256 verified."""
    from safetensors.torch import load_file
    path = Path(path) if path is not None else WEIGHTS_PATH
    verify_weights(path, expected_sha256)
    model = MnistCNN()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()})
    model.requires_grad_(False)
    return model.eval()


@torch.no_grad()
def predict_digits(images: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
    """Digit classes (int64 ``(N,)``) the bundled classifier predicts for ``uint8`` images."""
    model = load_classifier()
    with scoring_threads():
        return torch.cat([model(uint8_to_input(chunk)).argmax(1) for chunk in images.split(batch_size)])
