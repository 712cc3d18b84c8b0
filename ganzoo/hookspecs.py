"""Hook specifications: the whole contract between ganzoo and its plugins.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`, exposed through the
``ganzoo`` entry-point group of its distribution::

    # pyproject.toml of your package
    [project.entry-points.ganzoo]
    lsgan = "ganzoo_lsgan"

Every hook is a ``register_*`` hook: ganzoo calls it once with a ``register`` callable, and the plugin
calls ``register(...)`` as often as it likes. ganzoo owns the registries, rejects name clashes and reports
any error with the plugin's name. A hook implementation may accept fewer arguments than the spec lists.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def register_generators(register: Callable) -> None:
    """Register generator networks.

    Call ``register(ganzoo.Generator(name, build, description=...))`` once per generator. ``build`` is
    called as ``build(latent_dim: int, image_shape: tuple[int, int, int], **options)`` and must return an
    ``nn.Module`` mapping a latent batch of shape ``(B, latent_dim)`` to images of shape
    ``(B, *image_shape)`` with values in ``[-1, 1]`` (ganzoo checks the shape before training starts).
    ``options`` come from the run's ``generator_options`` config key.

    Example::

        @hookimpl
        def register_generators(register):
            register(Generator("tiny-mlp", build=lambda latent_dim, image_shape: TinyMLP(...)))
    """


@hookspec
def register_discriminators(register: Callable) -> None:
    """Register discriminators (critics).

    Call ``register(ganzoo.Discriminator(name, build, description=...))``. ``build`` is called as
    ``build(image_shape: tuple[int, int, int], **options)`` and must return an ``nn.Module`` that maps an
    image batch ``(B, *image_shape)`` to one raw score (a logit, not a probability) per sample: shape
    ``(B,)`` or ``(B, 1)``. ``options`` come from the run's ``discriminator_options`` config key.
    """


@hookspec
def register_losses(register: Callable) -> None:
    """Register adversarial losses.

    Call ``register(ganzoo.LossSpec(name, build, description=...))``. ``build(**options)`` returns an
    object implementing :class:`ganzoo.Loss`: ``discriminator_loss(D, real, fake)`` and
    ``generator_loss(D, fake)``, each returning a scalar tensor, and optionally
    ``check_discriminator(D)``, which raises ``ValueError`` for a network the loss cannot train (WGAN-GP
    refuses a critic with BatchNorm). ``options`` come from the run's ``loss_options`` config key.
    """


@hookspec
def register_variants(register: Callable) -> None:
    """Register variants: named recipes that users train with ``ganzoo train NAME``.

    Call ``register(ganzoo.Variant(name, generator=..., discriminator=..., loss=..., defaults={...},
    aliases=(...), description=..., paper=...))``. ``generator``, ``discriminator`` and ``loss`` name
    registered components, possibly from other plugins. ``defaults`` holds any training config keys
    (``lr_g``, ``lr_d``, ``betas``, ``n_critic``, ``batch_size``, ``latent_dim``, ``init``,
    ``loss_options``, ...); the user's config file and ``--set`` overrides take precedence.
    """


@hookspec
def register_datasets(register: Callable) -> None:
    """Register datasets.

    Call ``register(ganzoo.DatasetSpec(name, load, image_shape=..., description=...))``. ``load`` is called
    as ``load(root: pathlib.Path, split: str, download: bool, image_size: int | None)`` with split
    ``"train"`` or ``"test"`` and returns ``(images, labels)``: ``images`` a ``uint8`` tensor of shape
    ``(N, C, H, W)``, or a map-style ``torch.utils.data.Dataset`` of ``uint8`` ``(C, H, W)`` items (or
    ``(image, label)`` pairs) for data too large to hold or slow to decode (read by DataLoader workers, so
    picklable); ``labels`` an ``int64`` tensor of shape ``(N,)`` or ``None``. Raise
    ``ganzoo.DatasetError`` with an actionable message when the data cannot be had (for example offline).
    """
