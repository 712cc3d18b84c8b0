"""The plugin built in the docs/plugins.md tutorial (docs/examples/ganzoo-tutorial) works as the page says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import QUICK, assert_same_weights, registered

import ganzoo
from ganzoo.checkpoint import load_checkpoint

MODULE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "ganzoo-tutorial" / "ganzoo_tutorial.py"


@pytest.fixture(scope="module")
def tutorial():
    spec = importlib.util.spec_from_file_location("ganzoo_tutorial", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_variant_trains_resumes_exactly_and_samples_by_class(tmp_path: Path, tutorial) -> None:
    config = {**QUICK, "generator_options": {"hidden": 32}, "discriminator_options": {"width": 8}}
    with registered(tutorial, "tutorial"):
        assert {"cond-mlp-gan"} <= {v["name"] for v in ganzoo.list_variants()}
        ganzoo.train("cond-mlp-gan", steps=4, out=tmp_path / "straight", config=config, progress=False)
        ganzoo.train("cond-mlp-gan", steps=2, out=tmp_path / "resumed", config=config, progress=False)
        ganzoo.train("cond-mlp-gan", steps=4, out=tmp_path / "resumed", config=config, resume=True, progress=False)
        assert_same_weights(tmp_path / "straight", tmp_path / "resumed")
        state = load_checkpoint(tmp_path / "resumed")
        assert state["extensions"]["instance-noise"]["step"] == 4
        sevens = ganzoo.sample(tmp_path / "resumed", n=5, labels=7)
        assert sevens.shape == (5, 1, 28, 28)


def test_instance_noise_anneals_to_zero(tutorial) -> None:
    ext = tutorial.InstanceNoise(std=0.5, anneal_steps=10)
    ext.setup(ganzoo.ExtensionContext(torch.nn.Identity(), torch.nn.Identity(), ganzoo.build_config("vanilla"),
                                      None, (1, 2, 2), torch.device("cpu")))
    x = torch.zeros(1000, 1, 2, 2)
    assert ext.augment(x).std().item() == pytest.approx(0.5, rel=0.05)
    ext.after_generator_step(None, 5)
    assert ext.augment(x).std().item() == pytest.approx(0.25, rel=0.05)
    ext.after_generator_step(None, 10)
    assert torch.equal(ext.augment(x), x)
