"""Tests of the example plugin: its loss against hand-computed values, and a short training run."""

import torch
from torch import nn

import ganzoo
import ganzoo.registry


class Constant(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0],), self.value)


def test_loss_closed_form():
    registry = ganzoo.registry.get_registry()
    loss = registry.losses.get("lsgan").item.build()
    x = torch.zeros(4, 1, 28, 28)
    # D says 0.5 everywhere: L_D = 0.5 * 0.25 + 0.5 * 0.25, L_G = 0.5 * 0.25
    assert abs(loss.discriminator_loss(Constant(0.5), x, x).item() - 0.25) < 1e-6
    assert abs(loss.generator_loss(Constant(0.5), x).item() - 0.125) < 1e-6


def test_trains_a_few_steps(tmp_path):
    result = ganzoo.train("lsgan", steps=3, out=tmp_path / "run", progress=False,
                          overrides={"batch_size": 16, "sample_every": 0})
    assert result.steps == 3
    assert (tmp_path / "run" / "samples.png").is_file()
