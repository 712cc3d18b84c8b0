"""cGAN with a projection discriminator (Miyato & Koyama, 2018, cGANs with Projection Discriminator).

The discriminator's logit for an image x of class y is the inner product of a learned class embedding with
the image's features, plus an unconditional term:

    D(x, y) = psi(phi(x)) + embed(y)^T phi(x)

phi(x) is a spectrally normalised CNN, psi a (spectrally normalised) linear layer and embed a (spectrally
normalised) class embedding. The projection follows from modelling log p(y|x) and p(y) as log-linear, in place
of concatenating the label to the input or to a hidden layer of D. The generator is conditioned through
conditional batch normalisation: BatchNorm without its own affine parameters, followed by a per-class scale
gamma_y and shift beta_y (Dumoulin et al. 2017; de Vries et al. 2017).

Generator ``cgan-pd`` (``conditional=True``): the DCGAN layout of ``ganzoo_plugins.dcgan`` (a transposed conv
from 1x1 to the base size with ``8 * width`` channels, stride-2 transposed convs halving the channels, tanh),
with conditional BatchNorm (gamma initialised to 1, beta to 0) in place of each BatchNorm. The class also
enters the first layer as a one-hot code concatenated to z (Mirza & Osindero 2014): conditional BatchNorm's
gamma and beta start at 1 and 0 and Adam moves them by about lr per step, so on their own (Adam lr 2e-4) they
had learnt almost nothing of the classes after 600 steps on mnist-5k (15% class agreement), while with the
one-hot code, whose first-layer weights start at N(0, 0.02), the agreement was 67% after 500 steps.

Discriminator ``projection`` (``conditional=True``): the spectrally normalised trunk of ``ganzoo_plugins.sngan``
(``layout: dcgan`` by default, one 4x4 stride-2 conv per halving and a 3x3 conv at the base, LeakyReLU(0.1);
``layout: standard`` for the SN-GAN standard CNN), then ``linear(h) + sum(embed(y) * h)`` on h, the flattened
LeakyReLU features; returns one logit per sample (B,). Two departures from the paper's ImageNet ResNet, both
measured on mnist-5k: h is the flattened feature map rather than the globally sum-pooled one (pooling throws
away where the strokes are, and the summed features made the logits so large that the hinge loss saturated at
0 within 20 steps and the generator had drawn nothing digit-like after 400), and the embedding starts from
Glorot-uniform weights instead of nn.Embedding's N(0, 1), with which Adam turns the normalised class embeddings
slowly: after 400 steps D's implicit classifier, argmax_y D(x, y), was right on 58% of real digits, against 82%
with Glorot.

Variant ``cgan-pd``: the hinge loss (registered by the ``sngan`` plugin, referenced by name), Adam with the
paper's betas (0, 0.9) but lr 4e-4 for both networks and n_critic 1 (the paper: lr 2e-4 and five
discriminator updates per generator update, for 450k ImageNet iterations), batch size 64, ``init: normal``
(the DCGAN generator's N(0, 0.02) weights; the spectrally normalised weights are out of its reach). Measured on
the 2-core CPU, mnist-5k, generator width 16, discriminator width 32: the bundled MNIST classifier agrees with
the requested class for 67% of the samples after 200 steps, 84% after 600 and 95% after 1000 (seed 0; seed 1:
78% and 92%), about 2 minutes of training for 1000 steps; at the default widths 87% after 600 steps. With lr
2e-4 the classes came later, betas (0.5, 0.999) were slower over the first few hundred steps and no better
after, and two discriminator updates per step doubled the cost for no gain per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ganzoo_plugins.dcgan import num_upsamplings
from ganzoo_plugins.sngan import SNConvTrunk, check_square
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo import Discriminator, Generator, Variant, hookimpl


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d without affine parameters, then a per-class scale and shift: ``gamma[y] * x^ + beta[y]``."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class CGANPDGenerator(nn.Module):
    """(z (B, latent_dim), y (B,)) -> image (B, C, H, W) in [-1, 1]: DCGAN with conditional BatchNorm, the
    class also entering the first layer as a one-hot code concatenated to z."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], num_classes: int, width: int = 64):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        if width < 1:
            raise ValueError(f"width must be positive, not {width}")
        channels, size = check_square(image_shape, "the cgan-pd generator")
        k = num_upsamplings(size)
        base = size // 2**k
        self.num_classes = num_classes
        ch = 8 * width
        self.convs = nn.ModuleList([nn.ConvTranspose2d(latent_dim + num_classes, ch, base, 1, 0, bias=False)])
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(ch, num_classes)])
        for _ in range(k - 1):
            self.convs.append(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False))
            self.norms.append(ConditionalBatchNorm2d(ch // 2, num_classes))
            ch //= 2
        self.out = nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(y, self.num_classes).to(z.dtype)
        h = torch.cat([z, onehot], dim=1).view(z.shape[0], -1, 1, 1)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = F.relu(norm(conv(h), y))
        return torch.tanh(self.out(h))


class ProjectionDiscriminator(nn.Module):
    """(x (B, C, H, W), y (B,)) -> one logit per sample (B,): ``linear(h) + <embed(y), h>``, h the flattened
    LeakyReLU features of a spectrally normalised CNN (:class:`ganzoo_plugins.sngan.SNConvTrunk`)."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, width: int = 64,
                 layout: str = "dcgan"):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        self.trunk = SNConvTrunk(image_shape, width, layout=layout, what="the projection discriminator")
        features = self.trunk.out_channels * self.trunk.base**2
        self.linear = spectral_norm(nn.Linear(features, 1))
        embed = nn.Embedding(num_classes, features)
        # Glorot init: from nn.Embedding's N(0, 1), Adam's steps of about lr per entry turn the normalised class
        # embeddings by only ~lr radians per step, and D learns the classes far later (see the module docstring).
        nn.init.xavier_uniform_(embed.weight)
        self.embed = spectral_norm(embed)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.trunk(x), 0.1).flatten(1)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


@hookimpl
def register_generators(register):
    register(Generator("cgan-pd", CGANPDGenerator,
                       "DCGAN generator with conditional BatchNorm (per-class gamma, beta), one-hot class at the input",
                       conditional=True))


@hookimpl
def register_discriminators(register):
    register(Discriminator("projection", ProjectionDiscriminator,
                           "Spectrally normalised CNN with a class projection: linear(h) + <embed(y), h> "
                           "(Miyato & Koyama 2018)", conditional=True))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "cgan-pd",
            generator="cgan-pd",
            discriminator="projection",
            loss="hinge",
            defaults={
                "optimizer": "adam",
                "lr_g": 4e-4,
                "lr_d": 4e-4,
                "betas": [0.0, 0.9],
                "n_critic": 1,
                # one generator forward per step: as good at equal steps, sooner in seconds (bench profiles
                # generator-batch-zoo-fresh/-reuse; docs/performance.md#generator-batch)
                "generator_batch": "reuse",
                "batch_size": 64,
                "latent_dim": 100,
                "init": "normal",
                "init_std": 0.02,
            },
            description="Class-conditional GAN: conditional-BatchNorm DCGAN generator, projection discriminator, "
                        "hinge loss",
            paper="Miyato & Koyama 2018, cGANs with Projection Discriminator",
        )
    )
