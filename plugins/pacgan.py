"""PacGAN (Lin et al. 2018, PacGAN: The power of two samples in generative adversarial networks) as an
extension: the discriminator judges m samples at a time, all real or all generated, packed into one input.

Packing m samples lets the discriminator see the diversity of what it judges: a generator that collapses onto
a few modes draws packs whose members look alike, which real packs rarely do. It works with any variant's
loss and networks, unchanged: the extension's ``discriminator_input`` packs every batch the discriminator sees
(real, fake, and a loss's interpolates) into ``B / m`` inputs of ``m`` consecutive samples, concatenated along
the channels for images (``(B / m, m * C, H, W)``, as PacGAN's code concatenates on the channel axis) or along
the features for vectors (``(B / m, m * D)``), and ganzoo builds the discriminator for that shape (its first
layer takes ``m`` times the channels; nothing else changes). Batches are drawn shuffled, so consecutive samples
are independent, as in PacGAN's packing of independently drawn samples.

Registered as ``pacgan`` (option ``packing``, default 2) and as ``pac2``, ``pac3``, ``pac4``: ``dcgan+pac2`` is
DCGAN with a packed discriminator. Differences from the paper: one batch of ``batch_size`` samples makes
``batch_size / m`` packs (PacGAN draws ``batch_size`` packs, ``m`` times the samples), so ``batch_size`` must
be a multiple of ``m``; set ``batch_size`` to ``m`` times the unpacked one for PacGAN's number of packs. A
conditional or classifier discriminator (one label per sample) cannot be packed.
"""

from __future__ import annotations

import torch

from ganzoo import Extension, ExtensionSpec, hookimpl


class Packing(Extension):
    """Pack ``packing`` consecutive samples into one discriminator input."""

    def __init__(self, packing: int = 2) -> None:
        if isinstance(packing, bool) or not isinstance(packing, int) or packing < 1:
            raise ValueError(f"packing must be a positive integer, not {packing!r}")
        self.packing = packing

    def discriminator_input(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if batch % self.packing:
            raise ValueError(f"PacGAN packs {self.packing} samples per discriminator input and a batch of {batch} "
                             f"does not divide by {self.packing}: set batch_size to a multiple of {self.packing}")
        return x.reshape(batch // self.packing, self.packing * x.shape[1], *x.shape[2:])


def _fixed(packing: int):
    def build() -> Packing:
        return Packing(packing)

    return build


PAPER = "Lin et al. 2018, PacGAN: The power of two samples in generative adversarial networks"


@hookimpl
def register_extensions(register):
    register(ExtensionSpec("pacgan", Packing, "Packed discriminator: it judges `packing` samples at once "
                           "(default 2), against mode collapse", PAPER))
    for m in (2, 3, 4):
        register(ExtensionSpec(f"pac{m}", _fixed(m), f"PacGAN with {m} samples per discriminator input", PAPER))
