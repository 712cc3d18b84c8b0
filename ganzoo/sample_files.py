"""Writers of generated samples for external metric tools: a folder of PNGs, or one ``.npz`` (streamed, no
pickles). Both take ``uint8`` batches ``(B, C, H, W)`` one at a time and follow :mod:`ganzoo.outputs`' rule."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import torch

from .errors import ConfigError
from .outputs import PendingOutput, check_output, write_error

#: The images array of an ``.npz`` (numpy's name for ``np.savez(path, images)``) and its labels.
NPZ_IMAGES = "arr_0"
NPZ_LABELS = "labels"
#: ``labels.csv`` beside the PNGs of a conditional generator: file name and class.
LABELS_CSV = "labels.csv"


def _finish(writer: PngDirWriter | NpzImageWriter, kind: type[BaseException] | None, exc: BaseException | None,
            tb: TracebackType | None) -> None:
    """A writer's ``__exit__``: its output committed once :meth:`finish` completes it, else discarded (a half-written
    output must not pass for samples), an ``OSError`` as :func:`~ganzoo.outputs.write_error`."""
    assert writer.pending is not None
    try:
        writer.finish(kind is None)
    except OSError as error:  # a full disk while finishing
        exc = exc or error
    except BaseException:
        writer.pending.discard()
        raise
    if exc is None:
        writer.pending.commit()
        return
    writer.pending.discard()
    if isinstance(exc, OSError):
        raise write_error(writer.out, exc) from None


def _png_dir_reason(folder: Path) -> str | None:
    """Why ``folder`` is not a previous png-dir export that ``overwrite`` may replace (``None``: it is one)."""
    for entry in folder.iterdir():
        if not (entry.is_file() and not entry.is_symlink()
                and (entry.name == LABELS_CSV or (entry.suffix == ".png" and entry.stem.isdigit()))):
            return f"holds {entry.name!r}, which ganzoo sample --format png-dir does not write"
    return None


class PngDirWriter:
    """``out/000000.png``, ``out/000001.png``, ... (and ``labels.csv``)."""
    def __init__(self, out: Path, total: int, overwrite: bool = False) -> None:
        self.out = check_output(out, overwrite, directory=True, replaceable=_png_dir_reason)
        self.digits, self.count = max(6, len(str(total - 1))), 0
        self.labels: list[tuple[str, int]] = []
        self.pending: PendingOutput | None = None

    def write(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        from PIL import Image
        assert self.pending is not None, "write inside `with writer:`"
        for i, image in enumerate(images):
            name = f"{self.count:0{self.digits}d}.png"
            array = image.permute(1, 2, 0).numpy()
            Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(self.pending.tmp / name)
            if labels is not None:
                self.labels.append((name, int(labels[i])))
            self.count += 1

    def __enter__(self) -> PngDirWriter:
        self.pending = PendingOutput(self.out, directory=True)
        return self

    def finish(self, complete: bool) -> None:
        if complete and self.labels:
            with open(self.pending.tmp / LABELS_CSV, "w", newline="") as f:  # type: ignore[union-attr]
                csv.writer(f).writerows([("file", "label"), *self.labels])

    __exit__ = _finish


class NpzImageWriter:
    """One ``.npz`` with ``arr_0`` (``uint8`` ``(N, H, W, C)``) and, for labelled samples, ``labels``."""
    def __init__(self, out: Path, total: int, overwrite: bool = False) -> None:
        if Path(out).suffix != ".npz":
            raise ConfigError(f"-o {str(out)!r}: name a file ending in .npz for --format npz")
        self.out = check_output(out, overwrite)
        self.total = total
        self.labels: list[np.ndarray] = []
        self.member: IO[bytes] | None = None
        self.pending: PendingOutput | None = None

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

    def __enter__(self) -> NpzImageWriter:
        self.pending = PendingOutput(self.out)
        try:
            self.zip = zipfile.ZipFile(self.pending.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        except OSError as exc:
            self.pending.discard()
            raise write_error(self.out, exc) from None
        return self

    def finish(self, complete: bool) -> None:
        try:
            if self.member is not None:
                self.member.close()
            if complete and self.labels:
                with self.zip.open(f"{NPZ_LABELS}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.concatenate(self.labels), allow_pickle=False)
        finally:
            self.zip.close()  # closes the file even when writing the zip's directory fails

    __exit__ = _finish
