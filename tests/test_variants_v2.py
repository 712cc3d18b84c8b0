"""The second wave of variants: WGAN (weight clipping), SN-GAN (hinge), RaGAN, cGAN-PD and AC-GAN.

Losses against hand-computed values, networks at two image sizes, a few training steps of every variant, and the
composition rules for conditional and classifier discriminators.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ConstantLogit, assert_same_weights, build_loss, registered, softplus
from ganzoo_plugins.acgan import ACGANDiscriminator, ACGANGenerator
from ganzoo_plugins.cgan_pd import CGANPDGenerator, ConditionalBatchNorm2d, ProjectionDiscriminator
from ganzoo_plugins.dcgan import DCGANDiscriminator
from ganzoo_plugins.sngan import SNGANDiscriminator
from torch import nn

import ganzoo
from ganzoo.checkpoint import load_checkpoint
from ganzoo.registry import get_registry
from ganzoo.training.assembly import LOSS_KEYWORDS, declared_keywords

NEW_VARIANTS = ("wgan-clip", "sngan", "ragan", "cgan-pd", "acgan")
CONDITIONAL = ("cgan-pd", "acgan")


class FirstPixel(nn.Module):
    """D(x) = the first pixel of each sample: the test chooses every score through the batch it passes."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return x.flatten(1)[:, 0]


