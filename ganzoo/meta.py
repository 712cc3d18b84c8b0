"""Facts about the installation that cost no heavy import (read at the CLI's start-up): version, bundled profiles."""

from __future__ import annotations

import importlib.metadata
from importlib import resources
from pathlib import Path

#: The distribution's name on the package index (``pip install ganzoo-gan``): ``ganzoo`` there is an unrelated
#: 2018 project. The package is imported as ``ganzoo`` and the command is ``ganzoo``.
DISTRIBUTION = "ganzoo-gan"
#: Where a bench runs its trials: in this process or local worker processes (``jobs``), or as Ray tasks.
EXECUTORS = ("local", "ray")


def version() -> str:
    """The installed ganzoo version."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def profiles_dir() -> Path:
    """Where the bundled benchmark profiles live (``benchmarks/profiles`` in the source tree)."""
    return Path(str(resources.files("ganzoo.profiles")))


def list_profiles() -> list[str]:
    """Names of the bundled benchmark profiles."""
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))
