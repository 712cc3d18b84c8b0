"""How a generator is sampled: the one place that knows a conditional generator takes labels.

Training, evaluation, ``ganzoo sample`` and the assembly check all call :func:`generate` and draw labels with
:func:`draw_labels`, so a conditional generator is called the same way everywhere and labels come from one
random stream per caller.
"""

from __future__ import annotations

import torch
from torch import nn


def generate(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``G(z, labels)`` for a conditional generator (``labels`` given), else ``G(z)``."""
    return G(z, labels) if labels is not None else G(z)


def draw_labels(class_probs: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` class indices (int64) drawn with replacement from the frequencies ``class_probs``, from
    ``generator``'s stream, on ``generator``'s device."""
    return torch.multinomial(class_probs.to(generator.device), n, replacement=True, generator=generator)
