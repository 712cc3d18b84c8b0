"""How a generator is sampled, the one place that knows a conditional generator takes labels: training, evaluation,
``ganzoo sample`` and the assembly check call :func:`generate` and :func:`draw_labels` (each from its own random
stream); ``ganzoo sample`` and ``interpolate`` draw latents with :func:`draw_latents` and :func:`slerp` between them."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

MIN_TRUNCATION = 0.01  #: the smallest truncation psi :func:`draw_latents` accepts


def generate(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``G(z, labels)`` for a conditional generator (``labels`` given), else ``G(z)``."""
    return G(z, labels) if labels is not None else G(z)


def draw_labels(class_probs: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` int64 class indices, drawn with replacement from ``class_probs`` by ``generator``, on its device."""
    return torch.multinomial(class_probs.to(generator.device), n, replacement=True, generator=generator)


def draw_latents(n: int, latent_dim: int, generator: torch.Generator, truncation: float | None = None) -> torch.Tensor:
    """``n`` standard normal latents from ``generator``'s stream, as the trainer draws them. With ``truncation`` psi (at
    least :data:`MIN_TRUNCATION`), a truncated normal (Brock et al. 2019's truncation trick): values with ``|z| > psi``
    are redrawn until inside, never clamped, which would pile the outside mass onto ``±psi`` (StudioGAN #62)."""
    z = torch.randn(n, latent_dim, generator=generator)
    if truncation is not None:
        if not truncation >= MIN_TRUNCATION:  # below, ~1/psi rounds of redraws for latents near 0 anyway
            raise ConfigError(f"truncation (--truncation PSI, the largest |z| kept) must be at least "
                              f"{MIN_TRUNCATION}, not {truncation}")
        flat = z.view(-1)
        redo = (flat.abs() > truncation).nonzero().flatten()
        while redo.numel():
            flat[redo] = fresh = torch.randn(redo.numel(), generator=generator)
            redo = redo[fresh.abs() > truncation]
    return z


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation from latents ``a`` to ``b`` (along the last dimension) at fractions ``t`` (broadcast):
    ``sin((1 - t)Ω) / sin Ω · a + sin(tΩ) / sin Ω · b``, ``Ω`` the angle between them (White 2016, "Sampling
    generative networks"). Between Gaussian latents of similar norm it keeps that norm, where a straight line
    passes through the low-norm interior no generator was trained on; linear where ``a`` and ``b`` are parallel."""
    t = torch.as_tensor(t, dtype=a.dtype)
    omega = torch.arccos(torch.cosine_similarity(a, b, dim=-1).clamp(-1, 1)).unsqueeze(-1)
    sin = torch.sin(omega)
    parallel = sin < 1e-6
    sin = torch.where(parallel, torch.ones_like(sin), sin)
    return (torch.where(parallel, 1 - t, torch.sin((1 - t) * omega) / sin) * a
            + torch.where(parallel, t, torch.sin(t * omega) / sin) * b)
