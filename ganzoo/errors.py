"""Exceptions raised by ganzoo's library API: the CLI exits 2 for a :class:`UsageError`, 1 for any other."""

from __future__ import annotations


class GanzooError(Exception):
    """Base class of every error ganzoo raises on purpose."""


class UsageError(GanzooError):
    """The user asked for something that cannot work: a bad config key, an unknown name."""


class ConfigError(UsageError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class ResultsFileError(UsageError):
    """A ``results.json`` or ``sweep.json`` is not one ganzoo could have written."""


class UnknownNameError(UsageError, KeyError):
    """A variant, generator, discriminator, loss or dataset name that no plugin registered."""
    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = kind, name, available
        choices = ", ".join(available) if available else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}; available: {choices}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(GanzooError):
    """A plugin misbehaved: failed to import, broke the hook contract, or built something unusable."""
    def __init__(self, plugin: str, message: str, hook: str | None = None) -> None:
        self.plugin, self.hook = plugin, hook
        where = f"plugin {plugin!r}" + (f" (hook {hook})" if hook else "")
        super().__init__(f"{where}: {message}")


class DatasetError(GanzooError):
    """A dataset could not be loaded (missing files, no network)."""


class CheckpointError(GanzooError):
    """A checkpoint is missing, corrupt or unsafe."""


class DivergenceError(GanzooError):
    """Training produced a non-finite loss or parameter."""
    def __init__(self, step: int, message: str) -> None:
        self.step = step
        super().__init__(f"diverged at step {step}: {message}")
