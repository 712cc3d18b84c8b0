"""Hostile and careless files around `ganzoo evaluate` and `ganzoo sample` (issue #25, points 3, 6, 7, 9, 13, 14,
15): crafted and bomb .npz files, decompression-bomb images, bad labels, a full disk, outputs in the way of one
another and symbolic links. Every hostile file is built here, none is committed."""

from __future__ import annotations

import builtins
import errno
import io
import logging
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import QUICK
from PIL import Image

import ganzoo
from ganzoo import GanzooError, UsageError, evaluation
from ganzoo.cli import cli
from ganzoo.evaluation import MAX_EVAL_IMAGES, read_image_folder, read_npz

TINY = {**QUICK, "generator_options": {"hidden": [8]}, "discriminator_options": {"hidden": [8]}}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 2-step vanilla run (MLP, 28x28 digits) that rewrote its samples.png at every step: training's own
    grid is not an output under the overwrite rule."""
    out = tmp_path_factory.mktemp("inputs") / "run"
    ganzoo.train("vanilla", steps=2, out=out, config={**TINY, "sample_every": 1}, progress=False)
    assert (out / "samples.png").is_file() and not list(out.glob(".ganzoo-tmp-*"))
    return out


def _npz_of_header(path: Path, shape: tuple[int, ...], data: bytes = b"") -> Path:
    """An .npz whose arr_0.npy is a header declaring ``shape`` (uint8) followed by ``data``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("arr_0.npy", header.getvalue() + data)
    return path