def batch(*scores: float) -> torch.Tensor:
    """A batch of 1x2x2 images whose first pixels are ``scores`` (so FirstPixel returns them)."""
    x = torch.zeros(len(scores), 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(scores)
    return x


X = torch.zeros(4, 1, 2, 2)


# -- losses --------------------------------------------------------------------------------------------------
def test_wgan_loss_closed_form() -> None:
    loss = build_loss("wgan")
    real, fake = batch(2.0, 4.0), batch(1.0, -1.0)  # E[D(x)] = 3, E[D(G(z))] = 0
    assert loss.discriminator_loss(FirstPixel(), real, fake).item() == pytest.approx(0.0 - 3.0)
    assert loss.generator_loss(FirstPixel(), fake).item() == pytest.approx(-0.0)
    assert loss.generator_loss(FirstPixel(), batch(1.5, 2.5)).item() == pytest.approx(-2.0)
    # takes labels, so that it can train a conditional critic
    assert declared_keywords(loss.discriminator_loss, LOSS_KEYWORDS["discriminator_loss"]) == (
        "real_labels", "fake_labels")


@pytest.mark.parametrize("t", [-2.0, -0.5, 0.0, 0.5, 2.0])
def test_hinge_loss_constant_logit(t: float) -> None:
    loss = build_loss("hinge")
    d = loss.discriminator_loss(ConstantLogit(t), X, X)
    assert d.ndim == 0
    assert d.item() == pytest.approx(max(0.0, 1 - t) + max(0.0, 1 + t))
    assert loss.generator_loss(ConstantLogit(t), X).item() == pytest.approx(-t)


def test_hinge_loss_per_sample_margins_and_gradient() -> None:
    loss = build_loss("hinge")
    # real scores 2 (beyond the margin: 0) and 0.5 (0.5); fake scores 1 (2) and -3 (beyond the margin: 0)
    value = loss.discriminator_loss(FirstPixel(), batch(2.0, 0.5), batch(1.0, -3.0))
    assert value.item() == pytest.approx((0.0 + 0.5) / 2 + (2.0 + 0.0) / 2)
    assert loss.generator_loss(FirstPixel(), batch(1.0, -3.0)).item() == pytest.approx(1.0)
    D = ConstantLogit(3.0)  # both margins met on the real side, violated on the fake side: dL/dt = +1
    loss.discriminator_loss(D, X, X).backward()
    assert D.t.grad.item() == pytest.approx(1.0)


@pytest.mark.parametrize(("a", "b"), [(0.0, 0.0), (2.0, -1.0), (-1.5, 0.5)])
def test_ragan_loss_constant_logits(a: float, b: float) -> None:
    loss = build_loss("ragan")
    real, fake = batch(a, a, a), batch(b, b, b)
    d = loss.discriminator_loss(FirstPixel(), real, fake)
    g = loss.generator_loss(FirstPixel(), fake, real=real)
    assert d.item() == pytest.approx(softplus(-(a - b)) + softplus(b - a), rel=1e-6)
    assert g.item() == pytest.approx(softplus(-(b - a)) + softplus(a - b), rel=1e-6)
    if a == b:
        assert d.item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_ragan_loss_compares_with_the_other_batch_mean() -> None:
    loss = build_loss("ragan")
    real, fake = batch(2.0, 4.0), batch(1.0, -1.0)  # mean C_r = 3, mean C_f = 0
    d = loss.discriminator_loss(FirstPixel(), real, fake)
    expected_d = (softplus(-2.0) + softplus(-4.0)) / 2 + (softplus(1.0 - 3.0) + softplus(-1.0 - 3.0)) / 2
    assert d.item() == pytest.approx(expected_d, rel=1e-6)
    g = loss.generator_loss(FirstPixel(), fake, real=real)
    expected_g = (softplus(-(1.0 - 3.0)) + softplus(-(-1.0 - 3.0))) / 2 + (softplus(2.0) + softplus(4.0)) / 2
    assert g.item() == pytest.approx(expected_g, rel=1e-6)


def test_ragan_generator_loss_needs_the_real_batch() -> None:
    loss = build_loss("ragan")
    # the trainer passes `real` because the method declares it
    assert declared_keywords(loss.generator_loss, LOSS_KEYWORDS["generator_loss"]) == (
        "real", "real_labels", "fake_labels")
    with pytest.raises(ValueError, match="real"):
        loss.generator_loss(FirstPixel(), X)


class ConstantClassifier(nn.Module):
    """(scores t, class logits ``logits``) for every sample, as a classifier discriminator returns them."""

    def __init__(self, t: float, logits: list[float]):
        super().__init__()
        self.t = torch.tensor(float(t))
        self.logits = torch.tensor(logits)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.t.expand(x.shape[0]), self.logits.expand(x.shape[0], -1)


@pytest.mark.parametrize("class_weight", [1.0, 0.5])
def test_acgan_loss_closed_form(class_weight: float) -> None:
    t, logits = 0.7, [2.0, 0.0, -1.0]
    log_z = math.log(math.exp(2.0) + 1.0 + math.exp(-1.0))
    ce = {k: log_z - logits[k] for k in range(3)}  # -log softmax(logits)[k]
    loss = build_loss("acgan", class_weight=class_weight) if class_weight != 1.0 else build_loss("acgan")
    D = ConstantClassifier(t, logits)
    real_labels = torch.tensor([0, 0])
    fake_labels = torch.tensor([1, 2])
    d = loss.discriminator_loss(D, X[:2], X[:2], real_labels=real_labels, fake_labels=fake_labels)
    expected_d = softplus(-t) + softplus(t) + class_weight * (ce[0] + (ce[1] + ce[2]) / 2)
    assert d.item() == pytest.approx(expected_d, rel=1e-6)
    g = loss.generator_loss(D, X[:2], fake_labels=fake_labels)
    assert g.item() == pytest.approx(softplus(-t) + class_weight * (ce[1] + ce[2]) / 2, rel=1e-6)


def test_acgan_loss_is_a_classifier_loss_and_needs_labels() -> None:
    assert get_registry().losses.get("acgan").item.classifier
    loss = build_loss("acgan")
    with pytest.raises(ValueError, match="labels"):
        loss.discriminator_loss(ConstantClassifier(0.0, [0.0, 0.0]), X, X)
    with pytest.raises(ValueError, match="labels"):
        loss.generator_loss(ConstantClassifier(0.0, [0.0, 0.0]), X)
    with pytest.raises(ValueError, match="class_weight"):
        build_loss("acgan", class_weight=-1.0)


# -- networks ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_networks_fit_both_image_sizes(shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    z, y = torch.randn(3, 16), torch.tensor([0, 1, 4])
    x = torch.rand(3, *shape) * 2 - 1
    for G in (CGANPDGenerator(16, shape, 5, width=4), ACGANGenerator(16, shape, 5, width=4)):
        out = G(z, y)
        assert out.shape == (3, *shape)
        assert out.abs().max() <= 1.0  # tanh
    assert SNGANDiscriminator(shape, width=4)(x).shape == (3,)
    assert SNGANDiscriminator(shape, width=4, layout="dcgan")(x).shape == (3,)
    assert ProjectionDiscriminator(shape, 5, width=4)(x, y).shape == (3,)
    assert ProjectionDiscriminator(shape, 5, width=4, layout="standard")(x, y).shape == (3,)
    scores, logits = ACGANDiscriminator(shape, 5, width=4, dropout=0.25)(x)
    assert scores.shape == (3,) and logits.shape == (3, 5)


@pytest.mark.parametrize("shape", [(1, 28, 32), (1, 27, 27), (1, 6, 6)])
def test_networks_refuse_unsupported_shapes(shape: tuple[int, int, int]) -> None:
    builders = [lambda: SNGANDiscriminator(shape), lambda: ProjectionDiscriminator(shape, 10),
                lambda: CGANPDGenerator(8, shape, 10), lambda: ACGANGenerator(8, shape, 10),
                lambda: ACGANDiscriminator(shape, 10)]
    for build in builders:
        with pytest.raises(ValueError, match="square|size"):
            build()


def test_sngan_discriminator_is_spectrally_normalised_without_batchnorm() -> None:
    D = SNGANDiscriminator((1, 28, 28), width=4)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 2 * 2 + 1 + 1  # two halvings of 28 (two convs each), the base conv, the dense layer
    assert all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in layers)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == pytest.approx(0.1) for m in D.modules())
    # in training mode each forward pass runs power iteration: W_SN has spectral norm ~1 after a few
    for _ in range(30):
        D(torch.zeros(1, 1, 28, 28))
    w = D.linear.weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=1e-3)


