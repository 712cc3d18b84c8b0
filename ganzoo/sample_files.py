"""Writers of generated samples as files for external metric tools: a folder of PNGs, or one ``.npz``.

Both take ``uint8`` batches ``(B, C, H, W)`` one at a time and keep nothing but the file open, so writing
50,000 samples needs the memory of one batch. ``NpzImageWriter`` streams the array into the zip member;
numpy reads the result with ``np.load`` (no pickles).
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import torch

from .errors import ConfigError

#: The images array of an ``.npz`` (numpy's name for ``np.savez(path, images)``) and its labels.
NPZ_IMAGES = "arr_0"
NPZ_LABELS = "labels"
#: ``labels.csv`` beside the PNGs of a conditional generator: file name and class.
LABELS_CSV = "labels.csv"


class PngDirWriter:
    """``out/000000.png``, ``out/000001.png``, ... (and ``labels.csv``); ``out`` must be new or empty."""

    def __init__(self, out: Path, total: int) -> None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"-o {str(out)!r}: give a new or empty folder for --format png-dir")
        out.mkdir(parents=True, exist_ok=True)
        self.out, self.digits, self.count = out, max(6, len(str(total - 1))), 0
        self.labels: list[tuple[str, int]] = []

    def write(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        from PIL import Image

        for i, image in enumerate(images):
            name = f"{self.count:0{self.digits}d}.png"
            array = image.permute(1, 2, 0).numpy()
            Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(self.out / name)
            if labels is not None:
                self.labels.append((name, int(labels[i])))
            self.count += 1

    def __enter__(self) -> PngDirWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.labels:
            with open(self.out / LABELS_CSV, "w", newline="") as f:
                csv.writer(f).writerows([("file", "label"), *self.labels])


class NpzImageWriter:
    """One ``.npz`` with ``arr_0`` (``uint8`` ``(N, H, W, C)``) and, for labelled samples, ``labels``."""

    def __init__(self, out: Path, total: int) -> None:
        if out.suffix != ".npz":
            raise ConfigError(f"-o {str(out)!r}: name a file ending in .npz for --format npz")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out, self.total, self.count = out, total, 0
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.member: IO[bytes] | None = None
        self.labels: list[np.ndarray] = []

    def write(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        array = np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())
        if self.member is None:  # the header needs the full shape, known from the first batch
            self.member = self.zip.open(f"{NPZ_IMAGES}.npy", "w", force_zip64=True)
            header: dict[str, Any] = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                                      "fortran_order": False, "shape": (self.total, *array.shape[1:])}
            np.lib.format.write_array_header_1_0(self.member, header)
        self.member.write(array.tobytes())
        if labels is not None:
            self.labels.append(labels.cpu().numpy().astype(np.int64))
        self.count += array.shape[0]

    def __enter__(self) -> NpzImageWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.member is not None:
            self.member.close()
        if kind is None and self.labels:
            with self.zip.open(f"{NPZ_LABELS}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.concatenate(self.labels), allow_pickle=False)
        self.zip.close()
        if kind is not None:
            self.out.unlink(missing_ok=True)  # a half-written array must not pass for samples
