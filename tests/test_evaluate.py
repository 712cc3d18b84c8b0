"""`ganzoo evaluate` (one metric path with the bench) and sample export for external metric tools."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import registered
from ganzoo_plugins.datasets import digit_metrics
from PIL import Image

import ganzoo
from ganzoo import hookimpl, metrics
from ganzoo.bench import BenchProfile, bench
from ganzoo.cli import cli
from ganzoo.data import to_uint8
from ganzoo.evaluation import score_samples

NARROW = {"generator_options": {"width": 4}, "discriminator_options": {"width": 8}}


@pytest.fixture(scope="module")
def benched(tmp_path_factory) -> tuple[Path, dict]:
    """A bench of an unconditional and a conditional variant, 2 steps each, scored on the test split."""
    out = tmp_path_factory.mktemp("bench")
    profile = BenchProfile(name="eval", variants=["dcgan", "cgan-pd"], steps=2, num_fake=150, real_split="test",
                           overrides={"batch_size": 8}, variant_overrides={"dcgan": NARROW, "cgan-pd": NARROW})
    return out, bench(profile=profile, out=out, progress=False)


@pytest.mark.parametrize("row", ["dcgan", "cgan-pd"])
def test_a_run_directory_scores_exactly_as_the_bench_did(benched, row: str) -> None:
    out, results = benched
    trial = next(t for t in results["trials"] if t["variant"] == row)
    result = ganzoo.evaluate(out / row / "seed-0", split="test", num=150, progress=False)
    # the checkpoints folder names the same run
    assert ganzoo.evaluate(out / row / "seed-0" / "checkpoints", split="test", num=150,
                           progress=False)["scores"] == result["scores"]
    assert result["kind"] == "generator" and result["seed"] == 0 and result["dataset"] == "mnist-5k"
    assert result["scores"] == trial["final"]  # the same numbers, not merely close ones
    if row == "cgan-pd":
        assert "class_agreement" in result["scores"]


def test_real_digits_in_a_folder_score_as_real_against_real(tmp_path: Path) -> None:
    test = ganzoo.load_dataset("mnist-5k", "test").images
    train = ganzoo.load_dataset("mnist-5k", "train").images
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate(test):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:04d}.png")
    result = ganzoo.evaluate(folder, dataset="mnist-5k", split="train", progress=False)
    # PNG is lossless: the same images, the same figures; mnist-5k's own metrics (digit classes) after the image ones
    expected = {**metrics.score_images(test, train), **digit_metrics(test)}
    assert result["kind"] == "images" and result["num_fake"] == 500
    assert result["scores"] == expected and list(result["scores"]) == list(expected)
    assert result["scores"]["fid"] < 2.0 and result["scores"]["classes_covered"] == 10


def test_npz_and_png_exports_hold_the_sampled_images_and_score_alike(benched, tmp_path: Path) -> None:
    run = benched[0] / "dcgan" / "seed-0"
    npz = ganzoo.export_samples(run, 30, tmp_path / "s.npz", format="npz", seed=3, batch_size=7, progress=False)
    pngs = ganzoo.export_samples(run, 30, tmp_path / "pngs", format="png-dir", seed=3, batch_size=7,
                                 progress=False)
    expected = to_uint8(ganzoo.sample(run, 30, seed=3))
    with np.load(npz, allow_pickle=False) as data:
        assert list(data.keys()) == ["arr_0"] and data["arr_0"].shape == (30, 28, 28, 1)
        assert data["arr_0"].dtype == np.uint8
        assert torch.equal(torch.from_numpy(data["arr_0"]).permute(0, 3, 1, 2), expected)
    assert sorted(p.name for p in pngs.iterdir())[:2] == ["000000.png", "000001.png"]
    a = ganzoo.evaluate(npz, split="test", progress=False)["scores"]
    b = ganzoo.evaluate(pngs, split="test", progress=False)["scores"]
    assert a == b


def test_conditional_exports_carry_their_labels(benched, tmp_path: Path) -> None:
    run = benched[0] / "cgan-pd" / "seed-0"
    npz = ganzoo.export_samples(run, 20, tmp_path / "c.npz", format="npz", labels=4, progress=False)
    with np.load(npz, allow_pickle=False) as data:
        assert data["labels"].tolist() == [4] * 20
    pngs = ganzoo.export_samples(run, 12, tmp_path / "c", format="png-dir", progress=False)
    rows = (pngs / "labels.csv").read_text().splitlines()
    assert rows[0] == "file,label" and rows[1] == "000000.png,0" and len(rows) == 13
    scores = ganzoo.evaluate(npz, split="test", progress=False)["scores"]
    assert 0.0 <= scores["class_agreement"] <= 1.0


def test_images_of_another_size_are_refused_or_resized_as_asked(tmp_path: Path) -> None:
    folder = tmp_path / "rgb"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(ganzoo.UsageError, match=r"3x32x32 .* 'mnist-5k' images are 1x28x28.*--resize"):
        ganzoo.evaluate(folder, progress=False)
    result = ganzoo.evaluate(folder, resize=True, progress=False)
    assert result["num_fake"] == 4 and np.isfinite(result["scores"]["fid"])
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / "odd.png")
    with pytest.raises(ganzoo.UsageError, match="every image of a folder must have one size"):
        ganzoo.evaluate(folder, resize=True, progress=False)


def test_npz_sources_are_checked_and_never_unpickled(tmp_path: Path) -> None:
    floats = tmp_path / "floats.npz"
    np.savez(floats, np.zeros((4, 28, 28), dtype=np.float32))
    with pytest.raises(ganzoo.UsageError, match="must be uint8"):
        ganzoo.evaluate(floats, progress=False)
    objects = tmp_path / "objects.npz"
    np.savez(objects, np.array([{"a": 1}], dtype=object))
    with pytest.raises(ganzoo.UsageError, match="not a readable .npz"):
        ganzoo.evaluate(objects, progress=False)
    several = tmp_path / "several.npz"
    np.savez(several, x=np.zeros((4, 28, 28), np.uint8), y=np.zeros(4))
    with pytest.raises(ganzoo.UsageError, match="name the images 'arr_0'"):
        ganzoo.evaluate(several, progress=False)


def test_evaluate_and_sample_export_on_the_command_line(benched, tmp_path: Path, runner) -> None:
    run = benched[0] / "dcgan" / "seed-0"
    result = runner.invoke(cli, ["evaluate", str(run), "--split", "test", "--num", "150", "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    trial = next(t for t in benched[1]["trials"] if t["variant"] == "dcgan")
    assert json.loads(result.output)["scores"]["fid"] == trial["final"]["fid"]
    table = runner.invoke(cli, ["evaluate", str(run), "--split", "test", "--num", "150", "--no-progress"])
    assert table.exit_code == 0 and "FID ↓" in table.output and "150 images from" in table.output
    no_out = runner.invoke(cli, ["sample", str(run), "--format", "png-dir"])
    assert no_out.exit_code == 2 and "needs -o" in no_out.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    full = runner.invoke(cli, ["sample", str(run), "--format", "png-dir", "-o", str(tmp_path / "full")])
    assert full.exit_code == 2 and "new or empty folder" in full.output
    missing = runner.invoke(cli, ["evaluate", str(tmp_path / "nothing")])
    assert missing.exit_code == 2


# --- DatasetSpec.metrics: an optional `labels` keyword gets the classes the samples were drawn for -------------------


def _dots(root: Path, split: str, download: bool, image_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """16 images of one bright pixel each, at a place set by the label (0..3)."""
    labels = torch.arange(16) % 4
    images = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)
    images[torch.arange(16), 0, 4 * labels, 7] = 255
    return images, labels


def pixel_agreement(samples: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
    """How many samples show their label's pixel (all of them without labels), and whether labels came."""
    lit = samples[:, 0, :, 7].argmax(1) // 4
    return {"agreement": float((lit == labels).sum()) if labels is not None else -1.0,
            "had_labels": float(labels is not None)}


