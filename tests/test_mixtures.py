"""2-D Gaussian mixtures (ring-8, grid-25): non-image data through the whole pipeline, and the mode-collapse
metrics against hand-computed cases."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from ganzoo_plugins.mixtures import grid, ring

import ganzoo
from ganzoo.bench import BenchProfile
from ganzoo.bench.leaderboard import render
from ganzoo.cli import cli
from ganzoo.errors import ConfigError
from ganzoo.metric_keys import FID, HIGH_QUALITY, MODE_KL, MODES
from ganzoo.training.assembly import CompositionError

RING = ring()


def test_one_mode_scores_one_of_eight_and_the_real_points_all() -> None:
    one_mode = RING.centres[3].float().expand(500, 2) + 0.001  # a collapsed generator: every point at mode 3
    assert RING.metrics(one_mode) == {MODES: 1.0, HIGH_QUALITY: 1.0, MODE_KL: pytest.approx(math.log(8))}
    real, _ = ganzoo.load_dataset("ring-8", split="test").images, None
    scores = RING.metrics(real[:2500])
    assert scores[MODES] == 8.0 and scores[HIGH_QUALITY] > 0.95 and scores[MODE_KL] < 0.01
    # P(|x - mu| <= 3 sigma) for an isotropic 2-D Gaussian: 1 - exp(-9 / 2) = 0.98889
    assert RING.metrics(real)[HIGH_QUALITY] == pytest.approx(1 - math.exp(-4.5), abs=0.004)


def test_metrics_by_hand() -> None:
    c = RING.centres.float()
    points = torch.stack([c[0], c[0], c[0] + 0.02, c[1], torch.tensor([5.0, 5.0])])  # 0.02 = 2 sigma: still good
    # high quality: 4 of 5; modes 0 (3 points) and 1 (1 point); KL = 3/4 ln(8 * 3/4) + 1/4 ln(8 * 1/4)
    assert RING.metrics(points) == {MODES: 2.0, HIGH_QUALITY: pytest.approx(0.8),
                                    MODE_KL: pytest.approx(0.75 * math.log(6) + 0.25 * math.log(2))}
    assert RING.metrics(torch.full((4, 2), 9.0))[MODE_KL] == pytest.approx(math.log(8))  # none good: one mode's KL
    squares = grid()
    assert squares.centres.shape == (25, 2) and squares.centres.min() == -4 and squares.centres.max() == 4
    assert squares.metrics(squares.centres.float())[MODES] == 25.0


def test_a_mixture_loads_as_float_points_with_their_components_as_labels() -> None:
    data = ganzoo.load_dataset("grid-25")
    assert data.images.dtype == torch.float32 and data.images.shape == (100_000, 2) and not data.is_image
    assert data.num_classes == 25 and data.labels.bincount().min() > 3_500
    assert torch.equal(data.images, ganzoo.load_dataset("grid-25").images)  # a fixed seed per split
    index, _ = grid().nearest(data.images)
    assert torch.equal(index, data.labels)  # each point lies closest to the centre it was drawn from


def test_image_only_components_and_streaming_refuse_points(tmp_path: Path, runner) -> None:
    with pytest.raises(CompositionError, match=r"generator 'dcgan' .*images only.*vectors=True"):
        ganzoo.train("dcgan", out=tmp_path / "d", steps=1, overrides={"dataset": "ring-8"}, progress=False)
    with pytest.raises(ConfigError, match="data_loading"):
        ganzoo.train("vanilla", out=tmp_path / "s", steps=1, progress=False,
                     overrides={"dataset": "ring-8", "data_loading": "stream"})
    result = runner.invoke(cli, ["train", "wgan-gp", "--set", "dataset=ring-8", "--steps", "1", "--out",
                                 str(tmp_path / "w")])
    assert result.exit_code == 2 and "vectors=True" in result.output


def test_vanilla_trains_on_ring_8_and_the_bench_scores_modes(tmp_path: Path) -> None:
    profile = BenchProfile(name="ring", variants=["vanilla"], dataset="ring-8", steps=300, eval_every=150,
                           num_fake=2500, device="cpu", overrides={"log_every": 50})
    results = ganzoo.bench(profile=profile, out=tmp_path, progress=False, cache_dir=tmp_path / "cache")
    (trial,) = results["trials"]
    assert trial["status"] == "ok", trial["reason"]
    assert trial["protocol"]["feature_extractor"] is None and trial["protocol"]["num_real"] == 100_000
    assert [h["step"] for h in trial["history"]] == [0, 150, 300]
    for scores in (trial["untrained"], trial["final"]):
        assert set(scores) == {MODES, HIGH_QUALITY, MODE_KL} and FID not in scores
        assert 0 <= scores[MODES] <= 8 and 0 <= scores[HIGH_QUALITY] <= 1 and 0 <= scores[MODE_KL] <= math.log(8)
    # the untrained generator's points sit near the origin, a radius (100 standard deviations) from every mode;
    # 300 steps move them towards the ring
    run = tmp_path / "vanilla" / "seed-0"
    before = RING.nearest(torch.zeros(1, 2))[1].item()
    after = RING.nearest(ganzoo.sample(run / "generator.safetensors", n=2500))[1].median().item()
    assert before == pytest.approx(100.0) and after < 0.6 * before
    assert (run / "samples.png").is_file()  # a scatter plot of generated over real points
    page = render([tmp_path], tmp_path / "leaderboard.md")
    assert "| Variant | Modes ↑ | High-quality share ↑ | Mode KL ↓ | Train s |" in page
    assert "no feature extractor" in page and "FID ↓" not in page


def test_evaluate_scores_a_run_on_points_with_the_dataset_metrics(tmp_path: Path, runner) -> None:
    ganzoo.train("vanilla", out=tmp_path / "run", steps=2, overrides={"dataset": "ring-8"}, progress=False)
    points = ganzoo.sample(tmp_path / "run", n=300, out=tmp_path / "points.png")
    assert points.shape == (300, 2) and (tmp_path / "points.png").stat().st_size > 1000  # a scatter plot
    with pytest.raises(ganzoo.UsageError, match="not images"):
        ganzoo.export_samples(tmp_path / "run", 10, tmp_path / "out.npz", format="npz", progress=False)
    result = ganzoo.evaluate(tmp_path / "run", split="test", num=500, progress=False)
    assert result["feature_extractor"] is None and set(result["scores"]) == {MODES, HIGH_QUALITY, MODE_KL}
    shown = runner.invoke(cli, ["evaluate", str(tmp_path / "run"), "--num", "500", "--no-progress"])
    assert shown.exit_code == 0 and "500 samples" in shown.output and "Modes ↑" in shown.output
