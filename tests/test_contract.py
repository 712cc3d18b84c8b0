"""Plugin contract v2: labels travel with images, conditional components, loss keywords, extension points,
and format-1 checkpoints (the first format) that still resume."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import QUICK, registered
from safetensors.torch import load_file
from torch import nn

import ganzoo
from ganzoo import (
    CheckpointError,
    Discriminator,
    Extension,
    ExtensionSpec,
    Generator,
    Loss,
    LossSpec,
    Variant,
    hookimpl,
)
from ganzoo.checkpoint import load_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"


class CondMLPGenerator(nn.Module):
    """z * embed(y) -> image: a minimal conditional generator."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.shape = tuple(image_shape)
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.net = nn.Sequential(nn.Linear(latent_dim, 16), nn.ReLU(), nn.Linear(16, math.prod(image_shape)), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(z * self.embed(y)).view(-1, *self.shape)


class CondMLPDiscriminator(nn.Module):
    """A projection discriminator in miniature: linear(h) + <embed(y), h>."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), 16), nn.ReLU())
        self.out = nn.Linear(16, 1)
        self.embed = nn.Embedding(num_classes, 16)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(1)


class RecordingLoss(Loss):
    """The hinge loss, recording every batch and label set it is given."""

    calls: list[dict[str, Any]] = []

    def discriminator_loss(self, D, real, fake, real_labels=None, fake_labels=None):
        RecordingLoss.calls.append({"method": "d", "real": real.detach().clone(), "real_labels": real_labels,
                                    "fake_labels": fake_labels})
        return torch.relu(1 - D(real, real_labels)).mean() + torch.relu(1 + D(fake, fake_labels)).mean()

    def generator_loss(self, D, fake, real=None, fake_labels=None):
        RecordingLoss.calls.append({"method": "g", "real": real, "fake_labels": fake_labels})
        return -D(fake, fake_labels).mean()


def _labelled_images(n: int = 200, classes: tuple[int, ...] = tuple(range(10))) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose every pixel encodes the label (label * 20), so a batch shows whether they travel together."""
    labels = torch.tensor([classes[i % len(classes)] for i in range(n)], dtype=torch.int64)
    images = (labels * 20).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    return images, labels


class Conditional:
    """A conditional generator and discriminator, a recording loss, and labelled datasets."""

    @hookimpl
    def register_generators(self, register):
        register(Generator("cond-mlp", CondMLPGenerator, conditional=True))

    @hookimpl
    def register_discriminators(self, register):
        register(Discriminator("cond-mlp", CondMLPDiscriminator, conditional=True))

    @hookimpl
    def register_losses(self, register):
        register(LossSpec("recording", RecordingLoss))

    @hookimpl
    def register_variants(self, register):
        register(Variant("cond-test", "cond-mlp", "cond-mlp", "recording", defaults={"latent_dim": 8}))

    @hookimpl
    def register_datasets(self, register):
        register(ganzoo.DatasetSpec("encoded", lambda root, split, download, size: _labelled_images(), (1, 28, 28)))
        register(ganzoo.DatasetSpec("skewed", lambda root, split, download, size: _labelled_images(400, (2, 2, 2, 3)),
                                    (1, 28, 28), num_classes=5))


@pytest.fixture
def conditional():
    RecordingLoss.calls = []
    with registered(Conditional(), "conditional-test"):
        yield


@pytest.mark.parametrize("loading", ["memory", "stream"])
def test_labels_travel_with_their_images(tmp_path: Path, conditional, loading: str) -> None:
    ganzoo.train("cond-test", steps=4, dataset="encoded", out=tmp_path / "run", progress=False,
                 config={**QUICK, "data_loading": loading, "data_workers": 0})
    d_calls = [c for c in RecordingLoss.calls if c["method"] == "d"]
    assert len(d_calls) == 4
    for call in d_calls:
        encoded = ((call["real"][:, 0, 0, 0] + 1) * 127.5).round().long() // 20
        assert torch.equal(encoded, call["real_labels"])  # each image arrived with its own label
    g_calls = [c for c in RecordingLoss.calls if c["method"] == "g"]
    # the generator loss declared `real` and got the real batch of the last discriminator update
    assert torch.equal(g_calls[-1]["real"], d_calls[-1]["real"])


def test_fake_labels_follow_the_class_frequencies(tmp_path: Path, conditional) -> None:
    ganzoo.train("cond-test", steps=20, dataset="skewed", out=tmp_path / "run", progress=False,
                 config={**QUICK, "batch_size": 32})
    fake = torch.cat([c["fake_labels"] for c in RecordingLoss.calls if c["fake_labels"] is not None])
    assert set(fake.tolist()) <= {2, 3}  # classes 0, 1, 4 never occur in the data, so never asked for
    share = (fake == 2).double().mean().item()
    assert 0.68 < share < 0.82  # 3 of 4 labels are 2; 1280 draws


def test_unconditional_run_gives_the_loss_no_labels(tmp_path: Path, conditional) -> None:
    ganzoo.train("cond-test", steps=2, dataset="mnist-5k", out=tmp_path / "run", progress=False,
                 config={**QUICK, "generator": "mlp", "discriminator": "mlp", "generator_options": {"hidden": [8]},
                         "discriminator_options": {"hidden": [8]}})
    assert all(c.get("real_labels") is None and c["fake_labels"] is None for c in RecordingLoss.calls)


def test_conditional_grid_has_a_row_per_class_and_sample_takes_labels(tmp_path: Path, conditional) -> None:
    ganzoo.train("cond-test", steps=2, dataset="encoded", out=tmp_path / "run", progress=False,
                 config={**QUICK, "sample_count": 25})
    G, _ = ganzoo.load_generator(tmp_path / "run")
    assert G.num_classes == 10
    images = ganzoo.sample(tmp_path / "run", n=6, labels=3)
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(images, G(z, torch.full((6,), 3)))
    with pytest.raises(ganzoo.ConfigError, match="labels must lie in 0..9"):
        ganzoo.sample(tmp_path / "run", n=2, labels=10)
    with pytest.raises(ganzoo.ConfigError, match="not conditional"):
        ganzoo.sample(FIXTURES / "format1" / "run", n=2, labels=1)
    from PIL import Image

    width, height = Image.open(tmp_path / "run" / "samples.png").size
    assert (width, height) == (2 + 2 * 30, 2 + 10 * 30)  # 2 columns (25 // 10), one row per class


class Spy(Extension):
    """Records the points it is called at; augment blanks every image, and its penalty is a known constant."""

    def __init__(self, penalty: float = 0.0) -> None:
        self.events: list[tuple[str, int]] = []
        self.penalty = penalty
        self.updates = 0

    def setup(self, context):
        self.events.append(("setup", context.num_classes or 0))

    def augment(self, images):
        self.events.append(("augment", images.shape[0]))
        return images * 0.0  # blank, but still connected to the generator

    def discriminator_penalty(self, D, real, real_labels, step):
        self.events.append(("penalty", step))
        return torch.tensor(self.penalty) if self.penalty else None

    def after_discriminator_step(self, D, step):
        self.events.append(("after_d", step))

    def after_generator_step(self, G, step):
        self.events.append(("after_g", step))
        self.updates += 1

    def state_dict(self):
        return {"updates": self.updates}

    def load_state_dict(self, state):
        self.updates = state["updates"]


class SeenByD(nn.Module):
    """An MLP discriminator that records the largest absolute pixel it was shown."""

    seen: list[float] = []

    def __init__(self, image_shape):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), 1))

    def forward(self, x):
        SeenByD.seen.append(float(x.detach().abs().max()))
        return self.net(x).squeeze(1)


