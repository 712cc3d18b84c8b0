"""``generator_batch``: the generator update scores a fresh batch (Goodfellow's Algorithm 1) or reuses the fake
batch of the step's discriminator update (pytorch/examples' DCGAN loop)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import QUICK, assert_same_weights, make_trainer

import ganzoo
from ganzoo.cli import cli
from ganzoo.training.trainer import Trainer, make_optimizer


def trainer(variant: str, **overrides) -> Trainer:
    return make_trainer(variant, **overrides)


@pytest.mark.parametrize(("mode", "forwards"), [("fresh", 2), ("reuse", 1)])
def test_generator_forwards_per_step(mode: str, forwards: int) -> None:
    t = trainer("dcgan", generator_batch=mode, generator_options={"width": 4}, discriminator_options={"width": 4})
    calls = []
    t.G.register_forward_hook(lambda *_: calls.append(1))
    for _ in range(3):
        t.train_step()
    assert len(calls) == 3 * forwards


@pytest.mark.parametrize("variant", ["vanilla", "dcgan"])
def test_reuse_step_is_the_tutorial_loop(variant: str) -> None:
    """One reuse step equals pytorch/examples' DCGAN step written by hand on identical modules and inputs:
    G(z) once, D updated on G(z).detach(), then G updated on D(G(z)) through the updated D."""
    small = {"generator_options": {"width": 4}, "discriminator_options": {"width": 4}} if variant == "dcgan" else {}
    ours = trainer(variant, generator_batch="reuse", **small)
    hand = trainer(variant, generator_batch="reuse", **small)  # same seed: same modules, data order, noise
    cfg = hand.config
    opt_g = make_optimizer(cfg.optimizer, hand.G.parameters(), cfg.lr_g, cfg.betas)
    opt_d = make_optimizer(cfg.optimizer, hand.D.parameters(), cfg.lr_d, cfg.betas)
    for _ in range(2):
        ours.train_step()
        real, _ = hand.batches.next()
        fake = hand.G(torch.randn(cfg.batch_size, cfg.latent_dim, generator=hand.noise))
        d_loss = hand.loss.discriminator_loss(hand.D_view, real, fake.detach())
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = hand.loss.generator_loss(hand.D_view, fake)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    for net in ("G", "D"):
        for (name, a), (_, b) in zip(getattr(ours, net).state_dict().items(), getattr(hand, net).state_dict().items(),
                                     strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=f"{net}.{name}")


def test_fresh_step_scores_new_latents_and_reuse_the_discriminators_batch() -> None:
    seen: dict[str, list[torch.Tensor]] = {"fresh": [], "reuse": []}
    for mode in seen:
        t = trainer("vanilla", generator_batch=mode)
        d_loss, g_loss = t.loss.discriminator_loss, t.loss.generator_loss
        t.loss.discriminator_loss = lambda D, real, fake, _f=d_loss, _m=mode, **kw: (
            seen[_m].append(fake.detach().clone()) or _f(D, real, fake, **kw))
        t.loss.generator_loss = lambda D, fake, _f=g_loss, _m=mode, **kw: (
            seen[_m].append(fake.detach().clone()) or _f(D, fake, **kw))
        t.train_step()
    fresh_d, fresh_g = seen["fresh"]
    reuse_d, reuse_g = seen["reuse"]
    assert torch.equal(reuse_d, reuse_g)
    assert not torch.equal(fresh_d, fresh_g)
    assert torch.equal(fresh_d, reuse_d)  # the discriminator sees the same batch in both modes


def test_resume_with_reuse_continues_exactly(tmp_path: Path) -> None:
    cfg = {**QUICK, "checkpoint_every": 3, "keep_last": 5, "generator_batch": "reuse"}
    ganzoo.train("vanilla", steps=6, out=tmp_path / "straight", progress=False, overrides=cfg)
    ganzoo.train("vanilla", steps=3, out=tmp_path / "resumed", progress=False, overrides=cfg)
    ganzoo.train("vanilla", steps=6, out=tmp_path / "resumed", progress=False, overrides=cfg, resume=True)
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_reuse_with_several_critic_steps_is_a_usage_error(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["train", "wgan-gp", "--set", "generator_batch=reuse", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "generator_batch" in result.output and "n_critic is 5" in result.output


def test_a_variants_reuse_gives_way_to_several_critic_steps() -> None:
    """dcgan reuses by default; asking it for n_critic 2 gives fresh batches, not an error. Asking for reuse
    explicitly with n_critic 2 is the error above."""
    assert ganzoo.build_config("dcgan").generator_batch == "reuse"
    assert ganzoo.build_config("dcgan", overrides=["n_critic=2"]).generator_batch == "fresh"
    with pytest.raises(ganzoo.ConfigError, match="n_critic is 2"):
        ganzoo.build_config("dcgan", overrides=["n_critic=2", "generator_batch=reuse"])
