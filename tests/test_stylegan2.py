"""StyleGAN2 (generator, discriminator, path length) and ADA: hand-computed numbers on tiny inputs, the rule that
moves ADA's p, lazy R1 through a run, the CLI on MNIST and Stacked MNIST, and an exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import QUICK, assert_same_weights
from ganzoo_plugins.ada import ADA, GROUPS
from ganzoo_plugins.stylegan2 import PathLength, StyleGAN2Discriminator, StyleGAN2Generator, modulated_conv2d

import ganzoo
from ganzoo.checkpoint import load_checkpoint
from ganzoo.cli import cli

# tiny networks: every test here trains in seconds
NETS = {"channel_base": 64, "channel_max": 8}
TINY = {**QUICK, "batch_size": 8, "latent_dim": 16, "generator_options": NETS, "discriminator_options": NETS}


def context(image_shape=(1, 28, 28), batch_size: int = 64, generator: Any = None) -> SimpleNamespace:
    return SimpleNamespace(image_shape=image_shape, config=SimpleNamespace(batch_size=batch_size, seed=0),
                           device=torch.device("cpu"), rank=0, generator=generator)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_is_a_per_sample_conv_with_the_modulated_weights(demodulate: bool, fused: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    x, weight = torch.randn(3, 4, 6, 6, generator=gen), torch.randn(5, 4, 3, 3, generator=gen)
    styles = torch.rand(3, 4, generator=gen) + 0.5
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=1, fused=fused)
    for b in range(3):
        w = weight * styles[b].reshape(1, 4, 1, 1)
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        torch.testing.assert_close(out[b:b + 1], F.conv2d(x[b:b + 1], w, padding=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (3, 32, 32)])
def test_networks_fit_28_and_32_pixels(shape: tuple[int, int, int]) -> None:
    G, D = StyleGAN2Generator(16, shape, **NETS), StyleGAN2Discriminator(shape, **NETS)
    z = torch.randn(4, 16)
    ws = G.mapping(z)
    assert ws.shape == (4, G.num_ws, 16)
    images = G(z)
    assert images.shape == (4, *shape) and images.abs().max() <= 1
    assert D(images).shape == (4,)
    G.eval()
    torch.testing.assert_close(G(z), G.synthesis(G.mapping(z)))  # eval: fixed noise, no mixing
    torch.testing.assert_close(G(z), G(z))
    # minibatch stddev groups consecutive samples: a joint pass of two batches scores each as its own pass
    real, fake = torch.rand(8, *shape) * 2 - 1, images.detach().repeat(2, 1, 1, 1)
    torch.testing.assert_close(D(torch.cat([real, fake])), torch.cat([D(real), D(fake)]))


def test_ada_p_follows_the_sign_rule() -> None:
    ada = ADA(interval=4, target=0.6, speed_kimg=500)
    ada.setup(context(batch_size=64))
    step = 64 * 4 / 500_000
    positive, negative = torch.ones(64), -torch.ones(64)
    for i in range(3):
        ada.observe_discriminator(positive, None, i)
        assert ada.p == 0.0  # nothing moves before `interval` updates are gathered
    ada.observe_discriminator(positive, None, 3)
    assert ada.p == pytest.approx(step)  # r_t = 1 > 0.6: up by one step
    for i in range(4):
        ada.observe_discriminator(positive, None, 4 + i)
    assert ada.p == pytest.approx(2 * step)
    mixed = torch.tensor([1.0, 1.0, 1.0, -1.0])  # r_t = 0.5 < 0.6: down
    for i in range(4):
        ada.observe_discriminator(mixed, None, 8 + i)
    assert ada.p == pytest.approx(step)
    for i in range(8):
        ada.observe_discriminator(negative, None, 12 + i)
    assert ada.p == 0.0  # clamped at 0
    near_one = ADA(p=1 - 1e-9, interval=1)
    near_one.setup(context())
    near_one.observe_discriminator(positive, None, 0)
    assert 0.0 <= near_one.p < 1.0


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_each_ada_group_keeps_shapes_is_the_identity_at_p_0_and_differentiable(group: str, channels: int) -> None:
    x = torch.rand(16, channels, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    off = ADA(p=0.0, groups=group)
    off.setup(context((channels, 28, 28)))
    assert torch.equal(off.augment(x), x)
    on = ADA(p=0.9, groups=group)
    on.setup(context((channels, 28, 28)))
    leaf = x.clone().requires_grad_(True)
    out = on.augment(leaf)
    assert out.shape == x.shape and not torch.allclose(out, x)
    out.square().sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_ada_blit_only_moves_pixels() -> None:
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    ada = ADA(p=0.99, groups="blit")
    ada.setup(context((1, 8, 8)))
    out = ada.augment(x)
    # flips, quarter turns and integer shifts with reflection padding: every output value is an input value
    for a, b in zip(out, x, strict=True):
        assert torch.isin(a.round(decimals=5), b.round(decimals=5)).all()


def test_path_length_matches_a_hand_computation_on_a_linear_synthesis() -> None:
    A = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))

    class LinearG:
        def mapping(self, z, labels=None):
            return z.unsqueeze(1).repeat(1, 2, 1)  # two layers of w = z

        def synthesis(self, ws):
            return (ws.sum(dim=1) @ A).reshape(-1, 1, 2, 2)

    pl = PathLength(weight=2.0, decay=0.01, every=4)
    pl.setup(context(generator=LinearG()))
    noise_stream = torch.Generator().manual_seed(0)
    noise_stream.set_state(pl.generator.get_state())
    z = torch.randn(6, 3)
    penalty = pl.generator_penalty(LinearG(), z, None, 0)
    u = torch.randn(3, 1, 2, 2, generator=noise_stream) / 2  # half the batch; / sqrt(H * W)
    # d sum(y * u) / d w_l = A u for each of the two layers: the length is ||A u||
    lengths = (u.reshape(3, 4) @ A.T).norm(dim=1)
    pl_mean = 0.01 * float(lengths.mean())
    assert pl.pl_mean == pytest.approx(pl_mean)
    assert float(penalty) == pytest.approx(2.0 * float(((lengths - pl_mean) ** 2).mean()), rel=1e-5)
    assert pl.state_dict()["pl_mean"] == pytest.approx(pl_mean)


def test_path_length_refuses_a_generator_without_mapping_and_synthesis(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path-length.*mapping"):
        PathLength().setup(context(generator=torch.nn.Linear(2, 2)))
    with pytest.raises(ganzoo.errors.PluginError, match="path-length"):
        ganzoo.train("dcgan", steps=1, out=tmp_path / "run", progress=False,
                     overrides={**QUICK, "extensions": {"path-length": {}}})


def test_lazy_r1_counts_16_times_on_every_16th_update_and_nothing_elsewhere(tmp_path: Path) -> None:
    def d_losses(name: str, r1: dict[str, Any]) -> list[float]:
        # lr_d so small that D does not move: every run sees the same D, so the logged d_loss differ by R1 alone
        overrides = {**TINY, "lr_d": 1e-30, "extensions": {"path-length": False, "ema": False, "r1": r1}}
        ganzoo.train("stylegan2", steps=17, out=tmp_path / name, progress=False, overrides=overrides)
        return [json.loads(line)["d_loss"] for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]

    plain = d_losses("plain", {"gamma": 0.0, "every": 16})
    lazy = [b - a for a, b in zip(plain, d_losses("lazy", {"gamma": 1.0, "every": 16}), strict=True)]
    eager = [b - a for a, b in zip(plain, d_losses("eager", {"gamma": 1.0, "every": 1}), strict=True)]
    assert all(e > 0 for e in eager)
    expected = [16 * e if step in (0, 16) else 0.0 for step, e in enumerate(eager)]  # log line s: update s
    assert lazy == pytest.approx(expected, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("dataset", ["mnist-5k", "stacked-mnist"])
def test_cli_trains_stylegan2_with_ada(tmp_path: Path, runner, dataset: str) -> None:
    out = tmp_path / "run"
    args = ["train", "stylegan2", "--steps", "2", "--out", str(out), "--dataset", dataset,
            "--set", "extensions.ada={}"]
    for key, value in TINY.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    state = load_checkpoint(out)
    assert list(state["extensions"]) == ["r1", "path-length", "ema", "ada"]
    assert (out / "samples.png").exists()


def test_stylegan2_and_ada_are_listed(runner) -> None:
    data = json.loads(runner.invoke(cli, ["list", "--json"]).output)
    variant = next(v for v in data["variants"] if v["name"] == "stylegan2")
    assert variant["defaults"]["betas"] == [0.0, 0.99] and variant["defaults"]["extensions"]["r1"]["every"] == 16
    assert {"ada", "path-length"} <= {e["name"] for e in data["extensions"]}
    from ganzoo.bench.plan import split_row
    from ganzoo.registry import get_registry

    assert split_row("stylegan2+ada", get_registry()) == ("stylegan2", ["ada"])  # a bench row


def test_resume_with_path_length_lazy_r1_and_ada_is_exact(tmp_path: Path) -> None:
    extensions = {"r1": {"gamma": 1.0, "every": 2}, "path-length": {"every": 2},
                  "ada": {"p": 0.3, "interval": 1, "speed_kimg": 0.01}}
    config = {**TINY, "extensions": extensions, "checkpoint_every": 3}
    ganzoo.train("stylegan2", steps=6, out=tmp_path / "whole", progress=False, overrides=config)
    ganzoo.train("stylegan2", steps=3, out=tmp_path / "half", progress=False, overrides=config)
    ganzoo.train("stylegan2", steps=6, out=tmp_path / "half", resume=True, progress=False)
    assert_same_weights(tmp_path / "whole", tmp_path / "half")
    whole, half = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "half")
    assert whole["extensions"]["ada"]["p"] == half["extensions"]["ada"]["p"] != 0.3  # p moved, identically
    assert whole["extensions"]["path-length"]["pl_mean"] == half["extensions"]["path-length"]["pl_mean"] > 0
    assert math.isfinite(whole["extensions"]["ada"]["p"])
