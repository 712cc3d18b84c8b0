"""R3GAN (Huang et al., NeurIPS 2024, The GAN is dead; long live the GAN! A Modern GAN Baseline).

Loss ``rpgan``, the relativistic pairing GAN (RpGAN, Jolicoeur-Martineau 2018; as R3GAN uses it): real and fake
samples are paired elementwise and D is asked how much more realistic the real one of each pair is:

    L_D = E[softplus(D(G(z)) - D(x))],    L_G = E[softplus(D(x) - D(G(z)))]

The generator's loss therefore needs real scores: ``generator_loss`` declares ``real`` and the trainer passes the
real batch of the last discriminator update. Both methods declare ``real_labels`` and ``fake_labels``, so it
trains conditional (projection) discriminators too. R3GAN regularises it with R1 on real and R2 on fake data,
gamma / 2 * E||grad D||^2 each, on every discriminator update: the built-in ``r1`` and ``r2`` extensions with
``every: 1``, which the variant enables.

Generator ``r3gan`` and discriminator ``r3gan``: the paper's normalization-free ResNeXt-style networks.

- Residual block: ``x + conv1x1(lrelu(grouped_conv3x3(lrelu(conv1x1_expand(x)))))``, leaky ReLU 0.2, the
  hidden width ``expansion * C`` split into groups of ``group_size`` channels, no BatchNorm or any other
  normalisation. The last 1x1 conv of each block starts at zero, so every block is the identity at
  initialisation; the other two start from He (MSR) initialisation scaled by the Fix-up factor
  ``L ** (-1 / (2 * m - 2))`` with L the network's number of residual blocks and m = 3 convs per block.
- Resolutions: stages at 7, 14, 28 for 28x28 images (MNIST family), 4, 8, 16, 32 for 32x32 (any square size
  halved while even down to at least 4), ``blocks`` residual blocks per stage, ``width * min(2**j, 4)``
  channels at the stage j halvings below the image size.
- Generator: z (with a class embedding concatenated for ``r3gan-conditional``) -> a linear projection that
  modulates a learned 4x4 basis, channel by channel (``basis * linear(z)``); then the stages, each entered by a
  transition of a 1x1 conv (changing the width) and a bilinear upsampling (4 -> 7 for 28 px is a bilinear resize);
  a 1x1 conv to the image channels and ``tanh``. Deviation from the paper: the paper's generator ends with the
  1x1 conv, unbounded; ganzoo requires generators to draw values in [-1, 1], hence the tanh.
- Discriminator: a 1x1 conv from the image, the stages in reverse, each left by a transition of a 2x2 average
  pooling (a bilinear resize 7 -> 4 for 28 px) and a 1x1 conv; then the 4x4 discriminative basis (a depthwise 4x4
  conv, one 4x4 filter per channel, to (B, C)) and a linear layer to one logit. ``r3gan-conditional``: the linear
  layer gives an ``embed_dim`` vector whose inner product with a class embedding, over sqrt(embed_dim), is the
  logit (projection conditioning, as the paper's conditional networks).
- Options (generator and discriminator): ``width`` (8: 32, 16 and 8 channels at 7, 14 and 28 px; 64, 32, 16 and 8
  at 4 to 32 px), ``blocks`` per stage (1), ``expansion`` (2), ``group_size`` (16); the conditional networks also
  ``embed_dim`` (32). The paper's networks are far wider (hundreds of channels per stage, several blocks per
  stage); these widths are chosen so that ganzoo's default 1,000 steps at batch 64 run in minutes on a 2-core CPU
  (below). Wider networks: ``--set generator_options.width=16 --set discriminator_options.width=16``.

Conditional counterparts: the issue asked for a ``conditional: true`` option, but ganzoo's registry declares
conditioning per registered component (``Generator(..., conditional=True)``: the trainer then draws class labels,
``build`` receives ``num_classes``, grids get a row per class, ``ganzoo sample --class K`` works), so an option of
one component cannot switch it. Generator and discriminator ``r3gan-conditional`` and variant
``r3gan-conditional`` are the conditional networks: a class embedding concatenated to z in G, projection
conditioning in D.

Variant ``r3gan`` (and ``r3gan-conditional``): the paper's recipe (its Table "config E", CIFAR-10) scaled to
ganzoo's default budget of 1,000 generator steps at batch 64, every schedule half a cosine over 1,000 steps
(the paper's shape, over the whole run) and held at its end value after:

- Adam with beta1 = 0, beta2 ``{cosine: [0.9, 0.99], over: 1000}``;
- ``lr_g`` = ``lr_d`` = ``{cosine: [2.0e-3, 5.0e-4], over: 1000}``: the paper's shape and its 4:1 ratio of start
  to end, ten times its values (2e-4 to 5e-5 over 20 million images at batch 512), because 1,000 steps at batch 64
  are 64,000 images (measurements below);
- R1 and R2 with ``gamma: {cosine: [0.05, 0.005], over: 1000}`` (the paper's CIFAR-10 end points), ``every: 1``;
- EMA of G with ``decay: {cosine: [0.99, 0.999], over: 1000}`` (the paper's EMA horizon grows over training; here
  from about 100 to about 1,000 steps; the ema's warm-up caps it further during the first steps);
- batch size 64, latent_dim 64, n_critic 1, ``generator_batch: reuse``, ``init: default`` (the networks' own
  Fix-up initialisation). The paper's adaptive augmentation is left out (add ``diffaugment`` to taste).

Cost (``ganzoo train r3gan --steps 50 --out /tmp/x --set sample_every=0``, seconds per step over steps 10-30 from
``log.jsonl``'s ``train_s``, batch 64, R1 and R2 on every update, EMA; 2 cores of an "AMD EPYC" (``lscpu``), torch's
2 CPU threads, a machine shared with other jobs, so the quietest windows are quoted): width 8 (the default)
0.19-0.20 s per step on mnist-5k, about 3.5 minutes for 1,000 steps; width 16 0.41 s (7 minutes), width 32 0.86 s
(14 minutes). Under load from other processes the same run slowed several-fold (two OpenMP threads on a busy
2-core machine; at a load average of 6, 4-6 s per step with 2 threads, 0.65-1.2 s with ``OMP_NUM_THREADS=1``), so
measure on an idle one. stacked-mnist (3 channels) costs the same as mnist-5k within that noise (only the first and
last 1x1 convs see the channels): 5.3-6.4 against 4.2-6.1 s per step side by side under the same load.

Why ten times the paper's learning rate: single 300-step runs (``ganzoo train r3gan --steps 300 --set
lr_g=X --set lr_d=X``, mnist-5k, seed 0, width 8, the rest as above; ``ganzoo evaluate RUN --split train --num
1000``, the bench's FID with the offline ganzoo-mnist extractor) gave FID 44.5 with the paper's 2e-4 schedule
(stroke-like blobs, 8 of 10 classes, recall 0.05), 27.5 at 1e-3, 16.0 at 2e-3 and 14.1 at 4e-3 (10 classes,
recall 0.36 and 0.44); R1 and R2 at gamma 1.0 instead of 0.05 gave 39.0 (the discriminator was not the problem:
the networks learn slowly at the paper's rate over a budget 300 times shorter). dcgan reaches FID 24 only after 600
steps at the zoo's widths. The benchmark figures are on the leaderboard (profile ``modern``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import Discriminator, Generator, Loss, LossSpec, Variant, hookimpl, score_pair

SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0 / (1.0 + SLOPE**2))
CONVS_PER_BLOCK = 3

# -- building blocks -------------------------------------------------------------------------------------------
def msr_init(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> nn.Module:
    """He (MSR) initialisation: weights N(0, (gain / sqrt(fan_in))^2), biases 0; gain 0 zeroes the layer."""
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class ResidualBlock(nn.Module):
    """``x + conv1x1(lrelu(grouped_conv3x3(lrelu(conv1x1(x)))))``, no normalisation, the last conv zeroed so
    that the block starts as the identity; ``scale`` is the Fix-up factor for the other two convs."""

    def __init__(self, channels: int, expansion: int, group_size: int, scale: float):
        super().__init__()
        hidden = channels * expansion
        groups = max(1, hidden // group_size)
        if hidden % groups:
            raise ValueError(f"the hidden width {hidden} (channels {channels} x expansion {expansion}) does not split "
                             f"into groups of {group_size} channels")
        self.expand = msr_init(nn.Conv2d(channels, hidden, 1), LRELU_GAIN * scale)
        self.grouped = msr_init(nn.Conv2d(hidden, hidden, 3, padding=1, groups=groups), LRELU_GAIN * scale)
        self.project = msr_init(nn.Conv2d(hidden, channels, 1), 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.grouped(h), SLOPE)
        return x + self.project(h)


def stage_sizes(size: int) -> list[int]:
    """The stages' resolutions, lowest first: the image size halved while even and at least 8 (28 -> 7, 14, 28;
    32 -> 4, 8, 16, 32)."""
    sizes = [size]
    while sizes[-1] % 2 == 0 and sizes[-1] >= 8:
        sizes.append(sizes[-1] // 2)
    return sizes[::-1]


def stage_channels(count: int, width: int) -> list[int]:
    """Channels of each stage, lowest resolution first: ``width * min(2**j, 4)``, j halvings below the image."""
    return [width * min(2**j, 4) for j in range(count)][::-1]


def check_options(image_shape: tuple[int, ...], width: int, blocks: int, expansion: int, group_size: int,
                  what: str) -> tuple[int, int]:
    """``(channels, size)`` of a square image of at least 4x4, or a ValueError naming the option."""
    if len(image_shape) != 3 or image_shape[1] != image_shape[2]:
        raise ValueError(f"{what} needs square images (C, H, W), got {tuple(image_shape)}")
    for name, value in (("width", width), ("blocks", blocks), ("expansion", expansion), ("group_size", group_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    channels, size = int(image_shape[0]), int(image_shape[1])
    if size < 4:
        raise ValueError(f"{what} needs images of at least 4x4, got {size}x{size}")
    return channels, size


def make_stages(channels: list[int], blocks: int, expansion: int, group_size: int) -> nn.ModuleList:
    scale = (len(channels) * blocks) ** (-1.0 / (2 * CONVS_PER_BLOCK - 2))  # Fix-up: L^(-1/(2m-2))
    return nn.ModuleList(nn.Sequential(*(ResidualBlock(c, expansion, group_size, scale) for _ in range(blocks)))
                         for c in channels)


def transitions(channels: list[int]) -> nn.ModuleList:
    """The 1x1 convs between consecutive stages, changing the width from one stage's to the next's."""
    return nn.ModuleList(msr_init(nn.Conv2d(a, b, 1)) for a, b in zip(channels[:-1], channels[1:], strict=True))


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resampling to ``size`` x ``size`` (no-op at that size already)."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


# -- networks --------------------------------------------------------------------------------------------------
class R3GANGenerator(nn.Module):
    """z (B, latent_dim) [, y (B,)] -> image (B, C, H, W) in [-1, 1]: a 4x4 basis modulated by a projection of z,
    residual stages joined by 1x1 conv + bilinear upsampling, a 1x1 conv to the image and tanh."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], num_classes: int | None = None,
                 width: int = 8, blocks: int = 1, expansion: int = 2, group_size: int = 16, embed_dim: int = 32):
        super().__init__()
        out_channels, size = check_options(image_shape, width, blocks, expansion, group_size, "the r3gan generator")
        self.sizes = stage_sizes(size)
        chans = stage_channels(len(self.sizes), width)
        self.embed = None
        inputs = latent_dim
        if num_classes is not None:
            if num_classes < 1 or embed_dim < 1:
                raise ValueError(f"num_classes and embed_dim must be positive, not {num_classes} and {embed_dim}")
            self.embed = nn.Embedding(num_classes, embed_dim)
            nn.init.normal_(self.embed.weight)
            inputs += embed_dim
        self.project = msr_init(nn.Linear(inputs, chans[0]))
        self.basis = nn.Parameter(torch.randn(chans[0], 4, 4))
        self.transitions = transitions(chans)
        self.stages = make_stages(chans, blocks, expansion, group_size)
        self.to_image = msr_init(nn.Conv2d(chans[-1], out_channels, 1))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("the conditional r3gan generator needs class labels: G(z, y)")
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.basis.unsqueeze(0) * self.project(z)[:, :, None, None]
        for i, (size, stage) in enumerate(zip(self.sizes, self.stages, strict=True)):
            if i > 0:
                h = self.transitions[i - 1](h)
            h = stage(resize(h, size))
        return torch.tanh(self.to_image(h))


