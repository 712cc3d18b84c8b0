"""RaGAN (Jolicoeur-Martineau, 2018, The relativistic discriminator: a key element missing from standard GAN).

A relativistic average discriminator estimates how much more realistic a real sample is than the average fake
one (and the reverse), instead of the absolute probability that a sample is real. With raw scores
C_r = D(x) and C_f = D(G(z)) and the sigmoid as activation (RaSGAN, the standard GAN made relativistic):

    L_D = E_r[softplus(-(C_r - mean(C_f)))] + E_f[softplus(C_f - mean(C_r))]
    L_G = E_f[softplus(-(C_f - mean(C_r)))] + E_r[softplus(C_r - mean(C_f))]

i.e. -log sigmoid(C_r - mean C_f) - log(1 - sigmoid(C_f - mean C_r)) for D and the same with real and fake
swapped for G. The generator's loss therefore needs real scores too: ``generator_loss`` declares ``real`` and
the trainer passes the real batch of the last discriminator update (D's weights are frozen during the
generator step, so those scores only act as constants). The loss takes labels, so it also trains conditional
discriminators.

Variant ``ragan``: the paper's DCGAN setup: DCGAN generator and discriminator, Adam lr 2e-4 for both, betas
(0.5, 0.999), n_critic 1, batch size 64, N(0, 0.02) initialisation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganzoo import Loss, LossSpec, Variant, hookimpl, score_pair


class RelativisticAverageLoss(Loss):
    """The relativistic average standard GAN loss (RaSGAN), from logits."""

    def discriminator_loss(self, D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                           real_labels: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        c_real, c_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return (F.softplus(-(c_real - c_fake.mean())).mean()
                + F.softplus(c_fake - c_real.mean()).mean())

    def generator_loss(self, D: Callable[..., torch.Tensor], fake: torch.Tensor, real: torch.Tensor | None = None,
                       real_labels: torch.Tensor | None = None,
                       fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        if real is None:
            raise ValueError("the relativistic generator loss compares fakes with real samples: call "
                             "generator_loss(D, fake, real=real_batch)")
        c_real, c_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return (F.softplus(-(c_fake - c_real.mean())).mean()
                + F.softplus(c_real - c_fake.mean()).mean())


@hookimpl
def register_losses(register):
    register(LossSpec("ragan", RelativisticAverageLoss,
                      "Relativistic average standard GAN loss (Jolicoeur-Martineau 2018); G also sees real scores"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "ragan",
            generator="dcgan",
            discriminator="dcgan",
            loss="ragan",
            defaults={
                "optimizer": "adam",
                "lr_g": 2e-4,
                "lr_d": 2e-4,
                "betas": [0.5, 0.999],
                "n_critic": 1,
                # one generator forward per step: as good at equal steps, sooner in seconds (bench profiles
                # generator-batch-zoo-fresh/-reuse; docs/performance.md#generator-batch)
                "generator_batch": "reuse",
                "batch_size": 64,
                "latent_dim": 100,
                "init": "normal",
                "init_std": 0.02,
            },
            description="DCGAN networks with the relativistic average standard GAN loss (RaSGAN)",
            paper="Jolicoeur-Martineau 2018, The relativistic discriminator: a key element missing from standard GAN",
        )
    )
