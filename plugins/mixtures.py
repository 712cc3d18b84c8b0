"""2-D Gaussian mixtures, the mode-collapse benchmarks of Metz et al. 2017 (Unrolled GANs), VEEGAN (Srivastava
et al. 2017) and PacGAN (Lin et al. 2018), as datasets with their own metrics.

- ``ring-8``: 8 Gaussians with centres evenly spaced on the unit circle, (cos 2 pi k / 8, sin 2 pi k / 8),
  standard deviation 0.01 (PacGAN's configuration; Metz et al. describe radius 2 and std 0.02, the same
  shape at twice the scale).
- ``grid-25``: 25 Gaussians with centres (i, j) for i, j in {-4, -2, 0, 2, 4}, standard deviation 0.05
  (PacGAN and VEEGAN).

Each split is drawn with a fixed seed: 100,000 training points (as PacGAN trains on) and 10,000 test points,
every component equally likely; the label of a point is its component, so conditional GANs can train on it.

Metrics, as VEEGAN and PacGAN define them, of a set of generated points (the bench draws ``num_fake`` of them;
the papers use 2,500): a point is *high quality* when it lies within 3 standard deviations of its nearest
centre (for 2-D isotropic Gaussians 98.9% of real points do); a mode is *covered* when at least one
high-quality point has it as nearest centre; ``mode_kl`` is the KL divergence (natural log) of the histogram of
the high-quality points over the modes from uniform, KL(p || u) = sum_k p_k log(K p_k), which PacGAN reports as
reverse KL (log K, that of a single mode, when no point is high quality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ganzoo import DatasetSpec, hookimpl
from ganzoo.metric_keys import HIGH_QUALITY, MODE_KL, MODES

#: Points per split, drawn with the split's seed.
SPLIT_POINTS = {"train": 100_000, "test": 10_000}
SPLIT_SEEDS = {"train": 0, "test": 1}
#: A generated point within this many standard deviations of its nearest centre is high quality.
HIGH_QUALITY_STDS = 3.0


@dataclass(frozen=True)
class GaussianMixture:
    """Equally weighted isotropic 2-D Gaussians: ``centres`` ``(K, 2)`` and one standard deviation."""

    name: str
    centres: torch.Tensor
    std: float

    @property
    def modes(self) -> int:
        return int(self.centres.shape[0])

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points ``(n, 2)`` float32 and the component each was drawn from ``(n,)`` int64."""
        rng = torch.Generator().manual_seed(seed)
        labels = torch.randint(self.modes, (n,), generator=rng)
        noise = torch.randn(n, 2, generator=rng, dtype=torch.float64) * self.std
        return (self.centres.double()[labels] + noise).float(), labels

    def load(self, root: Path, split: str, download: bool, image_size: int | None) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
        if split not in SPLIT_POINTS:
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        return self.sample(SPLIT_POINTS[split], SPLIT_SEEDS[split])

    def nearest(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each point, its nearest centre's index and the distance to it, in standard deviations."""
        distances = torch.cdist(points.double().flatten(1), self.centres.double())
        closest, index = distances.min(dim=1)
        return index, closest / self.std

    def metrics(self, points: torch.Tensor) -> dict[str, float]:
        """Modes covered, high-quality share and mode KL of generated ``points`` ``(n, 2)`` (see the module)."""
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"{self.name} metrics need points of shape (n, 2), got {tuple(points.shape)}")
        from ganzoo.metrics import histogram_kl

        index, stds = self.nearest(points)
        good = stds <= HIGH_QUALITY_STDS
        counts = torch.bincount(index[good], minlength=self.modes)
        return {MODES: float((counts > 0).sum()), HIGH_QUALITY: float(good.double().mean()),
                MODE_KL: histogram_kl(counts)}


def ring(modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """``modes`` Gaussians evenly spaced on a circle of ``radius``."""
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return GaussianMixture(f"ring-{modes}", torch.stack([radius * angles.cos(), radius * angles.sin()], 1), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """``side`` x ``side`` Gaussians on a square grid centred on the origin, ``spacing`` apart."""
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    centres = torch.cartesian_prod(axis, axis)
    return GaussianMixture(f"grid-{side * side}", centres, std)


MIXTURES = (ring(), grid())


@hookimpl
def register_datasets(register):
    for mixture in MIXTURES:
        register(DatasetSpec(
            mixture.name, mixture.load, image_shape=(2,), offline=True, num_classes=mixture.modes,
            metrics=mixture.metrics,
            description=f"2-D Gaussian mixture, {mixture.modes} modes (std {mixture.std:g}), 100,000 points: "
                        "mode collapse (Metz et al. 2017; VEEGAN; PacGAN); metrics modes, high_quality, mode_kl"))
