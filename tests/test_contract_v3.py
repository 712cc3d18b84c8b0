"""Contract v3 for extensions: a discriminator penalty receives the update's fake batch and its labels (R2),
an extension observes what D said on the update's real and fake batches, a penalty declares an interval (lazy
regularisation), and the extension context says which networks are conditional. Each through a plugin
registered in-process, as a third-party package would write it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import QUICK, registered
from ganzoo_plugins.extensions import R2

import ganzoo
from ganzoo import Extension, ExtensionSpec, Loss, LossSpec, hookimpl, score_pair
from ganzoo.errors import PluginError

TINY = {**QUICK, "generator_options": {"hidden": [16]}, "discriminator_options": {"hidden": [16]}, "seed": 0}


class SpyLoss(Loss):
    """The GAN loss, remembering the batches it was given and the scores it computed."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def discriminator_loss(self, D, real, fake, real_labels=None, fake_labels=None):
        d_real, d_fake = score_pair(D, real, fake, real_labels, fake_labels)
        self.seen.append({"real": real, "fake": fake, "d_real": d_real.detach(), "d_fake": d_fake.detach()})
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def generator_loss(self, D, fake, fake_labels=None):
        return F.softplus(-D(fake, fake_labels)).mean()


class Watcher(Extension):
    """Records what its penalty receives (declaring fake and fake_labels) and what it observes of D."""

    def __init__(self, interval: int = 1, value: float = 0.0) -> None:
        self.penalty_interval, self.value = interval, value
        self.penalised: list[tuple[int, torch.Tensor, Any]] = []
        self.observed: list[tuple[int, Any, Any]] = []
        self.context: Any = None

    def setup(self, context):
        self.context = context

    def discriminator_penalty(self, D, real, real_labels, step, fake, fake_labels):
        self.penalised.append((step, fake, fake_labels))
        return torch.tensor(self.value)  # no gradient: the trajectory is the same whatever the value

    def observe_discriminator(self, real_scores, fake_scores, step):
        self.observed.append((step, real_scores, fake_scores))


def plugin(loss: SpyLoss, watcher: Watcher) -> object:
    class Plugin:
        @hookimpl
        def register_losses(self, register):
            register(LossSpec("spy-gan", lambda: loss))

        @hookimpl
        def register_extensions(self, register):
            register(ExtensionSpec("watcher", lambda: watcher))

    return Plugin()


def train(tmp_path: Path, name: str, watcher: Watcher, loss: SpyLoss | None = None, steps: int = 4,
          **more: Any) -> Path:
    loss = loss or SpyLoss()
    with registered(plugin(loss, watcher), "v3-spy"):
        ganzoo.train("vanilla", steps=steps, out=tmp_path / name, progress=False,
                     overrides={**TINY, "loss": "spy-gan", "extensions": {"watcher": {}}, **more})
    return tmp_path / name


@pytest.mark.parametrize("discriminator_pass", ["joint", "separate"])
def test_penalty_gets_the_fake_batch_and_observers_get_the_scores_the_loss_computed(
        tmp_path: Path, discriminator_pass: str) -> None:
    loss, watcher = SpyLoss(), Watcher()
    train(tmp_path, "run", watcher, loss, discriminator_pass=discriminator_pass)
    assert [s for s, _, _ in watcher.penalised] == [0, 1, 2, 3] == [s for s, _, _ in watcher.observed]
    for seen, (_, fake, fake_labels), (_, real_scores, fake_scores) in zip(loss.seen, watcher.penalised,
                                                                           watcher.observed, strict=True):
        assert fake is seen["fake"] and not fake.requires_grad and fake_labels is None  # unconditional run
        assert torch.equal(real_scores, seen["d_real"]) and torch.equal(fake_scores, seen["d_fake"])
        assert real_scores.shape[0] == TINY["batch_size"] and not real_scores.requires_grad
    assert watcher.context.conditional_generator is False and watcher.context.conditional_discriminator is False


def test_a_lazy_penalty_counts_k_times_on_every_kth_update_and_not_elsewhere(tmp_path: Path) -> None:
    plain = train(tmp_path, "plain", Watcher(interval=3, value=0.0), steps=7)
    lazy_watcher = Watcher(interval=3, value=1.5)
    lazy = train(tmp_path, "lazy", lazy_watcher, steps=7)
    assert [s for s, _, _ in lazy_watcher.penalised] == [0, 3, 6]  # not even called in between

    def losses(run: Path) -> list[float]:
        return [json.loads(line)["d_loss"] for line in (run / "log.jsonl").read_text().splitlines()]

    # log step s is discriminator update s - 1
    added = [b - a for a, b in zip(losses(plain), losses(lazy), strict=True)]
    assert added == pytest.approx([4.5, 0, 0, 4.5, 0, 0, 4.5], abs=1e-6)


def test_a_bad_interval_names_the_plugin(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"v3-spy.*penalty_interval 0"):
        train(tmp_path, "run", Watcher(interval=0))


