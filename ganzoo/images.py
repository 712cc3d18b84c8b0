"""Sample grids as PNG files."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from .outputs import atomic_file

log = logging.getLogger(__name__)

#: Image files ganzoo reads (a folder to evaluate, the ``image-folder`` dataset) and writes (a grid; Pillow infers
#: the format from the suffix). Matched case-insensitively.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def list_image_files(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` (recursively, by :data:`IMAGE_SUFFIXES`), sorted by path: what
    ``ganzoo evaluate FOLDER`` and the ``image-folder`` dataset read.

    Only regular files inside ``folder`` count: an entry whose real path (symbolic links resolved) lies
    outside it is skipped with a warning, so a folder cannot make ganzoo read a file elsewhere (or a device)
    through a link. Links between files of the folder itself are followed."""
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
    """Save images in [-1, 1] (N, C, H, W) as one PNG grid, ``nrow`` per row (default: square-ish).

    The file is written under a temporary name and moved into place when complete (a symbolic link at
    ``path`` is replaced, not written through); a write that fails (a full disk) raises
    :class:`~ganzoo.errors.GanzooError` naming ``path`` and leaves what was there. Whether ``path`` may be
    replaced at all is the caller's rule (:func:`ganzoo.outputs.check_output`)."""
    # Imported here, not at module level: torchvision.utils pulls in torchvision.ops and with it torch._dynamo,
    # about 10 s on a 2-core CPU that every ganzoo command paid at start-up, even `ganzoo list`.
    from torchvision.utils import save_image

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
