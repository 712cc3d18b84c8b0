"""WGAN with weight clipping (Arjovsky et al., 2017, Wasserstein GAN).

The critic estimates the Wasserstein-1 distance through the Kantorovich-Rubinstein duality; it is kept
(roughly) K-Lipschitz by clamping every one of its weights to ``[-c, c]`` after each update (c = 0.01):

    L_D = E[D(G(z))] - E[D(x)],    L_G = -E[D(G(z))]

Loss ``wgan`` is that pair of terms with no penalty (the clipping is the ``weight-clip`` extension, which the
variant enables). It takes labels, so it also trains conditional (projection) critics.

Variant ``wgan-clip``: the paper's DCGAN experiment (Algorithm 1 defaults): the DCGAN generator and the DCGAN
discriminator *with* BatchNorm as critic (the paper clips all of its weights, the BatchNorm scales and shifts
included), RMSProp with lr 5e-5 for both networks (momentum-based optimisers made training unstable),
n_critic = 5, batch size 64, DCGAN's N(0, 0.02) initialisation, and ``extensions: {weight-clip: {clip:
0.01}}``. The paper also trains the critic 100 times per generator step for the first 25 generator steps and
every 500th; ganzoo's trainer has a fixed ``n_critic``, so that schedule is left out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ganzoo import Loss, LossSpec, Variant, hookimpl, score_pair


class WassersteinLoss(Loss):
    """The Wasserstein critic and generator losses, without penalty (pair with weight clipping)."""

    def discriminator_loss(self, D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                           real_labels: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        # E[D(G(z))] - E[D(x)]: the critic maximises the estimated Wasserstein distance
        d_real, d_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return d_fake.mean() - d_real.mean()

    def generator_loss(self, D: Callable[..., torch.Tensor], fake: torch.Tensor,
                       fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        # -E[D(G(z))]
        return -D(fake, fake_labels).mean()


@hookimpl
def register_losses(register):
    register(LossSpec("wgan", WassersteinLoss,
                      "Wasserstein loss without penalty (Arjovsky 2017); pair it with the weight-clip extension"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "wgan-clip",
            generator="dcgan",
            discriminator="dcgan",
            loss="wgan",
            defaults={
                "optimizer": "rmsprop",
                "lr_g": 5e-5,
                "lr_d": 5e-5,
                "n_critic": 5,
                "batch_size": 64,
                "latent_dim": 100,
                "init": "normal",
                "init_std": 0.02,
                "extensions": {"weight-clip": {"clip": 0.01}},
            },
            description="DCGAN networks, Wasserstein loss, critic weights clipped to [-0.01, 0.01], RMSProp",
            paper="Arjovsky et al. 2017, Wasserstein GAN",
        )
    )
