"""How a run is assembled: resolve the config from the variant, build G, D and the loss, check they fit.

Components may come from different plugins (DCGAN's networks with the WGAN-GP loss); every check names
the plugin at fault.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .components import Loss
from .config import TrainConfig, load_yaml, merge, parse_override, set_path, validate_config
from .errors import ConfigError, PluginError, UsageError
from .registry import Registry


class CompositionError(UsageError):
    """The chosen generator, discriminator, loss and dataset do not fit together."""


def user_settings(
    config: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    **explicit: Any,
) -> tuple[dict[str, Any], str]:
    """The layer the user sets, config file/dict < overrides < explicit keywords, read and parsed once; and the
    name of its source for error messages. Explicit keywords whose value is ``None`` are left out."""
    user: dict[str, Any] = {}
    source = "config"
    if isinstance(config, (str, Path)):
        user = load_yaml(config)
        source = f"config (file {str(config)!r} and overrides)"
    elif isinstance(config, dict):
        user = copy.deepcopy(config)  # overrides must not reach into the caller's nested dicts
    items: list[tuple[list[str], Any]] = []
    if isinstance(overrides, dict):
        items = [(key.split("."), value) for key, value in overrides.items()]
    elif overrides:
        items = [parse_override(text) for text in overrides]
    for path, value in items:
        if path == ["variant"]:
            raise ConfigError("override variant: choose the variant as the command's argument instead")
        set_path(user, path, value)
    user.update({key: value for key, value in explicit.items() if value is not None})
    return user, source


def resolve_config(
    registry: Registry,
    variant: str,
    *,
    config: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    source: str | None = None,
    **explicit: Any,
) -> TrainConfig:
    """Resolve a run's config: variant defaults < config file/dict < overrides < explicit keywords.

    ``overrides`` is a list of ``key=value`` strings (as ``--set`` takes them) or a dict of dotted keys.
    Explicit keywords whose value is ``None`` are ignored, so CLI options can be passed straight through.
    ``source`` names a dict ``config`` in error messages (see :func:`user_settings`).
    """
    user, found = user_settings(config, overrides, **explicit)
    source = source or found
    variant_name = variant or user.get("variant")
    if not variant_name:
        raise ConfigError("no variant given (pass one, or set `variant:` in the config file)")
    entry = registry.variants.get(str(variant_name))
    defaults = dict(entry.item.defaults)
    # A component swapped out by the user does not inherit the variant's options for the one it replaces.
    for role in ("generator", "discriminator", "loss"):
        if user.get(role) not in (None, getattr(entry.item, role)):
            defaults.pop(f"{role}_options", None)
    data = merge(defaults, user)
    data["variant"] = entry.item.name
    data.setdefault("out", f"runs/{entry.item.name}")
    if not isinstance(data.get("betas", ()), (list, tuple)):
        raise ConfigError(f"invalid {source}:\n  betas: must be a list of two numbers (got {data['betas']!r})")
    return validate_config(data, source)


@dataclass
class Assembly:
    """The built parts of a run and the plugins that supplied each."""

    config: TrainConfig
    generator: nn.Module
    discriminator: nn.Module
    loss: Loss
    plugins: dict[str, str]  # role -> plugin name
    names: dict[str, str]  # role -> component name
    image_shape: tuple[int, int, int]


def init_weights(module: nn.Module, std: float) -> None:
    """DCGAN initialisation: conv/linear weights N(0, std), norm scales N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if getattr(m, "weight", None) is not None:
                nn.init.normal_(m.weight, 1.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def _build(plugin: str, hook: str, what: str, fn: Any, *args: Any, **options: Any) -> Any:
    try:
        return fn(*args, **options)
    except TypeError as exc:
        if options:
            raise ConfigError(f"{what} (plugin {plugin!r}) rejected its options {options}: {exc}") from exc
        raise PluginError(plugin, f"building {what} failed: TypeError: {exc}", hook) from exc
    except Exception as exc:
        raise PluginError(plugin, f"building {what} failed: {type(exc).__name__}: {exc}", hook) from exc


def check_fit(assembly: Assembly, device: torch.device | str = "cpu") -> None:
    """Check that G makes images of the dataset's shape in [-1, 1] and D gives one score per sample."""
    cfg, G, D = assembly.config, assembly.generator, assembly.discriminator
    gp, dp = assembly.plugins["generator"], assembly.plugins["discriminator"]
    gname, dname = assembly.names["generator"], assembly.names["discriminator"]
    shape = assembly.image_shape
    g_rng = torch.Generator().manual_seed(0)
    z = torch.randn(2, cfg.latent_dim, generator=g_rng).to(device)
    was_training = (G.training, D.training)
    G.eval()
    D.eval()
    try:
        with torch.no_grad():
            try:
                fake = G(z)
            except Exception as exc:
                raise PluginError(gp, f"generator {gname!r} failed on a latent batch of shape "
                                  f"{tuple(z.shape)}: {type(exc).__name__}: {exc}", "register_generators") from exc
            if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != (2, *shape):
                got = tuple(fake.shape)[1:] if isinstance(fake, torch.Tensor) else type(fake).__name__
                raise CompositionError(
                    f"generator {gname!r} (plugin {gp!r}) makes images of shape {got}"
                    f" but dataset {cfg.dataset!r} has images of shape {shape}; choose a generator sized for "
                    f"this dataset or set image_size"
                )
            if not fake.is_floating_point():
                raise PluginError(gp, f"generator {gname!r} returned {fake.dtype} images; return floats in [-1, 1]",
                                  "register_generators")
            if not torch.isfinite(fake).all() or fake.min() < -1.001 or fake.max() > 1.001:
                raise PluginError(gp, f"generator {gname!r} returned values outside [-1, 1] "
                                  f"(min {fake.min().item():.3g}, max {fake.max().item():.3g}); end it with tanh",
                                  "register_generators")
            try:
                score = D(fake)
            except Exception as exc:
                raise CompositionError(
                    f"discriminator {dname!r} (plugin {dp!r}) cannot take images of shape {shape}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(score, torch.Tensor) or score.numel() != 2 or score.ndim > 2:
                got = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
                raise PluginError(dp, f"discriminator {dname!r} must return one score per sample, shape (B,) or "
                                  f"(B, 1); for B=2 it returned {got}", "register_discriminators")
    finally:
        G.train(was_training[0])
        D.train(was_training[1])
    try:
        assembly.loss.check_discriminator(D)
    except ValueError as exc:
        raise CompositionError(
            f"loss {assembly.names['loss']!r} (plugin {assembly.plugins['loss']!r}) cannot train discriminator "
            f"{dname!r} (plugin {dp!r}): {exc}"
        ) from exc


def assemble(
    registry: Registry, config: TrainConfig, image_shape: tuple[int, int, int], device: torch.device | str = "cpu"
) -> Assembly:
    """Build and check the generator, discriminator and loss a config names. Seeds nothing itself."""
    variant_entry = registry.variants.get(config.variant)
    variant = variant_entry.item
    names = {
        "generator": config.generator or variant.generator,
        "discriminator": config.discriminator or variant.discriminator,
        "loss": config.loss or variant.loss,
    }
    tables = {"generator": registry.generators, "discriminator": registry.discriminators, "loss": registry.losses}
    entries = {}
    for role, name in names.items():
        if name not in tables[role]:
            where = (f"variant {variant.name!r} (plugin {variant_entry.plugin!r}) names"
                     if getattr(config, role) is None else "config key " + role + " names")
            raise ConfigError(f"{where} {role} {name!r}, which no loaded plugin registers; "
                              f"available: {', '.join(tables[role].names())}")
        entries[role] = tables[role].get(name)
    G = _build(entries["generator"].plugin, "register_generators", f"generator {names['generator']!r}",
               entries["generator"].item.build, config.latent_dim, image_shape, **config.generator_options)
    D = _build(entries["discriminator"].plugin, "register_discriminators",
               f"discriminator {names['discriminator']!r}", entries["discriminator"].item.build, image_shape,
               **config.discriminator_options)
    loss = _build(entries["loss"].plugin, "register_losses", f"loss {names['loss']!r}", entries["loss"].item.build,
                  **config.loss_options)
    for role, obj, kind in (("generator", G, nn.Module), ("discriminator", D, nn.Module)):
        if not isinstance(obj, kind):
            raise PluginError(entries[role].plugin, f"{role} {names[role]!r} build() returned "
                              f"{type(obj).__name__}, not an nn.Module", f"register_{role}s")
    if not (callable(getattr(loss, "discriminator_loss", None)) and callable(getattr(loss, "generator_loss", None))):
        raise PluginError(entries["loss"].plugin, f"loss {names['loss']!r} build() returned {type(loss).__name__}, "
                          "which lacks discriminator_loss/generator_loss", "register_losses")
    if config.init == "normal":
        init_weights(G, config.init_std)
        init_weights(D, config.init_std)
    assembly = Assembly(
        config=config,
        generator=G.to(device),
        discriminator=D.to(device),
        loss=loss,
        plugins={role: entry.plugin for role, entry in entries.items()},
        names=names,
        image_shape=image_shape,
    )
    check_fit(assembly, device)
    return assembly