def _count_zip_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the bytes each read of a zip member returns (numpy's np.load and ganzoo's reader both read so)."""
    sizes: list[int] = []
    original = zipfile.ZipExtFile.read

    def read(self, n: int = -1) -> bytes:
        data = original(self, n)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    return sizes


# --- point 3: the .npy header is read and checked before anything is allocated or read ---------------------------


def test_an_npz_declaring_a_trillion_images_is_refused_before_allocating(tmp_path: Path) -> None:
    path = _npz_of_header(tmp_path / "huge.npz", (10**12, 28, 28))
    assert path.stat().st_size < 300  # the 244-byte attack: np.load would allocate 784 TB and crash
    with pytest.raises(UsageError, match=r"declares shape \(1000000000000, 28, 28\).*damaged or crafted"):
        read_npz(path)
    out = CliRunner().invoke(cli, ["evaluate", str(path), "--no-progress"])
    assert out.exit_code == 2 and "huge.npz" in out.output and "Traceback" not in out.output


def test_an_npz_whose_zip_entry_agrees_with_a_huge_header_meets_the_cap(tmp_path: Path) -> None:
    path = _npz_of_header(tmp_path / "forged.npz", (10**6, 28, 28), b"\0" * 100)
    # forge the zip's declared uncompressed size (local header and central directory) to match the .npy header
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        real = archive.getinfo("arr_0.npy").file_size
    forged = real - 100 + 10**6 * 28 * 28
    assert struct.unpack_from("<I", data, 22)[0] == real
    struct.pack_into("<I", data, 22, forged)
    central = data.index(b"PK\x01\x02")
    assert struct.unpack_from("<I", data, central + 24)[0] == real
    struct.pack_into("<I", data, central + 24, forged)
    path.write_bytes(bytes(data))
    with pytest.raises(UsageError, match=rf"declares 1000000 images, more than the {MAX_EVAL_IMAGES}.*--num"):
        read_npz(path)
    # asking for fewer reads only those: the member is short, which is named, not allocated past
    with pytest.raises(UsageError, match="truncated or damaged"):
        read_npz(path, num=5)


def test_a_deflate_bomb_is_refused_by_the_byte_cap_without_being_inflated(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, np.zeros((4000, 28, 28), np.uint8))  # 3.1 MB of zeros in a few kB
    assert path.stat().st_size < 20_000
    monkeypatch.setattr(evaluation, "MAX_EVAL_BYTES", 1_000_000)  # the same check at a size a test can afford
    reads = _count_zip_reads(monkeypatch)
    with pytest.raises(UsageError, match=r"4000 images of 784 bytes.*MAX_EVAL_BYTES.*at most 1275"):
        read_npz(path)
    assert sum(reads) < 1000  # the header, not the data
    images, labels = read_npz(path, num=1000)  # within the cap: read
    assert images.shape == (1000, 1, 28, 28) and labels is None


def test_images_of_another_size_are_refused_from_the_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few MB declaring two 20000 x 20000 images fit the byte cap but not the reference: refused unread."""
    path = tmp_path / "wide.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:  # a real deflate bomb, streamed in
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                      "shape": (2, 1, 20000, 20000)})
        with archive.open("arr_0.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(2**24)
            for _ in range(2 * 20000 * 20000 // len(zeros)):
                member.write(zeros)
            member.write(bytes(2 * 20000 * 20000 % len(zeros)))
    assert path.stat().st_size < 10_000_000
    reads = _count_zip_reads(monkeypatch)
    with pytest.raises(UsageError, match=r"1x20000x20000.*1x28x28.*--resize"):
        read_npz(path, image_shape=(1, 28, 28))
    with pytest.raises(UsageError, match="MAX_IMAGE_PIXELS"):
        read_npz(path, image_shape=(1, 28, 28), resize=True)
    assert sum(reads) < 1000  # the header, not the data
    out = CliRunner().invoke(cli, ["evaluate", str(path), "--no-progress"])
    assert out.exit_code == 2 and "--resize" in out.output and "Traceback" not in out.output


def test_a_cut_npy_header_is_named_not_a_traceback(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (4, 28, 28)})
    raw = header.getvalue()
    cut = raw[: raw.index(b"(4, 28") + 4] + b" " * (len(raw) - raw.index(b"(4, 28") - 5) + b"\n"  # no closing )
    path = tmp_path / "cut.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("arr_0.npy", cut)
    with pytest.raises(UsageError, match="header of array 'arr_0' cannot be read"):
        read_npz(path)
    out = CliRunner().invoke(cli, ["evaluate", str(path), "--no-progress"])
    assert out.exit_code == 2 and "cut.npz" in out.output and "Traceback" not in out.output


def test_num_reads_only_the_images_it_asks_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "many.npz"
    pixels = np.random.default_rng(0).integers(0, 256, (3000, 28, 28), dtype=np.uint8)
    np.savez_compressed(path, pixels, labels=np.arange(3000) % 10)
    reads = _count_zip_reads(monkeypatch)
    images, labels = read_npz(path, num=10)
    assert torch.equal(images[:, 0], torch.from_numpy(pixels[:10])) and labels.tolist() == list(range(10))
    assert sum(reads) < 20 * 28 * 28  # 10 images and 10 labels, not 3000 of each


# --- point 9: labels are checked, naming the file and the array ---------------------------------------------------


@pytest.mark.parametrize(("labels", "message"), [
    (np.zeros(3, np.int64), r"'labels' has shape \(3,\), but the file holds 4 images"),
    (np.zeros((4, 2), np.int64), r"'labels' has shape \(4, 2\)"),
    (np.array([0, 1, 12, 3]), r"'labels' holds classes 0\.\.12, outside 0\.\.9"),
    (np.array([0, -1, 2, 3]), r"'labels' holds classes -1\.\.3, outside 0\.\.9"),
    (np.zeros(4, np.float32), r"'labels' must hold integer classes, not float32"),
])
def test_labels_that_do_not_fit_the_images_are_refused(tmp_path: Path, labels: np.ndarray, message: str) -> None:
    path = tmp_path / "labelled.npz"
    np.savez(path, np.zeros((4, 28, 28), np.uint8), labels=labels)
    with pytest.raises(UsageError, match=message) as info:
        ganzoo.evaluate(path, progress=False)
    assert "labelled.npz" in str(info.value)


# --- point 15: messages for files that are not .npz at all -------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"", r"empty \(0 bytes\); an \.npz is a zip archive of \.npy arrays"),
    (pickle.dumps({"images": [1, 2, 3]}), "not a zip archive; an .npz is a zip archive of .npy arrays"),
    (b"\x93NUMPY\x01\x00" + b" " * 40, r"single \.npy array \(np\.save\), not an \.npz"),
])
def test_a_file_that_is_not_an_npz_is_named_for_what_it_is(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "samples.npz"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        read_npz(path)
    out = CliRunner().invoke(cli, ["evaluate", str(path), "--no-progress"])
    assert out.exit_code == 2 and "samples.npz" in out.output and "Aborted" not in out.output
    assert "pickled" not in out.output


# --- point 7: decompression bombs ---------------------------------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels (8-bit gray), with one empty data chunk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_png_is_named_not_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (28, 28)).save(folder / "0.png")
    _png_header_only(folder / "1-bomb.png", 20000, 20000)
    out = CliRunner().invoke(cli, ["evaluate", str(folder), "--no-progress"])
    assert out.exit_code == 2 and "1-bomb.png" in out.output and "too large" in out.output
    assert "Traceback" not in out.output
    with pytest.raises(ganzoo.DatasetError, match="1-bomb.png"):  # the image-folder dataset says the same
        ganzoo.load_dataset("image-folder", root=folder, image_size=8)


# --- point 15: one set of image suffixes, bounds, links out of the folder -----------------------------------------


def test_evaluate_reads_the_gif_images_the_image_folder_dataset_reads(tmp_path: Path) -> None:
    folder = tmp_path / "gifs"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), i * 80).save(folder / f"{i}.gif")
    assert len(ganzoo.load_dataset("image-folder", root=folder, image_size=8)) == 3
    assert read_image_folder(folder).shape[0] == 3


