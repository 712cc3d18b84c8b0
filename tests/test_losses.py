"""The built-in losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import ConstantLogit, build_loss, softplus
from torch import nn


class Linear(nn.Module):
    """f(x) = w . x, the critic for which the gradient penalty has a closed form."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return x.flatten(1) @ self.w


X = torch.zeros(4, 1, 2, 2)


@pytest.mark.parametrize("t", [0.0, 1.5, -2.0])
def test_gan_discriminator_loss_closed_form(t: float) -> None:
    # -log sigmoid(t) - log(1 - sigmoid(t)) = softplus(-t) + softplus(t); at t = 0 that is 2 log 2.
    loss = build_loss("gan").discriminator_loss(ConstantLogit(t), X, X)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(softplus(-t) + softplus(t), rel=1e-6)
    if t == 0.0:
        assert loss.item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_gan_generator_losses_closed_form_and_gradients() -> None:
    t = -5.0  # the discriminator is sure the fakes are fake: where the minimax loss saturates
    ns, mm = build_loss("gan"), build_loss("gan", generator_loss="minimax")
    D1, D2 = ConstantLogit(t), ConstantLogit(t)
    l_ns, l_mm = ns.generator_loss(D1, X), mm.generator_loss(D2, X)
    assert l_ns.item() == pytest.approx(softplus(-t), rel=1e-6)  # -log sigmoid(t)
    assert l_mm.item() == pytest.approx(-softplus(t), rel=1e-6)  # log(1 - sigmoid(t))
    l_ns.backward()
    l_mm.backward()
    sigmoid = 1 / (1 + math.exp(-t))
    assert D1.t.grad.item() == pytest.approx(sigmoid - 1, rel=1e-6)  # about -0.9933: a strong signal
    assert D2.t.grad.item() == pytest.approx(-sigmoid, rel=1e-5)  # about -0.0067: saturated
    assert abs(D1.t.grad.item()) > 100 * abs(D2.t.grad.item())


def test_gan_losses_are_stable_for_extreme_logits() -> None:
    loss = build_loss("gan")
    for t in (-200.0, 200.0):
        assert torch.isfinite(loss.discriminator_loss(ConstantLogit(t), X, X))
        assert torch.isfinite(loss.generator_loss(ConstantLogit(t), X))
    assert loss.discriminator_loss(ConstantLogit(200.0), X, X).item() == pytest.approx(200.0)


def test_gan_loss_rejects_unknown_generator_loss() -> None:
    with pytest.raises(ValueError, match="minimax"):
        build_loss("gan", generator_loss="hinge")


@pytest.mark.parametrize("w", [[3.0, 4.0, 0.0, 0.0], [0.3, -0.1, 0.2, 0.5], [1.0, 0.0, 0.0, 0.0]])
def test_gradient_penalty_of_linear_critic(w: list[float]) -> None:
    # f(x) = w.x has gradient w everywhere, so GP = lambda * (|w| - 1)^2 and dGP/dw = 2 lambda (|w|-1) w/|w|.
    lam = 10.0
    w_t = torch.tensor(w)
    D = Linear(w_t)
    loss = build_loss("wgan-gp", gp_lambda=lam)
    x = torch.randn(8, 1, 2, 2)
    value = loss.discriminator_loss(D, x, x)  # real == fake: the Wasserstein term is 0
    norm = w_t.norm().item()
    assert value.item() == pytest.approx(lam * (norm - 1) ** 2, rel=1e-5, abs=1e-6)
    value.backward()  # needs create_graph=True inside the penalty to reach w
    expected = 2 * lam * (norm - 1) * w_t / norm
    torch.testing.assert_close(D.w.grad, expected, rtol=1e-5, atol=1e-6)


def test_wgan_losses_without_penalty() -> None:
    D = Linear(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    real = torch.zeros(2, 1, 2, 2)
    real[:, 0, 0, 0] = torch.tensor([2.0, 4.0])  # D(real) = 2, 4
    fake = torch.zeros(2, 1, 2, 2)
    fake[:, 0, 0, 0] = torch.tensor([1.0, -1.0])  # D(fake) = 1, -1
    loss = build_loss("wgan-gp", gp_lambda=0.0)
    assert loss.discriminator_loss(D, real, fake).item() == pytest.approx(0.0 - 3.0)
    assert loss.generator_loss(D, fake).item() == pytest.approx(-0.0)


def test_gradient_penalty_interpolates_per_sample() -> None:
    # A critic whose gradient depends on the input: f(x) = 0.5 * |x|^2, grad = x^. With alpha per sample,
    # each interpolate lies on the segment between its own real and fake sample.
    seen = []

    class Quadratic(nn.Module):
        def forward(self, x, labels=None):
            seen.append(x.detach().clone())
            return 0.5 * x.flatten(1).pow(2).sum(1)

    real = torch.ones(6, 1, 2, 2)
    fake = -torch.ones(6, 1, 2, 2)
    build_loss("wgan-gp").discriminator_loss(Quadratic(), real, fake)
    interp = seen[-1]
    per_sample = interp.flatten(1)
    # every pixel of a sample shares one alpha; samples differ
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))
    assert per_sample[:, 0].unique().numel() == 6
    assert (per_sample.abs() <= 1).all()


def test_wgan_gp_refuses_batchnorm_critic() -> None:
    loss = build_loss("wgan-gp")
    with pytest.raises(ValueError, match="BatchNorm"):
        loss.check_discriminator(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    loss.check_discriminator(nn.Sequential(nn.Conv2d(1, 2, 3), nn.GroupNorm(1, 2)))
