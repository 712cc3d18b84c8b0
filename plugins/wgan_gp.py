"""WGAN-GP (Gulrajani et al., 2017): Wasserstein loss with a gradient penalty on interpolates.

L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad_x^ D(x^)||_2 - 1)^2], x^ = a x + (1 - a) G(z) with one
a ~ U[0, 1] per sample; L_G = -E[D(G(z))]. The gradient norm is taken over each flattened sample and the
penalty is built with ``create_graph=True`` so it is differentiated too. The critic must not use BatchNorm
(the penalty is per sample): the loss refuses such a network.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo import Loss, LossSpec, Variant, hookimpl, score_pair

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """E[(||grad D(x^)||_2 - 1)^2] on per-sample interpolates between ``real`` and ``fake`` (scored with the
    real batch's ``labels`` for a conditional critic)."""
    alpha = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    interpolates = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    scores = D(interpolates, labels)
    (grad,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return (norms - 1.0).pow(2).mean()


class WGANGPLoss(Loss):
    """Wasserstein critic loss with gradient penalty weight ``gp_lambda`` (default 10)."""

    double_backward = True  # the penalty differentiates D's gradient: the trainer keeps D eager under compile

    def __init__(self, gp_lambda: float = 10.0) -> None:
        if gp_lambda < 0:
            raise ValueError(f"gp_lambda must be >= 0, not {gp_lambda}")
        self.gp_lambda = float(gp_lambda)

    def discriminator_loss(self, D, real: torch.Tensor, fake: torch.Tensor, real_labels: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        d_real, d_fake = score_pair(D, real, fake, real_labels, fake_labels)
        loss = d_fake.mean() - d_real.mean()
        if self.gp_lambda:
            loss = loss + self.gp_lambda * gradient_penalty(D, real, fake, real_labels)
        return loss

    def generator_loss(self, D, fake: torch.Tensor, fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        return -D(fake, fake_labels).mean()

    def check_discriminator(self, D: nn.Module) -> None:
        found = [name or type(D).__name__ for name, m in D.named_modules() if isinstance(m, _BATCH_NORMS)]
        if found:
            raise ValueError(
                f"the gradient penalty is per sample, so the critic must not use BatchNorm (found at "
                f"{', '.join(found[:3])}); use a critic with layer norm or none, e.g. discriminator=dcgan-critic"
            )


@hookimpl
def register_losses(register):
    register(LossSpec("wgan-gp", WGANGPLoss, "Wasserstein loss with gradient penalty (lambda = 10)"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "wgan-gp",
            generator="dcgan",
            discriminator="dcgan-critic",
            loss="wgan-gp",
            defaults={
                "optimizer": "adam",
                "lr_g": 1e-4,
                "lr_d": 1e-4,
                "betas": [0.0, 0.9],
                "n_critic": 5,
                "batch_size": 64,
                "latent_dim": 100,
                "init": "default",
                "loss_options": {"gp_lambda": 10.0},
            },
            aliases=("wgan",),
            description="DCGAN generator, layer-norm critic, Wasserstein loss with gradient penalty",
            paper="Gulrajani et al. 2017, Improved Training of Wasserstein GANs",
        )
    )
