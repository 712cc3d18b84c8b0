"""What plugins register: generators, discriminators, losses, extensions, variants and datasets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from .config import TrainConfig


@dataclass(frozen=True)
class Generator:
    """A generator network: ``build(latent_dim, image_shape, **options) -> nn.Module``, called as ``G(z)``. With
    ``conditional=True`` ``build`` also receives ``num_classes`` (a keyword argument) and the network is called as
    ``G(z, y)``, ``y`` an ``int64`` tensor of class indices ``(B,)``."""
    name: str
    build: Callable[..., nn.Module]
    description: str = ""
    conditional: bool = False
    #: Also builds for non-image samples (a shape other than ``(C, H, W)``, e.g. 2-D points), in the dataset's own
    #: coordinates rather than [-1, 1]. Without it ganzoo refuses such data.
    vectors: bool = False


@dataclass(frozen=True)
class Discriminator:
    """A discriminator (critic): ``build(image_shape, **options) -> nn.Module`` giving one score per sample. With
    ``conditional=True`` (a projection discriminator, called as ``D(x, y)``) or ``classifier=True`` (AC-GAN's
    auxiliary classifier, returning ``(scores (B,), class_logits (B, num_classes))``, which only a loss registered
    with ``classifier=True`` can train), ``build`` also receives ``num_classes``."""
    name: str
    build: Callable[..., nn.Module]
    description: str = ""
    conditional: bool = False
    classifier: bool = False
    vectors: bool = False  #: also builds for non-image samples (see :attr:`Generator.vectors`)


class Loss:
    """The adversarial loss interface a :class:`LossSpec` builds: subclass it (or provide the same methods). Both
    losses are minimised; each returns a scalar tensor.

    ``D`` is the discriminator as the run sees it: ``D(x)``, or ``D(x, labels)`` when it is conditional (extensions
    may augment ``x`` on the way in). Score a real and a fake batch with :func:`score_pair` (one pass where the run
    allows it), not ``D`` twice. The trainer passes a method only those of the optional keyword arguments below that
    it declares (as pluggy does for hook implementations), so a loss written for unconditional GANs works unchanged:

    - ``real_labels``, ``fake_labels``: ``int64`` class indices ``(B,)`` of the real batch and of the fake batch's
      labels (``None`` on unlabelled data); only a loss declaring them can train a conditional or classifier D.
    - ``real`` (``generator_loss`` only): the real batch of the last discriminator update, for losses whose
      generator term compares with real scores (the relativistic GANs).

    Set ``double_backward = True`` when ``discriminator_loss`` differentiates through a gradient of ``D`` (a gradient
    penalty, as WGAN-GP's): with ``compile`` on, that step then stays eager (compiled graphs cannot double backward)."""
    double_backward: bool = False

    def discriminator_loss(self, D: Callable[..., Any], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Loss of the discriminator on a real batch and a (detached) fake batch."""
        raise NotImplementedError

    def generator_loss(self, D: Callable[..., Any], fake: torch.Tensor) -> torch.Tensor:
        """Loss of the generator on a fake batch (gradients flow through ``D`` into the generator)."""
        raise NotImplementedError

    def check_discriminator(self, D: nn.Module) -> None:
        """Raise ``ValueError`` if this loss cannot train ``D``. The default accepts every network."""


def score_pair(D: Callable[..., Any], real: torch.Tensor, fake: torch.Tensor, real_labels: torch.Tensor | None = None,
               fake_labels: torch.Tensor | None = None) -> tuple[Any, Any]:
    """The discriminator's scores of ``real`` and of ``fake``: ``(D(real, real_labels), D(fake, fake_labels))``.

    Call this rather than ``D`` twice: the trainer's ``D`` then scores both batches in one pass on the two concatenated
    where that gives the same scores (the ``discriminator_pass`` key; measured faster in docs/performance.md). Any other
    callable ``D`` (a plain module in a test) is called twice. A discriminator that returns a tuple (AC-GAN's ``(scores,
    class_logits)``) gives a tuple for each batch. Example::

        d_real, d_fake = score_pair(D, real, fake, real_labels, fake_labels)
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    """
    pair = getattr(D, "pair", None)
    if callable(pair):
        return pair(real, fake, real_labels, fake_labels)
    # any other callable: labels only where there are some, so a plain D(x) works for unlabelled batches
    return (D(real) if real_labels is None else D(real, real_labels),
            D(fake) if fake_labels is None else D(fake, fake_labels))


@dataclass(frozen=True)
class LossSpec:
    """An adversarial loss: ``build(**options) -> Loss``. ``classifier=True``: the loss expects a discriminator
    registered with ``classifier=True``, whose output is ``(scores, class_logits)`` (AC-GAN)."""
    name: str
    build: Callable[..., Loss]
    description: str = ""
    classifier: bool = False


@dataclass(frozen=True)
class ExtensionContext:
    """What :meth:`Extension.setup` is given, once, before training starts. ``generator`` and ``discriminator`` are the
    plain networks (not DDP-wrapped); ``rank`` is this process's rank under torchrun (0 otherwise): seed per-rank random
    streams with it. ``conditional_generator``: whether G is called as ``G(z, labels)``; ``conditional_discriminator``:
    whether D takes labels (the ``D`` an extension is given takes them either way, ignoring them if not conditional)."""
    generator: nn.Module
    discriminator: nn.Module
    config: TrainConfig
    num_classes: int | None
    image_shape: tuple[int, ...]
    device: torch.device
    rank: int = 0
    conditional_generator: bool = False
    conditional_discriminator: bool = False


class Extension:
    """Something that acts at named points of every training step and owns checkpointed state. Subclass it and override
    what you need; every method has a do-nothing default. The points, in the order a step runs them:

    1. :meth:`augment`: transforms every image batch the discriminator sees (real and fake, in the discriminator
       and the generator updates), for example differentiable augmentation; :meth:`discriminator_input` then
       reshapes it (PacGAN packs m samples into one input), and the discriminator is built for the shape that gives.
    2. :meth:`discriminator_penalty`: a term added to D's loss (R1 on the real batch, R2 on the fake); with
       :attr:`penalty_interval` ``k`` it is computed every k-th update only, multiplied by ``k`` (lazy regularisation).
    3. :meth:`observe_discriminator`: D's outputs on the update's real and fake batches, no extra pass (ADA, logging).
    4. :meth:`after_discriminator_step`: after each discriminator optimiser step (weight clipping).
    5. :meth:`generator_penalty`: a term added to G's loss (StyleGAN2's path length regularisation), lazily as well.
    6. :meth:`after_generator_step`: after each generator optimiser step (an exponential moving average).

    :meth:`sampling_generator` may return a network that draws grids, evaluations, exports and ``ganzoo sample`` in
    place of the trained generator (one extension of a run at most); ganzoo checkpoints its weights. Anything else that
    must survive a restart goes in :meth:`state_dict`, so a resumed run continues bit for bit. Random numbers must come
    from a ``torch.Generator`` the extension owns and saves, or from the global streams (ganzoo saves those)."""
    def setup(self, context: ExtensionContext) -> None:
        """Called once after the networks are built and before any checkpoint is restored."""

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Return the images the discriminator sees in place of ``images`` (differentiable)."""
        return images

    def discriminator_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the discriminator takes in place of the (augmented) batch ``x`` ``(B, *shape)``: a batch of another
        shape, e.g. PacGAN's ``(B / m, m * C, H, W)``, one score per row. D is built for the shape this gives
        ``batch_size`` zeros, so it is called before :meth:`setup` and must not depend on it; it must be differentiable
        and deterministic. Changing the batch size rules out a conditional or classifier D (one label per sample)."""
        return x

    #: Lazy regularisation: the penalties are computed only at updates whose ``step`` is a multiple of this, and
    #: multiplied by it so that their average strength does not depend on it (StyleGAN2: R1 every 16, path length 4).
    penalty_interval: int = 1

    def discriminator_penalty(self, D: Callable[..., Any], real: torch.Tensor, real_labels: torch.Tensor | None,
                              step: int) -> torch.Tensor | None:
        """A scalar added to the discriminator loss at discriminator update ``step`` (counted from 0), or ``None``.
        ``D`` is the discriminator in train mode as the loss sees it (augmented and reshaped by every extension; call it
        as ``D(x, labels)``). Declare ``fake`` and ``fake_labels`` to get the update's fake batch (detached from G) and
        its labels: ``def discriminator_penalty(self, D, real, real_labels, step, fake, fake_labels)``."""
        return None

    def observe_discriminator(self, real_scores: Any, fake_scores: Any, step: int) -> None:
        """Called after discriminator update ``step`` with what D returned (detached) when the loss scored the
        update's real and fake batches: scores ``(B,)`` or ``(B, 1)``, or ``(scores, class_logits)`` for a classifier;
        ``None`` for a batch the loss never passed to D as it was given (a loss that scores only interpolates, say)."""

    def after_discriminator_step(self, D: nn.Module, step: int) -> None:
        """Called after discriminator update ``step`` (counted from 0) with the plain network."""

    def generator_penalty(self, G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None,
                          step: int) -> torch.Tensor | None:
        """A scalar added to the generator loss at generator update ``step`` (counted from 0), or ``None``.
        ``G`` is the plain generator in train mode (call it as ``G(z)``, or ``G(z, labels)`` when
        ``context.conditional_generator``; its submodules may be called directly), ``z`` and ``labels`` the
        update's latents and fake labels; ``D`` is frozen during this update (lazily: :attr:`penalty_interval`)."""
        return None

    def after_generator_step(self, G: nn.Module, step: int) -> None:
        """Called after generator update ``step`` (counted from 1: the number of updates made so far)."""

    def sampling_generator(self) -> nn.Module | None:
        """A network of the generator's architecture to sample from instead of the trained one, or ``None``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart: tensors, numbers, strings, lists and dicts only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def implements(ext: Any, method: str) -> bool:
    """Whether an extension implements ``method`` itself, rather than inheriting :class:`Extension`'s
    do-nothing default (the trainer calls an extension only at the points it implements)."""
    own = getattr(type(ext), method, None)
    return own is not None and own is not getattr(Extension, method, None)


@dataclass(frozen=True)
class ExtensionSpec:
    """A training extension: ``build(**options) -> Extension``, enabled by ``extensions: {name: {options}}``."""
    name: str
    build: Callable[..., Extension]
    description: str = ""
    paper: str = ""
    #: An extension that implements :meth:`Extension.augment` also transforms non-image samples (e.g. 2-D points);
    #: without it ganzoo refuses such an extension on such data. Extensions that do not augment act on any data.
    vectors: bool = False


@dataclass(frozen=True)
class Variant:
    """A named recipe: which generator, discriminator and loss, with default hyperparameters (which may enable
    extensions: ``defaults={"extensions": {"weight-clip": {"clip": 0.01}}}``)."""
    name: str
    generator: str
    discriminator: str
    loss: str
    defaults: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    paper: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: ``load(root, split, download, image_size) -> (images, labels or None)``, the images a ``uint8``
    tensor NCHW or a ``torch.utils.data.Dataset`` of ``uint8`` CHW items (see the hookspec); or, for non-image data,
    a float tensor ``(N, *shape)`` of samples in the dataset's own coordinates (2-D points). ``image_shape``: one
    sample's shape at the dataset's native size, ``(C, H, W)`` (``(2,)`` for 2-D points), ``None`` when only known
    after loading (an image folder). ``num_classes``: how many classes its labels index (default: largest + 1)."""
    name: str
    load: Callable[[Path, str, bool, int | None], tuple[torch.Tensor | Dataset, torch.Tensor | None]]
    image_shape: tuple[int, ...] | None = None
    description: str = ""
    offline: bool = False
    num_classes: int | None = None
    #: Scores only this dataset defines, ``metrics(samples) -> {key: value}`` (or ``metrics(samples, labels=None)``:
    #: :func:`~ganzoo.hookspecs.register_datasets`), computed by the bench and ``ganzoo evaluate`` on every
    #: evaluation's generated samples (``uint8`` images, or float samples for non-image data, scored by these alone).
    #: Keys of :mod:`ganzoo.metric_keys` get their titles and directions on the leaderboard; others are shown as is.
    metrics: Callable[..., dict[str, float]] | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    """A kind of schedule: how a numeric hyperparameter changes over training, ``value(at, args, over) -> float``. A
    config gives a schedule as a mapping with the kind's name as its one key besides ``over`` and ``unit``, e.g. ``lr_g:
    {cosine: [2.0e-4, 5.0e-5], over: 10000}``: ``value`` then gets ``at`` the position in ``unit`` (generator ``steps``
    done or real ``images`` shown to D), ``args`` the kind's value and ``over`` (or ``None``). It must be a pure
    function of its arguments (so a resumed run is exact) and raise ``ValueError`` for ``args`` it cannot take."""
    name: str
    value: Callable[[float, Any, float | None], float]
    description: str = ""
