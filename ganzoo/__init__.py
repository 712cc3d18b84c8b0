"""ganzoo: a plugin-based zoo of GAN variants.

The library API (the CLI is a thin layer over it)::

    import ganzoo
    print([v["name"] for v in ganzoo.list_variants()])
    result = ganzoo.train("dcgan", steps=300, out="runs/dcgan")
    images = ganzoo.sample(result.checkpoint, n=64, out="grid.png")

Plugin authors use :data:`hookimpl` and the component classes (:class:`Generator`,
:class:`Discriminator`, :class:`Loss`, :class:`LossSpec`, :class:`Extension`, :class:`ExtensionSpec`,
:class:`Variant`, :class:`DatasetSpec`).
"""

from .api import (
    build_config,
    export_samples,
    list_components,
    list_variants,
    load_dataset,
    load_generator,
    sample,
    train,
    version,
)
from .bench import bench
from .components import (
    DatasetSpec,
    Discriminator,
    Extension,
    ExtensionContext,
    ExtensionSpec,
    Generator,
    Loss,
    LossSpec,
    Variant,
)
from .config import TrainConfig
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
from .evaluation import evaluate
from .hookspecs import hookimpl
from .plugins import get_plugin_manager as plugin_manager  # the process-wide manager, by its public name
from .plugins import list_plugins, load_failures
from .reproduce import reproduce
from .trainer import TrainResult

__version__ = version()

__all__ = [
    "CheckpointError", "ConfigError", "DatasetError", "DatasetSpec", "Discriminator", "DivergenceError", "Extension",
    "ExtensionContext", "ExtensionSpec", "GanzooError", "Generator", "Loss", "LossSpec", "PluginError",
    "TrainConfig", "TrainResult", "UnknownNameError", "UsageError", "Variant", "bench", "build_config", "evaluate",
    "export_samples", "hookimpl", "list_components", "list_plugins", "list_variants", "load_dataset",
    "load_failures", "load_generator", "plugin_manager", "reproduce", "sample", "train", "version",
]
