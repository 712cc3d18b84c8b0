"""PacGAN as an extension: the discriminator is built for, and sees, m samples packed into one input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import QUICK, make_trainer

import ganzoo
from ganzoo.training.assembly import CompositionError
from ganzoo.training.trainer import Trainer

SMALL = {"generator_options": {"width": 4}, "discriminator_options": {"width": 4}}


def trainer(variant: str, dataset: str = "mnist-5k", **overrides) -> Trainer:
    return make_trainer(variant, dataset=dataset, steps=2, **overrides)


def test_packing_by_hand() -> None:
    from ganzoo_plugins.pacgan import Packing

    x = torch.arange(4 * 2 * 1 * 1, dtype=torch.float32).view(4, 2, 1, 1)  # 4 samples of 2 channels
    packed = Packing(2).discriminator_input(x)
    assert packed.shape == (2, 4, 1, 1)
    assert packed[:, :, 0, 0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]  # samples 0 and 1, then 2 and 3
    assert Packing(3).discriminator_input(torch.zeros(6, 2)).shape == (2, 6)  # vectors: along the features
    with pytest.raises(ValueError, match="batch_size to a multiple of 3"):
        Packing(3).discriminator_input(torch.zeros(4, 2))


@pytest.mark.parametrize("m", [2, 4])
def test_dcgan_with_a_packed_discriminator_trains(m: int) -> None:
    t = trainer("dcgan", extensions={f"pac{m}": {}}, **SMALL)
    first_conv = next(mod for mod in t.D.modules() if isinstance(mod, torch.nn.Conv2d))
    assert first_conv.in_channels == m  # mnist: one channel per sample
    assert t.assembly.discriminator_shape == (m, 28, 28)
    seen: list[tuple[int, ...]] = []
    t.D.register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)))
    d_loss, g_loss = t.train_step()
    bs = QUICK["batch_size"]
    assert seen and all(shape == (bs // m, m, 28, 28) for shape in seen)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)


def test_pacgan_option_and_vectors() -> None:
    t = trainer("vanilla", "ring-8", extensions={"pacgan": {"packing": 2}})
    assert t.assembly.discriminator_shape == (4,)
    assert t.D.net[1].in_features == 4
    t.train_step()


def test_packing_refuses_what_it_cannot_pack(tmp_path: Path) -> None:
    with pytest.raises(CompositionError, match=r"extension 'pac3' .*multiple of 3"):
        trainer("dcgan", extensions={"pac3": {}}, **SMALL)  # batch 16
    with pytest.raises(CompositionError, match="one label per sample"):
        trainer("cgan-pd", extensions={"pac2": {}}, **SMALL)
    with pytest.raises(ganzoo.UsageError, match="packing must be a positive integer"):
        trainer("dcgan", extensions={"pacgan": {"packing": 0}}, **SMALL)


def test_wgan_gp_penalty_runs_on_packed_interpolates() -> None:
    t = trainer("wgan-gp", extensions={"pac2": {}}, **SMALL)
    d_loss, _ = t.train_step()
    assert torch.isfinite(d_loss)