class R3GANDiscriminator(nn.Module):
    """image (B, C, H, W) [, y (B,)] -> one logit per sample (B,): a 1x1 conv, residual stages joined by
    downsampling + 1x1 conv, a depthwise 4x4 basis and a linear layer (projection on a class embedding if
    conditional)."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int | None = None, width: int = 8,
                 blocks: int = 1, expansion: int = 2, group_size: int = 16, embed_dim: int = 32):
        super().__init__()
        in_channels, size = check_options(image_shape, width, blocks, expansion, group_size,
                                          "the r3gan discriminator")
        self.sizes = stage_sizes(size)[::-1]  # highest resolution first
        chans = stage_channels(len(self.sizes), width)[::-1]
        self.from_image = msr_init(nn.Conv2d(in_channels, chans[0], 1))
        self.stages = make_stages(chans, blocks, expansion, group_size)
        self.transitions = transitions(chans)
        self.basis = msr_init(nn.Conv2d(chans[-1], chans[-1], 4, groups=chans[-1], bias=False))
        self.embed = None
        if num_classes is not None:
            if num_classes < 1 or embed_dim < 1:
                raise ValueError(f"num_classes and embed_dim must be positive, not {num_classes} and {embed_dim}")
            self.embed = nn.Embedding(num_classes, embed_dim)
            nn.init.normal_(self.embed.weight)
            self.out = msr_init(nn.Linear(chans[-1], embed_dim))
        else:
            self.out = msr_init(nn.Linear(chans[-1], 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.from_image(x)
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i + 1 < len(self.stages):
                nxt = self.sizes[i + 1]
                h = F.avg_pool2d(h, 2) if h.shape[-1] == 2 * nxt else resize(h, nxt)
                h = self.transitions[i](h)
        h = self.basis(resize(h, 4)).flatten(1)
        out = self.out(h)
        if self.embed is None:
            return out.squeeze(1)
        if y is None:
            raise ValueError("the conditional r3gan discriminator needs class labels: D(x, y)")
        return (out * self.embed(y)).sum(dim=1) / math.sqrt(out.shape[1])


def conditional_generator(latent_dim: int, image_shape: tuple[int, int, int], num_classes: int,
                          **options) -> R3GANGenerator:
    return R3GANGenerator(latent_dim, image_shape, num_classes=num_classes, **options)


def conditional_discriminator(image_shape: tuple[int, int, int], num_classes: int, **options) -> R3GANDiscriminator:
    return R3GANDiscriminator(image_shape, num_classes=num_classes, **options)


def unconditional_generator(latent_dim: int, image_shape: tuple[int, int, int], width: int = 8, blocks: int = 1,
                            expansion: int = 2, group_size: int = 16) -> R3GANGenerator:
    return R3GANGenerator(latent_dim, image_shape, width=width, blocks=blocks, expansion=expansion,
                          group_size=group_size)


def unconditional_discriminator(image_shape: tuple[int, int, int], width: int = 8, blocks: int = 1,
                                expansion: int = 2, group_size: int = 16) -> R3GANDiscriminator:
    return R3GANDiscriminator(image_shape, width=width, blocks=blocks, expansion=expansion, group_size=group_size)


# -- loss ------------------------------------------------------------------------------------------------------
class RpGANLoss(Loss):
    """The relativistic pairing loss: D minimises E[softplus(D(fake) - D(real))], G the reverse."""

    def discriminator_loss(self, D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                           real_labels: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        c_real, c_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return F.softplus(c_fake.flatten() - c_real.flatten()).mean()

    def generator_loss(self, D: Callable[..., torch.Tensor], fake: torch.Tensor, real: torch.Tensor | None = None,
                       real_labels: torch.Tensor | None = None,
                       fake_labels: torch.Tensor | None = None) -> torch.Tensor:
        if real is None:
            raise ValueError("the relativistic pairing loss compares fakes with real samples: call "
                             "generator_loss(D, fake, real=real_batch)")
        c_real, c_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return F.softplus(c_real.flatten() - c_fake.flatten()).mean()


# -- registration ----------------------------------------------------------------------------------------------
RUN = 1000  # the schedules' length: ganzoo's default number of steps

DEFAULTS = {
    "optimizer": "adam",
    "lr_g": {"cosine": [2.0e-3, 5.0e-4], "over": RUN},
    "lr_d": {"cosine": [2.0e-3, 5.0e-4], "over": RUN},
    "betas": [0.0, {"cosine": [0.9, 0.99], "over": RUN}],
    "n_critic": 1,
    "generator_batch": "reuse",
    "batch_size": 64,
    "latent_dim": 64,
    "init": "default",
    "extensions": {
        "r1": {"gamma": {"cosine": [0.05, 0.005], "over": RUN}, "every": 1},
        "r2": {"gamma": {"cosine": [0.05, 0.005], "over": RUN}, "every": 1},
        "ema": {"decay": {"cosine": [0.99, 0.999], "over": RUN}},
    },
}

PAPER = "Huang et al. 2024, The GAN is dead; long live the GAN! A Modern GAN Baseline (R3GAN)"


@hookimpl
def register_generators(register):
    register(Generator("r3gan", unconditional_generator,
                       "Normalization-free ResNeXt generator: modulated 4x4 basis, zero-initialised residual blocks, "
                       "bilinear upsampling, tanh (R3GAN)"))
    register(Generator("r3gan-conditional", conditional_generator,
                       "The r3gan generator with a class embedding concatenated to z", conditional=True))


@hookimpl
def register_discriminators(register):
    register(Discriminator("r3gan", unconditional_discriminator,
                           "Normalization-free ResNeXt discriminator: zero-initialised residual blocks, average "
                           "pooling, depthwise 4x4 basis, linear (R3GAN)"))
    register(Discriminator("r3gan-conditional", conditional_discriminator,
                           "The r3gan discriminator with projection class conditioning", conditional=True))


@hookimpl
def register_losses(register):
    register(LossSpec("rpgan", RpGANLoss, "Relativistic pairing GAN loss: softplus(D(fake) - D(real)) for D, "
                      "the reverse for G (R3GAN); G also sees real scores"))


@hookimpl
def register_variants(register):
    register(Variant("r3gan", generator="r3gan", discriminator="r3gan", loss="rpgan", defaults=DEFAULTS,
                     description="R3GAN: RpGAN loss with R1 and R2, normalization-free ResNeXt networks, cosine "
                                 "schedules for lr, gamma, beta2 and EMA",
                     paper=PAPER))
    register(Variant("r3gan-conditional", generator="r3gan-conditional", discriminator="r3gan-conditional",
                     loss="rpgan", defaults=DEFAULTS,
                     description="Class-conditional R3GAN: class embedding in G, projection in D",
                     paper=PAPER))
