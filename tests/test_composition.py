"""Components from different plugins compose, and misfits are refused naming the plugin at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import registered
from torch import nn

import ganzoo
from ganzoo import Discriminator, Generator, Loss, LossSpec, hookimpl
from ganzoo.cli import cli
from ganzoo.errors import PluginError
from ganzoo.training.assembly import CompositionError


def test_dcgan_networks_with_wgan_gp_loss(tmp_path: Path) -> None:
    # generator and critic from the dcgan plugin, loss from the wgan-gp plugin, recipe from the dcgan variant
    result = ganzoo.train("dcgan", steps=1, out=tmp_path / "mix", progress=False,
                          overrides={"loss": "wgan-gp", "discriminator": "dcgan-critic", "batch_size": 8,
                                     "sample_every": 0})
    assert result.components == {"generator": "dcgan (dcgan)", "discriminator": "dcgan-critic (dcgan)",
                                 "loss": "wgan-gp (wgan-gp)"}


def test_wgan_gp_refuses_batchnorm_critic_with_exit_2(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["train", "wgan", "--set", "discriminator=dcgan", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "BatchNorm" in result.output
    assert "loss 'wgan-gp' (plugin 'wgan-gp')" in result.output and "(plugin 'dcgan')" in result.output


class Fixed16:
    """A generator that always makes 16x16 images, whatever the dataset."""

    @hookimpl
    def register_generators(self, register):
        register(Generator("mlp16", lambda latent_dim, image_shape: nn.Sequential(
            nn.Linear(latent_dim, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))))


def test_generator_sized_for_another_dataset_is_refused(tmp_path: Path, runner) -> None:
    with registered(Fixed16(), "fixed16"):
        with pytest.raises(CompositionError, match=r"generator 'mlp16' \(plugin 'fixed16'\) makes images of shape "
                                                   r"\(1, 16, 16\) but dataset 'mnist-5k' has images of shape "
                                                   r"\(1, 28, 28\)"):
            ganzoo.train("vanilla", steps=1, out=tmp_path / "r", progress=False, overrides={"generator": "mlp16"})
        result = runner.invoke(cli, ["train", "vanilla", "--set", "generator=mlp16", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2


class Bad:
    """Components that break the contract in one way each."""

    @hookimpl
    def register_generators(self, register):
        register(Generator("unbounded", lambda latent_dim, image_shape: nn.Sequential(
            nn.Linear(latent_dim, 784), nn.Unflatten(1, (1, 28, 28)), _Scale(50.0))))
        register(Generator("integers", lambda latent_dim, image_shape: _Integers()))

    @hookimpl
    def register_discriminators(self, register):
        register(Discriminator("two-scores", lambda image_shape: nn.Sequential(nn.Flatten(), nn.Linear(784, 2))))

    @hookimpl
    def register_losses(self, register):
        register(LossSpec("matrix", _MatrixLoss))


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class _Integers(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(z.shape[0], 1, 28, 28, dtype=torch.uint8)


class _MatrixLoss(Loss):
    def discriminator_loss(self, D, real, fake):
        return D(real)[:, None] - D(fake)[None, :]

    def generator_loss(self, D, fake):
        return -D(fake).mean()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"generator": "unbounded"}, r"plugin 'bad' \(hook register_generators\): generator 'unbounded' returned "
                                     r"values outside \[-1, 1\]"),
        ({"generator": "integers"}, r"plugin 'bad' \(hook register_generators\): generator 'integers' returned "
                                    r"torch.uint8 images"),
        ({"discriminator": "two-scores"}, r"plugin 'bad' \(hook register_discriminators\): discriminator "
                                          r"'two-scores' must return one score per sample"),
        ({"loss": "matrix"}, r"plugin 'bad' \(hook register_losses\): loss 'matrix'.discriminator_loss must "
                             r"return a scalar tensor, got shape \(16, 16\)"),
    ],
)
def test_contract_breaches_name_the_plugin(tmp_path: Path, override: dict, message: str) -> None:
    with registered(Bad(), "bad"), pytest.raises(PluginError, match=message):
        ganzoo.train("vanilla", steps=1, out=tmp_path / "r", progress=False,
                     overrides={**override, "batch_size": 16})


def test_contract_breach_exits_1_from_the_cli(tmp_path: Path, runner) -> None:
    with registered(Bad(), "bad"):
        result = runner.invoke(cli, ["train", "vanilla", "--set", "loss=matrix", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "plugin 'bad'" in result.output and "Traceback" not in result.output


def test_unknown_component_names_the_config_key(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["train", "dcgan", "--set", "loss=no-such-loss", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "config key loss names loss 'no-such-loss'" in result.output and "wgan-gp" in result.output
