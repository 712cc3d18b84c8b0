"""Least-squares GAN (Mao et al. 2017) as a ganzoo plugin.

L_D = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2],  L_G = 1/2 E[(D(G(z)) - 1)^2]

It registers one loss, ``lsgan``, and one variant, ``lsgan``, which reuses the DCGAN networks that
another plugin registered: variants compose components by name.
"""

import torch
from torch import nn

from ganzoo import Loss, LossSpec, Variant, hookimpl, score_pair


class LeastSquaresLoss(Loss):
    """Least-squares losses with targets a=0 (fake), b=1 (real), c=1 (what G wants D to say)."""

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        d_real, d_fake = score_pair(D, real, fake)  # one pass of D where the run allows it
        return 0.5 * (d_real - 1).pow(2).mean() + 0.5 * d_fake.pow(2).mean()

    def generator_loss(self, D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (D(fake) - 1).pow(2).mean()


@hookimpl
def register_losses(register):
    register(LossSpec("lsgan", LeastSquaresLoss, "Least-squares GAN loss (Mao et al. 2017)"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "lsgan",
            generator="dcgan",
            discriminator="dcgan",
            loss="lsgan",
            defaults={"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999], "init": "normal"},
            description="DCGAN networks trained with the least-squares loss",
            paper="Mao et al. 2017, Least Squares Generative Adversarial Networks",
        )
    )
