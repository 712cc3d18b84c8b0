"""Shared fixtures: in-process plugin registration and quick configs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import ganzoo
from ganzoo.plugins import get_plugin_manager


@contextlib.contextmanager
def registered(plugin: Any, name: str) -> Iterator[Any]:
    """Register ``plugin`` on the process-wide plugin manager for the duration of the block."""
    pm = get_plugin_manager()
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(name=name)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)  # tiny models: a second thread only adds synchronisation


# A quick config for tests: tiny batches, few steps, nothing written more than once.
QUICK = {"batch_size": 16, "log_every": 1, "sample_every": 0, "sample_count": 4}


@pytest.fixture
def quick() -> dict[str, Any]:
    return dict(QUICK)


__all__ = ["registered", "ganzoo"]