def test_evaluate_num_on_a_generator_is_bounded(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def generated(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("images were generated")

    monkeypatch.setattr(evaluation, "evaluation_samples", generated)
    with pytest.raises(UsageError, match=rf"more than the {MAX_EVAL_IMAGES} images.*MAX_EVAL_IMAGES"):
        ganzoo.evaluate(run, num=10**9, progress=False)
    out = CliRunner().invoke(cli, ["evaluate", str(run), "--num", "1000000000", "--no-progress"])
    assert out.exit_code == 2 and "MAX_EVAL_IMAGES" in out.output


def test_links_that_lead_out_of_an_image_folder_are_skipped(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    folder, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), i * 80).save(folder / f"{i}.png")
    Image.new("L", (28, 28), 255).save(elsewhere / "secret.png")
    (folder / "3-link.png").symlink_to(elsewhere / "secret.png")
    (folder / "4-inside.png").symlink_to(folder / "0.png")  # a link within the folder is fine
    with caplog.at_level(logging.WARNING):
        images = read_image_folder(folder)
    assert images.shape[0] == 4 and int(images.max()) < 255
    assert "3-link.png" in caplog.text and "outside" in caplog.text
    assert len(ganzoo.load_dataset("image-folder", root=folder, image_size=8)) == 4


# --- point 6: a full disk ----------------------------------------------------------------------------------------


class _FullFile:
    """A file opened for writing on a disk that fills up after ``room`` bytes."""

    def __init__(self, f: Any, room: int) -> None:
        self._f, self._room = f, room

    def write(self, data: Any) -> int:
        self._room -= len(data)
        if self._room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._f.write(data)

    def fileno(self) -> int:  # make Pillow write through write(), not straight to the descriptor
        raise io.UnsupportedOperation("fileno")

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _fill_disk(monkeypatch: pytest.MonkeyPatch, under: Path, room: int = 100) -> None:
    """Every file opened for writing under ``under`` fails with ENOSPC after ``room`` bytes."""
    real_open = builtins.open

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        inside = isinstance(file, (str, os.PathLike)) and Path(file).resolve().is_relative_to(under.resolve())
        return _FullFile(f, room) if inside and "w" in mode else f

    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(io, "open", full_open)


@pytest.mark.parametrize("fmt", ["grid", "npz", "png-dir"])
def test_a_full_disk_while_sampling_is_a_message_and_leaves_nothing_half_written(
        run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / {"grid": "g.png", "npz": "s.npz", "png-dir": "pngs"}[fmt]
    _fill_disk(monkeypatch, out_dir)
    with pytest.raises(GanzooError, match="No space left") as info:
        if fmt == "grid":
            ganzoo.sample(run, n=64, out=out)
        else:
            ganzoo.export_samples(run, 64, out, format=fmt, progress=False)
    assert not isinstance(info.value, UsageError) and str(out) in str(info.value)
    assert list(out_dir.iterdir()) == []  # no truncated output, no temporary file
    result = CliRunner().invoke(cli, ["sample", str(run), "-n", "64", "--format", fmt, "-o", str(out)])
    assert result.exit_code == 1 and "No space left" in result.output and "Traceback" not in result.output
    assert list(out_dir.iterdir()) == []


def test_a_full_disk_keeps_the_output_it_would_have_replaced(run: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s.npz"
    ganzoo.export_samples(run, 8, out, format="npz", progress=False)
    before = out.read_bytes()
    _fill_disk(monkeypatch, tmp_path)
    with pytest.raises(GanzooError, match="No space left"):
        ganzoo.export_samples(run, 64, out, format="npz", progress=False, overwrite=True)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["s.npz"]


def test_an_unwritable_feature_cache_warns_and_scores_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "digits.npz"
    np.savez(path, ganzoo.load_dataset("mnist-5k", "test").images[:20, 0].numpy())

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # the cache entry's write fails as on a full disk
    with caplog.at_level(logging.WARNING):
        result = ganzoo.evaluate(path, cache_dir=tmp_path / "cache", progress=False)
    assert np.isfinite(result["scores"]["fid"]) and result["num_fake"] == 20
    assert "scoring without the cache" in caplog.text
    assert list((tmp_path / "cache").iterdir()) == []  # no temporary file left behind


# --- point 13: a file where a folder should be ---------------------------------------------------------------------


def test_sample_into_a_path_under_a_file_is_a_usage_error(run: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine")
    for args in (["-o", str(tmp_path / "afile" / "x.png")],
                 ["--format", "npz", "-o", str(tmp_path / "afile" / "deeper" / "x.npz")],
                 ["--format", "png-dir", "-o", str(tmp_path / "afile" / "pngs")]):
        out = CliRunner().invoke(cli, ["sample", str(run), "-n", "4", *args])
        assert out.exit_code == 2, out.output
        assert "afile' is a file, not a folder" in out.output and "Traceback" not in out.output
    assert (tmp_path / "afile").read_text() == "mine"


# --- point 14: one overwrite rule for every output ------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "name"), [("grid", "g.png"), ("npz", "s.npz"), ("png-dir", "pngs")])
def test_every_sample_output_is_replaced_only_with_overwrite(run: Path, tmp_path: Path, fmt: str, name: str) -> None:
    runner = CliRunner()
    out = tmp_path / name
    args = ["sample", str(run), "-n", "4", "--format", fmt, "-o", str(out), "--no-progress"]
    assert runner.invoke(cli, args).exit_code == 0
    first = sorted(p.name for p in out.iterdir()) if out.is_dir() else out.read_bytes()
    again = runner.invoke(cli, [*args[:3], "6", *args[4:]])
    assert again.exit_code == 2 and "--overwrite" in again.output and str(out) in again.output
    assert (sorted(p.name for p in out.iterdir()) if out.is_dir() else out.read_bytes()) == first
    assert runner.invoke(cli, [*args[:3], "6", *args[4:], "--overwrite"]).exit_code == 0
    if fmt == "png-dir":
        assert len(list(out.iterdir())) == 6
    elif fmt == "npz":
        with np.load(out) as data:
            assert data["arr_0"].shape[0] == 6
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left beside it
    with pytest.raises(UsageError, match="already exists|not empty"):  # the library API has the same rule
        if fmt == "grid":
            ganzoo.sample(run, n=4, out=out)
        else:
            ganzoo.export_samples(run, 4, out, format=fmt, progress=False)


@pytest.mark.parametrize(("fmt", "name"), [("grid", "g.png"), ("npz", "s.npz"), ("png-dir", "pngs")])
def test_a_symlink_at_the_output_is_never_written_through(run: Path, tmp_path: Path, fmt: str, name: str) -> None:
    target = tmp_path / "precious"
    if fmt == "png-dir":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    else:
        target.write_text("mine")
    link = tmp_path / name
    link.symlink_to(target)
    args = ["sample", str(run), "-n", "4", "--format", fmt, "-o", str(link), "--no-progress"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and "symbolic link" in refused.output
    assert CliRunner().invoke(cli, [*args, "--overwrite"]).exit_code == 0
    assert not link.is_symlink() and (link.is_dir() if fmt == "png-dir" else link.is_file())
    if fmt == "png-dir":
        assert [p.name for p in target.iterdir()] == ["keep.txt"]
    else:
        assert target.read_text() == "mine"


def test_overwrite_replaces_only_a_folder_of_an_earlier_png_export(run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "000000.png").write_bytes(b"not ours")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="'notes.txt'.*--overwrite does not delete it"):
        ganzoo.export_samples(run, 4, folder, format="png-dir", progress=False, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder counts as new
    assert len(list(ganzoo.export_samples(run, 4, empty, format="png-dir", progress=False).iterdir())) == 4



def test_the_leaderboard_page_follows_the_output_rule(tmp_path: Path) -> None:
    """The one rule holds for ``ganzoo leaderboard -o`` too: replaced only with --overwrite, never through a
    symbolic link, written whole."""
    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "tiny"
    page = tmp_path / "board.md"
    first = CliRunner().invoke(cli, ["leaderboard", str(results), "-o", str(page)])
    assert first.exit_code == 0 and page.read_text().startswith("#")
    again = CliRunner().invoke(cli, ["leaderboard", str(results), "-o", str(page)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    target = tmp_path / "elsewhere.md"
    target.write_text("not a leaderboard")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    refused = CliRunner().invoke(cli, ["leaderboard", str(results), "-o", str(link)])
    assert refused.exit_code == 2 and "symbolic link" in refused.output
    replaced = CliRunner().invoke(cli, ["leaderboard", str(results), "-o", str(link), "--overwrite"])
    assert replaced.exit_code == 0 and not link.is_symlink() and target.read_text() == "not a leaderboard"
