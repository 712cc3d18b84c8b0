"""Offline image-generation metrics: FID, KID, IS, precision/recall through torch-fidelity
(:func:`score_images`, :mod:`ganzoo.metrics.fidelity`). Importing it registers ``ganzoo-mnist`` with torch-fidelity."""

from __future__ import annotations

from .classifier import (
    PREPROCESSING,
    WEIGHTS_PATH,
    WEIGHTS_SHA256,
    MnistCNN,
    WeightsIntegrityError,
    load_classifier,
    predict_digits,
    uint8_to_input,
    verify_weights,
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
from .fidelity import DEFAULT_CACHE_DIR, extractor_info, histogram_kl, real_stats_key, score_images

register()

__all__ = ["DEFAULT_CACHE_DIR", "GANZOO_MNIST", "INCEPTION", "PREPROCESSING", "SUPPORTED_EXTRACTORS", "WEIGHTS_PATH",
           "WEIGHTS_SHA256", "FeatureExtractorGanzooMnist", "FeatureExtractorUnavailable", "MnistCNN",
           "WeightsIntegrityError", "extractor_info", "histogram_kl", "inception_hub_path", "load_classifier",
           "predict_digits", "real_stats_key", "register", "resolve_weights", "score_images", "uint8_to_input",
           "verify_weights"]
