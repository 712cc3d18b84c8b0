"""Feature extractors for torch-fidelity: :class:`FeatureExtractorGanzooMnist` (the bundled classifier, registered
as :data:`GANZOO_MNIST`) and Inception; :func:`resolve_weights` finds weights locally, never downloading, and
:func:`create_extractor` builds either from sha256-checked weights without unpickling anything but tensors."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from ..errors import GanzooError, UnknownNameError
from .classifier import (
    FEATURE_DIM,
    PREPROCESSING,
    WEIGHTS_PATH,
    WeightsIntegrityError,
    load_classifier,
    sha256_file,
    uint8_to_input,
    verify_weights,
)

GANZOO_MNIST = "ganzoo-mnist"
INCEPTION = "inception-v3-compat"
SUPPORTED_EXTRACTORS = (GANZOO_MNIST, INCEPTION)
#: sha256 of torch-fidelity's released ``weights-inception-2015-12-05-6726825d.pth``; any other file is refused.
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
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


#: The torch-fidelity class of each supported feature extractor.
EXTRACTOR_CLASSES = {GANZOO_MNIST: FeatureExtractorGanzooMnist, INCEPTION: FeatureExtractorInceptionV3}


def register() -> None:
    """Register :class:`FeatureExtractorGanzooMnist` with torch-fidelity as ``ganzoo-mnist`` (idempotent)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor
    existing = FEATURE_EXTRACTORS_REGISTRY.get(GANZOO_MNIST)
    if existing is None:
        register_feature_extractor(GANZOO_MNIST, FeatureExtractorGanzooMnist)
    elif existing.__qualname__ != FeatureExtractorGanzooMnist.__qualname__ or existing.__module__ != __name__:
        raise GanzooError(f"torch-fidelity feature extractor {GANZOO_MNIST!r} is already registered to "
                          f"{existing.__module__}.{existing.__qualname__}; remove that registration, ganzoo owns this "
                          "name")


def inception_hub_path() -> Path:
    """Where torch-fidelity's download would store the Inception weights (torch hub checkpoints cache)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(URL_INCEPTION_V3)


def resolve_weights(feature_extractor: str, weights: str | Path | None = None) -> Path:
    """The local weights file of ``feature_extractor``, sha256-checked; never downloads."""
    if feature_extractor == GANZOO_MNIST:
        path = Path(weights).expanduser() if weights is not None else WEIGHTS_PATH
        verify_weights(path)
        return path
    if feature_extractor == INCEPTION:
        path = Path(weights).expanduser() if weights is not None else inception_hub_path()
        if not path.is_file():
            reason = (f"the weights file {str(path)!r} does not exist" if weights is not None
                      else f"no weights file given and none at {str(path)!r}")
            raise FeatureExtractorUnavailable(
                f"feature extractor {INCEPTION!r} needs its weights and ganzoo never downloads them: {reason}. "
                f"Download {URL_INCEPTION_V3} and either pass it with --feature-extractor-weights PATH "
                f"(feature_extractor_weights=PATH in the API) or place it at {str(inception_hub_path())!r} "
                f"(torch's hub cache, where torch-fidelity looks). Or use the offline extractor {GANZOO_MNIST!r}.")
        verify_inception_weights(path)
        return path
    raise UnknownNameError("feature extractor", feature_extractor, list(SUPPORTED_EXTRACTORS))


def verify_inception_weights(path: str | Path, expected_sha256: str | None = None) -> str:
    """Check Inception weights' sha256 (before reading anything in them) and return it."""
    expected = expected_sha256 or INCEPTION_SHA256
    if not Path(path).is_file():  # a device or a pipe would be read forever
        raise WeightsIntegrityError(f"Inception weights {str(path)!r}: not a regular file")
    actual = sha256_file(path)
    if actual != expected:  # the file's own digest is not shown: the path may name any file
        raise WeightsIntegrityError(f"{str(path)!r} is not the Inception weights: its sha256 is not the expected "
                                    f"{expected} (torch-fidelity's released {os.path.basename(URL_INCEPTION_V3)}): "
                                    "the file is corrupt, tampered with or other weights; ganzoo loads no other file "
                                    f"under the name {INCEPTION!r}. Download {URL_INCEPTION_V3}.")
    return actual


def load_inception_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The Inception state dict in ``path``, sha256-verified, then read with ``weights_only=True``."""
    verify_inception_weights(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsIntegrityError(f"Inception weights {str(path)!r} cannot be read as tensors: {exc}") from None
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise WeightsIntegrityError(f"Inception weights {str(path)!r} are not a state dict of tensors")
    return state


def create_extractor(name: str, features: list[str], weights: str | Path, device: torch.device | str = "cpu",
                     ) -> FeatureExtractorBase:
    """A feature extractor in eval mode on ``device`` (Inception from :func:`load_inception_state`)."""
    if name not in EXTRACTOR_CLASSES:
        raise UnknownNameError("feature extractor", name, list(SUPPORTED_EXTRACTORS))
    source: str | io.BytesIO = str(weights)
    if name == INCEPTION:
        source = io.BytesIO()
        torch.save(load_inception_state(weights), source)
        source.seek(0)
    extractor: FeatureExtractorBase = EXTRACTOR_CLASSES[name](name, features, feature_extractor_weights_path=source)
    extractor.requires_grad_(False)
    return extractor.eval().to(device)


def preprocessing_of(feature_extractor: str) -> str:
    """A string naming the image preprocessing of ``feature_extractor`` (part of the cache key)."""
    if feature_extractor == GANZOO_MNIST:
        return PREPROCESSING
    if feature_extractor == INCEPTION:
        return INCEPTION_PREPROCESSING
    raise UnknownNameError("feature extractor", feature_extractor, list(SUPPORTED_EXTRACTORS))
