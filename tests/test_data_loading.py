"""Data paths: in-memory tensors and a DataLoader with workers give the same batches, resume, and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import assert_same_weights, registered
from torch.utils.data import Dataset

import ganzoo
from ganzoo.data import BatchOrder, ImageData, LoaderBatches, TensorBatches, make_batches

IMAGES = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


class LazyDigits(Dataset):
    """A map-style dataset read item by item, as a plugin for data larger than memory would return."""

    def __init__(self, images: torch.Tensor, dtype: torch.dtype = torch.uint8, broken: int | None = None) -> None:
        self.images, self.dtype, self.broken = images, dtype, broken

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Any:
        if index == self.broken:
            raise OSError(f"cannot read image {index}")
        return self.images[index].to(self.dtype), 0  # (image, label) pairs are accepted too


class LazyPlugin:
    def __init__(self, dtype: torch.dtype = torch.uint8) -> None:
        self.dtype = dtype

    @ganzoo.hookimpl
    def register_datasets(self, register):
        register(ganzoo.DatasetSpec("lazy-digits", lambda root, split, download, size: (
            LazyDigits(IMAGES, self.dtype), None), (1, 28, 28), "test data read lazily", offline=True))


def lazy_data(labels: bool = False) -> ImageData:
    return ImageData("lazy", "train", LazyDigits(IMAGES), torch.arange(len(IMAGES)) % 10 if labels else None, "test")


def same_batch(a: tuple, b: tuple) -> bool:
    """Two ``(images, labels)`` batches are equal, labels included (or both unlabelled)."""
    return torch.equal(a[0], b[0]) and (a[1] is None and b[1] is None or torch.equal(a[1], b[1]))


def test_batch_order_covers_each_epoch_once_and_splits_ranks() -> None:
    order = BatchOrder(10, 2, seed=0, world_size=2, rank=1)
    first = [order.perm[order.next()].tolist() for _ in range(2)]  # 2 global batches of 4 = one epoch (2 dropped)
    assert order.epoch == 0 and all(len(b) == 2 for b in first)
    whole = BatchOrder(10, 4, seed=0)  # one process with the global batch sees both ranks' slices
    assert [whole.perm[whole.next()].tolist()[2:] for _ in range(2)] == first
    order.next()
    assert order.epoch == 1
    with pytest.raises(ganzoo.DatasetError, match="larger than the dataset"):
        BatchOrder(10, 6, seed=0, world_size=2)


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_in_memory_batches_across_epochs(workers: int) -> None:
    device = torch.device("cpu")
    memory = make_batches(lazy_data(labels=True), 16, seed=5, device=device, mode="memory")
    stream = make_batches(lazy_data(labels=True), 16, seed=5, device=device, mode="stream", workers=workers)
    assert isinstance(memory, TensorBatches) and isinstance(stream, LoaderBatches)
    for _ in range(7):  # 2 batches per epoch: crosses three epoch boundaries
        m, s = memory.next(), stream.next()
        assert m[1] is not None and same_batch(m, s)  # labels come with their images in both modes
    state = stream.state_dict()  # the consumed position, although the workers have read ahead
    assert state["epoch"] == 3 and state["position"] == 16
    resumed = make_batches(lazy_data(labels=True), 16, seed=999, device=device, mode="stream", workers=workers)
    resumed.load_state_dict(state)
    memory_next = memory.next()
    assert same_batch(resumed.next(), memory_next)
    stream.close()
    resumed.close()


def test_auto_holds_data_that_fits_and_streams_the_rest() -> None:
    data = lazy_data()
    assert data.float32_bytes() == 40 * 784 * 4
    fits = make_batches(data, 8, 0, torch.device("cpu"), memory_limit_gb=1.0)
    too_big = make_batches(data, 8, 0, torch.device("cpu"), memory_limit_gb=data.float32_bytes() / 2e9, workers=0)
    assert isinstance(fits, TensorBatches) and isinstance(too_big, LoaderBatches)
    assert fits.data.dtype == torch.float32 and float(fits.data.min()) >= -1.0


def test_streamed_run_trains_and_resumes_exactly_like_in_memory(tmp_path: Path, quick) -> None:
    common = {**quick, "dataset": "lazy-digits", "n_critic": 2, "checkpoint_every": 2}
    with registered(LazyPlugin(), "lazy-digits"):
        memory = ganzoo.train("wgan-gp", steps=4, out=tmp_path / "memory", progress=False,
                              overrides={**common, "data_loading": "memory"})
        ganzoo.train("wgan-gp", steps=2, out=tmp_path / "stream", progress=False,
                     overrides={**common, "data_loading": "stream", "data_workers": 2})
        stream = ganzoo.train("wgan-gp", steps=4, out=tmp_path / "stream", progress=False, resume=True,
                              overrides={**common, "data_loading": "stream", "data_workers": 2})
    assert stream.steps == 4 and stream.images_seen == memory.images_seen == 4 * 2 * 16
    assert_same_weights(memory.checkpoint, stream.checkpoint)


def test_dataset_items_of_the_wrong_dtype_name_the_plugin(tmp_path: Path, quick) -> None:
    with registered(LazyPlugin(torch.float32), "bad-lazy-plugin"):
        with pytest.raises(ganzoo.PluginError, match=r"bad-lazy-plugin.*uint8 tensors \(C, H, W\)"):
            ganzoo.train("vanilla", steps=1, out=tmp_path / "r", progress=False,
                         overrides={**quick, "dataset": "lazy-digits"})


@pytest.mark.parametrize("workers", [0, 1])
def test_an_item_failing_while_streaming_names_the_dataset_and_plugin(workers: int) -> None:
    data = ImageData("flaky", "train", LazyDigits(IMAGES, broken=int(BatchOrder(40, 8, seed=0).perm[3])), None,
                     "flaky-plugin")
    stream = make_batches(data, 8, seed=0, device=torch.device("cpu"), mode="stream", workers=workers)
    expected = r"(?s)flaky-plugin.*'flaky' failed while streaming.*cannot read image"
    with pytest.raises(ganzoo.PluginError, match=expected):
        stream.next()
    stream.close()


def test_load_dataset_reads_a_lazy_dataset_into_a_tensor_unless_asked() -> None:
    with registered(LazyPlugin(), "lazy-digits"):
        eager = ganzoo.load_dataset("lazy-digits", workers=2)
        lazy = ganzoo.load_dataset("lazy-digits", lazy=True, image_size=14)
    assert eager.in_memory and torch.equal(eager.images, IMAGES)
    assert not lazy.in_memory and lazy.image_shape == (1, 14, 14)
    assert lazy.tensor(limit=3).shape == (3, 1, 14, 14)
