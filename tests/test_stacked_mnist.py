"""Stacked MNIST: three digits as the channels of one image, 1,000 modes, scored beside FID."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from ganzoo_plugins.stacked_mnist import mode_metrics, stack, triples

import ganzoo
from ganzoo.bench import BenchProfile
from ganzoo.bench.leaderboard import render
from ganzoo.metric_keys import CLASS_KL, CLASSES_COVERED, FID, MODE_KL, MODES


def test_stacking_by_hand() -> None:
    digits = torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()  # pixel = index
    images, labels = stack(digits, torch.tensor([7, 1, 2, 9]), n=500, seed=3)
    assert images.shape == (500, 3, 2, 2)
    picks = images[:, :, 0, 0].long()  # which digit each channel holds
    assert torch.equal(labels, torch.tensor([7, 1, 2, 9])[picks] @ torch.tensor([100, 10, 1]))
    assert set(picks.flatten().tolist()) == {0, 1, 2, 3}  # uniform with replacement: every digit drawn
    again, _ = stack(digits, torch.tensor([7, 1, 2, 9]), n=500, seed=3)
    assert torch.equal(images, again)


def test_real_samples_cover_the_modes_and_one_image_covers_one() -> None:
    data = ganzoo.load_dataset("stacked-mnist", "test")
    assert data.images.shape == (10_000, 3, 28, 28) and data.num_classes == 1000
    real = data.images[:3000]
    read = triples(real)
    assert (read == data.labels[:3000]).double().mean() > 0.9  # the classifier reads ~98% of digits right
    scores = mode_metrics(real)
    # 3,000 uniform draws over 1,000 triples cover 1000 (1 - e^-3) = 950 of them on average
    assert 900 <= scores[MODES] <= 1000 and scores[MODE_KL] < 0.4
    collapsed = mode_metrics(real[:1].expand(200, 3, 28, 28).contiguous())
    assert collapsed == {MODES: 1.0, MODE_KL: pytest.approx(math.log(1000))}


def test_bench_scores_stacked_mnist_with_fid_and_modes(tmp_path: Path) -> None:
    profile = BenchProfile(name="stacked", variants=["dcgan"], dataset="stacked-mnist", real_split="test", steps=2,
                           num_fake=200, device="cpu",
                           overrides={"batch_size": 16, "log_every": 1},
                           variant_overrides={"dcgan": {"generator_options": {"width": 4},
                                                        "discriminator_options": {"width": 4}}})
    (trial,) = ganzoo.bench(profile=profile, out=tmp_path, progress=False, cache_dir=tmp_path / "cache")["trials"]
    assert trial["status"] == "ok", trial["reason"]
    assert {FID, MODES, MODE_KL} <= set(trial["final"]) and trial["protocol"]["feature_extractor"]["name"]
    # MNIST's digit classes are mnist's own metrics: read off three stacked digits they would mean nothing
    assert not {CLASSES_COVERED, CLASS_KL} & set(trial["final"])
    page = render([tmp_path], tmp_path / "leaderboard.md")
    assert "| FID ↓ |" in page and "Modes ↑" in page and "Classes ↑" not in page  # no column