def test_a_conditional_run_tells_its_extensions_and_gives_the_penalty_fake_labels(tmp_path: Path) -> None:
    watcher = Watcher()

    class Plugin:
        @hookimpl
        def register_extensions(self, register):
            register(ExtensionSpec("watcher", lambda: watcher))

    with registered(Plugin(), "v3-cond"):
        ganzoo.train("cgan-pd", steps=2, out=tmp_path / "run", progress=False,
                     overrides={**QUICK, "extensions": {"watcher": {}}, "generator_options": {"width": 8},
                                "discriminator_options": {"width": 8}})
    assert watcher.context.conditional_generator and watcher.context.conditional_discriminator
    (_, fake, fake_labels), _ = watcher.penalised
    assert fake.shape[0] == fake_labels.shape[0] == QUICK["batch_size"] and fake_labels.dtype == torch.int64


def test_r2_of_a_linear_critic_is_gamma_half_norm_squared_on_the_fake_batch() -> None:
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True)
    real, fake = torch.zeros(5, 1, 2, 2), torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    seen = []

    def D(x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        seen.append((x, labels))
        return x.flatten(1) @ w  # grad_x D(x) = w for every sample

    r2 = R2(gamma=4.0, every=3)
    labels = torch.arange(5)
    penalty = r2.discriminator_penalty(D, real, None, 6, fake=fake, fake_labels=labels)
    assert r2.penalty_interval == 3 and float(penalty.detach()) == pytest.approx(2 * 14.25)  # gamma / 2 * ||w||^2
    assert torch.equal(seen[0][0], fake) and seen[0][1] is labels
    (grad_w,) = torch.autograd.grad(penalty, w)  # create_graph: the penalty trains D
    torch.testing.assert_close(grad_w, 4.0 * w.detach())


def test_r1_and_r2_train_and_resume_bit_for_bit(tmp_path: Path) -> None:
    from conftest import assert_same_weights

    extensions = {"r1": {"gamma": 1.0, "every": 2}, "r2": {"gamma": 1.0, "every": 2}}
    config = {**TINY, "extensions": extensions, "checkpoint_every": 3}
    ganzoo.train("vanilla", steps=6, out=tmp_path / "whole", progress=False, overrides=config)
    ganzoo.train("vanilla", steps=3, out=tmp_path / "half", progress=False, overrides=config)
    ganzoo.train("vanilla", steps=6, out=tmp_path / "half", resume=True, progress=False)
    assert_same_weights(tmp_path / "whole", tmp_path / "half")


def test_the_documented_r2_example_matches_the_built_in(tmp_path: Path) -> None:
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "class R2(Extension)" in block)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)  # noqa: S102 - our own documentation
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True)
    fake = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(1))

    def D(x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return x.flatten(1) @ w

    documented = namespace["R2"](gamma=3.0, every=4)
    built_in = R2(gamma=3.0, every=4)
    assert documented.penalty_interval == built_in.penalty_interval == 4
    assert torch.equal(documented.discriminator_penalty(D, fake, None, 0, fake, None),
                       built_in.discriminator_penalty(D, fake, None, 0, fake=fake, fake_labels=None))


class GeneratorSpy(Extension):
    """A generator penalty: a constant (no gradient) every `interval` generator updates, recording its inputs."""

    def __init__(self, interval: int, value: float) -> None:
        self.penalty_interval, self.value = interval, value
        self.calls: list[tuple[int, torch.Tensor, Any, bool]] = []

    def generator_penalty(self, G, z, labels, step):
        self.calls.append((step, z, labels, G.training))
        assert G(z).shape[0] == z.shape[0]  # the plain generator, callable with the update's latents
        return torch.tensor(self.value)


def test_a_lazy_generator_penalty_counts_k_times_on_every_kth_generator_update(tmp_path: Path) -> None:
    runs = {}
    for value in (0.0, 2.0):
        spy = GeneratorSpy(interval=2, value=value)

        class Plugin:
            @hookimpl
            def register_extensions(self, register, _spy=spy):
                register(ExtensionSpec("g-spy", lambda: _spy))

        with registered(Plugin(), "g-spy-plugin"):
            ganzoo.train("vanilla", steps=5, out=tmp_path / f"run-{value}", progress=False,
                         overrides={**TINY, "extensions": {"g-spy": {}}})
        runs[value] = [json.loads(line)["g_loss"] for line in
                       (tmp_path / f"run-{value}" / "log.jsonl").read_text().splitlines()]
        assert [step for step, _, _, _ in spy.calls] == [0, 2, 4]
        assert all(z.shape == (TINY["batch_size"], 100) and labels is None and training
                   for _, z, labels, training in spy.calls)
    added = [b - a for a, b in zip(runs[0.0], runs[2.0], strict=True)]
    assert added == pytest.approx([4.0, 0, 4.0, 0, 4.0], abs=1e-6)
