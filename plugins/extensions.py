"""Training extensions: an EMA of the generator, DiffAugment, lazy R1 and R2, and weight clipping.

``ema`` (Karras et al. 2020, Training Generative Adversarial Networks with Limited Data, as in StyleGAN2-ADA):
an exponential moving average of the generator's weights, theta_ema <- decay * theta_ema + (1 - decay) * theta
after each generator update (a copy of theta up to generator step ``start``); buffers (BatchNorm running
statistics) are copied. The average draws the sample grids, evaluations and exports.

``diffaugment`` (Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training): every batch
the discriminator sees, real and fake, is augmented differentiably, per sample, as in the official
``DiffAugment_pytorch.py``: ``color`` (brightness x + (u - 0.5); saturation (x - mean_C x) * 2u + mean_C x;
contrast (x - mean_CHW x) * (u + 0.5) + mean_CHW x; u ~ U[0, 1) per sample each), ``translation`` (an integer
shift of up to ``translation_ratio`` of each side, zero padding) and ``cutout`` (a square of
``cutout_ratio`` of each side set to 0).

``r1`` (Mescheder et al. 2018, Which Training Methods for GANs do actually Converge?; lazy regularisation from
Karras et al. 2020, Analyzing and Improving the Image Quality of StyleGAN): R1 = gamma / 2 *
E_x[||grad_x D(x)||^2] on real data, added every ``every`` discriminator updates and scaled by ``every`` so
that its average strength does not depend on the interval (the extension declares ``penalty_interval``; ganzoo
skips and scales).

``r2`` (Roth et al. 2017; with R1, the regulariser of R3GAN, Huang et al. 2024): the same penalty on the
discriminator update's fake batch, which the penalty receives by declaring ``fake`` and ``fake_labels``.

``weight-clip`` (Arjovsky et al. 2017, Wasserstein GAN): every critic parameter is clamped to [-c, c] after
each critic update.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import Extension, ExtensionContext, ExtensionSpec, hookimpl


def name_list(option: str, value: Any, known: Sequence[str], kind: str) -> tuple[str, ...]:
    """``value`` (a comma-separated string or a list of strings) as a tuple of names, each one of ``known``;
    a ``ValueError`` naming ``option`` and the unknown ``kind`` otherwise (``policy: color,cutout``)."""
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(part, str) for part in value):
        names = [part.strip() for part in value]
    else:
        raise ValueError(f"{option} must be a comma-separated string of {', '.join(known)}, not {value!r}")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"{option} names unknown {kind}(s) {', '.join(map(repr, unknown))}; valid: "
                         f"{', '.join(known)}")
    return tuple(names)


def _real(name: str, value: Any) -> float:
    """``value`` as a finite float, or a ValueError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _integer(name: str, value: Any) -> int:
    """``value`` as an int (a whole float such as 16.0 is accepted), or a ValueError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


# -- ema -------------------------------------------------------------------------------------------------------
class EMA(Extension):
    """An exponential moving average of the generator (``decay`` per generator update), which samples use.

    Up to generator step ``start`` the average is a copy of the generator. With ``warmup`` (the default) the
    decay of the t-th averaging update is ``min(decay, (1 + t) / (10 + t))``, as
    ``tf.train.ExponentialMovingAverage`` does with ``num_updates``: early on the average follows the
    generator closely instead of holding on to its random initialisation for thousands of steps (with decay
    0.999 the initial weights still make up 55% of a plain average after 600 updates)."""

    def __init__(self, decay: float = 0.999, start: int = 0, warmup: bool = True) -> None:
        decay, start = _real("decay", decay), _integer("start", start)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1) (0.999 is usual), not {decay}")
        if start < 0:
            raise ValueError(f"start must be a generator step >= 0, not {start}")
        if not isinstance(warmup, bool):
            raise ValueError(f"warmup must be true or false, not {warmup!r}")
        self.decay, self.start, self.warmup = decay, start, warmup
        self.ema: nn.Module | None = None

    def setup(self, context: ExtensionContext) -> None:
        self.ema = copy.deepcopy(context.generator).eval().requires_grad_(False)

    @torch.no_grad()
    def after_generator_step(self, G: nn.Module, step: int) -> None:
        ema = self._network()
        params = dict(G.named_parameters())
        if step <= self.start:
            for name, p_ema in ema.named_parameters():
                p_ema.copy_(params[name])
        else:
            decay = self.decay_at(step)
            for name, p_ema in ema.named_parameters():
                p_ema.lerp_(params[name].detach(), 1.0 - decay)
        buffers = dict(G.named_buffers())  # BatchNorm running statistics are copied, as StyleGAN2-ADA does
        for name, b_ema in ema.named_buffers():
            b_ema.copy_(buffers[name])

    def decay_at(self, step: int) -> float:
        """The decay applied after generator step ``step`` (> ``start``): ``decay``, capped during warm-up."""
        t = step - self.start
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    def sampling_generator(self) -> nn.Module:
        return self._network()

    def _network(self) -> nn.Module:
        if self.ema is None:
            raise RuntimeError("the ema extension was used before setup()")
        return self.ema

    def state_dict(self) -> dict[str, Any]:
        return {}  # the average's weights are checkpointed by ganzoo as the sampling generator


# -- diffaugment -----------------------------------------------------------------------------------------------
POLICIES = ("color", "translation", "cutout")


class DiffAugment(Extension):
    """Differentiable augmentation of everything the discriminator sees (Zhao et al. 2020).

    ``policy``: a comma-separated subset of ``color``, ``translation`` and ``cutout`` (or a list of them),
    applied in that order of listing. Random numbers come from the extension's own ``torch.Generator``,
    seeded from the run's seed and the process's rank and checkpointed with the run."""

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout", translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5) -> None:
        self.policy = name_list("policy", policy, POLICIES, "augmentation")
        self.translation_ratio = _real("translation_ratio", translation_ratio)
        self.cutout_ratio = _real("cutout_ratio", cutout_ratio)
        if not 0.0 <= self.translation_ratio <= 1.0:
            raise ValueError(f"translation_ratio must lie in [0, 1], not {self.translation_ratio}")
        if not 0.0 <= self.cutout_ratio <= 1.0:
            raise ValueError(f"cutout_ratio must lie in [0, 1], not {self.cutout_ratio}")
        self.generator: torch.Generator | None = None

    def setup(self, context: ExtensionContext) -> None:
        seed = (int(context.config.seed) * 1000003 + 17 + int(context.rank)) % 2**63
        self.generator = torch.Generator(device=context.device).manual_seed(seed)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"diffaugment expects an image batch (B, C, H, W), got shape {tuple(images.shape)}")
        x = images
        for name in self.policy:
            if name == "color":
                x = self._brightness(x)
                x = self._saturation(x)
                x = self._contrast(x)
            elif name == "translation":
                x = self._translation(x)
            else:
                x = self._cutout(x)
        return x.contiguous()

    # The official functions, with every random number drawn from self.generator.
    def _rand(self, x: torch.Tensor) -> torch.Tensor:
        """One U[0, 1) number per sample, shape (B, 1, 1, 1)."""
        gen = self._rng()
        return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=gen.device, generator=gen).to(x.device)

    def _randint(self, low: int, high: int, x: torch.Tensor) -> torch.Tensor:
        """One integer in [low, high) per sample, shape (B, 1, 1)."""
        gen = self._rng()
        return torch.randint(low, high, (x.shape[0], 1, 1), device=gen.device, generator=gen).to(x.device)

    def _brightness(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self._rand(x) - 0.5)

    def _saturation(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        return (x - mean) * (self._rand(x) * 2) + mean

    def _contrast(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - mean) * (self._rand(x) + 0.5) + mean

    def _translation(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        shift_h, shift_w = int(H * self.translation_ratio + 0.5), int(W * self.translation_ratio + 0.5)
        translation_h = self._randint(-shift_h, shift_h + 1, x)
        translation_w = self._randint(-shift_w, shift_w + 1, x)
        grid_b, grid_h, grid_w = torch.meshgrid(torch.arange(B, device=x.device), torch.arange(H, device=x.device),
                                                torch.arange(W, device=x.device), indexing="ij")
        # indices into the zero-padded image: 0 and H + 1 (W + 1) are the padding
        grid_h = torch.clamp(grid_h + translation_h + 1, 0, H + 1)
        grid_w = torch.clamp(grid_w + translation_w + 1, 0, W + 1)
        padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
        return padded.permute(0, 2, 3, 1).contiguous()[grid_b, grid_h, grid_w].permute(0, 3, 1, 2)

    def _cutout(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        size_h, size_w = int(H * self.cutout_ratio + 0.5), int(W * self.cutout_ratio + 0.5)
        offset_h = self._randint(0, H + (1 - size_h % 2), x)
        offset_w = self._randint(0, W + (1 - size_w % 2), x)
        grid_b, grid_h, grid_w = torch.meshgrid(torch.arange(B, device=x.device),
                                                torch.arange(size_h, device=x.device),
                                                torch.arange(size_w, device=x.device), indexing="ij")
        grid_h = torch.clamp(grid_h + offset_h - size_h // 2, min=0, max=H - 1)
        grid_w = torch.clamp(grid_w + offset_w - size_w // 2, min=0, max=W - 1)
        mask = torch.ones(B, H, W, dtype=x.dtype, device=x.device)
        mask[grid_b, grid_h, grid_w] = 0
        return x * mask.unsqueeze(1)

    def _rng(self) -> torch.Generator:
        if self.generator is None:
            raise RuntimeError("the diffaugment extension was used before setup()")
        return self.generator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._rng().get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rng = state.get("generator") if isinstance(state, dict) else None
        if not isinstance(rng, torch.Tensor):
            raise ValueError("the saved state holds no random generator state ('generator')")
        self._rng().set_state(rng.cpu())


# -- r1 --------------------------------------------------------------------------------------------------------
def gradient_penalty(D: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None,
                     gamma: float) -> torch.Tensor:
    """gamma / 2 * E||grad_x D(x)||^2 (on a classifier discriminator's scores)."""
    x = x.detach().requires_grad_(True)
    scores = D(x, labels)
    if isinstance(scores, tuple):  # a classifier discriminator: (scores, class_logits)
        scores = scores[0]
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return (gamma / 2) * grad.pow(2).flatten(1).sum(1).mean()


class R1(Extension):
    """R1 gradient penalty on real data, gamma / 2 * E||grad_x D(x)||^2, applied lazily every ``every``
    discriminator updates (scaled by ``every``)."""

    def __init__(self, gamma: float = 10.0, every: int = 16) -> None:
        gamma, every = _real("gamma", gamma), _integer("every", every)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, not {gamma}")
        if every < 1:
            raise ValueError(f"every must be >= 1 (1: every discriminator update), not {every}")
        self.gamma, self.every = gamma, every
        self.penalty_interval = every  # ganzoo calls it every `every` updates and weights it by `every`

    def discriminator_penalty(self, D: Callable[..., Any], real: torch.Tensor, real_labels: torch.Tensor | None,
                              step: int) -> torch.Tensor | None:
        return gradient_penalty(D, real, real_labels, self.gamma)


class R2(R1):
    """R2 gradient penalty on the update's fake batch, gamma / 2 * E||grad_x D(G(z))||^2, every ``every``
    discriminator updates (scaled by ``every``)."""

    def discriminator_penalty(self, D: Callable[..., Any], real: torch.Tensor, real_labels: torch.Tensor | None,
                              step: int, fake: torch.Tensor | None = None,
                              fake_labels: torch.Tensor | None = None) -> torch.Tensor | None:
        return gradient_penalty(D, fake, fake_labels, self.gamma)


# -- weight-clip -----------------------------------------------------------------------------------------------
class WeightClip(Extension):
    """Clamp every parameter of the critic to [-clip, clip] after each of its updates (WGAN)."""

    def __init__(self, clip: float = 0.01) -> None:
        clip = _real("clip", clip)
        if clip <= 0:
            raise ValueError(f"clip must be > 0, not {clip}")
        self.clip = clip

    @torch.no_grad()
    def after_discriminator_step(self, D: nn.Module, step: int) -> None:
        for p in D.parameters():
            p.clamp_(-self.clip, self.clip)


@hookimpl
def register_extensions(register):
    register(ExtensionSpec("ema", EMA, "Exponential moving average of the generator, used for sampling "
                           "(decay 0.999)",
                           "Karras et al. 2020, Training Generative Adversarial Networks with Limited Data"))
    register(ExtensionSpec("diffaugment", DiffAugment, "Differentiable augmentation (color, translation, cutout) "
                           "of every batch the discriminator sees",
                           "Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training"))
    register(ExtensionSpec("r1", R1, "R1 gradient penalty on real data, lazily every 16 updates (gamma 10)",
                           "Mescheder et al. 2018, Which Training Methods for GANs do actually Converge?"))
    register(ExtensionSpec("r2", R2, "R2 gradient penalty on fake data, lazily every 16 updates (gamma 10)",
                           "Roth et al. 2017, Stabilizing Training of Generative Adversarial Networks through "
                           "Regularization"))
    register(ExtensionSpec("weight-clip", WeightClip, "Clip the critic's weights to [-clip, clip] after each "
                           "update (clip 0.01)", "Arjovsky et al. 2017, Wasserstein GAN"))