def samples_only(samples: torch.Tensor) -> dict[str, int]:
    return {"count": samples.shape[0]}  # an int: scores are floats all the same


class Dots:
    """A third-party dataset plugin: one dataset whose metrics declare `labels`, one whose metrics do not."""

    @hookimpl
    def register_datasets(self, register):
        register(ganzoo.DatasetSpec("dots", _dots, (1, 28, 28), offline=True, num_classes=4, metrics=pixel_agreement))
        register(ganzoo.DatasetSpec("dots-plain", _dots, (1, 28, 28), offline=True, num_classes=4,
                                    metrics=samples_only))


def test_a_plugins_dataset_metrics_get_the_labels_of_an_npz_when_they_declare_them(tmp_path: Path) -> None:
    images, labels = _dots(tmp_path, "test", False, None)
    asked = labels.clone()
    asked[:3] = (asked[:3] + 1) % 4  # 3 of the 16 images were asked for another class
    np.savez(tmp_path / "labelled.npz", images.permute(0, 2, 3, 1).numpy(), labels=asked.numpy())
    np.savez(tmp_path / "plain.npz", images.permute(0, 2, 3, 1).numpy())
    np.savez(tmp_path / "five.npz", images.permute(0, 2, 3, 1).numpy(), labels=labels.numpy() + 1)
    with registered(Dots(), "dots-test"):
        labelled = ganzoo.evaluate(tmp_path / "labelled.npz", dataset="dots", progress=False)["scores"]
        unlabelled = ganzoo.evaluate(tmp_path / "plain.npz", dataset="dots", progress=False)["scores"]
        plain = ganzoo.evaluate(tmp_path / "labelled.npz", dataset="dots-plain", progress=False)["scores"]
        with pytest.raises(ganzoo.UsageError, match=r"classes 1\.\.4, outside 0\.\.3"):  # the dataset's 4 classes
            ganzoo.evaluate(tmp_path / "five.npz", dataset="dots", progress=False)
    assert labelled["agreement"] == 13.0 and labelled["had_labels"] == 1.0 and "fid" in labelled
    assert unlabelled["had_labels"] == 0.0 and unlabelled["agreement"] == -1.0
    assert plain["count"] == 16.0 and isinstance(plain["count"], float)  # one-argument metrics keep working


def test_labels_reach_the_dataset_metrics_that_declare_them_however_they_do() -> None:
    points, labels = torch.zeros(5, 2), torch.tensor([0, 1, 1, 0, 2])
    got: dict[str, object] = {}

    def positional(samples, labels=None):
        got["positional"] = labels
        return {}

    def keyword_only(samples, *, labels):
        got["keyword_only"] = labels
        return {}

    def any_keyword(samples, **options):
        got["any_keyword"] = options["labels"]
        return {}

    for metric in (positional, keyword_only, any_keyword):
        assert score_samples(points, points, labels, dataset_metrics=metric) == {}
    assert all(value is labels for value in got.values()) and len(got) == 3
    assert score_samples(points, points, None, dataset_metrics=keyword_only) == {} and got["keyword_only"] is None
    assert score_samples(points, points, labels, dataset_metrics=lambda s: {"n": len(s)}) == {"n": 5.0}
