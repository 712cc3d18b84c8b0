"""Build the plugin manager: hookspecs, entry points (``ganzoo`` group; the ``ganzoo`` distribution's always
load, ``GANZOO_LOAD_PLUGINS`` chooses third-party ones, empty: none), and load failures (:func:`load_failures`)."""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass

import pluggy

from . import hookspecs
from .meta import DISTRIBUTION

GROUP = "ganzoo"
LOAD_ENV = "GANZOO_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = DISTRIBUTION
_pm: pluggy.PluginManager | None = None


@dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be loaded, and why."""
    name: str
    distribution: str
    error: str


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, as ``ganzoo plugins`` lists it."""
    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    builtin: bool


def _is_builtin(dist: importlib.metadata.Distribution) -> bool:
    return (dist.metadata["Name"] or "").lower() == BUILTIN_DISTRIBUTION


def _load_entry_points(pm: pluggy.PluginManager, failures: list[LoadFailure],
                       distinfo: dict[str, tuple[str, str]]) -> None:
    value = os.environ.get(LOAD_ENV)
    allowed = None if value is None else {part.strip() for part in value.split(",") if part.strip()}
    seen: dict[str, str] = {}  # entry-point name -> distribution that provided it
    # Built-ins first, so that a third-party entry point can never shadow one of them.
    for dist in sorted(importlib.metadata.distributions(), key=lambda d: not _is_builtin(d)):
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != GROUP:
                continue
            if ep.name in seen:
                if seen[ep.name] != dist_name:
                    failures.append(LoadFailure(ep.name, dist_name, f"the entry-point name {ep.name!r} is already "
                                                f"taken by distribution {seen[ep.name]!r}; rename the entry point"))
                continue
            seen[ep.name] = dist_name
            if not _is_builtin(dist) and allowed is not None and ep.name not in allowed:
                continue
            try:  # this distribution's entry point itself (pluggy's loader could let a third party shadow it)
                pm.register(ep.load(), name=ep.name)
                distinfo[ep.name] = (dist_name, dist.version)
            except (Exception, SystemExit) as exc:  # an import error, sys.exit at import, a pluggy validation error
                failures.append(LoadFailure(ep.name, dist_name, f"{type(exc).__name__}: {exc}"))
                if pm.get_plugin(ep.name) is not None:
                    pm.unregister(name=ep.name)
    for name in sorted((allowed or set()) - set(seen)):
        failures.append(LoadFailure(name, "-", f"{LOAD_ENV} names {name!r}, but no installed distribution has a "
                                    f"{GROUP!r} entry point of that name; check the spelling"))


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """Return a new plugin manager with the hookspecs added and, by default, all entry points loaded."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    failures: list[LoadFailure] = []
    distinfo: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
    pm.ganzoo_distinfo = distinfo  # type: ignore[attr-defined]
    pm.ganzoo_load_failures = failures  # type: ignore[attr-defined]
    if load_entry_points:
        _load_entry_points(pm, failures, distinfo)
        while True:  # unregister plugins with misspelled hook names, as pytest does, reporting each
            try:
                pm.check_pending()
                break
            except pluggy.PluginValidationError as exc:
                name = pm.get_name(exc.plugin) or repr(exc.plugin)
                failures.append(LoadFailure(name, distinfo.get(name, ("?", ""))[0], f"PluginValidationError: {exc}"))
                pm.unregister(exc.plugin)
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _pm
    if _pm is None:
        _pm = make_plugin_manager()
    return _pm


def reset_plugin_manager() -> None:
    """Forget the process-wide plugin manager, so the next use reloads entry points (and the env var)."""
    global _pm
    _pm = None


def load_failures(pm: pluggy.PluginManager | None = None) -> list[LoadFailure]:
    """Plugins that failed to load into ``pm`` (default: the process-wide manager)."""
    pm = pm or get_plugin_manager()
    return list(getattr(pm, "ganzoo_load_failures", []))


def list_plugins(pm: pluggy.PluginManager | None = None) -> list[PluginInfo]:
    """Every loaded plugin with its distribution, version and the hooks it implements."""
    pm = pm or get_plugin_manager()
    distinfo: dict[str, tuple[str, str]] = getattr(pm, "ganzoo_distinfo", {})
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist_name, version = distinfo.get(name, (None, None))
        hooks = tuple(sorted(caller.name for caller in (pm.get_hookcallers(plugin) or [])))
        infos.append(PluginInfo(name=name, distribution=dist_name, version=version, hooks=hooks,
                                builtin=(dist_name or "").lower() == BUILTIN_DISTRIBUTION))
    return sorted(infos, key=lambda info: (not info.builtin, info.name))
