"""The registries: what every loaded plugin registered, and which plugin registered it. Each ``register_*`` hook
implementation gets a ``register`` callable that knows its plugin, so that clashes and failures name it."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from .components import DatasetSpec, Discriminator, ExtensionSpec, Generator, LossSpec, ScheduleSpec, Variant
from .errors import PluginError, UnknownNameError
from .plugins import get_plugin_manager

T = TypeVar("T")

# hook name -> (kind used in messages, the class a plugin must register)
HOOKS: dict[str, tuple[str, type]] = {
    "register_generators": ("generator", Generator),
    "register_discriminators": ("discriminator", Discriminator),
    "register_losses": ("loss", LossSpec),
    "register_extensions": ("extension", ExtensionSpec),
    "register_variants": ("variant", Variant),
    "register_datasets": ("dataset", DatasetSpec),
    "register_schedules": ("schedule", ScheduleSpec),
}
_built: weakref.WeakKeyDictionary[pluggy.PluginManager, tuple[frozenset[tuple[str, int]], list[Any], Registry]] = (
    weakref.WeakKeyDictionary())


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered thing and the plugin that registered it."""
    item: T
    plugin: str


@dataclass
class Table(Generic[T]):
    """One registry: names (and aliases) to entries."""
    kind: str
    entries: dict[str, Entry[T]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def add(self, item: Any, plugin: str, hook: str) -> None:
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(plugin, f"registered a {self.kind} without a name", hook)
        for key in (name, *getattr(item, "aliases", ())):
            owner = self.entries.get(key) or self.entries.get(self.aliases.get(key, ""))
            if owner is not None:
                raise PluginError(plugin, f"{self.kind} {key!r} is already registered by plugin {owner.plugin!r}; "
                                  "choose another name", hook)
        self.entries[name] = Entry(item, plugin)
        self.aliases.update(dict.fromkeys(getattr(item, "aliases", ()), name))

    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` (which may be an alias)."""
        canonical = self.aliases.get(name, name)
        if canonical not in self.entries:
            raise UnknownNameError(self.kind, name, self.names())
        return canonical

    def get(self, name: str) -> Entry[T]:
        """The entry registered as ``name`` (or an alias); :class:`UnknownNameError` if none."""
        return self.entries[self.resolve(name)]

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries or name in self.aliases


@dataclass
class Registry:
    """Everything the loaded plugins registered."""
    generators: Table[Generator]
    discriminators: Table[Discriminator]
    losses: Table[LossSpec]
    extensions: Table[ExtensionSpec]
    variants: Table[Variant]
    datasets: Table[DatasetSpec]
    schedules: Table[ScheduleSpec]


def _call_hook(pm: pluggy.PluginManager, hook: str, table: Table[Any], expected: type) -> None:
    for impl in getattr(pm.hook, hook).get_hookimpls():  # built-ins first, so a clash names the newcomer
        plugin = impl.plugin_name
        def register(item: Any, _plugin: str = plugin) -> None:
            if not isinstance(item, expected):
                raise PluginError(_plugin, f"register() takes a ganzoo.{expected.__name__}, got {type(item).__name__}",
                                  hook)
            table.add(item, _plugin, hook)
        kwargs = {"register": register}
        try:
            impl.function(*[kwargs[arg] for arg in impl.argnames])
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(plugin, f"raised {type(exc).__name__}: {exc}", hook) from exc


def get_registry(pm: pluggy.PluginManager | None = None) -> Registry:
    """What every ``register_*`` hook of ``pm`` (default: the process-wide manager) registered, collected again
    whenever a plugin is registered or unregistered."""
    pm = pm or get_plugin_manager()
    plugins = pm.get_plugins()
    key = frozenset((pm.get_name(plugin), id(plugin)) for plugin in plugins)
    cached = _built.get(pm)
    if cached is not None and cached[0] == key:
        return cached[2]
    tables = {hook: Table(kind) for hook, (kind, _) in HOOKS.items()}
    for hook, (_, expected) in HOOKS.items():
        _call_hook(pm, hook, tables[hook], expected)
    registry = Registry(**{hook.removeprefix("register_"): table for hook, table in tables.items()})
    # the plugins are kept with the key: while they live, no new plugin object can take one of their ids
    _built[pm] = (key, list(plugins), registry)
    return registry
