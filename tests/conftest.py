"""Shared fixtures: in-process plugin registration and quick configs."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import ganzoo
from ganzoo.checkpoint import load_checkpoint
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


def make_trainer(variant: str, *, dataset: str = "mnist-5k", steps: int = 3, limit: int | None = 256,
                 **overrides: Any) -> Any:
    """A :class:`~ganzoo.training.trainer.Trainer` for ``variant`` on the first ``limit`` samples of ``dataset``
    (all with ``None``), with :data:`QUICK` and ``overrides``, built as ``ganzoo train`` builds it."""
    from ganzoo.training.run import build_trainer

    cfg = ganzoo.build_config(variant, steps=steps, overrides={**QUICK, "dataset": dataset, **overrides})
    data = ganzoo.load_dataset(dataset)
    if limit is not None:
        data = dataclasses.replace(data, images=data.images[:limit],
                                   labels=data.labels[:limit] if data.labels is not None else None)
    return build_trainer(cfg, data)


def build_loss(name: str, **options: Any) -> Any:
    """The loss registered as ``name``, built with ``options``."""
    from ganzoo.registry import get_registry

    return get_registry().losses.get(name).item.build(**options)


def softplus(t: float) -> float:
    """log(1 + e^t), the closed form the GAN losses reduce to for constant logits."""
    return math.log1p(math.exp(t))


class ConstantLogit(torch.nn.Module):
    """D(x) = t for every sample (t a learnable scalar), so losses reduce to closed forms."""

    def __init__(self, t: float):
        super().__init__()
        self.t = torch.nn.Parameter(torch.tensor(float(t)))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.t.expand(x.shape[0])


def assert_same_weights(a: Path, b: Path) -> None:
    """Two checkpoints (files or run directories) hold equal G, D and optimiser states at the same step."""
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa["step"] == sb["step"]
    for net in ("generator", "discriminator", "opt_g", "opt_d"):
        flat_a, flat_b = _flatten(sa[net]), _flatten(sb[net])
        assert flat_a.keys() == flat_b.keys()
        for key in flat_a:
            assert torch.equal(flat_a[key], flat_b[key]), f"{net}.{key} differs"


def _flatten(tree: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(tree, torch.Tensor):
        out[prefix] = tree
    return out


__all__ = ["ConstantLogit", "assert_same_weights", "build_loss", "registered", "ganzoo", "softplus"]
