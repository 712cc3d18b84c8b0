"""The shared trainer through the public API and the CLI: outputs, seeding, n_critic, resume, sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import assert_same_weights
from PIL import Image

import ganzoo
from ganzoo.checkpoint import latest_checkpoint, load_checkpoint
from ganzoo.cli import cli
from ganzoo.training.run import run_config


def test_run_writes_log_grids_checkpoint_and_result(tmp_path: Path, quick) -> None:
    out = tmp_path / "run"
    result = ganzoo.train("vanilla", steps=6, out=out, progress=False,
                          overrides={**quick, "sample_every": 3, "sample_count": 9})
    assert result.steps == 6 and result.images_seen == 6 * 16
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert all({"d_loss", "g_loss", "images_seen", "train_s", "img_per_s"} <= r.keys() for r in lines)
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-00000003.png", "step-00000006.png"]
    with Image.open(out / "samples.png") as grid:  # 3x3 grid of 28x28 images with 2-pixel padding
        assert grid.size == (3 * 30 + 2, 3 * 30 + 2)
    assert latest_checkpoint(out) == result.checkpoint
    saved = json.loads((out / "result.json").read_text())
    assert saved["steps"] == 6 and saved["components"]["generator"] == "mlp (vanilla)"
    assert "lr_g" in (out / "config.yaml").read_text()


def test_same_seed_same_weights_different_seed_different(tmp_path: Path, quick) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        ganzoo.train("vanilla", steps=5, seed=seed, out=tmp_path / name, progress=False, overrides=quick)
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    with pytest.raises(AssertionError):
        assert_same_weights(tmp_path / "a", tmp_path / "c")


def test_wgan_gp_runs_n_critic_discriminator_steps(tmp_path: Path) -> None:
    result = ganzoo.train("wgan", steps=2, out=tmp_path / "w", progress=False,
                          overrides={"batch_size": 8, "sample_every": 0})
    assert result.images_seen == 2 * 5 * 8
    state = load_checkpoint(tmp_path / "w")
    # Adam counts its steps: five critic updates per generator update
    d_steps = {int(s["step"]) for s in state["opt_d"]["state"].values()}
    g_steps = {int(s["step"]) for s in state["opt_g"]["state"].values()}
    assert d_steps == {10} and g_steps == {2}


def test_resume_continues_exactly(tmp_path: Path, quick) -> None:
    cfg = {**quick, "checkpoint_every": 3, "keep_last": 5}
    ganzoo.train("vanilla", steps=6, out=tmp_path / "straight", progress=False, overrides=cfg)
    ganzoo.train("vanilla", steps=3, out=tmp_path / "resumed", progress=False, overrides=cfg)
    ganzoo.train("vanilla", steps=6, out=tmp_path / "resumed", progress=False, overrides=cfg, resume=True)
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_resume_without_checkpoint_is_an_error(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["train", "vanilla", "--resume", "--out", str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "no checkpoint" in result.output and "without --resume" in result.output


def test_sample_command_writes_grid(tmp_path: Path, runner, quick) -> None:
    ganzoo.train("dcgan", steps=2, out=tmp_path / "run", progress=False, overrides={**quick, "batch_size": 8})
    grid = tmp_path / "grid.png"
    result = runner.invoke(cli, ["sample", str(tmp_path / "run"), "-n", "16", "-o", str(grid)])
    assert result.exit_code == 0, result.output
    with Image.open(grid) as image:
        assert image.size == (4 * 30 + 2, 4 * 30 + 2)
    images = ganzoo.sample(tmp_path / "run", n=5, seed=1)
    assert images.shape == (5, 1, 28, 28) and images.abs().max() <= 1
    assert torch.equal(images, ganzoo.sample(tmp_path / "run", n=5, seed=1))


def test_sample_missing_checkpoint_exits_1(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["sample", str(tmp_path / "nope.pt")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_cli_train_prints_summary(tmp_path: Path, runner) -> None:
    out = tmp_path / "cli"
    result = runner.invoke(cli, ["train", "vanilla", "--steps", "2", "--out", str(out), "--seed", "1",
                                 "--set", "batch_size=8", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "trained vanilla for 2 steps" in result.output
    assert (out / "samples.png").is_file()


def test_minimax_generator_loss_is_selectable(tmp_path: Path, quick) -> None:
    a = ganzoo.train("vanilla", steps=3, out=tmp_path / "ns", progress=False, overrides=quick)
    b = ganzoo.train("vanilla", steps=3, out=tmp_path / "mm", progress=False,
                     overrides={**quick, "loss_options.generator_loss": "minimax"})
    assert a.final_g_loss > 0 > b.final_g_loss  # -log D(G(z)) > 0; log(1 - D(G(z))) < 0


def test_evaluating_does_not_change_the_training_trajectory(tmp_path: Path) -> None:
    """wgan-gp's gradient penalty draws from torch's global generator; an evaluator that draws from it too (as
    creating a feature extractor did) must not shift the penalty's draws."""
    def greedy(trainer) -> dict[str, float]:
        torch.rand(1000)
        return {}

    cfg = {"batch_size": 8, "log_every": 1, "sample_every": 0, "generator_options": {"width": 4},
           "discriminator_options": {"width": 4}}
    ganzoo.train("wgan-gp", steps=3, out=tmp_path / "plain", progress=False, overrides=cfg)
    config = ganzoo.build_config("wgan-gp", steps=3, overrides={**cfg, "out": str(tmp_path / "evaluated")})
    run_config(config, progress=False, callbacks=[ganzoo.Evaluation(greedy, every=1)])
    assert_same_weights(tmp_path / "plain", tmp_path / "evaluated")
