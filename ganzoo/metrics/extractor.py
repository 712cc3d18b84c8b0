"""Feature extractors for torch-fidelity: the bundled ``ganzoo-mnist`` classifier, and Inception weights.

:class:`FeatureExtractorGanzooMnist` wraps :class:`~ganzoo.metrics.classifier.MnistCNN` in torch-fidelity's
``FeatureExtractorBase`` interface and is registered under :data:`GANZOO_MNIST` by :func:`register`
(idempotent). It takes torch-fidelity's ``uint8`` NCHW batches, converts them to the classifier's input
(grayscale, 28x28, ``[-1, 1]``) and provides:

- ``"128"``: the penultimate features, used for FID, KID and precision/recall;
- ``"logits_unbiased"`` (used for the Inception Score) and ``"logits"``: the 10 digit logits (identical, the
  classifier's last layer has no bias).

:func:`resolve_weights` finds the weights file of a supported extractor, never downloading anything: for
``inception-v3-compat`` an explicit path or the file already in torch's hub cache, otherwise
:class:`FeatureExtractorUnavailable`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from ..errors import GanzooError, UnknownNameError
from .classifier import (
    FEATURE_DIM,
    PREPROCESSING,
    WEIGHTS_PATH,
    load_classifier,
    uint8_to_input,
    verify_weights,
)

GANZOO_MNIST = "ganzoo-mnist"
INCEPTION = "inception-v3-compat"
SUPPORTED_EXTRACTORS = (GANZOO_MNIST, INCEPTION)
#: Prefix of the sha256 of torch-fidelity's released Inception weights (in their file name, hub style).
INCEPTION_SHA256_PREFIX = "6726825d"
INCEPTION_PREPROCESSING = "torch-fidelity-inception-v3-compat:gray->rgb,tf1x-bilinear-299,(x-128)/128"


class FeatureExtractorUnavailable(GanzooError):
    """The weights a feature extractor needs are not available locally (ganzoo never downloads them)."""


class FeatureExtractorGanzooMnist(FeatureExtractorBase):
    """torch-fidelity feature extractor around the bundled MNIST classifier (see the module docstring)."""

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                 **kwargs: object) -> None:
        super().__init__(name, features_list)
        self.classifier = load_classifier(feature_extractor_weights_path)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not (torch.is_tensor(x) and x.dtype == torch.uint8 and x.ndim == 4 and x.shape[1] in (1, 3)):
            got = f"{x.dtype} {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{GANZOO_MNIST} expects uint8 images (N, 1|3, H, W), got {got}")
        feats, logits = self.classifier.features(uint8_to_input(x))
        out = {str(FEATURE_DIM): feats, "logits_unbiased": logits, "logits": logits}
        return tuple(out[name].float() for name in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return str(FEATURE_DIM), "logits_unbiased", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits_unbiased", "fid": str(FEATURE_DIM), "kid": str(FEATURE_DIM),
                "prc": str(FEATURE_DIM)}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return True

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return (torch.rand([1, 1, 28, 28]) * 255).to(torch.uint8)


def register() -> None:
    """Register :class:`FeatureExtractorGanzooMnist` with torch-fidelity as ``ganzoo-mnist`` (idempotent)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    existing = FEATURE_EXTRACTORS_REGISTRY.get(GANZOO_MNIST)
    if existing is None:
        register_feature_extractor(GANZOO_MNIST, FeatureExtractorGanzooMnist)
    elif existing.__qualname__ != FeatureExtractorGanzooMnist.__qualname__ or existing.__module__ != __name__:
        raise GanzooError(
            f"torch-fidelity feature extractor {GANZOO_MNIST!r} is already registered to "
            f"{existing.__module__}.{existing.__qualname__}; remove that registration, ganzoo owns this name")


def inception_hub_path() -> Path:
    """Where torch-fidelity's download would store the Inception weights (torch hub checkpoints cache)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(URL_INCEPTION_V3)


def _inception_unavailable(reason: str) -> FeatureExtractorUnavailable:
    return FeatureExtractorUnavailable(
        f"feature extractor {INCEPTION!r} needs its weights and ganzoo never downloads them: {reason}. "
        f"Download {URL_INCEPTION_V3} and either pass it with --feature-extractor-weights PATH "
        f"(feature_extractor_weights=PATH in the API) or place it at {str(inception_hub_path())!r} "
        f"(torch's hub cache, where torch-fidelity looks). Or use the offline extractor {GANZOO_MNIST!r}.")


def resolve_weights(feature_extractor: str, weights: str | Path | None = None) -> Path:
    """Return the local weights file for ``feature_extractor``; never downloads.

    ``ganzoo-mnist``: ``weights`` or the bundled file, sha256-verified. ``inception-v3-compat``: ``weights``
    or the file in torch's hub cache; raises :class:`FeatureExtractorUnavailable` when neither exists.
    Unknown names raise :class:`~ganzoo.errors.UnknownNameError`.
    """
    if feature_extractor == GANZOO_MNIST:
        path = Path(weights).expanduser() if weights is not None else WEIGHTS_PATH
        verify_weights(path)
        return path
    if feature_extractor == INCEPTION:
        if weights is not None:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise _inception_unavailable(f"the weights file {str(path)!r} does not exist")
            return path
        path = inception_hub_path()
        if not path.is_file():
            raise _inception_unavailable(f"no weights file given and none at {str(path)!r}")
        return path
    raise UnknownNameError("feature extractor", feature_extractor, list(SUPPORTED_EXTRACTORS))


def preprocessing_of(feature_extractor: str) -> str:
    """A string naming the image preprocessing of ``feature_extractor`` (part of the cache key)."""
    if feature_extractor == GANZOO_MNIST:
        return PREPROCESSING
    if feature_extractor == INCEPTION:
        return INCEPTION_PREPROCESSING
    raise UnknownNameError("feature extractor", feature_extractor, list(SUPPORTED_EXTRACTORS))
