"""Offline image metrics: sanity anchors, cache keys, weight integrity, Inception weights handling."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

import ganzoo
from ganzoo.errors import GanzooError, UnknownNameError, UsageError
from ganzoo.metric_keys import FID, IMAGE_METRIC_KEYS, IS_MEAN, KID_MEAN, PRECISION
from ganzoo.metrics import (
    GANZOO_MNIST,
    INCEPTION,
    WEIGHTS_PATH,
    WEIGHTS_SHA256,
    FeatureExtractorGanzooMnist,
    FeatureExtractorUnavailable,
    WeightsIntegrityError,
    extractor_info,
    load_classifier,
    real_stats_key,
    register,
    score_images,
)
from ganzoo.metrics import extractor as extractor_module
from ganzoo.metrics import features as features_module
from ganzoo.metrics.classifier import sha256_file


@pytest.fixture(scope="module")
def train_images() -> torch.Tensor:
    return ganzoo.load_dataset("mnist-5k", "train").images


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    return ganzoo.load_dataset("mnist-5k", "test").images


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fidelity-cache")


def untrained_generator_images(n: int, seed: int = 0) -> torch.Tensor:
    """What a freshly initialised DCGAN-style generator (z -> 1x28x28, tanh) produces."""
    torch.manual_seed(seed)
    gen = nn.Sequential(
        nn.Linear(64, 128 * 7 * 7), nn.Unflatten(1, (128, 7, 7)), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(),
    )
    with torch.no_grad():
        x = gen(torch.randn(n, 64))
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def anchors(train_images: torch.Tensor, test_images: torch.Tensor, cache_dir: Path) -> dict[str, dict]:
    one = test_images[:1].expand(500, -1, -1, -1).contiguous()
    return {
        "real": score_images(test_images, train_images, cache_dir=cache_dir),
        "untrained": score_images(untrained_generator_images(500), train_images, cache_dir=cache_dir),
        "one_image": score_images(one, train_images, cache_dir=cache_dir),
    }


def test_split_matches_the_project_split(train_images: torch.Tensor, test_images: torch.Tensor) -> None:
    y_train = ganzoo.load_dataset("mnist-5k", "train").labels
    y_test = ganzoo.load_dataset("mnist-5k", "test").labels
    assert train_images.shape == (4500, 1, 28, 28) and train_images.dtype == torch.uint8
    assert test_images.shape == (500, 1, 28, 28)
    assert torch.equal(torch.bincount(y_train), torch.full((10,), 450))
    assert torch.equal(torch.bincount(y_test), torch.full((10,), 50))


def test_result_has_every_key(anchors: dict[str, dict]) -> None:
    for result in anchors.values():
        assert set(result) == set(IMAGE_METRIC_KEYS)
        assert all(isinstance(v, float) and math.isfinite(v) for v in result.values())


def test_held_out_real_data_scores_well(anchors: dict[str, dict]) -> None:
    real = anchors["real"]
    assert real[FID] < 5.0
    assert real[IS_MEAN] > 8.0
    assert real[PRECISION] > 0.6


def test_untrained_generator_scores_far_worse(anchors: dict[str, dict]) -> None:
    real, bad = anchors["real"], anchors["untrained"]
    assert bad[FID] > 10 * real[FID]
    assert bad[KID_MEAN] > 10 * max(real[KID_MEAN], 1e-3)
    assert bad[IS_MEAN] < real[IS_MEAN] / 2
    assert bad[PRECISION] < real[PRECISION] / 2


def test_one_image_generator_scores_as_one_image(anchors: dict[str, dict]) -> None:
    one = anchors["one_image"]
    assert one[IS_MEAN] == pytest.approx(1.0, abs=1e-3)
    assert one[FID] > 10 * anchors["real"][FID]


@pytest.mark.parametrize(
    ("counts", "kl"),
    [
        ([5, 5], 0.0),
        ([2, 0], math.log(2)),
        ([3, 1], 0.75 * math.log(1.5) + 0.25 * math.log(0.5)),  # 0.130812
        ([0, 0, 0], math.log(3)),  # an empty histogram scores as a single mode
    ],
)
def test_histogram_kl_hand_computed(counts: list[int], kl: float) -> None:
    from ganzoo.metrics import histogram_kl

    assert histogram_kl(torch.tensor(counts)) == pytest.approx(kl, abs=1e-12)


class _ExtractionCounter:
    """Records the sizes of the image sets whose features were extracted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        original = features_module.extract_features

        def counting(extractor, images, rgb, **kwargs):
            self.calls.append(images.shape[0])
            return original(extractor, images, rgb, **kwargs)

        monkeypatch.setattr(sys.modules["ganzoo.metrics.fidelity"], "extract_features", counting)


