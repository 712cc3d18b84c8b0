"""Checkpoints: atomic writes, safe loading (plain data read with ``weights_only=True``), retention and a
``latest`` pointer; generator exports as ``.safetensors``."""

from __future__ import annotations

import hashlib
import io
import json
import math
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
from .outputs import current_umask

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
_NAME = re.compile(r"^step-(\d{8})\.pt$")
#: Prefix of the temporary files an atomic write (checkpoints, the latest pointer) writes before its rename.
ATOMIC_TMP_PREFIX = ".tmp-"
#: Key of the sha256 over every tensor of a checkpoint (see :func:`tensors_sha256`), checked on load.
TENSORS_SHA256 = "tensors_sha256"
GENERATOR_FILE = "generator.safetensors"
EXPORT_FORMATS = ("ganzoo-generator-1", "ganzoo-generator-2")  # 2 adds num_classes and weights
#: What an exported generator's metadata may describe (checked before anything is allocated).
MAX_HEADER_BYTES = 16 << 20
MAX_CHANNELS, MAX_SIDE, MAX_CLASSES = 16, 4096, 100_000
MAX_VECTOR = 1 << 20  # values per non-image sample
#: Tensor dtypes an export may hold: floating-point weights, and int64 counters (BatchNorm's num_batches_tracked).
EXPORT_DTYPES = {"F16", "BF16", "F32", "F64", "I64"}


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write a file atomically: ``write(fileobj)`` into a temporary file beside it, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=ATOMIC_TMP_PREFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual permissions
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
    removed = list(directory.glob(ATOMIC_TMP_PREFIX + "*")) if directory.is_dir() else []
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def tensors_sha256(state: Any) -> str:
    """sha256 over every tensor in a nested state (its path, dtype, shape and bytes, in a fixed order)."""
    digest = hashlib.sha256()
    def visit(node: Any, path: str) -> None:
        if isinstance(node, torch.Tensor):
            t = node.detach().cpu().contiguous()
            digest.update(f"{path}:{t.dtype}:{list(t.shape)};".encode())
            if t.numel():
                digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(node, dict):
            for key in sorted(node, key=str):
                if path or key != TENSORS_SHA256:
                    visit(node[key], f"{path}/{key}")
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                visit(item, f"{path}/{i}")
    visit(state, "")
    return digest.hexdigest()


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep_last: int = 2) -> Path:
    """Save ``state`` with its tensors' sha256 as ``checkpoints/step-N.pt``, point ``latest`` at it, prune."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    path = directory / checkpoint_name(step)
    state = {**state, TENSORS_SHA256: tensors_sha256(state)}
    # serialised in memory first, so that a failed write raises the OSError that says why
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(path, lambda f: f.write(buffer.getbuffer()))
        atomic_write_bytes(directory / LATEST, lambda f: f.write(path.name.encode() + b"\n"))
    except OSError as exc:  # disk full, read-only: the previous checkpoint and `latest` are left as they were
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {exc.strerror or exc}; free space or "
                              "choose another --out, then --resume from the last checkpoint") from None
    for old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints in ``run_dir`` ordered by step."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name) and p.is_file())


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``latest`` points at (a ``step-NNNNNNNN.pt`` beside it), else the newest one, or ``None``."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    pointer = directory / LATEST
    if pointer.is_file() and pointer.stat().st_size <= 64:
        name = pointer.read_bytes().decode("utf-8", errors="replace").strip()
        target = directory / name
        if _NAME.match(name) and target.is_file():
            return target
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run directory (or of its ``checkpoints`` folder)."""
    path = Path(path)
    if path.is_dir() and path.name == CHECKPOINT_DIR and not (path / CHECKPOINT_DIR).is_dir():
        path = path.parent  # the checkpoints folder itself: its run directory's latest
    if path.is_dir() and not _NAME.match(path.name):
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint in {str(path)!r} (looked for {CHECKPOINT_DIR}/step-*.pt)")
        return found
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; code, corruption or a sha256 mismatch: CheckpointError."""
    path = resolve_checkpoint(path)  # a regular file (is_file follows links: a link to a device is not)
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is not ours
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or unreadable: not a PyTorch zip archive")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"refusing to load {str(path)!r}: it holds objects other than tensors and plain data, "
                              f"which could run code ({str(exc).splitlines()[0]}). Only load checkpoints written by "
                              "ganzoo.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or unreadable: {exc}") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{str(path)!r} is not a ganzoo checkpoint")
    recorded = state.pop(TENSORS_SHA256, None)
    if recorded is not None and recorded != tensors_sha256(state):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: its tensors do not match the sha256 recorded "
                              "when it was written (bit rot or an edit); resume from an older checkpoint in the "
                              "same directory or start afresh")
    if recorded is None and state["format"] != 1:
        raise CheckpointError(f"checkpoint {str(path)!r} has no {TENSORS_SHA256}, which every checkpoint since "
                              "format 2 records; it is damaged or was not written by ganzoo")
    return state


def export_generator(path: Path, weights: dict[str, torch.Tensor], config: dict[str, Any], generator: str,
                     image_shape: list[int], num_classes: int | None = None, source: str = "generator") -> Path:
    """Write generator weights as ``.safetensors``, with what rebuilding it needs in the metadata."""
    metadata = {"format": EXPORT_FORMATS[-1], "config": json.dumps(config, sort_keys=True), "generator": generator,
                "image_shape": json.dumps(list(image_shape)), "num_classes": json.dumps(num_classes), "weights": source}
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    atomic_write_bytes(Path(path), lambda f: f.write(safetensors_save(tensors, metadata=metadata)))
    return Path(path)


def _export_error(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{str(path)!r} is not a usable ganzoo generator export: {what}")


def read_export_header(path: Path, data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate an export's header before any tensor is read: ``(tensor entries, decoded metadata)``."""
    def invalid(what: str) -> CheckpointError:
        return CheckpointError(f"{str(path)!r} is not a valid safetensors file: {what}")
    if len(data) < 8:
        raise invalid("it is shorter than a safetensors header")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > min(MAX_HEADER_BYTES, len(data) - 8):
        raise invalid(f"its header claims {header_len} bytes, more than the file holds")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise invalid("its header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or meta.get("format") not in EXPORT_FORMATS:
        raise CheckpointError(f"{str(path)!r} is not a generator exported by ganzoo (no ganzoo metadata)")
    decoded: dict[str, Any] = {"weights": meta.get("weights", "generator")}
    for key in ("config", "image_shape", "num_classes"):
        raw = meta.get(key, "null" if key == "num_classes" else None)
        if not isinstance(raw, str) or len(raw) > 1 << 20:
            raise _export_error(path, f"metadata {key!r} is missing or not a JSON string")
        try:
            decoded[key] = json.loads(raw)
        except ValueError:
            raise _export_error(path, f"metadata {key!r} is not valid JSON") from None
    decoded["generator"] = meta.get("generator")
    if not isinstance(decoded["generator"], str) or not decoded["generator"]:
        raise _export_error(path, "metadata 'generator' must name the generator")
    if not isinstance(decoded["config"], dict):
        raise _export_error(path, "metadata 'config' must be a JSON object")
    shape = decoded["image_shape"]
    ints = isinstance(shape, list) and len(shape) in (1, 3) and all(type(v) is int for v in shape)
    image = ints and len(shape) == 3 and 1 <= shape[0] <= MAX_CHANNELS and all(1 <= v <= MAX_SIDE for v in shape[1:])
    vector = ints and len(shape) == 1 and 1 <= shape[0] <= MAX_VECTOR  # non-image samples (2-D points)
    if not (image or vector):
        raise _export_error(path, f"metadata 'image_shape' must be [C, H, W] with C <= {MAX_CHANNELS} and "
                            f"H, W <= {MAX_SIDE}, or [D] with D <= {MAX_VECTOR} for non-image samples")
    classes = decoded["num_classes"]
    if classes is not None and not (type(classes) is int and 1 <= classes <= MAX_CLASSES):
        raise _export_error(path, f"metadata 'num_classes' must be null or an integer in 1..{MAX_CLASSES}")
    for name, entry in header.items():
        if not (isinstance(entry, dict) and entry.get("dtype") in EXPORT_DTYPES):
            dtype = entry.get("dtype") if isinstance(entry, dict) else "?"
            raise _export_error(path, f"tensor {str(name)[:60]!r} has dtype {str(dtype)[:10]}; generator weights "
                                "are floating point")
    return header, decoded


def load_exported_generator(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(weights, metadata)`` of an export checked by :func:`read_export_header`, with the ``"elements"`` stored."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"generator file {str(path)!r} does not exist or is not a regular file")
    data = path.read_bytes()
    header, meta = read_export_header(path, data)
    try:
        weights = safetensors_load(data)
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{str(path)!r} is not a valid safetensors file: {exc}") from None
    elements = sum(math.prod(int(v) for v in entry.get("shape", [])) for entry in header.values())
    return weights, {**meta, "elements": elements}
