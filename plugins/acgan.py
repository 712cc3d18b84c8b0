"""AC-GAN (Odena et al., 2017, Conditional Image Synthesis with Auxiliary Classifier GANs).

The generator draws an image of a given class c from (z, c); the discriminator gives both the probability that
an image is real and a distribution over the classes. With S the source (real/fake) and C the class:

    L_S = E[log P(S=real | x)] + E[log P(S=fake | G(z, c))]
    L_C = E[log P(C=c | x)] + E[log P(C=c | G(z, c))]

D maximises L_S + L_C, G maximises L_C - L_S. From logits, with (s, c) = D(x):

    L_D = BCE(s_real, 1) + BCE(s_fake, 0) + w * (CE(c_real, y_real) + CE(c_fake, y_fake))
    L_G = BCE(s_fake, 1) + w * CE(c_fake, y_fake)

(the generator minimises the non-saturating form of -L_S, as is usual since Goodfellow et al. 2014; w is the
loss option ``class_weight``, 1 by default).

Generator ``acgan`` (``conditional=True``): the DCGAN generator of ``ganzoo_plugins.dcgan`` fed with ``[z,
one_hot(y)]``, the class code concatenated to the latent as in the paper. (The popular PyTorch-GAN
implementation multiplies z with a learned ``nn.Embedding(num_classes, latent_dim)`` instead; on mnist-5k both
gave the same class agreement over the first 600 steps, and the concatenation needs no extra parameters.)
Discriminator ``acgan`` (``classifier=True``): DCGAN-style strided convs with LeakyReLU(0.2), BatchNorm on every
layer but the first, optional dropout (the paper used 0.5; ``dropout`` option, 0 by default), and two linear
heads on the flattened features: one source logit (B,) and class logits (B, num_classes).

Variant ``acgan``: Adam lr 2e-4 for both networks, betas (0.5, 0.999) (the paper's 0.0002 and beta1 0.5),
n_critic 1, batch size 64, N(0, 0.02) initialisation. Measured on the 2-core CPU (mnist-5k, generator width 16,
discriminator width 32): the bundled MNIST classifier agreed with the requested class for 28% of the samples
after 400 steps and 40% after 600, the digits still rough; it needs longer runs than ``cgan-pd``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from ganzoo_plugins.dcgan import DCGANGenerator, num_upsamplings
from torch import nn

from ganzoo import Discriminator, Generator, Loss, LossSpec, Variant, hookimpl, score_pair


def _square(image_shape: tuple[int, int, int], what: str) -> tuple[int, int]:
    if len(image_shape) != 3:
        raise ValueError(f"{what} needs an image shape (C, H, W), got {tuple(image_shape)}")
    channels, height, width = image_shape
    if height != width:
        raise ValueError(f"{what} needs square images, got {height}x{width}")
    return channels, height


class ACGANGenerator(nn.Module):
    """(z (B, latent_dim), y (B,)) -> image (B, C, H, W) in [-1, 1]: the DCGAN generator of ``[z, one_hot(y)]``."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], num_classes: int, width: int = 64):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        _square(image_shape, "the AC-GAN generator")
        self.num_classes = num_classes
        self.net = DCGANGenerator(latent_dim + num_classes, image_shape, width=width)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1))


class ACGANDiscriminator(nn.Module):
    """image (B, C, H, W) -> (source logits (B,), class logits (B, num_classes))."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, width: int = 64,
                 dropout: float = 0.0):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        channels, size = _square(image_shape, "the AC-GAN discriminator")
        k = num_upsamplings(size)
        base = size // 2**k
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        ch = width
        for _ in range(k - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.source = nn.Linear(ch * base * base, 1)
        self.classes = nn.Linear(ch * base * base, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return self.source(h).squeeze(1), self.classes(h)


class ACGANLoss(Loss):
    """Source (real/fake) BCE plus ``class_weight`` times the auxiliary classifier's cross-entropy."""

    def __init__(self, class_weight: float = 1.0) -> None:
        if class_weight < 0:
            raise ValueError(f"class_weight must be >= 0, not {class_weight}")
        self.class_weight = float(class_weight)

    @staticmethod
    def _labels(real_labels: torch.Tensor | None, fake_labels: torch.Tensor | None) -> None:
        if real_labels is None or fake_labels is None:
            raise ValueError("the AC-GAN loss needs class labels for the real and the fake batch")

    def discriminator_loss(self, D: Callable[..., tuple[torch.Tensor, torch.Tensor]], real: torch.Tensor,
                           fake: torch.Tensor, real_labels: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        self._labels(real_labels, fake_labels)
        (s_real, c_real), (s_fake, c_fake) = score_pair(D, real, fake, real_labels, fake_labels)
        source = (F.binary_cross_entropy_with_logits(s_real, torch.ones_like(s_real))
                  + F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake)))
        classes = F.cross_entropy(c_real, real_labels) + F.cross_entropy(c_fake, fake_labels)
        return source + self.class_weight * classes

    def generator_loss(self, D: Callable[..., tuple[torch.Tensor, torch.Tensor]], fake: torch.Tensor,
                       fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        if fake_labels is None:
            raise ValueError("the AC-GAN loss needs the class labels the fake batch was generated for")
        s_fake, c_fake = D(fake, fake_labels)
        return (F.binary_cross_entropy_with_logits(s_fake, torch.ones_like(s_fake))
                + self.class_weight * F.cross_entropy(c_fake, fake_labels))


@hookimpl
def register_generators(register):
    register(Generator("acgan", ACGANGenerator, "DCGAN generator of [z, one-hot class] (AC-GAN, Odena 2017)",
                       conditional=True))


@hookimpl
def register_discriminators(register):
    register(Discriminator("acgan", ACGANDiscriminator,
                           "DCGAN-style discriminator with a source logit and an auxiliary classifier head",
                           classifier=True))


@hookimpl
def register_losses(register):
    register(LossSpec("acgan", ACGANLoss, "AC-GAN: source BCE + class cross-entropy (Odena 2017)",
                      classifier=True))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "acgan",
            generator="acgan",
            discriminator="acgan",
            loss="acgan",
            defaults={
                "optimizer": "adam",
                "lr_g": 2e-4,
                "lr_d": 2e-4,
                "betas": [0.5, 0.999],
                "n_critic": 1,
                "batch_size": 64,
                "latent_dim": 100,
                "init": "normal",
                "init_std": 0.02,
            },
            description="Class-conditional DCGAN whose discriminator also classifies (auxiliary classifier)",
            paper="Odena et al. 2017, Conditional Image Synthesis with Auxiliary Classifier GANs",
        )
    )
