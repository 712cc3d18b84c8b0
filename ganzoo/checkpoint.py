"""Checkpoints: atomic writes, safe loading (``weights_only=True`` only), retention and a ``latest`` pointer.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so ``torch.load`` with
``weights_only=True`` can read it and never runs code from the file.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from .errors import CheckpointError

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
_NAME = re.compile(r"^step-(\d{8})\.pt$")
_TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write a file atomically: ``write(fileobj)`` into a temporary file beside it, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean_stale_temporaries(directory: Path) -> list[Path]:
    """Remove temporary files left by a write that was killed; returns what was removed."""
    removed = []
    if directory.is_dir():
        for p in directory.glob(_TMP_PREFIX + "*"):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep_last: int = 2) -> Path:
    """Save ``state`` as ``run_dir/checkpoints/step-NNNNNNNN.pt``, point ``latest`` at it, prune old ones."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    path = directory / checkpoint_name(step)
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    atomic_write_bytes(directory / LATEST, lambda f: f.write(path.name.encode() + b"\n"))
    for old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints in ``run_dir`` ordered by step."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``latest`` points at, or the newest one present; ``None`` if there is none."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    pointer = directory / LATEST
    if pointer.is_file():
        target = directory / pointer.read_text().strip()
        if _NAME.match(target.name) and target.is_file():
            return target
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint in {str(path)!r} (looked for {CHECKPOINT_DIR}/step-*.pt)")
        return found
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``. Files holding code or corrupt files raise CheckpointError."""
    path = resolve_checkpoint(path)
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is not ours
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or unreadable: not a PyTorch zip archive")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {str(path)!r}: it holds objects other than tensors and plain data, which "
            f"could run code ({str(exc).splitlines()[0]}). Only load checkpoints written by ganzoo."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or unreadable: {exc}") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{str(path)!r} is not a ganzoo checkpoint")
    return state


GENERATOR_FILE = "generator.safetensors"
EXPORT_FORMATS = ("ganzoo-generator-1", "ganzoo-generator-2")  # 2 adds num_classes and weights


def export_generator(path: Path, weights: dict[str, torch.Tensor], config: dict[str, Any], generator: str,
                     image_shape: list[int], num_classes: int | None = None, source: str = "generator") -> Path:
    """Write generator weights as ``.safetensors`` (no code can hide in it), with what rebuilding it needs.

    The resolved config, the generator's registered name, the image shape, the number of classes of a
    conditional generator and which weights these are (``"generator"``, or the extension whose sampling
    generator they are, e.g. ``"ema"``) go into the file's metadata.
    """
    metadata = {"format": EXPORT_FORMATS[-1], "config": json.dumps(config, sort_keys=True),
                "generator": generator, "image_shape": json.dumps(list(image_shape)),
                "num_classes": json.dumps(num_classes), "weights": source}
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    atomic_write_bytes(Path(path), lambda f: f.write(safetensors_save(tensors, metadata=metadata)))
    return Path(path)


def load_exported_generator(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read what :func:`export_generator` wrote: ``(weights, {"config", "generator", "image_shape",
    "num_classes", "weights"})``."""
    data = Path(path).read_bytes()
    try:
        weights = safetensors_load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__", {})
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{str(path)!r} is not a valid safetensors file: {exc}") from None
    if metadata.get("format") not in EXPORT_FORMATS:
        raise CheckpointError(f"{str(path)!r} is not a generator exported by ganzoo (no ganzoo metadata)")
    return weights, {"config": json.loads(metadata["config"]), "generator": metadata["generator"],
                     "image_shape": json.loads(metadata["image_shape"]),
                     "num_classes": json.loads(metadata.get("num_classes", "null")),
                     "weights": metadata.get("weights", "generator")}