def test_projection_discriminator_is_linear_plus_class_projection() -> None:
    torch.manual_seed(0)
    D = ProjectionDiscriminator((1, 28, 28), 10, width=4).eval()
    x = torch.rand(2, 1, 28, 28)
    y0, y1 = torch.tensor([0, 0]), torch.tensor([1, 1])
    with torch.no_grad():
        h = torch.nn.functional.leaky_relu(D.trunk(x), 0.1).flatten(1)
        expected = D.linear(h).squeeze(1) + (D.embed(y0) * h).sum(1)
        torch.testing.assert_close(D(x, y0), expected)
        assert not torch.allclose(D(x, y0), D(x, y1))  # the class matters
    assert "weight" in D.embed.parametrizations and "weight" in D.linear.parametrizations


def test_conditional_batchnorm_starts_as_plain_batchnorm_and_is_per_class() -> None:
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, num_classes=4)
    x, y = torch.randn(8, 3, 2, 2), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    torch.testing.assert_close(cbn(x, y), nn.BatchNorm2d(3, affine=False)(x))
    with torch.no_grad():
        cbn.gamma.weight[2] = 2.0
        cbn.beta.weight[2] = 0.5
    out, plain = cbn(x, y), nn.BatchNorm2d(3, affine=False)(x)
    torch.testing.assert_close(out[y == 2], 2.0 * plain[y == 2] + 0.5)
    torch.testing.assert_close(out[y != 2], plain[y != 2])


def test_conditional_generators_depend_on_the_class() -> None:
    torch.manual_seed(0)
    z = torch.randn(4, 16)
    for G in (CGANPDGenerator(16, (1, 28, 28), 10, width=4), ACGANGenerator(16, (1, 28, 28), 10, width=4)):
        G.eval()
        with torch.no_grad():
            assert not torch.allclose(G(z, torch.full((4,), 3)), G(z, torch.full((4,), 7)))


