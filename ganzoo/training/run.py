"""A run from a resolved config: load the data, set determinism and DDP up, seed, assemble, build the trainer, restore a
checkpoint, run the loop with the standard callbacks and the caller's, and leave the process as it was found."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from .. import distributed
from ..config import TrainConfig
from ..data import ImageData, load_images
from ..distributed import DistInfo
from ..errors import ConfigError
from ..meta import version
from ..plugins import list_plugins
from ..registry import get_registry
from .assembly import assemble
from .callbacks import standard_callbacks
from .loop import Callback, TrainResult, run_loop
from .randomness import seed_everything
from .trainer import Trainer

CONFIG_FILE = "config.yaml"  #: the resolved config a run directory keeps beside its outputs


def versions() -> dict[str, Any]:
    """Versions that pin a run: ganzoo, torch, and each plugin's distribution."""
    return {"ganzoo": version(), "torch": str(torch.__version__),
            "plugins": {p.name: f"{p.distribution} {p.version}" for p in list_plugins()}}


def resolve_device(name: str) -> torch.device:
    """``'auto'`` picks CUDA when available; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available; use device=cpu")
    return device


def build_trainer(cfg: TrainConfig, data: ImageData, *, device: torch.device | None = None,
                  dist_info: DistInfo | None = None, progress: bool = False) -> Trainer:
    """Seed, assemble and build the trainer of ``cfg`` on ``data`` (its training split)."""
    device = device or resolve_device(cfg.device)
    seed_everything(cfg.seed)
    assembly = assemble(get_registry(), cfg, data.image_shape, device, num_classes=data.num_classes)
    return Trainer(assembly, data, device, versions(), dist_info=dist_info, progress=progress)


@contextmanager
def _determinism(enabled: bool) -> Iterator[None]:
    """Deterministic algorithms for the length of a run when ``enabled``; the process-wide switch is left as it was."""
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def run_config(cfg: TrainConfig, state: dict[str, Any] | None = None, *, progress: bool = True,
               callbacks: Sequence[Callback] = (), max_seconds: float | None = None) -> TrainResult:
    """Train a resolved config: build its trainer, restore ``state`` (a checkpoint's), write ``config.yaml`` and run the
    loop with the standard callbacks, then ``callbacks``. Under torchrun each rank trains its slice (DDP)."""
    info, device = distributed.setup(resolve_device(cfg.device))
    if cfg.sync_batchnorm and device.type != "cuda":
        raise ConfigError("sync_batchnorm: SyncBatchNorm needs CUDA devices; on the CPU leave it off")
    try:
        with _determinism(cfg.deterministic):
            data = load_images(get_registry(), cfg.dataset, split="train", root=cfg.data_root,
                               download=cfg.download, image_size=cfg.image_size)
            trainer = build_trainer(cfg, data, device=device, dist_info=info, progress=progress)
            if state is not None:
                trainer.load_state_dict(state)
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            if info.is_main:
                (out / CONFIG_FILE).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
            return run_loop(trainer, out, [*standard_callbacks(progress), *callbacks], max_seconds=max_seconds)
    finally:
        if info.enabled:
            # DDP's reducers and gloo's pending work go while the process group they use still exists. gloo's
            # threads outlive this all the same: a rank ends through distributed.exit_rank (the CLI's main does).
            trainer = None
            gc.collect()
            distributed.teardown()
