"""Vanilla GAN (Goodfellow et al., 2014), as in the original MNIST example.

Generator: MLP z(100) -> 128 -> 256 -> prod(image_shape), LeakyReLU(0.2), tanh output (linear for non-image
samples such as 2-D points). Discriminator: MLP prod(image_shape) -> 256 -> 128 -> 1, LeakyReLU(0.2), one logit
per sample. Both also build for non-image data (``vectors=True``).
Loss ``gan``: L_D = -E[log D(x)] - E[log(1 - D(G(z)))]; the generator minimises the non-saturating
L_G = -E[log D(G(z))] by default, or the original minimax L_G = E[log(1 - D(G(z)))] with
``loss_options: {generator_loss: minimax}``. Everything is computed from logits with softplus:
-log sigmoid(t) = softplus(-t) and -log(1 - sigmoid(t)) = softplus(t).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import Discriminator, Generator, Loss, LossSpec, Variant, hookimpl, score_pair


class MLPGenerator(nn.Module):
    """z -> 128 -> 256 -> prod(sample shape), LeakyReLU(0.2) between layers; a tanh output for images (pixels
    in [-1, 1]), a linear one for other samples (2-D points, in their dataset's coordinates)."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, ...], hidden: tuple[int, ...] = (128, 256)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers += [nn.Linear(width, math.prod(image_shape)), nn.Tanh() if len(image_shape) == 3 else nn.Identity()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """prod(sample shape) -> 256 -> 128 -> 1, LeakyReLU(0.2), one logit per sample."""

    def __init__(self, image_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 128)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class GANLoss(Loss):
    """The original GAN loss, from logits. ``generator_loss``: 'non-saturating' (default) or 'minimax'.

    Takes labels, so it also trains conditional (projection) discriminators."""

    def __init__(self, generator_loss: str = "non-saturating") -> None:
        if generator_loss not in ("non-saturating", "minimax"):
            raise ValueError(f"generator_loss must be 'non-saturating' or 'minimax', not {generator_loss!r}")
        self.minimax = generator_loss == "minimax"

    def discriminator_loss(self, D, real: torch.Tensor, fake: torch.Tensor, real_labels: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        # -E[log D(x)] - E[log(1 - D(G(z)))]
        d_real, d_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def generator_loss(self, D, fake: torch.Tensor, fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = D(fake, fake_labels)
        if self.minimax:
            return -F.softplus(logits).mean()  # E[log(1 - D(G(z)))]
        return F.softplus(-logits).mean()  # -E[log D(G(z))]


@hookimpl
def register_generators(register):
    register(Generator("mlp", MLPGenerator, "MLP z -> 128 -> 256 -> image, LeakyReLU, tanh (Goodfellow 2014); "
                       "also 2-D points and other vectors (linear output)", vectors=True))


@hookimpl
def register_discriminators(register):
    register(Discriminator("mlp", MLPDiscriminator, "MLP image -> 256 -> 128 -> 1, LeakyReLU (Goodfellow 2014); "
                           "also 2-D points and other vectors", vectors=True))


@hookimpl
def register_losses(register):
    register(LossSpec("gan", GANLoss, "Original GAN loss from logits; non-saturating or minimax generator loss"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "vanilla",
            generator="mlp",
            discriminator="mlp",
            loss="gan",
            defaults={
                "optimizer": "adam",
                "lr_g": 2e-4,
                "lr_d": 2e-4,
                "betas": [0.5, 0.999],
                "n_critic": 1,
                "batch_size": 64,
                "latent_dim": 100,
                "init": "default",
                "loss_options": {"generator_loss": "non-saturating"},
                # one generator forward per step: as good at equal steps, fewer seconds per step (measured by the
                # bench profiles generator-batch-fresh/-reuse; docs/performance.md#generator-batch)
                "generator_batch": "reuse",
            },
            aliases=("gan",),
            description="MLP GAN with the non-saturating loss",
            paper="Goodfellow et al. 2014, Generative Adversarial Nets",
        )
    )
