"""Stacked MNIST (Metz et al. 2017, Unrolled GANs; VEEGAN; PacGAN): three MNIST digits stacked as the channels
of one 28 x 28 image, 1,000 modes (the digit triples), with the modes metric those papers report.

- ``stacked-mnist``: built offline from mnist-5k (its train digits for the train split, its test digits for the
  test split).
- ``stacked-mnist-full``: built from full MNIST (downloaded by torchvision on first use, like ``mnist``).

Each sample draws its three digits independently and uniformly, with replacement, from the split's digits
(PacGAN's construction), with a fixed seed per split: 50,000 training and 10,000 test samples (PacGAN trains on
128,000; fewer fit a CPU's memory and a bench's time here, and still cover every triple about 50 times). The
label of a sample is its triple, ``100 * red + 10 * green + blue``.

Metrics of a set of generated images, as in those papers: the bundled MNIST classifier reads each channel,
``modes`` counts the distinct triples among the samples (of 1,000) and ``mode_kl`` is the KL divergence (natural
log) of the triples' histogram from uniform, KL(p || u) = sum_t p_t log(1000 p_t), what PacGAN's code computes
and its tables call reverse KL. The papers score 26,000 generated images (VEEGAN, PacGAN) or 25,600 (Metz et al.).
"""

from __future__ import annotations

from pathlib import Path

import torch

import ganzoo
from ganzoo import DatasetSpec, hookimpl
from ganzoo.metric_keys import MODE_KL, MODES

SPLIT_SAMPLES = {"train": 50_000, "test": 10_000}
SPLIT_SEEDS = {"train": 0, "test": 1}
MODES_TOTAL = 1000


def stack(digits: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images ``(n, 3, H, W)`` whose channels are digits drawn uniformly with replacement from ``digits``
    ``(N, 1, H, W)``, and their triples ``100 * red + 10 * green + blue``."""
    rng = torch.Generator().manual_seed(seed)
    picks = torch.randint(digits.shape[0], (n, 3), generator=rng)
    images = digits[:, 0][picks]  # (n, 3, H, W)
    triples = labels[picks].long()
    return images.contiguous(), triples[:, 0] * 100 + triples[:, 1] * 10 + triples[:, 2]


def _loader(source: str):
    def load(root: Path, split: str, download: bool, image_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in SPLIT_SAMPLES:
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        mnist = ganzoo.load_dataset(source, split, root=root, download=download)
        return stack(mnist.images, mnist.labels, SPLIT_SAMPLES[split], SPLIT_SEEDS[split])

    return load


def triples(images: torch.Tensor) -> torch.Tensor:
    """The digit triple the bundled MNIST classifier reads in each ``uint8`` image ``(N, 3, 28, 28)``."""
    from ganzoo.metrics import predict_digits

    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"stacked MNIST metrics need uint8 images (N, 3, 28, 28), got {images.dtype} "
                         f"{tuple(images.shape)}")
    digits = predict_digits(images.reshape(-1, 1, *images.shape[2:])).reshape(-1, 3)
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def mode_metrics(images: torch.Tensor) -> dict[str, float]:
    """Modes covered (distinct triples, of 1,000) and KL(histogram || uniform) of generated ``images``."""
    from ganzoo.metrics import histogram_kl

    counts = torch.bincount(triples(images), minlength=MODES_TOTAL)
    return {MODES: float((counts > 0).sum()), MODE_KL: histogram_kl(counts)}


@hookimpl
def register_datasets(register):
    register(DatasetSpec("stacked-mnist", _loader("mnist-5k"), image_shape=(3, 28, 28), offline=True,
                         num_classes=MODES_TOTAL, metrics=mode_metrics,
                         description="Stacked MNIST from mnist-5k: 3 digits as RGB channels, 1,000 modes "
                                     "(Metz et al. 2017); 50,000 train / 10,000 test; metrics modes, mode_kl"))
    register(DatasetSpec("stacked-mnist-full", _loader("mnist"), image_shape=(3, 28, 28), num_classes=MODES_TOTAL,
                         metrics=mode_metrics,
                         description="Stacked MNIST from full MNIST (downloaded): 3 digits as RGB channels, 1,000 "
                                     "modes; 50,000 train / 10,000 test; metrics modes, mode_kl"))
