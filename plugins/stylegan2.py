"""StyleGAN2 (Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN), sized for small images.

Generator ``stylegan2``: a mapping network (z normalised to unit second moment, ``mapping_layers`` fully
connected layers with leaky ReLU, learning-rate multiplier 0.01) gives w, broadcast to one w per layer; the
synthesis network starts from a learned constant and upsamples by 2 (bilinear; the paper uses a [1, 3, 3, 1]
FIR filter) until the image size. The base size is the image size halved while it stays even and at least 4,
as for DCGAN: 28 px starts at 7x7 (7, 14, 28), 32 px at 4x4 (4, 8, 16, 32), so both are synthesised at their own
size, without resizing. Every 3x3 convolution is modulated by a style (an affine map of its w, bias 1) and
demodulated (:func:`modulated_conv2d`: in eval mode one grouped convolution with a group per sample; in
training, as StyleGAN2-ADA does, the equal plain convolution of the style-scaled input with the demodulation
applied to its output, about 1.4 times faster on a CPU), then gets per-pixel
noise scaled by a learned per-layer strength (starting at 0), a bias and leaky ReLU (gain sqrt 2). The output
is the skip architecture's sum of the modulated 1x1 toRGB layers (not demodulated), each resolution's sum
upsampled and added to the next; the sum is clamped to [-1, 1] (the paper leaves it unbounded; ganzoo needs
images in [-1, 1], and a clamp keeps the network linear inside that range, where tanh would bend it). In training
mode, with probability ``mixing_prob`` (0.9) a batch uses the ws of a second latent from a random layer on (style
mixing regularisation), and noise is drawn afresh; both draw from torch's global stream, which ganzoo seeds and
checkpoints. In eval mode (grids, evaluations, exports, the EMA copy) the noise is a fixed buffer drawn at
build time and nothing is mixed, so sampling is deterministic. All layers use equalized learning rate (weights
N(0, 1), scaled by 1 / sqrt(fan_in) at run time), so the variant keeps ``init: default``.

The protocol that :class:`PathLength` relies on, and that another generator may implement to use it:
``G.mapping(z, labels=None) -> ws`` of shape ``(B, G.num_ws, G.w_dim)`` and ``G.synthesis(ws) -> images``;
``G(z)`` is ``G.synthesis(G.mapping(z))`` apart from style mixing.

Discriminator ``stylegan2``: the residual architecture: fromRGB (1x1 conv) at the image size, then per resolution
two 3x3 convolutions and a 2x average-pool downsampling, added to a skip path (average pool and a 1x1 conv
without bias) and scaled by 1 / sqrt 2, down to the base size; then a minibatch standard deviation layer
(groups of ``mbstd_group`` consecutive samples, one feature channel), a 3x3 conv, a fully connected layer and
the output logit. No normalisation; equalized learning rate; leaky ReLU 0.2 with gain sqrt 2.

Extension ``path-length`` (the paper's Section 3.2): on every ``penalty_interval`` = 4th generator update
(ganzoo multiplies by 4), with ws = G.mapping(z) of the first half of the update's latents and y =
G.synthesis(ws), J^T u = grad_ws sum(y * u) for u ~ N(0, 1) / sqrt(H * W) from the extension's own generator,
a = sqrt(mean over layers of ||J^T u||^2) per sample, pl_mean <- pl_mean + decay * (mean(a) - pl_mean), and
the penalty is ``weight`` * mean((a - pl_mean)^2), with ``weight`` 2 and ``decay`` 0.01. ``pl_mean`` and the
random stream are in its ``state_dict``. Style mixing is not applied to the ws it differentiates.

Variant ``stylegan2``: non-saturating logistic loss, lazy R1 (``every: 16``) with gamma 0.01 (StyleGAN2-ADA's
CIFAR-10 setting, 32 px; its rule of thumb 0.0002 * res^2 / batch gives 0.0025-0.0032 at 28-32 px and batch 64),
path length every 4 generator updates, and G_ema with decay 0.998 (a half-life of about 22,000 images at batch
64, StyleGAN2-ADA's 10 * batch / 32 kimg heuristic gives 20 kimg; ganzoo's ``warmup`` stands in for its ramp-up).
Adam with betas [0, 0.99] and lr 0.0025 for both networks, as StyleGAN2-ADA uses at 32 px (its lazy
regularisation also rescales lr and betas by k / (k + 1); ganzoo does not). Mapping: 2 layers (the CIFAR-10
setting), latent and w size 128; feature maps min(32, 256 / resolution) in G and D (28 px: 32 at 7x7, 18 at
14x14, 9 at 28x28; the paper's CIFAR-10 networks use 512 at every resolution). The minibatch standard deviation
groups consecutive samples, so the joint discriminator pass (``discriminator_pass: auto``) scores a concatenated
real and fake batch as two separate passes would, when the batch size is a multiple of ``mbstd_group``. The
generator update reuses the discriminator update's fake batch (``generator_batch: reuse``).

Measured with ``ganzoo train stylegan2 --steps 50 --out /tmp/x --set sample_every=0`` (mnist-5k, batch 64) on
an idle 2-core "AMD EPYC" (lscpu's model name, load average 0.25): 9.4 s of training for the 50 steps, 0.19 s per
step, so 1,000 steps in about 3 minutes; a default ``dcgan`` took 0.35 s and ``r3gan`` 0.21 s per step in the same
minute. Under a load average of 4 to 7 the same command took 1.6 s per step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from ganzoo_plugins.dcgan import num_upsamplings
from torch import nn

from ganzoo import Discriminator, Extension, ExtensionContext, ExtensionSpec, Generator, Variant, hookimpl

GAIN = math.sqrt(2.0)  # leaky ReLU's gain, as in StyleGAN2


def base_size(size: int) -> tuple[int, int]:
    """The synthesis network's first resolution and how many upsamplings lead to ``size`` (28 -> (7, 2),
    32 -> (4, 3), 64 -> (4, 4)), as DCGAN's networks count them."""
    k = num_upsamplings(size)
    return size >> k, k


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """StyleGAN2's feature maps at a resolution: channel_base / resolution, at most channel_max, at least 1."""
    return max(1, min(int(channel_max), int(channel_base) // resolution))


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * GAIN


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     padding: int = 0, fused: bool = True) -> torch.Tensor:
    """StyleGAN2's modulated convolution: for each sample b, the weight w[o, i, ...] * styles[b, i], divided
    (with ``demodulate``) by sqrt(sum_{i,k,l} (w[o, i, k, l] * styles[b, i])^2 + 1e-8), convolves sample b.
    ``fused``: one grouped convolution with a group per sample and its own weights; otherwise the same as a
    plain convolution of the input scaled by the styles, its output scaled by the demodulation coefficients
    (StyleGAN2-ADA trains this way; on a CPU it is about 1.4 times faster). ``x`` (B, I, H, W), ``weight``
    (O, I, k, k), ``styles`` (B, I)."""
    B, cin, H, W = x.shape
    cout = weight.shape[0]
    w = weight.unsqueeze(0) * styles.reshape(B, 1, cin, 1, 1)  # (B, cout, cin, k, k)
    coefficients = torch.rsqrt(w.square().sum(dim=[2, 3, 4]) + 1e-8) if demodulate else None  # (B, cout)
    if not fused:
        out = F.conv2d(x * styles.reshape(B, cin, 1, 1), weight, padding=padding)
        return out * coefficients.reshape(B, cout, 1, 1) if demodulate else out
    if demodulate:
        w = w * coefficients.reshape(B, cout, 1, 1, 1)
    out = F.conv2d(x.reshape(1, B * cin, H, W), w.reshape(B * cout, cin, *weight.shape[2:]), padding=padding,
                   groups=B)
    return out.reshape(B, cout, *out.shape[2:])


class EqualLinear(nn.Module):
    """A fully connected layer with equalized learning rate: weight N(0, 1 / lr_mul) scaled by
    lr_mul / sqrt(in_features) at run time, bias scaled by lr_mul."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul))
        self.weight_gain, self.lr_mul, self.activation = lr_mul / math.sqrt(in_features), lr_mul, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return lrelu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """A convolution with equalized learning rate (weight N(0, 1) scaled by 1 / sqrt(fan_in) at run time)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel**2)
        self.padding, self.activation = kernel // 2, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return lrelu(x) if self.activation else x