def test_real_statistics_cached_once_and_keyed_by_content(
    tmp_path: Path, train_images: torch.Tensor, test_images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, fake = test_images[::2].clone(), train_images[::45].clone()  # 250 real, 100 fake
    counter = _ExtractionCounter(monkeypatch)
    key = real_stats_key(real)

    first = score_images(fake, real, cache_dir=tmp_path)
    files = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert list(files) == [f"{key}.safetensors"]
    assert counter.calls == [100, 250]

    counter.calls.clear()
    second = score_images(fake, real, cache_dir=tmp_path)
    assert counter.calls == [100]  # the real set's features came from the cache
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == files
    assert second == first

    changed = real.clone()
    changed[7, 0, 14, 14] ^= 1  # one pixel, one bit
    assert real_stats_key(changed) != key
    counter.calls.clear()
    third = score_images(fake, changed, cache_dir=tmp_path)
    assert counter.calls == [100, 250]
    new = {p.name for p in tmp_path.iterdir()} - set(files)
    assert new == {f"{real_stats_key(changed)}.safetensors"}
    assert third[FID] != first[FID]


def _pickle_payload(path: Path, marker: Path) -> None:
    """Write a torch.save file whose unpickling would create ``marker`` (built here, never committed)."""

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('ran')",)

    torch.save({"weight": Payload()}, path)


def test_replaced_cache_entry_is_never_unpickled_and_is_recomputed(
    tmp_path: Path, train_images: torch.Tensor, test_images: torch.Tensor
) -> None:
    real, fake = test_images[::5].clone(), train_images[::90].clone()
    first = score_images(fake, real, cache_dir=tmp_path)
    entry = tmp_path / f"{real_stats_key(real)}.safetensors"
    marker = tmp_path / "marker"
    _pickle_payload(entry, marker)  # a hostile file where the cache entry was
    assert score_images(fake, real, cache_dir=tmp_path) == first
    assert not marker.exists()
    # torch-fidelity's own cache file names (pickles) are not read either
    (tmp_path / "fidelity-pickle.pt").write_bytes(entry.read_bytes())
    _pickle_payload(tmp_path / f"{real_stats_key(real)}-inception-v3-compat-features-2048.pt", marker)

    # a well-formed entry whose tensors were altered fails its sha256 and is recomputed
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(entry), framework="pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(entry))
    tensors = {k: v + 1 for k, v in tensors.items()}
    save_file(tensors, str(entry), metadata=meta)
    assert score_images(fake, real, cache_dir=tmp_path) == first
    assert not marker.exists()


def test_hostile_inception_weights_never_run(tmp_path: Path, test_images: torch.Tensor,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pth"
    _pickle_payload(evil, marker)
    images = test_images[::50]
    with pytest.raises(WeightsIntegrityError, match="sha256") as info:
        score_images(images, images, feature_extractor=INCEPTION, feature_extractor_weights=evil, cache_dir=tmp_path)
    assert str(evil) in str(info.value) and extractor_module.INCEPTION_SHA256 in str(info.value)
    # even a file that matches the pinned hash is read with weights_only=True: the payload is refused
    monkeypatch.setattr(extractor_module, "INCEPTION_SHA256", sha256_file(evil))
    with pytest.raises(WeightsIntegrityError, match="cannot be read as tensors"):
        score_images(images, images, feature_extractor=INCEPTION, feature_extractor_weights=evil, cache_dir=tmp_path)
    assert not marker.exists()


def test_bench_with_hostile_weights_exits_1_before_training(tmp_path: Path, runner) -> None:
    from ganzoo.cli import cli

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pth"
    _pickle_payload(evil, marker)
    result = runner.invoke(cli, ["bench", "--variants", "vanilla", "--steps", "2", "--out", str(tmp_path / "b"),
                                 "--feature-extractor", INCEPTION, "--feature-extractor-weights", str(evil)])
    assert result.exit_code == 1, result.output
    assert "sha256" in result.output and "Traceback" not in result.output
    assert not marker.exists() and not (tmp_path / "b" / "vanilla").exists()


def test_cache_key_covers_shape_extractor_and_weights(test_images: torch.Tensor) -> None:
    real = test_images[:100]
    key = real_stats_key(real)
    assert real_stats_key(real.clone()) == key
    assert real_stats_key(real.reshape(100, 1, 14, 56)) != key  # same bytes, other shape
    assert real_stats_key(real, weights_sha256="0" * 64) != key
    assert real_stats_key(real, INCEPTION, weights_sha256=WEIGHTS_SHA256) != key


def test_bundled_weights_are_small_and_verified() -> None:
    assert WEIGHTS_PATH.stat().st_size < 1_000_000
    assert sha256_file(WEIGHTS_PATH) == WEIGHTS_SHA256
    assert extractor_info()["sha256"] == WEIGHTS_SHA256
    assert extractor_info()["name"] == GANZOO_MNIST


def test_tampered_weights_are_refused(tmp_path: Path, test_images: torch.Tensor) -> None:
    good = tmp_path / "copy.safetensors"
    shutil.copyfile(WEIGHTS_PATH, good)
    load_classifier(good)  # an intact copy is fine

    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "tampered.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="sha256") as info:
        load_classifier(bad)
    assert str(bad) in str(info.value) and WEIGHTS_SHA256 in str(info.value)
    assert isinstance(info.value, GanzooError)
    with pytest.raises(WeightsIntegrityError):
        score_images(test_images[:8], test_images[8:16], feature_extractor_weights=bad, cache_dir=tmp_path)


def test_registration_is_idempotent() -> None:
    register()
    register()
    import ganzoo.metrics  # noqa: F401  (importing again must not raise either)

    assert FEATURE_EXTRACTORS_REGISTRY[GANZOO_MNIST] is FeatureExtractorGanzooMnist
    assert issubclass(FeatureExtractorGanzooMnist, FeatureExtractorBase)


def test_extractor_accepts_rgb_and_other_sizes(test_images: torch.Tensor) -> None:
    fe = FeatureExtractorGanzooMnist(GANZOO_MNIST, ["128", "logits_unbiased"])
    gray = test_images[:6]
    feats, logits = fe(gray)
    assert feats.shape == (6, 128) and logits.shape == (6, 10)
    feats_rgb, logits_rgb = fe(gray.expand(-1, 3, -1, -1))
    assert torch.allclose(feats_rgb, feats, atol=1e-4) and torch.allclose(logits_rgb, logits, atol=1e-4)
    big = torch.nn.functional.interpolate(gray.float(), size=(56, 56), mode="nearest").to(torch.uint8)
    assert fe(big)[1].argmax(1).tolist() == logits.argmax(1).tolist()


def test_bad_arguments_are_named(test_images: torch.Tensor, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="fake images must be a uint8"):
        score_images(test_images.float(), test_images, cache_dir=tmp_path)
    with pytest.raises(UnknownNameError, match="feature extractor 'vgg16'"):
        score_images(test_images[:8], test_images[:8], feature_extractor="vgg16", cache_dir=tmp_path)
    with pytest.raises(UsageError, match="kid_subset_size"):
        score_images(test_images[:8], test_images[:16], kid_subset_size=9, cache_dir=tmp_path)


def _random_inception_weights(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Save a randomly initialised torch-fidelity InceptionV3 state dict where its loader expects one."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe_inception

    with monkeypatch.context() as patch:  # build the architecture without loading (or downloading) weights
        patch.setattr(fe_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fe_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        torch.manual_seed(0)
        model = fe_inception.FeatureExtractorInceptionV3(INCEPTION, ["2048"])
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_inception_needs_weights_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         test_images: torch.Tensor) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    images = test_images[::50]
    with pytest.raises(FeatureExtractorUnavailable) as info:
        score_images(images, images, feature_extractor=INCEPTION, cache_dir=tmp_path)
    message = str(info.value)
    assert "https://github.com/toshas/torch-fidelity/releases" in message
    assert "--feature-extractor-weights PATH" in message and str(tmp_path / "torch") in message
    assert isinstance(info.value, GanzooError)
    with pytest.raises(FeatureExtractorUnavailable, match="does not exist"):
        score_images(images, images, feature_extractor=INCEPTION, feature_extractor_weights=tmp_path / "no.pth",
                 cache_dir=tmp_path)


def test_inception_runs_with_local_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           train_images: torch.Tensor, test_images: torch.Tensor) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from ganzoo.metrics import inception_hub_path

    hub_file = inception_hub_path()
    assert str(hub_file).startswith(str(tmp_path))
    _random_inception_weights(hub_file, monkeypatch)

    with pytest.raises(WeightsIntegrityError, match="expected " + extractor_module.INCEPTION_SHA256):
        extractor_info(INCEPTION)  # random weights are not the released ones
    monkeypatch.setattr(extractor_module, "INCEPTION_SHA256", sha256_file(hub_file))  # pretend they are
    info = extractor_info(INCEPTION)  # found in the hub cache, without a download
    assert info["weights_path"] == str(hub_file) and info["sha256"] == sha256_file(hub_file)

    fake, real = train_images[::450], test_images[::50]  # 10 images each, one per digit
    result = score_images(fake, real, feature_extractor=INCEPTION, feature_extractor_weights=hub_file,
                      cache_dir=tmp_path / "cache")
    assert set(result) == set(IMAGE_METRIC_KEYS)
    assert all(math.isfinite(v) for v in result.values())
