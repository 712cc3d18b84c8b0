"""The built-in extensions (ema, diffaugment, r1, weight-clip): hand-computed numbers, their effect on a run,
and bit-exact resume of a run that uses them all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import QUICK, assert_same_weights
from ganzoo_plugins.extensions import EMA, R1, DiffAugment, WeightClip
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

import ganzoo
from ganzoo import ExtensionContext
from ganzoo.checkpoint import load_checkpoint

MLP = {"generator_options": {"hidden": [32]}, "discriminator_options": {"hidden": [32]}}
CONV = {"generator_options": {"width": 8}, "discriminator_options": {"width": 8}}
ALL = {"ema": {"decay": 0.9}, "diffaugment": {}, "r1": {"every": 2}, "weight-clip": {"clip": 0.05}}


def tiny_config(extensions: Any, nets: dict[str, Any] = MLP, **more: Any) -> dict[str, Any]:
    return {**QUICK, **nets, "extensions": extensions, "seed": 0, **more}


def context(generator: nn.Module | None = None, seed: int = 0, rank: int = 0,
            image_shape: tuple[int, ...] = (1, 8, 8)) -> ExtensionContext:
    config = ganzoo.build_config("vanilla", seed=seed)
    return ExtensionContext(generator or nn.Linear(2, 2), nn.Linear(2, 1), config, None, image_shape,
                            torch.device("cpu"), rank)


def flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.flatten().float() for t in state.values()])


def test_the_plugin_loads_and_registers_all_four() -> None:
    assert "extensions" not in [failure.name for failure in ganzoo.load_failures()]
    assert ganzoo.build_config("vanilla", config={"extensions": ["ema"]}).extensions == {"ema": {}}
    assert list(ganzoo.build_config("vanilla", config={"extensions": list(ALL)}).extensions) == list(ALL)


# -- ema ---------------------------------------------------------------------------------------------------------
def test_ema_is_a_hand_computable_moving_average() -> None:
    G = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        G[0].weight.fill_(1.0)
    ema = EMA(decay=0.75, warmup=False)
    ema.setup(context(G))
    average = ema.sampling_generator()
    assert average is not G and not average.training
    assert not any(p.requires_grad for p in average.parameters())
    with torch.no_grad():
        G[0].weight.fill_(3.0)
        G[1].running_mean.fill_(5.0)
    ema.after_generator_step(G, 1)
    # 0.75 * 1 + 0.25 * 3 = 1.5, exactly representable
    assert torch.equal(average[0].weight, torch.full((2, 2), 1.5))
    assert torch.equal(average[1].running_mean, torch.full((2,), 5.0))  # buffers are copied
    assert torch.equal(G[0].weight, torch.full((2, 2), 3.0))  # the trained generator is untouched
    # arbitrary values: decay * old + (1 - decay) * new up to rounding
    old = average[0].weight.clone()
    with torch.no_grad():
        G[0].weight.copy_(torch.randn(2, 2, generator=torch.Generator().manual_seed(0)))
    ema.after_generator_step(G, 2)
    torch.testing.assert_close(average[0].weight, 0.75 * old + 0.25 * G[0].weight, rtol=0, atol=1e-6)


def test_ema_warmup_caps_the_decay_early() -> None:
    ema = EMA(decay=0.999)
    assert ema.decay_at(1) == pytest.approx(2 / 11)  # (1 + t) / (10 + t)
    assert ema.decay_at(600) == pytest.approx(601 / 610)
    assert ema.decay_at(10_000) == 0.999  # capped by decay from t = 8990 on
    assert EMA(decay=0.9, start=100).decay_at(101) == pytest.approx(2 / 11)  # t counts from start
    G = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        G.weight.fill_(0.0)
    ema = EMA(decay=0.999)
    ema.setup(context(G))
    with torch.no_grad():
        G.weight.fill_(11.0)
    ema.after_generator_step(G, 1)
    assert ema.sampling_generator().weight.item() == pytest.approx(9.0)  # 2/11 * 0 + 9/11 * 11


def test_ema_copies_the_generator_until_start() -> None:
    G = nn.Linear(2, 2)
    ema = EMA(decay=0.5, start=2, warmup=False)
    ema.setup(context(G))
    for step, value, expected in ((1, 4.0, 4.0), (2, 8.0, 8.0), (3, 0.0, 4.0)):
        with torch.no_grad():
            G.weight.fill_(value)
        ema.after_generator_step(G, step)
        assert torch.equal(ema.sampling_generator().weight, torch.full((2, 2), expected)), step


@pytest.mark.parametrize(("options", "message"), [({"decay": 1.0}, "decay"), ({"decay": -0.1}, "decay"),
                                                  ({"start": -1}, "start"), ({"decay": "high"}, "decay")])
def test_ema_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EMA(**options)


def test_samples_and_exports_use_the_ema(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ganzoo.train("vanilla", steps=4, out=run, config=tiny_config({"ema": {"decay": 0.9}}), progress=False)
    state = load_checkpoint(run)
    assert state["components"]["sampling_generator"] == "ema"
    average, trained = state["sample_generator"], state["generator"]
    assert average.keys() == trained.keys()
    assert not torch.equal(flat(average), flat(trained))
    G, _ = ganzoo.load_generator(run)
    for key, value in G.state_dict().items():
        assert torch.equal(value, average[key]), key
    G_raw, _ = ganzoo.load_generator(run, raw=True)
    for key, value in G_raw.state_dict().items():
        assert torch.equal(value, trained[key]), key
    exported = load_file(run / "generator.safetensors")
    assert exported.keys() == average.keys()
    for key in average:
        assert torch.equal(exported[key], average[key]), key
    with safe_open(run / "generator.safetensors", "pt") as f:
        assert f.metadata()["weights"] == "ema"
    z = torch.randn(3, 100, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(ganzoo.sample(run, n=3), ganzoo.sample(run, n=3, raw=True))
    with torch.no_grad():
        assert torch.equal(ganzoo.sample(run, n=3), G(z))


# -- weight-clip -------------------------------------------------------------------------------------------------
def test_weight_clip_clamps_every_parameter() -> None:
    D = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
    with torch.no_grad():
        for p in D.parameters():
            p.copy_(torch.linspace(-1, 1, p.numel()).view_as(p))
    WeightClip(clip=0.25).after_discriminator_step(D, 0)
    for p in D.parameters():
        assert float(p.detach().abs().max()) == 0.25
        assert p.requires_grad  # clamped in place, the parameter is still trained


def test_weight_clip_in_a_run_leaves_the_critic_within_the_bound(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # nn.Linear(784, 32) starts with weights up to 1/sqrt(784) = 0.036, so an unclipped critic exceeds 0.01
    ganzoo.train("vanilla", steps=3, out=run, config=tiny_config({"weight-clip": {"clip": 0.01}}), progress=False)
    state = load_checkpoint(run)
    assert state["sample_generator"] is None
    for key, value in state["discriminator"].items():
        assert float(value.abs().max()) <= 0.01, key


@pytest.mark.parametrize("clip", [0, -0.01, "x"])
def test_weight_clip_rejects_a_bound_that_is_not_positive(clip: Any) -> None:
    with pytest.raises(ValueError, match="clip"):
        WeightClip(clip=clip)


# -- r1 ----------------------------------------------------------------------------------------------------------
def test_r1_of_a_linear_critic_is_gamma_half_norm_squared_every_kth_update() -> None:
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True)
    real = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    seen = []

    def D(x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        seen.append(labels)
        return x.flatten(1) @ w  # grad_x D(x) = w for every sample

    r1 = R1(gamma=4.0, every=3)
    assert r1.penalty_interval == 3  # lazy: ganzoo calls it every 3rd update and weights it by 3
    labels = torch.arange(5)
    penalty = r1.discriminator_penalty(D, real, labels, 6)
    # gamma / 2 * ||w||^2 = 2 * 14.25
    assert penalty.ndim == 0 and float(penalty.detach()) == pytest.approx(28.5)
    assert seen[0] is labels
    (grad_w,) = torch.autograd.grad(penalty, w)  # create_graph: the penalty trains D
    torch.testing.assert_close(grad_w, 4.0 * w.detach())
    assert not real.requires_grad


def test_r1_takes_the_scores_of_a_classifier_discriminator() -> None:
    w = torch.tensor([2.0, 0.0, 0.0, 1.0])

    def D(x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return (x.flatten(1) @ w).unsqueeze(1), 100 * x.flatten(1)  # (B, 1) scores and class logits

    penalty = R1(gamma=10.0, every=1).discriminator_penalty(D, torch.ones(3, 1, 2, 2), None, 0)
    assert float(penalty) == pytest.approx(5.0 * 5.0)


@pytest.mark.parametrize(("options", "message"), [({"gamma": -1.0}, "gamma"), ({"every": 0}, "every"),
                                                  ({"every": 1.5}, "every")])
def test_r1_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        R1(**options)


# -- diffaugment -------------------------------------------------------------------------------------------------
def augmenter(policy: str = "color,translation,cutout", seed: int = 0, rank: int = 0, **options: Any) -> DiffAugment:
    ext = DiffAugment(policy=policy, **options)
    ext.setup(context(seed=seed, rank=rank))
    return ext


def images(channels: int = 3, size: int = 8, batch: int = 6) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("channels", [1, 3])
def test_diffaugment_keeps_shape_and_dtype_and_is_differentiable(channels: int) -> None:
    x = images(channels).requires_grad_(True)
    out = augmenter().augment(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous()
    assert not torch.equal(out, x)
    out.pow(2).sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)


def test_diffaugment_color_is_the_official_formula() -> None:
    ext = augmenter("color")
    mirror = torch.Generator()
    mirror.set_state(ext.state_dict()["generator"])
    x = images(3)
    out = ext.augment(x)
    u1, u2, u3 = (torch.rand(6, 1, 1, 1, generator=mirror) for _ in range(3))
    y = x + (u1 - 0.5)
    y = (y - y.mean(dim=1, keepdim=True)) * (u2 * 2) + y.mean(dim=1, keepdim=True)
    y = (y - y.mean(dim=[1, 2, 3], keepdim=True)) * (u3 + 0.5) + y.mean(dim=[1, 2, 3], keepdim=True)
    torch.testing.assert_close(out, y, rtol=0, atol=1e-6)
    # one gray channel: the saturation step leaves the image as it is, brightness and contrast still act
    gray = augmenter("color").augment(images(1))
    assert gray.shape == (6, 1, 8, 8)


def test_diffaugment_is_deterministic_given_its_generator_state() -> None:
    x = images()
    ext = augmenter()
    saved = ext.state_dict()
    first = ext.augment(x)
    assert not torch.equal(ext.augment(x), first)  # the stream moves on
    ext.load_state_dict(saved)
    assert torch.equal(ext.augment(x), first)  # ... and is restored
    assert torch.equal(augmenter().augment(x), first)  # the same seed and rank give the same stream
    assert not torch.equal(augmenter(rank=1).augment(x), first)  # each rank its own
    assert not torch.equal(augmenter(seed=1).augment(x), first)
    ext = augmenter()
    global_before = torch.get_rng_state()
    ext.augment(x)
    assert torch.equal(torch.get_rng_state(), global_before)  # the global stream is never touched


def shifted(x: torch.Tensor, dh: int, dw: int) -> torch.Tensor:
    """``x`` (C, H, W) moved by (dh, dw) pixels, zeros shifted in."""
    out = torch.zeros_like(x)
    H, W = x.shape[1:]
    out[:, max(0, -dh):H - max(0, dh), max(0, -dw):W - max(0, dw)] = \
        x[:, max(0, dh):H - max(0, -dh), max(0, dw):W - max(0, -dw)]
    return out


def test_diffaugment_translation_shifts_each_image_with_zero_padding() -> None:
    x = torch.arange(1, 1 + 6 * 2 * 8 * 8, dtype=torch.float32).view(6, 2, 8, 8)  # all values distinct, none 0
    ext = augmenter("translation", translation_ratio=0.25)
    mirror = torch.Generator()
    mirror.set_state(ext.state_dict()["generator"])
    out = ext.augment(x)
    # the official draws: one shift per sample in [-2, 2] rows, then one in columns
    drawn = [tuple(pair) for pair in torch.stack([torch.randint(-2, 3, (6, 1, 1), generator=mirror).flatten()
                                                  for _ in range(2)], 1).tolist()]
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0.0}
    shifts = []
    for i in range(len(x)):
        found = [(dh, dw) for dh in range(-2, 3) for dw in range(-2, 3) if torch.equal(out[i], shifted(x[i], dh, dw))]
        assert len(found) == 1, i  # a shift of at most 0.25 * 8 = 2 pixels each way
        shifts.append(found[0])
    assert shifts == drawn
    assert len(set(shifts)) > 1  # drawn per sample


def test_diffaugment_cutout_zeroes_one_square_per_image() -> None:
    x = torch.rand(8, 3, 12, 12, generator=torch.Generator().manual_seed(2)) + 0.5  # no zeros of its own
    ext = augmenter("cutout", cutout_ratio=0.5)
    mirror = torch.Generator()
    mirror.set_state(ext.state_dict()["generator"])
    out = ext.augment(x)
    # the official draws: the square's centre row, then column, in [0, 12 + 1) (the size 6 is even)
    centres = torch.stack([torch.randint(0, 13, (8, 1, 1), generator=mirror).flatten() for _ in range(2)], 1)
    corners = set()
    for i in range(len(x)):
        zero = out[i] == 0
        assert torch.equal(zero, zero[:1].expand_as(zero))  # the same pixels in every channel
        rows, cols = zero[0].any(1).nonzero().flatten(), zero[0].any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 6 and 1 <= len(cols) <= 6  # a 6 x 6 square, clipped at the border
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        assert bool(zero[0, r0:r1 + 1, c0:c1 + 1].all()) and int(zero[0].sum()) == len(rows) * len(cols)
        row, col = centres[i].tolist()
        assert (r0, r1, c0, c1) == (max(0, row - 3), min(11, row + 2), max(0, col - 3), min(11, col + 2))
        assert torch.equal(out[i][~zero], x[i][~zero])  # the rest is untouched
        corners.add((r0, c0))
    assert len(corners) > 1


def test_diffaugment_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="'rotate'.*color, translation, cutout"):
        DiffAugment(policy="color,rotate")
    with pytest.raises(ValueError, match="cutout_ratio"):
        DiffAugment(cutout_ratio=1.5)
    assert DiffAugment(policy=" translation , cutout").policy == ("translation", "cutout")
    ext = augmenter("")
    x = images()
    assert torch.equal(ext.augment(x), x)


def test_diffaugment_changes_what_the_discriminator_sees(tmp_path: Path) -> None:
    plain = ganzoo.train("vanilla", steps=2, out=tmp_path / "plain", config=tiny_config({}), progress=False)
    augmented = ganzoo.train("vanilla", steps=2, out=tmp_path / "aug", config=tiny_config({"diffaugment": {}}),
                             progress=False)
    assert plain.final_d_loss != augmented.final_d_loss
    state = load_checkpoint(tmp_path / "aug")
    assert state["extensions"]["diffaugment"]["generator"].dtype == torch.uint8


# -- resume and config errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("variant", "nets"), [("vanilla", MLP), ("dcgan", CONV), ("cgan-pd", CONV),
                                              ("acgan", CONV)])
def test_resume_with_every_extension_is_bit_exact(tmp_path: Path, variant: str, nets: dict[str, Any]) -> None:
    config = tiny_config(ALL, nets)
    run = tmp_path / "run"  # both runs write to the same path, so that their exported metadata match too
    ganzoo.train(variant, steps=6, out=run, config=config, progress=False)
    straight = tmp_path / "straight"
    shutil.move(run, straight)
    ganzoo.train(variant, steps=3, out=run, config=config, progress=False)
    ganzoo.train(variant, steps=6, out=run, config=config, resume=True, progress=False)
    assert_same_weights(straight, run)
    sa, sb = load_checkpoint(straight), load_checkpoint(run)
    assert sa["sample_generator"].keys() == sb["sample_generator"].keys()
    for key in sa["sample_generator"]:
        assert torch.equal(sa["sample_generator"][key], sb["sample_generator"][key]), key
    assert torch.equal(sa["extensions"]["diffaugment"]["generator"], sb["extensions"]["diffaugment"]["generator"])
    # the exported weights, byte for byte; the metadata as a mapping (safetensors writes its keys in hash order)
    (header_a, data_a), (header_b, data_b) = export_parts(straight), export_parts(run)
    assert data_a == data_b and header_a == header_b
    if variant == "dcgan":  # BatchNorm running statistics of the average are the generator's
        buffers = [k for k in sa["generator"] if "running_mean" in k]
        assert buffers
        for key in buffers:
            assert torch.equal(sa["sample_generator"][key], sa["generator"][key]), key


def export_parts(run: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed header of a run's ``generator.safetensors`` and the bytes of the tensors after it."""
    data = (run / "generator.safetensors").read_bytes()
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), data[8 + length:]


def test_unknown_extension_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ganzoo.ConfigError, match="'no-such-thing'"):
        ganzoo.train("vanilla", steps=1, out=tmp_path / "r", config=tiny_config({"no-such-thing": {}}),
                     progress=False)


def test_unknown_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ganzoo.ConfigError, match="'ema'.*decya"):
        ganzoo.train("vanilla", steps=1, out=tmp_path / "r", config=tiny_config({"ema": {"decya": 0.9}}),
                     progress=False)


def test_bad_option_value_names_the_extension(tmp_path: Path) -> None:
    with pytest.raises((ganzoo.PluginError, ganzoo.ConfigError)) as info:
        ganzoo.train("vanilla", steps=1, out=tmp_path / "r", config=tiny_config({"ema": {"decay": 2}}),
                     progress=False)
    assert "'ema'" in str(info.value) and "decay" in str(info.value)