class MappingNetwork(nn.Module):
    """z -> w: z normalised to unit second moment, then ``layers`` fully connected layers (lr multiplier)."""

    def __init__(self, z_dim: int, w_dim: int, layers: int = 2, lr_mul: float = 0.01) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                   for a, b in zip(dims[:-1], dims[1:], strict=True)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.net(z)


class StyleLayer(nn.Module):
    """A modulated (and demodulated) 3x3 convolution, optionally after a 2x upsampling, then noise, bias and
    leaky ReLU; or, as ``torgb``, a modulated 1x1 convolution without demodulation, noise or activation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 torgb: bool = False) -> None:
        super().__init__()
        kernel = 1 if torgb else 3
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.up, self.torgb, self.padding = up, torgb, kernel // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel**2)
        if not torgb:
            self.noise_strength = nn.Parameter(torch.zeros([]))
            self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        styles = self.affine(w)
        if self.torgb:
            x = modulated_conv2d(x, self.weight, styles * self.weight_gain, demodulate=False, fused=not self.training)
            return x + self.bias.reshape(1, -1, 1, 1)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, padding=self.padding, fused=not self.training)
        if self.training:  # fresh noise from torch's global stream; a fixed buffer in eval mode
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        x = x + noise * self.noise_strength
        return lrelu(x + self.bias.reshape(1, -1, 1, 1))


class StyleGAN2Generator(nn.Module):
    """z (B, latent_dim) -> image (B, C, H, W) in [-1, 1]. Also ``mapping(z, labels=None)`` -> ws
    (B, num_ws, w_dim) and ``synthesis(ws)`` -> images, the protocol the ``path-length`` extension uses."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], channel_base: int = 256,
                 channel_max: int = 32, w_dim: int | None = None, mapping_layers: int = 2,
                 mixing_prob: float = 0.9) -> None:
        super().__init__()
        image_channels, height, width = image_shape
        if height != width:
            raise ValueError(f"stylegan2 needs square images, got {height}x{width}")
        if not 0.0 <= float(mixing_prob) <= 1.0:
            raise ValueError(f"mixing_prob must lie in [0, 1], not {mixing_prob}")
        base, k = base_size(height)
        self.w_dim = int(w_dim or latent_dim)
        self.mixing_prob = float(mixing_prob)
        self.mapping_network = MappingNetwork(latent_dim, self.w_dim, mapping_layers)
        ch = channels_at(base, channel_base, channel_max)
        self.const = nn.Parameter(torch.randn(ch, base, base))
        self.convs = nn.ModuleList([StyleLayer(ch, ch, self.w_dim, base)])
        self.torgbs = nn.ModuleList([StyleLayer(ch, image_channels, self.w_dim, base, torgb=True)])
        resolution = base
        for _ in range(k):
            resolution *= 2
            out = channels_at(resolution, channel_base, channel_max)
            self.convs.append(StyleLayer(ch, out, self.w_dim, resolution, up=True))
            self.convs.append(StyleLayer(out, out, self.w_dim, resolution))
            self.torgbs.append(StyleLayer(out, image_channels, self.w_dim, resolution, torgb=True))
            ch = out
        # conv j uses ws[:, j]; the toRGB after conv j uses ws[:, j + 1] (the next conv's, as in StyleGAN2)
        self.num_ws = len(self.convs) + 1

    def mapping(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """ws (B, num_ws, w_dim): the mapping network's w, one copy per layer (``labels`` are ignored)."""
        return self.mapping_network(z).unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] from per-layer ws (B, num_ws, w_dim)."""
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0])
        img = self.torgbs[0](x, ws[:, 1])
        for i, torgb in enumerate(self.torgbs[1:]):
            j = 1 + 2 * i
            x = self.convs[j](x, ws[:, j])
            x = self.convs[j + 1](x, ws[:, j + 1])
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) + torgb(x, ws[:, j + 2])
        return img.clamp(-1.0, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ws = self.mapping(z)
        if self.training and self.mixing_prob > 0:  # style mixing, one cut-off per batch, from the global stream
            cutoff = int(torch.randint(1, self.num_ws, [], device=z.device))
            mix = bool(torch.rand([], device=z.device) < self.mixing_prob)
            if mix:
                ws2 = self.mapping(torch.randn_like(z))
                ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.synthesis(ws)


class MinibatchStd(nn.Module):
    """Appends one channel: the standard deviation over groups of ``group`` consecutive samples, averaged
    over features and pixels (a group size that does not divide the batch falls back to a smaller divisor)."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        g = max(d for d in range(1, min(self.group, B) + 1) if B % d == 0)
        y = x.reshape(B // g, g, C, H, W)
        y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1).add(1e-8).sqrt()  # (B / g, C, H, W)
        y = y.mean(dim=[1, 2, 3]).reshape(-1, 1, 1, 1, 1).expand(-1, g, 1, H, W).reshape(B, 1, H, W)
        return torch.cat([x, y], dim=1)


