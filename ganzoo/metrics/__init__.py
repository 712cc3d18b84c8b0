"""Offline image-generation metrics: FID, KID, IS, precision/recall through torch-fidelity.

``evaluate(fake, real)`` scores ``uint8`` image tensors with the bundled ``ganzoo-mnist`` classifier as
feature extractor (or Inception, when its weights are on disk); see :mod:`ganzoo.metrics.evaluate`.
Importing this package registers ``ganzoo-mnist`` with torch-fidelity (idempotent).
"""

from __future__ import annotations

from .classifier import (
    PREPROCESSING,
    WEIGHTS_PATH,
    WEIGHTS_SHA256,
    MnistCNN,
    WeightsIntegrityError,
    load_classifier,
    uint8_to_input,
    verify_weights,
)
from .evaluate import (
    CLASS_AGREEMENT,
    CLASS_COVERAGE_THRESHOLD,
    CLASS_KL,
    CLASSES_COVERED,
    DEFAULT_CACHE_DIR,
    FID,
    IS_MEAN,
    IS_STD,
    KID_MEAN,
    KID_STD,
    METRIC_KEYS,
    PRECISION,
    RECALL,
    class_agreement,
    class_balance,
    evaluate,
    extractor_info,
    histogram_kl,
    predict_digits,
    real_stats_key,
)
from .extractor import (
    GANZOO_MNIST,
    INCEPTION,
    SUPPORTED_EXTRACTORS,
    FeatureExtractorGanzooMnist,
    FeatureExtractorUnavailable,
    inception_hub_path,
    register,
    resolve_weights,
)

register()

__all__ = [
    "CLASS_AGREEMENT", "CLASS_COVERAGE_THRESHOLD", "CLASS_KL", "CLASSES_COVERED", "DEFAULT_CACHE_DIR", "FID",
    "GANZOO_MNIST",
    "INCEPTION", "IS_MEAN", "IS_STD", "KID_MEAN", "KID_STD", "METRIC_KEYS", "PRECISION", "PREPROCESSING",
    "RECALL", "SUPPORTED_EXTRACTORS", "WEIGHTS_PATH", "WEIGHTS_SHA256", "FeatureExtractorGanzooMnist",
    "FeatureExtractorUnavailable", "MnistCNN", "WeightsIntegrityError", "class_agreement",
    "class_balance", "evaluate", "histogram_kl",
    "extractor_info", "inception_hub_path", "load_classifier", "predict_digits",
    "real_stats_key", "register", "resolve_weights", "uint8_to_input", "verify_weights",
]
