"""Image-set metrics: FID, KID, IS, precision/recall (torch-fidelity's metric functions) on the features of one
sha256-verified extractor, the real set's cached under :func:`real_stats_key`. A dataset's own metrics (MNIST's
classes, Stacked MNIST's modes) are its :attr:`ganzoo.DatasetSpec.metrics`."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import torch
from torch_fidelity.metric_fid import fid_featuresdict_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_featuresdict_to_metric
from torch_fidelity.metric_kid import kid_featuresdict_to_metric
from torch_fidelity.metric_prc import prc_featuresdict_to_metric

from ..errors import UsageError
from ..metric_keys import FID, IS_MEAN, IS_STD, KID_MEAN, KID_STD, PRECISION, RECALL
from .classifier import sha256_file
from .extractor import EXTRACTOR_CLASSES, GANZOO_MNIST, INCEPTION, create_extractor, preprocessing_of, resolve_weights
from .features import extract_features, real_features
from .thread_pools import scoring_threads

DEFAULT_CACHE_DIR = Path("~/.cache/ganzoo/fidelity")
#: Fewest images per set: precision/recall needs more than its 3 nearest neighbours.
MIN_IMAGES = 4
MAX_ISC_SPLITS = 10
MAX_KID_SUBSET_SIZE = 1000

_FIDELITY_KEYS = {"frechet_inception_distance": FID, "kernel_inception_distance_mean": KID_MEAN,
                  "kernel_inception_distance_std": KID_STD, "inception_score_mean": IS_MEAN,
                  "inception_score_std": IS_STD, "precision": PRECISION, "recall": RECALL}


def _check_images(images: object, what: str) -> torch.Tensor:
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4
            and images.shape[1] in (1, 3)):
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise UsageError(f"{what} images must be a uint8 tensor (N, 1|3, H, W) with values 0..255, got {got}; "
                         "convert float images in [-1, 1] with ((x + 1) * 127.5).round().clamp(0, 255).byte()")
    if images.shape[0] < MIN_IMAGES:
        raise UsageError(f"{what} images: {images.shape[0]} given, the metrics need at least {MIN_IMAGES}")
    return images.detach().cpu().contiguous()


@functools.lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def extractor_info(feature_extractor: str = GANZOO_MNIST, weights: str | Path | None = None) -> dict[str, str]:
    """Describe the protocol of ``feature_extractor``: name, weights file and sha256, preprocessing."""
    import torch_fidelity
    path = resolve_weights(feature_extractor, weights)
    stat = path.stat()
    sha256 = _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return {"name": feature_extractor, "sha256": sha256, "weights_path": str(path),
            "preprocessing": preprocessing_of(feature_extractor),
            "feature_layer": "128" if feature_extractor == GANZOO_MNIST else "2048",
            "torch_fidelity_version": torch_fidelity.__version__}


def real_stats_key(real: torch.Tensor, feature_extractor: str = GANZOO_MNIST, weights_sha256: str | None = None) -> str:
    """The cache name of ``real``'s features: a hash of its bytes, shape, dtype and the extractor's protocol."""
    real = _check_images(real, "real")
    if weights_sha256 is None:
        weights_sha256 = extractor_info(feature_extractor)["sha256"]
    data_sha = hashlib.sha256(real.numpy().tobytes()).hexdigest()
    parts = {"data_sha256": data_sha, "shape": list(real.shape), "dtype": str(real.dtype),
             "preprocessing": preprocessing_of(feature_extractor), "extractor": feature_extractor,
             "weights_sha256": weights_sha256}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return f"ganzoo-real-{digest[:32]}"


def histogram_kl(counts: torch.Tensor) -> float:
    """KL(p || uniform), natural log, of the histogram ``counts`` (``log(len(counts))`` when empty)."""
    counts = counts.double()
    if counts.sum() == 0:
        return math.log(counts.numel())
    p = counts[counts > 0] / counts.sum()
    return max(float((p * (p * counts.numel()).log()).sum()), 0.0)


def score_images(fake: torch.Tensor, real: torch.Tensor, *, feature_extractor: str = GANZOO_MNIST,
                 feature_extractor_weights: str | Path | None = None, cache_dir: str | Path | None = None,
                 kid_subset_size: int | None = None, verbose: bool = False) -> dict[str, float]:
    """Score generated images ``fake`` against ``real`` ones; both ``uint8`` tensors ``(N, C, H, W)``.
    Returns :data:`~ganzoo.metric_keys.IMAGE_METRIC_KEYS` from torch-fidelity's metric functions on the features
    of ``feature_extractor`` (``"ganzoo-mnist"``, or ``"inception-v3-compat"`` with weights on disk).
    ``kid_subset_size`` defaults to ``min(1000, len(fake), len(real))``, IS uses ``min(10, len(fake))`` splits.
    The real features are cached in ``cache_dir`` (default ``~/.cache/ganzoo/fidelity``) under
    :func:`real_stats_key`; every figure is computed on fixed thread pools."""
    with scoring_threads():
        fake = _check_images(fake, "fake")
        real = _check_images(real, "real")
        info = extractor_info(feature_extractor, feature_extractor_weights)
        n, m = fake.shape[0], real.shape[0]
        if kid_subset_size is None:
            kid_subset_size = min(MAX_KID_SUBSET_SIZE, n, m)
        if not 2 <= kid_subset_size <= min(n, m):
            raise UsageError(f"kid_subset_size={kid_subset_size} must be between 2 and min(len(fake), len(real)) = "
                             f"{min(n, m)}; leave it unset to use min(1000, len(fake), len(real))")
        cache_root = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()  # made on first write
        rgb = feature_extractor == INCEPTION
        cuda = torch.cuda.is_available()
        cls = EXTRACTOR_CLASSES[feature_extractor]
        layers = {m: str(cls.get_default_feature_layer_for_metric(m)) for m in ("isc", "fid", "kid", "prc")}
        names = sorted(set(layers.values()))
        extractor = create_extractor(feature_extractor, names, info["weights_path"], "cuda" if cuda else "cpu")
        fake_features = extract_features(extractor, fake, rgb, cuda=cuda, verbose=verbose)
        real_feats = real_features(real_stats_key(real, feature_extractor, info["sha256"]), names,
                                   lambda: extract_features(extractor, real, rgb, cuda=cuda, verbose=verbose),
                                   cache_root)
        # torch-fidelity's metric functions, with the arguments its calculate_metrics would pass them.
        options = {"kid_subset_size": kid_subset_size, "isc_splits": min(MAX_ISC_SPLITS, n), "save_cpu_ram": True,
                   "verbose": verbose}
        raw = {**isc_featuresdict_to_metric(fake_features, layers["isc"], **options),
               **fid_statistics_to_metric(fid_featuresdict_to_statistics(fake_features, layers["fid"]),
                                          fid_featuresdict_to_statistics(real_feats, layers["fid"]), verbose),
               **kid_featuresdict_to_metric(fake_features, real_feats, layers["kid"], **options),
               **prc_featuresdict_to_metric(fake_features, real_feats, layers["prc"], **options)}
        return {ours: float(raw[theirs]) for theirs, ours in _FIDELITY_KEYS.items()}
