"""Hook specifications: the whole contract between ganzoo and its plugins. A plugin is a module (or object) with
functions decorated by :data:`hookimpl`, exposed through the ``ganzoo`` entry-point group of its distribution::

    # pyproject.toml of your package
    [project.entry-points.ganzoo]
    lsgan = "ganzoo_lsgan"

Every hook is a ``register_*`` hook: ganzoo calls it once with a ``register`` callable, and the plugin calls
``register(...)`` as often as it likes. ganzoo owns the registries, rejects name clashes and reports any error with the
plugin's name. A hook implementation may accept fewer arguments than the spec lists."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def register_generators(register: Callable) -> None:
    """Register generator networks. Call ``register(ganzoo.Generator(name, build, description=..., conditional=False))``
    once per generator. ``build`` is called as ``build(latent_dim: int, image_shape: tuple[int, int, int], **options)``
    and must return an ``nn.Module`` mapping a latent batch of shape ``(B, latent_dim)`` to images of shape ``(B,
    *image_shape)`` with values in ``[-1, 1]`` (ganzoo checks the shape before training starts). ``options`` come from
    the run's ``generator_options`` config key. ``vectors=True``: it also builds for non-image data (``image_shape``
    then one sample's shape, such as ``(2,)``, values in the dataset's coordinates: end such a network without tanh).
    A ``conditional`` generator (:class:`ganzoo.Generator`) is given labels drawn from the dataset's class frequencies
    and can only train on a dataset with labels. Example::

        @hookimpl
        def register_generators(register):
            register(Generator("tiny-mlp", build=lambda latent_dim, image_shape: TinyMLP(...)))
            register(Generator("tiny-cmlp", build=lambda latent_dim, image_shape, num_classes: TinyCMLP(...),
                               conditional=True))
    """


@hookspec
def register_discriminators(register: Callable) -> None:
    """Register discriminators (critics). Call ``register(ganzoo.Discriminator(name, build, description=...,
    conditional=False, classifier=False))``. ``build`` is called as ``build(image_shape: tuple[int, int, int],
    **options)`` and must return an ``nn.Module`` that maps an image batch ``(B, *image_shape)`` to one raw score (a
    logit, not a probability) per sample: shape ``(B,)`` or ``(B, 1)``. ``options`` come from the run's
    ``discriminator_options`` config key. ``vectors=True``: it also builds for non-image data. A ``conditional``
    discriminator (``D(x, y)``) or a ``classifier`` (AC-GAN's ``(scores, class_logits)``; see
    :class:`ganzoo.Discriminator`) needs a loss that takes labels (see :func:`register_losses`)."""


@hookspec
def register_losses(register: Callable) -> None:
    """Register adversarial losses. Call ``register(ganzoo.LossSpec(name, build, description=..., classifier=False))``.
    ``build(**options)`` returns an object implementing :class:`ganzoo.Loss`: ``discriminator_loss(D, real, fake)`` and
    ``generator_loss(D, fake)``, each returning a scalar tensor, and optionally ``check_discriminator(D)``, which raises
    ``ValueError`` for a network the loss cannot train (WGAN-GP refuses a critic with BatchNorm). ``options`` come from
    the run's ``loss_options`` config key. Both methods may also declare the optional keyword arguments
    :class:`ganzoo.Loss` lists (``real_labels``, ``fake_labels``, ``real``); ganzoo passes only what a method declares.
    ``classifier=True`` says the loss trains a discriminator that returns ``(scores, class_logits)``. Example (a
    conditional-capable hinge loss)::

        class Hinge(ganzoo.Loss):
            def discriminator_loss(self, D, real, fake, real_labels=None, fake_labels=None):
                return F.relu(1 - D(real, real_labels)).mean() + F.relu(1 + D(fake, fake_labels)).mean()

            def generator_loss(self, D, fake, fake_labels=None):
                return -D(fake, fake_labels).mean()
    """


@hookspec
def register_extensions(register: Callable) -> None:
    """Register training extensions: things that act at named points of every step and own state. Call
    ``register(ganzoo.ExtensionSpec(name, build, description=..., paper=...))``. ``build(**options)`` returns a
    :class:`ganzoo.Extension`; ``options`` come from the run's ``extensions`` config key, a mapping of extension names
    to their options (``extensions: {ema: {decay: 0.999}, diffaugment: {}}``) or a list of names. Extensions act in the
    order the config lists them, at the points of a step :class:`ganzoo.Extension` lists, and carry their state through
    checkpoints. An extension that implements ``augment`` is refused on non-image data (2-D points) unless it is
    registered with ``vectors=True``. Example::

        class ClipWeights(ganzoo.Extension):
            def __init__(self, clip: float = 0.01):
                self.clip = clip

            def after_discriminator_step(self, D, step):
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-self.clip, self.clip)

        @hookimpl
        def register_extensions(register):
            register(ExtensionSpec("weight-clip", ClipWeights, "Clip the critic's weights after each update"))
    """


@hookspec
def register_variants(register: Callable) -> None:
    """Register variants: named recipes that users train with ``ganzoo train NAME``. Call
    ``register(ganzoo.Variant(name, generator=..., discriminator=..., loss=..., defaults={...}, aliases=(...),
    description=..., paper=...))``. ``generator``, ``discriminator`` and ``loss`` name registered components, possibly
    from other plugins. ``defaults`` holds any training config keys (``lr_g``, ``lr_d``, ``betas``, ``n_critic``,
    ``batch_size``, ``latent_dim``, ``init``, ``loss_options``, ``extensions``, ...); the user's config file and
    ``--set`` overrides take precedence (``--set extensions.NAME=false`` turns off an extension the variant enables)."""


@hookspec
def register_datasets(register: Callable) -> None:
    """Register datasets. Call ``register(ganzoo.DatasetSpec(name, load, image_shape=..., description=...))``. ``load``
    is called as ``load(root: pathlib.Path, split: str, download: bool, image_size: int | None)`` with split ``"train"``
    or ``"test"`` and returns ``(images, labels)``: ``images`` a ``uint8`` tensor of shape ``(N, C, H, W)``, or a
    map-style ``torch.utils.data.Dataset`` of ``uint8`` ``(C, H, W)`` items (or ``(image, label)`` pairs) for data too
    large to hold or slow to decode (read by DataLoader workers, so picklable); ``labels`` an ``int64`` tensor of shape
    ``(N,)`` or ``None``. Labels travel with their images (the same permutation, in memory, streamed and under torchrun)
    to conditional components and to losses that take them; register ``num_classes=`` when the labels need not cover
    every class. Raise ``ganzoo.DatasetError`` with an actionable message when the data cannot be had (e.g. offline).

    Non-image data (points of a 2-D mixture, feature vectors): return a floating-point tensor ``(N, *shape)`` of samples
    in the dataset's own coordinates. It is held in memory, trains only components registered with ``vectors=True`` (the
    others are refused with a message naming them), is evaluated by the dataset's own ``metrics=`` (image metrics need
    images) and drawn as a scatter plot of real and generated points instead of a sample grid. ``metrics(samples) ->
    {key: value}`` adds scores to every bench evaluation of the dataset, for images as well; declared as
    ``metrics(samples, labels=None)`` it also gets the classes a conditional generator was asked for (``None`` for an
    unconditional one), as MNIST's class agreement does."""


@hookspec
def register_schedules(register: Callable) -> None:
    """Register kinds of schedule: how a numeric hyperparameter may change over training. Call
    ``register(ganzoo.ScheduleSpec(name, value, description=...))``; :class:`ganzoo.ScheduleSpec` says how a config
    gives a schedule and how ``value`` is called. The built-in kinds ``constant``, ``linear``, ``cosine`` and
    ``piecewise`` are registered through this hook. Example::

        @hookimpl
        def register_schedules(register):
            register(ScheduleSpec("step-decay", lambda at, args, over: args[0] * 0.5 ** (at // args[1])))
    """
