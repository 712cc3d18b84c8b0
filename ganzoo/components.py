"""What plugins register: generators, discriminators, losses, variants and datasets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset


@dataclass(frozen=True)
class Generator:
    """A generator network: ``build(latent_dim, image_shape, **options) -> nn.Module``."""

    name: str
    build: Callable[..., nn.Module]
    description: str = ""


@dataclass(frozen=True)
class Discriminator:
    """A discriminator (critic): ``build(image_shape, **options) -> nn.Module`` giving one score per sample."""

    name: str
    build: Callable[..., nn.Module]
    description: str = ""


class Loss:
    """The adversarial loss interface a :class:`LossSpec` builds.

    Subclass it (or provide the same methods). Both losses are minimised; each returns a scalar tensor.
    """

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Loss of the discriminator on a real batch and a (detached) fake batch."""
        raise NotImplementedError

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        """Loss of the generator on a fake batch (gradients flow through ``D`` into the generator)."""
        raise NotImplementedError

    def check_discriminator(self, D: nn.Module) -> None:
        """Raise ``ValueError`` if this loss cannot train ``D``. The default accepts every network."""


@dataclass(frozen=True)
class LossSpec:
    """An adversarial loss: ``build(**options) -> Loss``."""

    name: str
    build: Callable[..., Loss]
    description: str = ""


@dataclass(frozen=True)
class Variant:
    """A named recipe: which generator, discriminator and loss, with default hyperparameters."""

    name: str
    generator: str
    discriminator: str
    loss: str
    defaults: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    paper: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: ``load(root, split, download, image_size) -> (images, labels or None)``, the images a
    ``uint8`` tensor NCHW or a ``torch.utils.data.Dataset`` of ``uint8`` CHW items (see the hookspec).

    ``image_shape`` is the shape of one sample at the dataset's native size, ``(C, H, W)``; ``None`` when it
    is only known after loading (an image folder).
    """

    name: str
    load: Callable[[Path, str, bool, int | None], tuple[torch.Tensor | Dataset, torch.Tensor | None]]
    image_shape: tuple[int, int, int] | None = None
    description: str = ""
    offline: bool = False
