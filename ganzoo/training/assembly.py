"""How a run is assembled: resolve the config from the variant, build G, D, the loss and the extensions, and check that
they fit each other and the dataset. Components may come from different plugins; every check names the one at fault."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..components import Discriminator, Extension, Loss, implements
from ..config import (
    TrainConfig,
    extension_names_as_mapping,
    load_yaml,
    merge,
    parse_override,
    set_path,
    shown,
    validate_config,
)
from ..errors import ConfigError, PluginError, UsageError
from ..registry import Entry, Registry
from .sampling import generate
from .schedules import Schedule, find_schedules, values_at, with_values

#: The keyword arguments a loss method may declare, and so receive (see :class:`ganzoo.Loss`).
LOSS_KEYWORDS = {"discriminator_loss": ("real_labels", "fake_labels"),
                 "generator_loss": ("real", "real_labels", "fake_labels")}
PENALTY_KEYWORDS = ("fake", "fake_labels")  #: what :meth:`ganzoo.Extension.discriminator_penalty` may declare


class CompositionError(UsageError):
    """The chosen generator, discriminator, loss and dataset do not fit together."""


def user_settings(config: str | Path | dict[str, Any] | None = None,
                  overrides: list[str] | dict[str, Any] | None = None, **explicit: Any) -> tuple[dict[str, Any], str]:
    """The layer the user sets, config file/dict < overrides < explicit keywords, read and parsed once; and the
    name of its source for error messages. Explicit keywords whose value is ``None`` are left out."""
    user: dict[str, Any] = {}
    source = "config"
    if isinstance(config, (str, Path)):
        user, source = load_yaml(config), f"config (file {str(config)!r} and overrides)"
    elif isinstance(config, dict):
        user = copy.deepcopy(config)  # overrides must not reach into the caller's nested dicts
    items = ([(key.split("."), value) for key, value in overrides.items()] if isinstance(overrides, dict)
             else [parse_override(text) for text in overrides or ()])
    for path, value in items:
        if path == ["variant"]:
            raise ConfigError("override variant: choose the variant as the command's argument instead")
        set_path(user, path, value)
    user.update({key: value for key, value in explicit.items() if value is not None})
    return user, source


def resolve_config(registry: Registry, variant: str, *, config: str | Path | dict[str, Any] | None = None,
                   overrides: list[str] | dict[str, Any] | None = None, source: str | None = None,
                   **explicit: Any) -> TrainConfig:
    """Resolve a run's config: variant defaults < :func:`user_settings` (config file/dict < overrides < explicit
    keywords, ``None`` ones ignored so CLI options pass through); ``source`` names a dict ``config`` in errors."""
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
    for layer in (defaults, user):  # a list adds to the variant's extensions instead of replacing them
        if "extensions" in layer:
            layer["extensions"] = extension_names_as_mapping(layer["extensions"])
    data = merge(defaults, user)
    # A variant's `generator_batch: reuse` means "when the step allows it": a user who asks for several critic
    # updates per step (and says nothing about generator_batch) gets fresh batches, not an error.
    if "generator_batch" not in user and data.get("n_critic", 1) != 1 and data.get("generator_batch") == "reuse":
        data["generator_batch"] = "fresh"
    data["variant"] = entry.item.name
    data.setdefault("out", f"runs/{entry.item.name}")
    if not isinstance(data.get("betas", ()), (list, tuple)):
        raise ConfigError(f"invalid {source}:\n  betas: must be a list of two numbers (got {shown(data['betas'])})")
    return validate_config(data, source)


def declared_keywords(method: Callable[..., Any], offered: tuple[str, ...]) -> tuple[str, ...]:
    """Which of ``offered`` ``method`` accepts as keyword arguments (all of them if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return offered
    return tuple(name for name in offered if name in params and params[name].kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


class BuiltExtension(NamedTuple):
    """An extension a run built: its registered name, the plugin that registered it, the built object."""
    name: str
    plugin: str
    extension: Extension


@dataclass
class Assembly:
    """The built parts of a run and the plugins that supplied each."""
    config: TrainConfig
    generator: nn.Module
    discriminator: nn.Module
    loss: Loss
    plugins: dict[str, str]  # role -> plugin name
    names: dict[str, str]  # role -> component name
    image_shape: tuple[int, ...]  # (C, H, W) for images; e.g. (2,) for 2-D points
    num_classes: int | None = None  # the dataset's, when any component uses labels; else None
    conditional_generator: bool = False  # G(z, y)
    conditional_discriminator: bool = False  # D(x, y)
    classifier_discriminator: bool = False  # D(x) -> (scores, class_logits)
    loss_keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per method: the LOSS_KEYWORDS it declared
    extensions: list[BuiltExtension] = field(default_factory=list)  # the built extensions, in the order they act
    discriminator_shape: tuple[int, ...] | None = None  # one sample as D takes it, after discriminator_input
    schedules: list[Schedule] = field(default_factory=list)  # the components were built with their step-0 values

    def discriminator_inputs(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """The ``discriminator_input`` of each extension that reshapes what D takes, in order."""
        return [e.extension.discriminator_input for e in self.extensions
                if implements(e.extension, "discriminator_input")]


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


def _build(plugin: str, hook: str, what: str, fn: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """Call a plugin's ``build``: options it does not accept are the user's config error; anything ``build``
    itself raises is the plugin's (or, for a ``ValueError``, a value the user chose: also named)."""
    try:
        inspect.signature(fn).bind(*args, **options)
    except TypeError as exc:
        raise ConfigError(f"{what} (plugin {plugin!r}) rejected its options {options}: {exc}") from None
    except ValueError:  # no signature to check (a builtin): let the call decide
        pass
    try:
        return fn(*args, **options)
    except ValueError as exc:  # the plugin's own check of its options or of the data's shape
        raise ConfigError(f"{what} (plugin {plugin!r}) cannot be built with options {options} for this run: "
                          f"{exc}") from exc
    except Exception as exc:
        raise PluginError(plugin, f"building {what} failed: {type(exc).__name__}: {exc}", hook) from exc


def check_fit(assembly: Assembly, device: torch.device | str = "cpu") -> None:
    """Check that G makes images of the dataset's shape in [-1, 1] and D gives one score per sample (and, for a
    classifier discriminator, class logits), calling each with labels where it is conditional."""
    G, D = assembly.generator, assembly.discriminator
    n = assembly.config.batch_size if assembly.discriminator_inputs() else 2  # packing needs a divisible batch
    z = torch.randn(n, assembly.config.latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
    y = torch.zeros(n, dtype=torch.int64, device=device)
    was_training = (G.training, D.training)
    G.eval()
    D.eval()
    try:
        with torch.no_grad():
            fake = _checked_generator_output(assembly, z, y)
            for reshape in assembly.discriminator_inputs():
                fake = reshape(fake)
            _check_discriminator_output(assembly, fake, y)
    finally:
        G.train(was_training[0])
        D.train(was_training[1])
    dname, dp = assembly.names["discriminator"], assembly.plugins["discriminator"]
    try:
        assembly.loss.check_discriminator(D)
    except ValueError as exc:
        raise CompositionError(f"loss {assembly.names['loss']!r} (plugin {assembly.plugins['loss']!r}) cannot train "
                               f"discriminator {dname!r} (plugin {dp!r}): {exc}") from exc


def _checked_generator_output(assembly: Assembly, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """G's batch for ``z`` (and ``y`` if conditional), refused unless finite floats of the dataset's shape."""
    cfg, shape, n = assembly.config, assembly.image_shape, z.shape[0]
    gp, gname = assembly.plugins["generator"], assembly.names["generator"]
    call = "G(z, y)" if assembly.conditional_generator else "G(z)"
    try:
        fake = generate(assembly.generator, z, y if assembly.conditional_generator else None)
    except Exception as exc:
        raise PluginError(gp, f"generator {gname!r} failed on {call} with a latent batch of shape "
                          f"{tuple(z.shape)}: {type(exc).__name__}: {exc}", "register_generators") from exc
    if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != (n, *shape):
        got = tuple(fake.shape)[1:] if isinstance(fake, torch.Tensor) else type(fake).__name__
        raise CompositionError(f"generator {gname!r} (plugin {gp!r}) makes images of shape {got} but dataset "
                               f"{cfg.dataset!r} has images of shape {shape}; choose a generator sized for this "
                               "dataset or set image_size")
    if not fake.is_floating_point():
        raise PluginError(gp, f"generator {gname!r} returned {fake.dtype} images; return floats in [-1, 1]",
                          "register_generators")
    if not torch.isfinite(fake).all():
        if cfg.init == "normal":  # the user's initialisation, not the plugin, is the likelier cause
            raise ConfigError(f"generator {gname!r} returns values that are not finite after init=normal "
                              f"with init_std={cfg.init_std}; choose a smaller init_std (DCGAN's is 0.02)")
        raise PluginError(gp, f"generator {gname!r} returned values that are not finite", "register_generators")
    if len(shape) == 3 and (fake.min() < -1.001 or fake.max() > 1.001):  # other samples: the dataset's coordinates
        raise PluginError(gp, f"generator {gname!r} returned values outside [-1, 1] (min {fake.min().item():.3g}, "
                          f"max {fake.max().item():.3g}); end it with tanh", "register_generators")
    return fake


def _check_discriminator_output(assembly: Assembly, seen: torch.Tensor, y: torch.Tensor) -> None:
    """Refuse a D that cannot take ``seen`` or gives not one score per sample (and class logits if a classifier)."""
    D, dp, dname = assembly.discriminator, assembly.plugins["discriminator"], assembly.names["discriminator"]
    try:
        out = D(seen, y) if assembly.conditional_discriminator else D(seen)
    except Exception as exc:
        raise CompositionError(f"discriminator {dname!r} (plugin {dp!r}) cannot take images of shape "
                               f"{tuple(seen.shape[1:])}: {type(exc).__name__}: {exc}") from exc
    if assembly.classifier_discriminator and not (
            isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], torch.Tensor)
            and tuple(out[1].shape) == (seen.shape[0], assembly.num_classes)):
        raise PluginError(dp, f"discriminator {dname!r} is registered with classifier=True and must return "
                          f"(scores, class_logits of shape (B, {assembly.num_classes}))", "register_discriminators")
    score = out[0] if assembly.classifier_discriminator else out
    if not isinstance(score, torch.Tensor) or score.numel() != seen.shape[0] or score.ndim > 2:
        got = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
        raise PluginError(dp, f"discriminator {dname!r} must return one score per sample, shape (B,) or "
                          f"(B, 1); for B={seen.shape[0]} it returned {got}", "register_discriminators")


def check_labels_fit(entries: dict[str, Entry], names: dict[str, str], loss: Loss) -> dict[str, tuple[str, ...]]:
    """Refuse a loss that cannot train the discriminator (labels, class logits); return its methods' keywords."""
    d, spec = entries["discriminator"].item, entries["loss"].item
    keywords = {method: declared_keywords(getattr(loss, method), offered) for method, offered in LOSS_KEYWORDS.items()}
    lname = f"loss {names['loss']!r} (plugin {entries['loss'].plugin!r})"
    dname = f"discriminator {names['discriminator']!r} (plugin {entries['discriminator'].plugin!r})"
    if (d.conditional or d.classifier) and not {"real_labels", "fake_labels"} <= set(keywords["discriminator_loss"]):
        raise CompositionError(f"{dname} needs labels, but {lname} does not take them (its discriminator_loss "
                               "declares no real_labels/fake_labels); choose a loss that does, e.g. gan or hinge")
    if d.classifier and not getattr(spec, "classifier", False):
        raise CompositionError(f"{dname} returns (scores, class_logits), which only a loss registered with "
                               f"classifier=True can train, and {lname} is not one; use loss=acgan")
    if getattr(spec, "classifier", False) and not d.classifier:
        raise CompositionError(f"{lname} needs a discriminator with an auxiliary classifier (registered with "
                               f"classifier=True), and {dname} is not one")
    return keywords


def build_extensions(registry: Registry, config: TrainConfig) -> list[BuiltExtension]:
    """Build the extensions the config enables, in its order; each must be an :class:`Extension`-like object."""
    built = []
    for name, options in config.extensions.items():
        if name not in registry.extensions:
            raise ConfigError(f"config key extensions names {name!r}, which no loaded plugin registers; "
                              f"available: {', '.join(registry.extensions.names()) or '(none)'}")
        entry = registry.extensions.get(name)
        ext = _build(entry.plugin, "register_extensions", f"extension {name!r}", entry.item.build, **options)
        missing = [m for m in ("augment", "discriminator_penalty", "after_discriminator_step",
                               "after_generator_step", "sampling_generator", "state_dict", "load_state_dict", "setup")
                   if not callable(getattr(ext, m, None))]
        if missing:
            raise PluginError(entry.plugin, f"extension {name!r} build() returned {type(ext).__name__}, which lacks "
                              f"{', '.join(missing)}; subclass ganzoo.Extension", "register_extensions")
        built.append(BuiltExtension(entry.item.name, entry.plugin, ext))
    return built


def discriminator_shape(extensions: list[BuiltExtension], config: TrainConfig,
                        image_shape: tuple[int, ...], d_spec: Discriminator, d_name: str) -> tuple[int, ...]:
    """The shape of one sample as the discriminator takes it: ``image_shape`` after every extension's
    :meth:`~ganzoo.Extension.discriminator_input`, found by passing it a batch of ``batch_size`` zeros."""
    reshaping = [e for e in extensions if implements(e.extension, "discriminator_input")]
    if not reshaping:
        return tuple(image_shape)
    x = torch.zeros(config.batch_size, *image_shape)
    for name, plugin, ext in reshaping:
        try:
            y = ext.discriminator_input(x)
        except Exception as exc:
            raise CompositionError(f"extension {name!r} (plugin {plugin!r}) cannot reshape a batch of shape "
                                   f"{tuple(x.shape)} for the discriminator: {type(exc).__name__}: {exc}") from exc
        if not isinstance(y, torch.Tensor) or y.ndim < 2:
            raise PluginError(plugin, f"extension {name!r} discriminator_input must return a batch tensor",
                              "register_extensions")
        if y.shape[0] != x.shape[0] and (d_spec.conditional or d_spec.classifier):
            raise CompositionError(f"extension {name!r} (plugin {plugin!r}) puts several samples in one "
                                   f"discriminator input, but discriminator {d_name!r} is conditional or a "
                                   "classifier and needs one label per sample; use an unconditional one")
        x = y
    return tuple(x.shape[1:])


def assemble(registry: Registry, config: TrainConfig, image_shape: tuple[int, ...], device: torch.device | str = "cpu",
             num_classes: int | None = None) -> Assembly:
    """Build and check the generator, discriminator, loss and extensions a config names, for a dataset with
    ``num_classes`` classes (``None``: unlabelled). Seeds nothing itself."""
    names, entries = _components(registry, config)
    g_spec, d_spec = entries["generator"].item, entries["discriminator"].item
    _check_data_fits(config, names, entries, image_shape, num_classes)
    schedules = find_schedules(registry, config)
    built = with_values(config, values_at(schedules, 0, 0))  # what the components are built with
    extensions = build_extensions(registry, built)
    _check_extensions_fit(registry, config, extensions, image_shape)
    d_shape = discriminator_shape(extensions, config, image_shape, d_spec, names["discriminator"])
    g_classes = {"num_classes": num_classes} if g_spec.conditional else {}
    d_classes = {"num_classes": num_classes} if (d_spec.conditional or d_spec.classifier) else {}
    G = _build(entries["generator"].plugin, "register_generators", f"generator {names['generator']!r}",
               g_spec.build, config.latent_dim, image_shape, **g_classes, **config.generator_options)
    D = _build(entries["discriminator"].plugin, "register_discriminators", f"discriminator {names['discriminator']!r}",
               d_spec.build, d_shape, **d_classes, **config.discriminator_options)
    loss = _build(entries["loss"].plugin, "register_losses", f"loss {names['loss']!r}", entries["loss"].item.build,
                  **built.loss_options)
    _check_built(names, entries, G, D, loss)
    _check_schedulable(schedules, names, entries, loss, extensions)
    keywords = check_labels_fit(entries, names, loss)
    labelled = g_spec.conditional or d_spec.conditional or d_spec.classifier  # else the loss gets labels None
    if config.init == "normal":
        init_weights(G, config.init_std)
        init_weights(D, config.init_std)
    assembly = Assembly(config=config, generator=G.to(device), discriminator=D.to(device), loss=loss, names=names,
                        plugins={role: entry.plugin for role, entry in entries.items()}, image_shape=image_shape,
                        num_classes=num_classes if labelled else None, conditional_generator=g_spec.conditional,
                        conditional_discriminator=d_spec.conditional, classifier_discriminator=d_spec.classifier,
                        loss_keywords=keywords, extensions=extensions, discriminator_shape=d_shape, schedules=schedules)
    check_fit(assembly, device)
    return assembly


def _components(registry: Registry, config: TrainConfig) -> tuple[dict[str, str], dict[str, Entry[Any]]]:
    """The name of the generator, discriminator and loss the config (else its variant) names, and their
    registry entries; a name no plugin registers is refused, saying where it came from."""
    variant_entry = registry.variants.get(config.variant)
    variant = variant_entry.item
    tables = {"generator": registry.generators, "discriminator": registry.discriminators, "loss": registry.losses}
    names = {role: getattr(config, role) or getattr(variant, role) for role in tables}
    entries: dict[str, Entry[Any]] = {}
    for role, name in names.items():
        if name not in tables[role]:
            where = (f"variant {variant.name!r} (plugin {variant_entry.plugin!r}) names"
                     if getattr(config, role) is None else "config key " + role + " names")
            raise ConfigError(f"{where} {role} {name!r}, which no loaded plugin registers; "
                              f"available: {', '.join(tables[role].names())}")
        entries[role] = tables[role].get(name)
    return names, entries


def _check_data_fits(config: TrainConfig, names: dict[str, str], entries: dict[str, Entry[Any]],
                     image_shape: tuple[int, ...], num_classes: int | None) -> None:
    """Refuse networks that need labels the dataset lacks, or images where it holds other samples."""
    for role in ("generator", "discriminator"):
        spec = entries[role].item
        if (getattr(spec, "conditional", False) or getattr(spec, "classifier", False)) and num_classes is None:
            raise CompositionError(f"{role} {names[role]!r} (plugin {entries[role].plugin!r}) is conditional and "
                                   f"needs class labels, but dataset {config.dataset!r} has none; choose a labelled "
                                   f"dataset or an unconditional {role}")
    for role in ("generator", "discriminator"):
        if len(image_shape) != 3 and not getattr(entries[role].item, "vectors", False):  # e.g. 2-D points
            raise CompositionError(f"dataset {config.dataset!r} holds samples of shape {tuple(image_shape)}, not "
                                   f"images (C, H, W), and {role} {names[role]!r} (plugin {entries[role].plugin!r}) "
                                   f"is built for images only; choose one registered with vectors=True (the mlp "
                                   f"{role}: --set {role}=mlp, or variant vanilla)")


def _check_extensions_fit(registry: Registry, config: TrainConfig, extensions: list[BuiltExtension],
                          image_shape: tuple[int, ...]) -> None:
    """Refuse an image augmentation on non-image data, and more than one sampling generator."""
    if len(image_shape) != 3:
        for name, plugin, ext in extensions:
            if implements(ext, "augment") and not registry.extensions.get(name).item.vectors:
                raise CompositionError(f"extension {name!r} (plugin {plugin!r}) augments images, but dataset "
                                       f"{config.dataset!r} holds samples of shape {tuple(image_shape)}, not images "
                                       f"(C, H, W); leave {name!r} out of extensions for this dataset (an extension "
                                       "that also transforms such samples is registered with vectors=True)")
    samplers = [e.name for e in extensions if implements(e.extension, "sampling_generator")]
    if len(samplers) > 1:
        raise CompositionError(f"extensions {', '.join(map(repr, samplers))} each replace the sampling generator; "
                               "enable at most one of them")


def _check_built(names: dict[str, str], entries: dict[str, Entry[Any]], G: object, D: object, loss: object) -> None:
    """Refuse a build() that returned something other than a module (G, D) or a loss."""
    for role, obj in (("generator", G), ("discriminator", D)):
        if not isinstance(obj, nn.Module):
            raise PluginError(entries[role].plugin, f"{role} {names[role]!r} build() returned "
                              f"{type(obj).__name__}, not an nn.Module", f"register_{role}s")
    if not (callable(getattr(loss, "discriminator_loss", None)) and callable(getattr(loss, "generator_loss", None))):
        raise PluginError(entries["loss"].plugin, f"loss {names['loss']!r} build() returned {type(loss).__name__}, "
                          "which lacks discriminator_loss/generator_loss", "register_losses")


def _check_schedulable(schedules: list[Schedule], names: dict[str, str], entries: dict[str, Entry[Any]],
                       loss: object, extensions: list[BuiltExtension]) -> None:
    """Refuse a scheduled option its component does not keep as an attribute of that name (set before every step)."""
    owners = {"loss_options": (loss, f"loss {names['loss']!r} (plugin {entries['loss'].plugin!r})")}
    owners.update({f"extensions.{e.name}": (e.extension, f"extension {e.name!r} (plugin {e.plugin!r})")
                   for e in extensions})
    for schedule in schedules:
        where, _, option = schedule.key.rpartition(".")
        if where in owners and not hasattr(owners[where][0], option):
            raise ConfigError(f"{schedule.key}: {owners[where][1]} does not keep its option {option!r} as an "
                              f"attribute of that name, so it cannot be scheduled; give it a number")
