"""ganzoo: a plugin-based zoo of GAN variants.

The library API (the CLI is a thin layer over it)::

    import ganzoo
    print([v["name"] for v in ganzoo.list_variants()])
    result = ganzoo.train("dcgan", steps=300, out="runs/dcgan")
    images = ganzoo.sample(result.checkpoint, n=64, out="grid.png")
    digits = ganzoo.sample("pretrained:dcgan", n=64, truncation=1.5)   # a generator that ships with ganzoo

Plugin authors use :data:`hookimpl` and the component classes (:class:`Generator`, :class:`Discriminator`,
:class:`Loss`, :class:`LossSpec`, :class:`Extension`, :class:`ExtensionSpec`, :class:`Variant`, :class:`DatasetSpec`);
callers add behaviour around a run's steps with :class:`Callback` (``ganzoo.train(..., callbacks=[...])``).

``import ganzoo`` imports neither torch nor any plugin: each name below is imported from its module on first
use, so ``ganzoo --help`` answers at once."""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    DivergenceError,
    GanzooError,
    PluginError,
    UnknownNameError,
    UsageError,
)
from .hookspecs import hookimpl
from .meta import version

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from .api import (
        build_config,
        export_samples,
        interpolate,
        list_components,
        list_variants,
        load_dataset,
        load_generator,
        sample,
        train,
    )
    from .bench.harness import bench
    from .bench.reproduction import reproduce
    from .components import (
        DatasetSpec,
        Discriminator,
        Extension,
        ExtensionContext,
        ExtensionSpec,
        Generator,
        Loss,
        LossSpec,
        ScheduleSpec,
        Variant,
        score_pair,
    )
    from .config import TrainConfig
    from .evaluation import evaluate
    from .plugins import get_plugin_manager as plugin_manager
    from .plugins import list_plugins, load_failures
    from .pretrained import list_pretrained
    from .sweep.tune import sweep
    from .training.callbacks import Evaluation
    from .training.loop import Callback, RunState, TrainResult

#: Public name -> (module, attribute): imported on first access.
_LAZY: dict[str, tuple[str, str]] = {
    **{name: ("api", name) for name in ("build_config", "export_samples", "interpolate", "list_components",
                                        "list_variants", "load_dataset", "load_generator", "sample", "train")},
    "bench": ("bench.harness", "bench"),
    **{name: ("components", name) for name in ("DatasetSpec", "Discriminator", "Extension", "ExtensionContext",
                                               "ExtensionSpec", "Generator", "Loss", "LossSpec", "ScheduleSpec",
                                               "Variant", "score_pair")},
    "TrainConfig": ("config", "TrainConfig"),
    "evaluate": ("evaluation", "evaluate"),
    "plugin_manager": ("plugins", "get_plugin_manager"),  # the process-wide manager, by its public name
    "list_plugins": ("plugins", "list_plugins"),
    "load_failures": ("plugins", "load_failures"),
    "list_pretrained": ("pretrained", "list_pretrained"),
    "reproduce": ("bench.reproduction", "reproduce"),
    "sweep": ("sweep.tune", "sweep"),
    **{name: ("training.loop", name) for name in ("Callback", "RunState", "TrainResult")},
    "Evaluation": ("training.callbacks", "Evaluation"),
}

__version__ = version()

__all__ = [
    "Callback", "CheckpointError", "ConfigError", "DatasetError", "DatasetSpec", "Discriminator", "DivergenceError",
    "Evaluation", "Extension", "ExtensionContext", "ExtensionSpec", "GanzooError", "Generator", "Loss", "LossSpec",
    "PluginError", "RunState", "ScheduleSpec", "TrainConfig", "TrainResult", "UnknownNameError", "UsageError",
    "Variant", "bench", "build_config", "evaluate", "export_samples", "hookimpl", "interpolate", "list_components",
    "list_plugins", "list_pretrained", "list_variants", "load_dataset", "load_failures", "load_generator",
    "plugin_manager", "reproduce", "sample", "score_pair", "sweep", "train", "version"
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'ganzoo' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """``ganzoo.bench`` and ``ganzoo.sweep`` stay the functions once their packages are imported: the attribute the
    import system sets for a subpackage is not kept where a lazy name is a function (the subpackage stays in
    ``sys.modules``, so ``from ganzoo.bench.profile import BenchProfile`` works)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _LAZY and _LAZY[name][0].split(".")[0] == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
