"""Sample grids as PNG files."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from .outputs import atomic_file

log = logging.getLogger(__name__)

#: Image files ganzoo reads and writes (Pillow infers the format from the suffix), matched case-insensitively.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def list_image_files(folder: str | Path) -> list[Path]:
    """The image files under ``folder``, sorted; links leading outside it are skipped with a warning."""
    folder = Path(folder)
    root = folder.resolve()
    files, outside = [], []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not path.resolve().is_relative_to(root):
            outside.append(path)
        elif path.is_file():
            files.append(path)
    if outside:
        log.warning("skipping %d symbolic link(s) under %s that point outside it (e.g. %s); copy those images into "
                    "the folder to use them", len(outside), folder, outside[0])
    return files


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] (N, C, H, W) as one PNG grid, ``nrow`` per row, written whole."""
    from torchvision.utils import save_image  # here: torchvision.utils imports torch._dynamo, seconds at start-up
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    with atomic_file(path) as tmp:
        save_image(images.detach().float().cpu(), tmp, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    return path


def grid_image(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """The grid :func:`save_grid` writes, as a ``(3, H, W)`` float tensor in [0, 1] (for TensorBoard)."""
    from torchvision.utils import make_grid
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)


def read_png(path: str | Path) -> torch.Tensor:
    """A PNG file as a ``(3, H, W)`` float tensor in [0, 1] (a plot, for TensorBoard)."""
    import numpy as np
    from PIL import Image
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