# -- variants ------------------------------------------------------------------------------------------------
def quick_config(**extra: Any) -> dict[str, Any]:
    return {"batch_size": 8, "log_every": 1, "sample_every": 0, "sample_count": 10,
            "generator_options": {"width": 8}, "discriminator_options": {"width": 8}, **extra}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ganzoo.TrainResult]:
    """Every new variant trained for 3 steps on mnist-5k, once for the module."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("variants-v2")
    return {name: ganzoo.train(name, steps=3, out=root / name, progress=False, config=quick_config())
            for name in NEW_VARIANTS}


def test_new_variants_are_listed_with_their_papers() -> None:
    variants = {v["name"]: v for v in ganzoo.list_variants()}
    for name in NEW_VARIANTS:
        assert name in variants, f"{name} is not registered (load failures: {ganzoo.load_failures()})"
        assert variants[name]["paper"].strip()
        assert variants[name]["description"].strip()
    assert variants["wgan-clip"]["aliases"] == []  # the alias `wgan` stays with wgan-gp
    assert variants["wgan-clip"]["defaults"]["extensions"] == {"weight-clip": {"clip": 0.01}}
    assert variants["cgan-pd"]["loss"] == "hinge"


@pytest.mark.parametrize("name", NEW_VARIANTS)
def test_variant_trains_three_steps(runs: dict[str, ganzoo.TrainResult], name: str) -> None:
    result = runs[name]
    assert result.steps == 3
    assert math.isfinite(result.final_d_loss) and math.isfinite(result.final_g_loss)
    assert result.checkpoint is not None and result.checkpoint.is_file()
    lines = (result.out / "log.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_wgan_clip_keeps_the_critic_weights_clipped(runs: dict[str, ganzoo.TrainResult]) -> None:
    state = load_checkpoint(runs["wgan-clip"].checkpoint)
    assert list(state["components"]["extensions"]) == ["weight-clip"]
    weights = state["discriminator"]
    params = [name for name, _ in DCGANDiscriminator((1, 28, 28), width=8).named_parameters()]
    assert params and set(params) <= set(weights)
    for name in params:  # every parameter, BatchNorm's scale and shift included (running statistics are not)
        assert weights[name].abs().max().item() <= 0.01 + 1e-7, name


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_variants_sample_by_class(runs: dict[str, ganzoo.TrainResult], name: str) -> None:
    run_dir = runs[name].out
    images = ganzoo.sample(run_dir, n=20, labels=3)
    assert images.shape == (20, 1, 28, 28)
    assert images.abs().max() <= 1.0
    cycled = ganzoo.sample(run_dir, n=20)  # without labels: the classes in turn
    assert cycled.shape == (20, 1, 28, 28)
    assert not torch.equal(cycled, images)


class NoLabels:
    """A dataset without labels."""

    @ganzoo.hookimpl
    def register_datasets(self, register):
        def load(root: Path, split: str, download: bool, image_size: int | None):
            return torch.zeros(64, 1, 28, 28, dtype=torch.uint8), None

        register(ganzoo.DatasetSpec("nolabels", load, (1, 28, 28)))


def test_conditional_generator_refuses_unlabelled_dataset(tmp_path: Path) -> None:
    with registered(NoLabels(), "nolabels-plugin"):
        with pytest.raises(ganzoo.UsageError) as info:
            ganzoo.train("cgan-pd", steps=1, dataset="nolabels", out=tmp_path / "r", progress=False,
                         config=quick_config())
    message = str(info.value)
    assert "cgan-pd" in message and "nolabels" in message


def test_acgan_loss_refuses_a_discriminator_without_classifier(tmp_path: Path) -> None:
    with pytest.raises(ganzoo.UsageError, match="classifier"):
        ganzoo.train("acgan", steps=1, out=tmp_path / "r", progress=False,
                     config=quick_config(discriminator="dcgan"))


def test_gan_loss_trains_the_projection_discriminator(tmp_path: Path) -> None:
    result = ganzoo.train("cgan-pd", steps=1, out=tmp_path / "r", progress=False, config=quick_config(loss="gan"))
    assert result.components["loss"] == "gan (vanilla)"
    assert result.components["discriminator"] == "projection (cgan-pd)"
    assert math.isfinite(result.final_d_loss)


def test_loss_without_labels_refuses_the_projection_discriminator(tmp_path: Path) -> None:
    if "lsgan" not in get_registry().losses:
        pytest.fail("the example plugin ganzoo-lsgan (docs/examples/ganzoo-lsgan) is not installed")
    with pytest.raises(ganzoo.UsageError, match="'lsgan'") as info:
        ganzoo.train("cgan-pd", steps=1, out=tmp_path / "r", progress=False, config=quick_config(loss="lsgan"))
    assert "projection" in str(info.value)


@pytest.mark.parametrize("name", ["sngan", "cgan-pd"])
def test_spectral_norm_variants_resume_exactly(tmp_path: Path, name: str) -> None:
    # the power-iteration vectors are buffers of the discriminator, so they travel with the checkpoint
    straight = ganzoo.train(name, steps=4, out=tmp_path / "straight", progress=False, config=quick_config())
    ganzoo.train(name, steps=2, out=tmp_path / "resumed", progress=False, config=quick_config())
    resumed = ganzoo.train(name, steps=4, out=tmp_path / "resumed", progress=False, config=quick_config(),
                           resume=True)
    assert_same_weights(straight.checkpoint, resumed.checkpoint)
    assert any(key.endswith("_u") for key in load_checkpoint(resumed.checkpoint)["discriminator"])
