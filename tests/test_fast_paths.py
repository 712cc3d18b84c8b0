"""Opt-in fast paths: each still trains (finite losses), and matches eager where exactness is expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo.checkpoint import load_checkpoint
from ganzoo.cli import cli

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def run(tmp_path: Path, name: str, variant: str = "dcgan", steps: int = 3, **switches) -> ganzoo.TrainResult:
    return ganzoo.train(variant, steps=steps, out=tmp_path / name, progress=False, seed=1,
                        overrides={"batch_size": 8, "sample_every": 0, "log_every": 1, **switches})


def generator_weights(tmp_path: Path, name: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(tmp_path / name)["generator"]


@pytest.mark.parametrize("variant", ["dcgan", "wgan-gp"])
def test_channels_last_trains_and_stays_close_to_eager(tmp_path: Path, variant: str) -> None:
    eager = run(tmp_path, "eager", variant)
    fast = run(tmp_path, "cl", variant, channels_last=True)
    assert torch.isfinite(torch.tensor([fast.final_d_loss, fast.final_g_loss])).all()
    a, b = generator_weights(tmp_path, "eager"), generator_weights(tmp_path, "cl")
    # A different memory layout reorders float sums, and Adam turns tiny gradient differences into updates of
    # up to about lr each: after 3 steps the weights agree to within 2 * 3 * lr, not bit for bit.
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=0, atol=2 * 3 * 2e-4)
    assert eager.steps == fast.steps


def test_fused_adam_trains_and_stays_close_to_eager(tmp_path: Path) -> None:
    run(tmp_path, "eager", "vanilla")
    fast = run(tmp_path, "fused", "vanilla", fused_optimizer=True)
    assert torch.isfinite(torch.tensor([fast.final_d_loss, fast.final_g_loss])).all()
    a, b = generator_weights(tmp_path, "eager"), generator_weights(tmp_path, "fused")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["vanilla", "wgan-gp"])
def test_bf16_autocast_trains(tmp_path: Path, variant: str) -> None:
    result = run(tmp_path, "bf16", variant, amp="bf16")
    assert torch.isfinite(torch.tensor([result.final_d_loss, result.final_g_loss])).all()
    # master weights stay float32; only the arithmetic is bf16
    assert all(v.dtype != torch.bfloat16 for v in generator_weights(tmp_path, "bf16").values())


def test_fp16_on_cpu_is_a_usage_error(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["train", "vanilla", "--set", "amp=fp16", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "fp16 needs a CUDA device" in result.output


def test_compile_trains_and_matches_eager(tmp_path: Path) -> None:
    run(tmp_path, "eager", "vanilla", steps=4)
    result = run(tmp_path, "compiled", "vanilla", steps=4, compile=True)
    assert torch.isfinite(torch.tensor([result.final_d_loss, result.final_g_loss])).all()
    a, b = generator_weights(tmp_path, "eager"), generator_weights(tmp_path, "compiled")
    assert a.keys() == b.keys()  # checkpoints hold the plain modules' keys, not _orig_mod.*
    for key in a:  # inductor may fuse and reorder float arithmetic
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)


def test_compile_keeps_the_gradient_penalty_critic_eager(tmp_path: Path) -> None:
    result = run(tmp_path, "wgan", "wgan-gp", steps=2, compile=True)
    assert torch.isfinite(torch.tensor([result.final_d_loss, result.final_g_loss])).all()


@needs_cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_cuda_amp_trains(tmp_path: Path, amp: str) -> None:
    result = run(tmp_path, amp, "wgan-gp", steps=5, amp=amp, device="cuda", channels_last=True)
    assert torch.isfinite(torch.tensor([result.final_d_loss, result.final_g_loss])).all()
    state = load_checkpoint(tmp_path / amp)
    assert ("scale" in state["scaler_d"]) == (amp == "fp16")  # GradScaler.state_dict(): {} when disabled


def test_auto_switches_follow_the_measured_table(monkeypatch) -> None:
    """'auto' is on exactly for the device types ganzoo.fast_paths.AUTO lists; true and false force it."""
    from ganzoo import fast_paths

    cfg = ganzoo.build_config("vanilla")
    assert {switch: getattr(cfg, switch) for switch in fast_paths.SWITCHES} == dict.fromkeys(fast_paths.SWITCHES,
                                                                                               "auto")
    monkeypatch.setattr(fast_paths, "AUTO", {"cpu": frozenset({"fused_optimizer"})})
    assert fast_paths.enabled(cfg, "fused_optimizer", "cpu")
    assert not fast_paths.enabled(cfg, "fused_optimizer", "cuda")
    assert not fast_paths.enabled(cfg, "compile", "cpu")
    forced = ganzoo.build_config("vanilla", overrides=["fused_optimizer=false", "compile=true"])
    assert not fast_paths.enabled(forced, "fused_optimizer", "cpu") and fast_paths.enabled(forced, "compile", "cuda")


def test_auto_reaches_the_optimiser(tmp_path: Path, monkeypatch) -> None:
    from ganzoo import fast_paths
    from ganzoo.training import run as training_run

    seen = []
    monkeypatch.setattr(training_run, "run_loop", lambda trainer, *a, **k: seen.append(
        trainer.opt_g.defaults["fused"]) or (_ for _ in ()).throw(SystemExit))
    for table, expected in (({"cpu": frozenset({"fused_optimizer"})}, True), ({}, None)):
        monkeypatch.setattr(fast_paths, "AUTO", table)
        with pytest.raises(SystemExit):
            run(tmp_path, f"auto-{expected}", "vanilla", steps=1)
    assert seen == [True, None]


def test_compile_keeps_the_discriminator_step_eager_under_a_penalising_extension() -> None:
    """R1 and R2 differentiate D twice, which a compiled graph cannot: with one of them the discriminator step
    stays eager (the generator's forward still compiles); without, it compiles."""
    from conftest import make_trainer

    small = {"compile": True, "generator_options": {"width": 4}, "discriminator_options": {"width": 4}}
    penalised = make_trainer("dcgan", extensions={"r2": {"every": 1}}, **small)
    plain = make_trainer("dcgan", **small)
    assert penalised.discriminator_loss == penalised._discriminator_loss
    assert plain.discriminator_loss != plain._discriminator_loss
    assert penalised.G_fwd is not penalised.G  # compiled
