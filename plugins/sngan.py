"""SN-GAN (Miyato et al., 2018, Spectral Normalization for Generative Adversarial Networks).

Spectral normalisation divides every weight matrix of the discriminator by its largest singular value,
W_SN = W / sigma(W), with sigma estimated by one step of power iteration per forward pass in training mode. Each
layer is then 1-Lipschitz (about, for a convolution's reshaped kernel), as is LeakyReLU, which bounds the
Lipschitz constant of the whole discriminator without a penalty and without the capacity loss of weight
clipping.

Discriminator ``sngan``: the paper's "standard CNN" (its Table 3), sized from the image shape like
``ganzoo_plugins.dcgan``: for every halving of the spatial size a 3x3 stride-1 conv and a 4x4 stride-2 conv
(``width * 2**i`` channels), then a 3x3 conv doubling the channels at the base size, and a dense layer to one
logit; LeakyReLU(0.1) between, no BatchNorm, ``spectral_norm`` on every conv and linear layer. At 32x32 and
width 64 that is the paper's 64-64-128-128-256-256-512 network; at 28x28 the base is 7x7 (two halvings).
Options: ``width`` (64) and ``layout`` (``standard``, or ``dcgan`` for one 4x4 stride-2 conv per halving, about
half the cost).

Loss ``hinge`` (the paper's hinge version of the adversarial loss, Lim & Ye 2017; Tran et al. 2017):

    L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))],    L_G = -E[D(G(z))]

It takes labels, so it also trains conditional (projection) discriminators.

Variant ``sngan``: the DCGAN generator, the ``sngan`` discriminator, the hinge loss and the paper's setting C
(Adam lr 2e-4 for both networks, beta1 0.5, beta2 0.999, n_dis 1), batch size 64, ``init: normal``. That
initialisation reaches only the generator (DCGAN's N(0, 0.02)) and the discriminator's biases (zeroed): a
spectrally normalised layer's ``weight`` is computed from its parametrisation's ``original``, which ganzoo's
initialiser does not touch, and needs no special start as it is divided by its singular value anyway. The
generator's initialisation matters: on mnist-5k under setting C (generator width 16, discriminator width 32)
PyTorch's default one let the generator collapse to a single dotted pattern within 300 steps, while from
N(0, 0.02) it drew digit-like strokes after 300 steps and varied digit-like shapes after 600.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from ganzoo_plugins.dcgan import num_upsamplings
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo import Discriminator, Loss, LossSpec, Variant, hookimpl, score_pair


def check_square(image_shape: tuple[int, int, int], what: str) -> tuple[int, int]:
    """``(channels, size)`` of a square image shape; ``ValueError`` for anything the networks cannot size."""
    if len(image_shape) != 3:
        raise ValueError(f"{what} needs an image shape (C, H, W), got {tuple(image_shape)}")
    channels, height, width = image_shape
    if height != width:
        raise ValueError(f"{what} needs square images, got {height}x{width}")
    return channels, height


class SNConvTrunk(nn.Module):
    """A convolutional feature extractor with every layer spectrally normalised, sized from the image shape.

    image (B, C, H, W) -> pre-activation features (B, out_channels, base, base), ``k`` halvings of the size
    (28 -> 2, 32 -> 3, 64 -> 4) and ``out_channels = 2 * width * 2**(k-1)``. ``layout``:

    - ``"standard"``: the paper's standard CNN: per halving a 3x3 stride-1 conv and a 4x4 stride-2 conv with
      ``width * 2**i`` channels, then a 3x3 conv doubling the channels at the base size.
    - ``"dcgan"``: DCGAN's layout, one 4x4 stride-2 conv per halving (``width * 2**i`` channels), then the same
      3x3 conv doubling the channels at the base size: about half the cost of ``standard``.
    """

    def __init__(self, image_shape: tuple[int, int, int], width: int = 64, slope: float = 0.1,
                 layout: str = "standard", what: str = "the SN-GAN discriminator"):
        super().__init__()
        if layout not in ("standard", "dcgan"):
            raise ValueError(f"layout must be 'standard' or 'dcgan', not {layout!r}")
        if width < 1:
            raise ValueError(f"width must be positive, not {width}")
        channels, size = check_square(image_shape, what)
        k = num_upsamplings(size)
        self.base = size // 2**k
        layers: list[nn.Module] = []
        ch_in = channels
        for i in range(k):
            ch = width * 2**i
            if layout == "standard":
                layers += [spectral_norm(nn.Conv2d(ch_in, ch, 3, 1, 1)), nn.LeakyReLU(slope),
                           spectral_norm(nn.Conv2d(ch, ch, 4, 2, 1)), nn.LeakyReLU(slope)]
            else:
                layers += [spectral_norm(nn.Conv2d(ch_in, ch, 4, 2, 1)), nn.LeakyReLU(slope)]
            ch_in = ch
        self.out_channels = 2 * ch_in
        layers.append(spectral_norm(nn.Conv2d(ch_in, self.out_channels, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SNGANDiscriminator(nn.Module):
    """The standard CNN of Miyato et al.: image (B, C, H, W) -> one logit per sample (B,).

    ``layout="dcgan"`` swaps in the cheaper DCGAN-shaped trunk (see :class:`SNConvTrunk`)."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = 64, layout: str = "standard"):
        super().__init__()
        self.trunk = SNConvTrunk(image_shape, width, layout=layout)
        self.act = nn.LeakyReLU(0.1)
        self.linear = spectral_norm(nn.Linear(self.trunk.out_channels * self.trunk.base**2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.act(self.trunk(x)).flatten(1)).squeeze(1)


class SNMLPDiscriminator(nn.Module):
    """The mlp discriminator's layers (prod(sample shape) -> 256 -> 128 -> 1) with spectral norm on each and
    LeakyReLU(0.1): SN-GAN for non-image data (2-D points) and small images."""

    def __init__(self, image_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 128)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for h in hidden:
            layers += [spectral_norm(nn.Linear(width, h)), nn.LeakyReLU(0.1)]
            width = h
        layers.append(spectral_norm(nn.Linear(width, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class HingeLoss(Loss):
    """The hinge adversarial loss; takes labels, so it trains conditional discriminators as well."""

    def discriminator_loss(self, D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                           real_labels: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        # E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]
        d_real, d_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()

    def generator_loss(self, D: Callable[..., torch.Tensor], fake: torch.Tensor,
                       fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        # -E[D(G(z))]
        return -D(fake, fake_labels).mean()


@hookimpl
def register_discriminators(register):
    register(Discriminator("sngan", SNGANDiscriminator,
                           "Standard CNN, spectral norm on every layer, LeakyReLU(0.1), no BatchNorm (Miyato 2018)"))
    register(Discriminator("sngan-mlp", SNMLPDiscriminator,
                           "MLP 256-128, spectral norm on every layer, LeakyReLU(0.1); also 2-D points and other "
                           "vectors", vectors=True))


@hookimpl
def register_losses(register):
    register(LossSpec("hinge", HingeLoss, "Hinge loss: relu(1 - D(x)) + relu(1 + D(G(z))), G: -D(G(z))"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "sngan",
            generator="dcgan",
            discriminator="sngan",
            loss="hinge",
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
            description="DCGAN generator, spectrally normalised standard-CNN discriminator, hinge loss",
            paper="Miyato et al. 2018, Spectral Normalization for Generative Adversarial Networks",
        )
    )