def test_extension_points_run_in_the_order_train_step_names(tmp_path: Path) -> None:
    spies: list[Spy] = []

    def build(**options):
        spies.append(Spy(**options))
        return spies[-1]

    class Plugin:
        @hookimpl
        def register_extensions(self, register):
            register(ExtensionSpec("spy", build))

        @hookimpl
        def register_discriminators(self, register):
            register(Discriminator("seen", SeenByD))

    SeenByD.seen = []
    with registered(Plugin(), "spy-plugin"):
        result = ganzoo.train("vanilla", steps=2, out=tmp_path / "run", progress=False,
                              config={**QUICK, "n_critic": 2, "discriminator": "seen",
                                      "generator_options": {"hidden": [8]}, "extensions": {"spy": {"penalty": 0.5}}})
    spy = spies[-1]
    steps = [e for e in spy.events if e[0] != "augment"]
    assert steps == [("setup", 0),
                     ("penalty", 0), ("after_d", 0), ("penalty", 1), ("after_d", 1), ("after_g", 1),
                     ("penalty", 2), ("after_d", 2), ("penalty", 3), ("after_d", 3), ("after_g", 2)]
    # every D call in training saw augmented (blanked) images: 2 per D update (real, fake), 1 per G update
    assert [e for e in spy.events if e[0] == "augment"] == [("augment", QUICK["batch_size"])] * 10
    assert SeenByD.seen[-10:] == [0.0] * 10
    assert load_checkpoint(result.checkpoint)["extensions"] == {"spy": {"updates": 2}}


def test_format1_checkpoint_resumes_and_samples(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "format1" / "run", run)
    assert load_checkpoint(run)["format"] == 1
    images = ganzoo.sample(run, n=3)
    assert images.shape == (3, 1, 28, 28)
    result = ganzoo.train("vanilla", steps=4, out=run, resume=True, progress=False)
    assert result.steps == 4
    state = load_checkpoint(result.checkpoint)
    assert state["format"] == 2 and state["extensions"] == {} and state["num_classes"] is None
    # the same trajectory as ganzoo 0.1's uninterrupted 4-step run (float tolerance: another CPU may round
    # differently in the last bit)
    reference = load_file(str(FIXTURES / "format1" / "generator-step4.safetensors"))
    for key, value in reference.items():
        assert torch.allclose(state["generator"][key], value, rtol=0, atol=1e-5), key


def test_format1_checkpoint_refuses_extensions_with_a_way_out(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "format1" / "run", run)
    state = load_checkpoint(run)
    from ganzoo.training.trainer import STATE_KEYS_FORMAT_1

    assert set(STATE_KEYS_FORMAT_1) <= set(state)
    cfg = ganzoo.build_config("vanilla", config={**state["config"], "extensions": ["spy"]})
    assert cfg.extensions == {"spy": {}}

    class Plugin:
        @hookimpl
        def register_extensions(self, register):
            register(ExtensionSpec("spy", Spy))

    with registered(Plugin(), "spy-plugin"), pytest.raises(CheckpointError, match="format-1 checkpoint"):
        from ganzoo.training.run import run_config

        run_config(cfg.model_copy(update={"out": run, "steps": 4}), state, progress=False)
