"""The r3gan plugin: RpGAN and R1/R2 against the relativistic-loss package, the networks, the CLI, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import relativistic_loss
import torch
from conftest import assert_same_weights, build_loss
from ganzoo_plugins.r3gan import R3GANDiscriminator, R3GANGenerator, ResidualBlock

import ganzoo
from ganzoo.cli import cli
from ganzoo.registry import get_registry

# tiny networks: 4 channels at the image size, one block per stage
TINY_NETS = {"generator_options": {"width": 4, "group_size": 4}, "discriminator_options": {"width": 4, "group_size": 4}}


def tiny(shape: tuple[int, int, int], num_classes: int | None = None, seed: int = 0) -> tuple[R3GANGenerator,
                                                                                              R3GANDiscriminator]:
    """A small G and D whose residual blocks have been moved off zero, so that every layer matters."""
    torch.manual_seed(seed)
    G = R3GANGenerator(8, shape, num_classes=num_classes, width=4, group_size=4, embed_dim=4)
    D = R3GANDiscriminator(shape, num_classes=num_classes, width=4, group_size=4, embed_dim=4)
    with torch.no_grad():
        for block in [*G.modules(), *D.modules()]:
            if isinstance(block, ResidualBlock):
                block.project.weight.normal_(0.0, 0.1)
    return G, D


def extension(name: str, **options):
    return get_registry().extensions.get(name).item.build(**options)


@pytest.mark.parametrize("num_classes", [None, 10])
def test_rpgan_equals_the_relativistic_loss_package(num_classes: int | None) -> None:
    G, D = tiny((1, 28, 28), num_classes)
    real, z = torch.rand(6, 1, 28, 28) * 2 - 1, torch.randn(6, 8)
    labels = torch.arange(6) % 10 if num_classes else None
    args = (labels,) if num_classes else ()
    loss = build_loss("rpgan")
    fake = G(z, *args)
    ours_d = loss.discriminator_loss(D, real, fake, real_labels=labels, fake_labels=labels)
    ours_g = loss.generator_loss(D, fake, real=real, real_labels=labels, fake_labels=labels)
    theirs_d = relativistic_loss.gan_loss(D, G, real, z, discriminator_turn=True, generator_args=args,
                                          disc_args=args)
    theirs_g = relativistic_loss.gan_loss(D, G, real, z, discriminator_turn=False, generator_args=args,
                                          disc_args=args)
    assert ours_d.item() == pytest.approx(theirs_d.item(), abs=1e-6)
    assert ours_g.item() == pytest.approx(theirs_g.item(), abs=1e-6)
    assert ours_d.item() != pytest.approx(ours_g.item(), abs=1e-3)  # the two directions differ here


def test_the_generator_loss_needs_the_real_batch() -> None:
    G, D = tiny((1, 28, 28))
    with pytest.raises(ValueError, match="real=real_batch"):
        build_loss("rpgan").generator_loss(D, G(torch.randn(2, 8)))


def test_r1_and_r2_equal_the_relativistic_loss_package() -> None:
    _, D = tiny((3, 32, 32))
    real, fake = torch.rand(5, 3, 32, 32) * 2 - 1, torch.rand(5, 3, 32, 32) * 2 - 1
    r1, r2 = extension("r1", gamma=0.05, every=1), extension("r2", gamma=0.05, every=1)
    ours_r1 = r1.discriminator_penalty(D, real, None, 0)
    ours_r2 = r2.discriminator_penalty(D, real, None, 0, fake=fake, fake_labels=None)
    assert ours_r1.item() == pytest.approx(relativistic_loss.r1_penalty(D, real, gamma=0.05).item(), abs=1e-6)
    assert ours_r2.item() == pytest.approx(relativistic_loss.r2_penalty(D, fake, gamma=0.05).item(), abs=1e-6)
    assert ours_r1.item() > 0 and ours_r2.item() > 0


def test_residual_blocks_are_the_identity_at_initialisation() -> None:
    block = ResidualBlock(8, expansion=2, group_size=4, scale=0.5)
    assert block.grouped.groups == 4
    assert not block.project.weight.any() and not block.project.bias.any()
    x = torch.randn(3, 8, 7, 7)
    assert torch.equal(block(x), x)
    for net in (R3GANGenerator(8, (1, 28, 28)), R3GANDiscriminator((3, 32, 32))):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert blocks and all(not b.project.weight.any() for b in blocks)
        assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm))
                       for m in net.modules())


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("num_classes", [None, 10])
def test_shapes(shape: tuple[int, int, int], num_classes: int | None) -> None:
    G, D = tiny(shape, num_classes)
    z, y = torch.randn(3, 8), torch.tensor([0, 4, 9])
    args = (y,) if num_classes else ()
    images = G(z, *args)
    assert images.shape == (3, *shape) and images.abs().max() <= 1
    assert D(images, *args).shape == (3,)


def test_stage_layout() -> None:
    assert R3GANGenerator(8, (1, 28, 28)).sizes == [7, 14, 28]
    assert R3GANGenerator(8, (3, 32, 32)).sizes == [4, 8, 16, 32]
    with pytest.raises(ValueError, match="width must be a positive whole number"):
        R3GANDiscriminator((1, 28, 28), width=0)


def test_the_variant_sets_the_papers_recipe() -> None:
    variants = {v["name"]: v for v in ganzoo.list_variants()}
    for name, net in (("r3gan", "r3gan"), ("r3gan-conditional", "r3gan-conditional")):
        assert (variants[name]["generator"], variants[name]["discriminator"], variants[name]["loss"]) == (
            net, net, "rpgan")
    dumped = ganzoo.build_config("r3gan").model_dump()
    assert dumped["betas"][0] == 0.0 and "cosine" in dumped["betas"][1]
    assert "cosine" in dumped["lr_g"] and "cosine" in dumped["lr_d"]
    assert set(dumped["extensions"]) == {"r1", "r2", "ema"}
    assert dumped["extensions"]["r1"]["every"] == dumped["extensions"]["r2"]["every"] == 1
    assert "cosine" in dumped["extensions"]["r1"]["gamma"] and "cosine" in dumped["extensions"]["ema"]["decay"]


@pytest.mark.parametrize("dataset", ["mnist-5k", "stacked-mnist"])
def test_train_through_the_cli(tmp_path: Path, runner, dataset: str) -> None:
    args = ["train", "r3gan", "--steps", "2", "--dataset", dataset, "--out", str(tmp_path / "run"),
            "--set", "batch_size=8", "--set", "sample_every=0", "--set", "sample_count=4",
            "--set", "generator_options.width=4", "--set", "discriminator_options.width=4"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    images = ganzoo.sample(tmp_path / "run", n=2)
    assert images.shape == (2, 3 if dataset == "stacked-mnist" else 1, 28, 28)


def test_conditional_r3gan_samples_the_requested_class(tmp_path: Path, runner, monkeypatch) -> None:
    run = tmp_path / "run"
    result = runner.invoke(cli, ["train", "r3gan-conditional", "--steps", "2", "--out", str(run),
                                 "--set", "batch_size=8", "--set", "sample_every=0", "--set", "sample_count=10",
                                 "--set", "generator_options.width=4", "--set", "discriminator_options.width=4"])
    assert result.exit_code == 0, result.output
    asked = []
    forward = R3GANGenerator.forward

    def spy(self, z, y=None):
        asked.append(y.clone())
        return forward(self, z, y)

    monkeypatch.setattr(R3GANGenerator, "forward", spy)
    result = runner.invoke(cli, ["sample", str(run), "--class", "3", "-n", "6", "-o", str(tmp_path / "threes.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "threes.png").is_file()
    assert asked and all(torch.equal(y, torch.full_like(y, 3)) for y in asked)
    assert sum(len(y) for y in asked) == 6


def test_a_resumed_run_with_schedules_r1_r2_and_ema_is_exact(tmp_path: Path) -> None:
    over = {"over": 6}
    config = {"batch_size": 8, "sample_every": 0, "sample_count": 4, "log_every": 1, "checkpoint_every": 3, **TINY_NETS,
              "lr_g": {"cosine": [2e-4, 5e-5], **over}, "lr_d": {"cosine": [2e-4, 5e-5], **over},
              "betas": [0.0, {"cosine": [0.9, 0.99], **over}],
              "extensions": {"r1": {"gamma": {"cosine": [0.5, 0.05], **over}},
                             "r2": {"gamma": {"cosine": [0.5, 0.05], **over}},
                             "ema": {"decay": {"cosine": [0.5, 0.9], **over}}}}
    ganzoo.train("r3gan", steps=6, out=tmp_path / "whole", progress=False, overrides=config)
    ganzoo.train("r3gan", steps=3, out=tmp_path / "half", progress=False, overrides=config)
    ganzoo.train("r3gan", steps=6, out=tmp_path / "half", resume=True, progress=False)
    assert_same_weights(tmp_path / "whole", tmp_path / "half")
    assert torch.equal(ganzoo.sample(tmp_path / "whole", n=4), ganzoo.sample(tmp_path / "half", n=4))  # the EMA
