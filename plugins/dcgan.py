"""DCGAN (Radford et al., 2015): transposed-conv generator, strided-conv discriminator.

The networks size themselves from the image shape: the spatial size is halved while it stays even and at
least 8, so 28x28 starts from 7x7 (two upsamplings), 32x32 from 4x4 (three) and 64x64 from 4x4 (four).
Generator: ConvTranspose from 1x1 to the base size with 8 * width channels for every image size (the paper's
1024 at width 128, PyTorch's example's 512 at its default width 64), then stride-2 ConvTranspose layers halving
the channels, BatchNorm + ReLU between, tanh at the end. At 28x28 that is 512 channels at 7x7 and 256 at 14x14;
the bench profile ``early`` measures what this width gives after 300 steps.
Discriminator: stride-2 convs with LeakyReLU(0.2), BatchNorm on every layer but the first, a final conv to one
logit. ``dcgan-critic`` is the same discriminator with layer normalisation
(GroupNorm with one group) instead of BatchNorm, for WGAN-GP. Weights start from N(0, 0.02) (``init:
normal`` in the variant's defaults).
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo import Discriminator, Generator, Variant, hookimpl


def num_upsamplings(size: int) -> int:
    """How many stride-2 layers lead from the base size to ``size`` (28 -> 2, 32 -> 3, 64 -> 4)."""
    k = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        k += 1
    if k == 0:
        raise ValueError(f"the network needs an image size divisible by 2 with a base of at least 4, not {size}")
    return k


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, C, H, W) in [-1, 1]."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], width: int = 64):
        super().__init__()
        channels, height, w = image_shape
        if height != w:
            raise ValueError(f"DCGAN needs square images, got {height}x{w}")
        k = num_upsamplings(height)
        base = height // 2**k
        ch = 8 * width  # at the base, halving with every upsampling
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, base, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (B, C, H, W) -> one logit per sample (B,). ``norm``: 'batch', 'layer' or 'none'."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = 64, norm: str = "batch"):
        super().__init__()
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"norm must be 'batch', 'layer' or 'none', not {norm!r}")
        channels, height, w = image_shape
        if height != w:
            raise ValueError(f"DCGAN needs square images, got {height}x{w}")
        k = num_upsamplings(height)
        base = height // 2**k
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(k - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(ch * 2))
            elif norm == "layer":
                layers.append(nn.GroupNorm(1, ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, base, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def build_critic(image_shape: tuple[int, int, int], width: int = 64, norm: str = "layer") -> DCGANDiscriminator:
    """The DCGAN discriminator without BatchNorm (layer norm by default), as WGAN-GP needs."""
    return DCGANDiscriminator(image_shape, width=width, norm=norm)


@hookimpl
def register_generators(register):
    register(Generator("dcgan", DCGANGenerator, "Transposed-conv generator, BatchNorm + ReLU, tanh (Radford 2015)"))


@hookimpl
def register_discriminators(register):
    register(Discriminator("dcgan", DCGANDiscriminator,
                           "Strided-conv discriminator, LeakyReLU(0.2), BatchNorm after the first layer"))
    register(Discriminator("dcgan-critic", build_critic,
                           "The DCGAN discriminator with layer norm instead of BatchNorm (for WGAN-GP)"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "dcgan",
            generator="dcgan",
            discriminator="dcgan",
            loss="gan",
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
                "loss_options": {"generator_loss": "non-saturating"},
                # one generator forward per step: as good at equal steps, fewer seconds per step (measured by the
                # bench profiles generator-batch-fresh/-reuse; docs/performance.md#generator-batch)
                "generator_batch": "reuse",
            },
            description="Deep convolutional GAN with the non-saturating loss",
            paper="Radford et al. 2015, Unsupervised Representation Learning with DCGANs",
        )
    )
