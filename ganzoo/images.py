"""Sample grids as PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import torch

#: Image files ganzoo writes (a grid; Pillow infers the format from the suffix) and reads (a folder to evaluate).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] (N, C, H, W) as one PNG grid, ``nrow`` per row (default: square-ish)."""
    # Imported here, not at module level: torchvision.utils pulls in torchvision.ops and with it torch._dynamo,
    # about 10 s on a 2-core CPU that every ganzoo command paid at start-up, even `ganzoo list`.
    from torchvision.utils import save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    save_image(images.detach().float().cpu(), path, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
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