class ResidualBlock(nn.Module):
    """Two 3x3 convs then 2x average pooling, plus a skip path (pooling, 1x1 conv), summed / sqrt 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (x + skip) / math.sqrt(2.0)


class StyleGAN2Discriminator(nn.Module):
    """image (B, C, H, W) -> one logit per sample (B,): residual, minibatch stddev, no normalisation."""

    def __init__(self, image_shape: tuple[int, int, int], channel_base: int = 256, channel_max: int = 32,
                 mbstd_group: int = 4) -> None:
        super().__init__()
        image_channels, height, width = image_shape
        if height != width:
            raise ValueError(f"stylegan2 needs square images, got {height}x{width}")
        base, k = base_size(height)
        resolutions = [height // 2**i for i in range(k + 1)]  # 28, 14, 7
        chs = [channels_at(r, channel_base, channel_max) for r in resolutions]
        self.fromrgb = EqualConv2d(image_channels, chs[0], 1, activation=True)
        self.blocks = nn.Sequential(*[ResidualBlock(a, b) for a, b in zip(chs[:-1], chs[1:], strict=True)])
        self.mbstd = MinibatchStd(int(mbstd_group))
        self.conv = EqualConv2d(chs[-1] + 1, chs[-1], 3, activation=True)
        self.fc = EqualLinear(chs[-1] * base * base, chs[-1], activation=True)
        self.out = EqualLinear(chs[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.fromrgb(x))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1))).flatten()


# -- path-length -------------------------------------------------------------------------------------------------
class PathLength(Extension):
    """StyleGAN2's path length regularisation of the generator, every ``every`` generator updates (scaled by
    ``every``). Needs a generator with ``mapping(z, labels)`` and ``synthesis(ws)`` (the ``stylegan2`` one)."""

    def __init__(self, weight: float = 2.0, decay: float = 0.01, every: int = 4, batch_shrink: int = 2) -> None:
        for name, value in (("weight", weight), ("decay", decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
        for name, value in (("every", every), ("batch_shrink", batch_shrink)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
        if weight < 0 or not 0 < decay <= 1:
            raise ValueError(f"weight must be >= 0 and decay in (0, 1], not {weight} and {decay}")
        self.weight, self.decay, self.every, self.batch_shrink = float(weight), float(decay), every, batch_shrink
        self.penalty_interval = every
        self.pl_mean = 0.0
        self.generator: torch.Generator | None = None

    def setup(self, context: ExtensionContext) -> None:
        G = context.generator
        if not (callable(getattr(G, "mapping", None)) and callable(getattr(G, "synthesis", None))):
            raise TypeError(f"the path-length extension needs a generator with mapping(z, labels) and "
                            f"synthesis(ws) methods, such as 'stylegan2'; {type(G).__name__} has none")
        seed = (int(context.config.seed) * 1000003 + 29 + int(context.rank)) % 2**63
        self.generator = torch.Generator(device=context.device).manual_seed(seed)

    def generator_penalty(self, G: Any, z: torch.Tensor, labels: torch.Tensor | None,
                          step: int) -> torch.Tensor | None:
        if self.generator is None:
            raise RuntimeError("the path-length extension was used before setup()")
        n = max(1, z.shape[0] // self.batch_shrink)
        ws = G.mapping(z[:n], None if labels is None else labels[:n])
        if not ws.requires_grad:  # a mapping without trainable weights: differentiate with respect to ws alone
            ws = ws.detach().requires_grad_(True)
        images = G.synthesis(ws)
        noise = torch.randn(images.shape, generator=self.generator, device=self.generator.device)
        noise = noise.to(images.device, images.dtype) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        self.pl_mean += self.decay * (float(lengths.detach().mean()) - self.pl_mean)
        return (lengths - self.pl_mean).square().mean() * self.weight

    def state_dict(self) -> dict[str, Any]:
        if self.generator is None:
            raise RuntimeError("the path-length extension was used before setup()")
        return {"pl_mean": self.pl_mean, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("generator"), torch.Tensor):
            raise ValueError("the saved path-length state holds no random generator state ('generator')")
        self.pl_mean = float(state["pl_mean"])
        if self.generator is None:
            raise RuntimeError("the path-length extension was used before setup()")
        self.generator.set_state(state["generator"].cpu())


@hookimpl
def register_generators(register):
    register(Generator("stylegan2", StyleGAN2Generator, "Mapping network, modulated/demodulated convs, noise, "
                       "skip toRGB, style mixing (Karras 2020)"))


@hookimpl
def register_discriminators(register):
    register(Discriminator("stylegan2", StyleGAN2Discriminator,
                           "Residual discriminator with minibatch stddev, no normalisation (Karras 2020)"))


@hookimpl
def register_extensions(register):
    register(ExtensionSpec("path-length", PathLength, "StyleGAN2's path length regulariser of the generator, "
                           "every 4 generator updates (weight 2); needs the stylegan2 generator",
                           "Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN"))


@hookimpl
def register_variants(register):
    register(
        Variant(
            "stylegan2",
            generator="stylegan2",
            discriminator="stylegan2",
            loss="gan",
            defaults={
                "optimizer": "adam",
                "lr_g": 0.0025,
                "lr_d": 0.0025,
                "betas": [0.0, 0.99],
                "n_critic": 1,
                "batch_size": 64,
                "latent_dim": 128,
                "init": "default",
                "loss_options": {"generator_loss": "non-saturating"},
                "generator_batch": "reuse",
                "extensions": {"r1": {"gamma": 0.01, "every": 16}, "path-length": {}, "ema": {"decay": 0.998}},
            },
            description="StyleGAN2: style-modulated generator, residual discriminator, lazy R1, path length, EMA",
            paper="Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN",
        )
    )
