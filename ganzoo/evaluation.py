"""Score images against a dataset split: a generator's samples (as the bench scores them) or images from elsewhere.
:func:`evaluate` is ``ganzoo evaluate``; it shares :func:`evaluation_samples` and :func:`score_samples` with the
bench, so a run directory evaluated with the bench's seed, split and sample count gives the bench's figures."""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import torch

from .errors import ConfigError, UsageError
from .images import IMAGE_SUFFIXES, list_image_files
from .sample_files import NPZ_IMAGES, NPZ_LABELS
from .training.sampling import draw_labels, generate

if TYPE_CHECKING:
    import numpy as np

    from .config import TrainConfig
    from .registry import Registry

#: The evaluation latents of seed ``s`` come from a generator seeded ``EVAL_SEED_OFFSET + s``, never the training's.
EVAL_SEED_OFFSET = 10_000
#: Images generated (and scored) per batch.
EVAL_BATCH = 500
#: What ``ganzoo evaluate`` scores a folder or an ``.npz`` against when no dataset is named.
DEFAULT_DATASET = "mnist-5k"
#: The most images :func:`evaluate` scores from any source, refused before reading or generating.
MAX_EVAL_IMAGES = 200_000
#: The most bytes of ``uint8`` images :func:`evaluate` holds, checked before anything is read.
MAX_EVAL_BYTES = 4 * 2**30
#: The ``.npy`` header versions :func:`read_npz` reads.
_NPY_HEADERS = {(1, 0): "read_array_header_1_0", (2, 0): "read_array_header_2_0"}
_READ_CHUNK = 1 << 24


def evaluation_samples(generate: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], latent_dim: int, n: int,
                       seed: int, device: torch.device | str = "cpu", class_probs: torch.Tensor | None = None,
                       images: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples of ``generate(z, labels)`` (``uint8`` images, or float samples with ``images=False``) and,
    with ``class_probs``, the labels drawn for them: every evaluation of a ``seed`` sees the same inputs."""
    from .config import check_seed
    from .data import to_uint8
    rng = torch.Generator().manual_seed(EVAL_SEED_OFFSET + check_seed(seed))
    fake, asked = [], []
    for start in range(0, n, EVAL_BATCH):
        size = min(EVAL_BATCH, n - start)
        z = torch.randn(size, latent_dim, generator=rng).to(device)
        labels = None
        if class_probs is not None:
            labels = draw_labels(class_probs, size, rng).to(device)
            asked.append(labels.cpu())
        out = generate(z, labels)
        fake.append((to_uint8(out) if images else out.detach().float()).cpu())
    return torch.cat(fake), torch.cat(asked) if asked else None


def score_samples(samples: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None = None, *,
                  feature_extractor: str = "ganzoo-mnist", feature_extractor_weights: str | Path | None = None,
                  cache_dir: str | Path | None = None,
                  dataset_metrics: Callable[..., dict[str, float]] | None = None) -> dict[str, float]:
    """The bench's scores of ``samples`` against ``real``: image metrics, then the dataset's own."""
    from . import metrics
    from .metrics.thread_pools import scoring_threads
    from .training.assembly import declared_keywords
    if samples.is_floating_point() and dataset_metrics is None:
        raise UsageError("these samples are not images, and their dataset defines no metrics (DatasetSpec.metrics) "
                         "to score them with")
    with scoring_threads():  # every figure on fixed thread pools, whatever the caller's (a bench worker, Ray)
        scores = {} if samples.is_floating_point() else metrics.score_images(samples, real, cache_dir=cache_dir,
            feature_extractor=feature_extractor, feature_extractor_weights=feature_extractor_weights)
        if dataset_metrics is not None:
            extra = {"labels": labels} if declared_keywords(dataset_metrics, ("labels",)) else {}
            scores.update({key: float(value) for key, value in dataset_metrics(samples, **extra).items()})
    return scores


def _check_size(source: str, count: int, image_bytes: int, what: str) -> None:
    if count > MAX_EVAL_IMAGES:
        raise UsageError(f"{source}: {what} {count} images, more than the {MAX_EVAL_IMAGES} ganzoo evaluate scores "
                         f"(MAX_EVAL_IMAGES); pass --num (num=) {MAX_EVAL_IMAGES} or fewer")
    if count * image_bytes > MAX_EVAL_BYTES:
        raise UsageError(f"{source}: {what} {count} images of {image_bytes} bytes, {count * image_bytes} bytes in "
                         f"all, more than the {MAX_EVAL_BYTES} ganzoo evaluate holds (MAX_EVAL_BYTES); pass a "
                         f"smaller --num (num=), at most {max(MAX_EVAL_BYTES // max(image_bytes, 1), 0)}")


def read_image_folder(folder: Path, num: int | None = None) -> torch.Tensor:
    """The (first ``num``) images of :func:`~ganzoo.images.list_image_files` as ``uint8`` ``(N, C, H, W)``."""
    from PIL import Image
    files = list_image_files(folder)
    if not files:
        raise UsageError(f"{str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no checkpoints")
    files = files[:num] if num else files
    _check_size(repr(str(folder)), len(files), 0, "holds")
    arrays: list[torch.Tensor] = []
    for path in files:
        try:
            with Image.open(path) as img:
                if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    raise UsageError(f"{str(path)!r} is a {img.mode} image; convert it to 8 bits per channel")
                img = img.convert("L" if img.mode in ("1", "L", "LA") else "RGB")
                tensor = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
                tensor = tensor.view(img.height, img.width, len(img.getbands())).permute(2, 0, 1)
        except Image.DecompressionBombError as exc:
            raise UsageError(f"{str(path)!r} is too large an image to read ({exc}); ganzoo refuses images over "
                             f"{2 * Image.MAX_IMAGE_PIXELS} pixels (possible decompression bombs)") from None
        except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises for truncated or corrupt files
            raise UsageError(f"{str(path)!r} is not a readable image: {exc}") from None
        if not arrays:
            _check_size(repr(str(folder)), len(files), tensor.numel(), "holds")
        elif tensor.shape != arrays[0].shape:
            raise UsageError(f"{str(path)!r} is {_shape(tensor.shape)}, but {str(files[0])!r} is "
                             f"{_shape(arrays[0].shape)}; every image of a folder must have one size and channel count")
        arrays.append(tensor)
    return torch.stack(arrays)


def _not_npz(path: Path) -> str:
    expected = ("an .npz is a zip archive of .npy arrays, as np.savez(path, images) and `ganzoo sample --format "
                "npz` write")
    try:
        with open(path, "rb") as f:
            start = f.read(8)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not start:
        return f"it is empty (0 bytes); {expected}"
    if start.startswith(b"\x93NUMPY"):
        return "it is a single .npy array (np.save), not an .npz (a zip archive of .npy arrays); save the images " \
               "with np.savez(path, images)"
    return f"it is not a zip archive; {expected}"


class _NpzMember:
    """One ``.npy`` member of an ``.npz``: its header read from the zip stream (never the data, never a pickle), and
    refused if unreadable, of a negative size, of Python objects or not the member's size."""
    def __init__(self, path: Path, archive: zipfile.ZipFile, name: str, streams: ExitStack) -> None:
        import numpy as np
        self.path, self.array = path, name[: -len(".npy")]
        info = archive.getinfo(name)
        self.stream = streams.enter_context(archive.open(info))  # closed with the stack, before the archive
        where = f"{str(path)!r}: array {self.array!r}"
        try:
            version = np.lib.format.read_magic(self.stream)
            if version not in _NPY_HEADERS:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran, dtype = getattr(np.lib.format, _NPY_HEADERS[version])(self.stream)
        except Exception as exc:  # numpy parses the header text: a cut or crafted one fails in many ways
            raise UsageError(f"{str(path)!r}: the .npy header of array {self.array!r} cannot be read "
                             f"({type(exc).__name__}: {exc}); the file is damaged or crafted") from None
        self.shape, self.dtype = tuple(shape), dtype
        if any(size < 0 for size in self.shape):
            raise UsageError(f"{where}: its header declares shape {self.shape}; the file is damaged or crafted")
        if dtype.hasobject:
            raise UsageError(f"{str(path)!r} is not a readable .npz of images: array {self.array!r} holds "
                             f"Python objects ({dtype}), which would have to be unpickled, and ganzoo never "
                             "unpickles; store numbers (uint8 images, int64 labels)")
        self.fortran = fortran and len(self.shape) > 1  # column-major: the first rows are not the first bytes
        self.row_bytes = dtype.itemsize * math.prod(self.shape[1:])
        self.count = self.shape[0] if self.shape else 1
        declared = self.stream.tell() + self.count * self.row_bytes
        if info.file_size != declared:
            raise UsageError(f"{where}: its header declares shape {self.shape} ({declared} bytes with the header), "
                             f"but the zip member holds {info.file_size} bytes; the file is damaged or crafted")

    def read(self, count: int) -> np.ndarray:
        """The first ``count`` rows, read from the stream (a Fortran-ordered array whole)."""
        import numpy as np
        buffer = bytearray(self.needed(count) * self.row_bytes)
        view, done = memoryview(buffer), 0
        while done < len(buffer):
            got = self.stream.readinto(view[done : done + _READ_CHUNK])
            if not got:
                raise UsageError(f"{str(self.path)!r}: array {self.array!r} ends after {done} of the "
                                 f"{len(buffer)} bytes its header declares; the file is truncated or damaged")
            done += got
        if self.fortran:
            whole = np.frombuffer(buffer, dtype=self.dtype).reshape(self.shape[::-1]).transpose()
            return np.ascontiguousarray(whole[:count])
        return np.frombuffer(buffer, dtype=self.dtype).reshape((count, *self.shape[1:]))

    def needed(self, count: int) -> int:
        """Rows to read for the first ``count``: those, or all of a Fortran-ordered array."""
        return self.count if self.fortran else count


def read_npz(path: Path, num: int | None = None, num_classes: int | None = None,
             image_shape: tuple[int, ...] | None = None, resize: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (first ``num``) ``uint8`` images of an ``.npz`` (``arr_0``, or its only array; stored ``(N, H, W)``,
    ``(N, H, W, C)`` or ``(N, C, H, W)``) as ``(N, C, H, W)``, and its integer ``labels`` if it has them.
    Nothing is unpickled or allocated before it is checked: the ``.npy`` headers are read from the zip stream
    and checked against the members' sizes, :data:`MAX_EVAL_IMAGES` / :data:`MAX_EVAL_BYTES`, ``image_shape``
    (unless ``resize``) and ``num_classes``; a refusal is a :class:`~ganzoo.errors.UsageError`."""
    try:
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise UsageError(f"{str(path)!r} is not a readable .npz of images: {_not_npz(path)}") from None
        with archive, ExitStack() as members:  # each member's stream closed before the archive
            arrays = {name[: -len(".npy")]: name for name in archive.namelist() if name.endswith(".npy")}
            keys = list(arrays)
            key = NPZ_IMAGES if NPZ_IMAGES in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise UsageError(f"{str(path)!r} holds arrays {keys}; name the images {NPZ_IMAGES!r} (numpy's name "
                                 "for np.savez(path, images)) or store only them")
            images = _NpzMember(path, archive, arrays[key], members)
            _check_images_header(images, image_shape, resize)
            count = min(num, images.count) if num else images.count
            _check_size(f"{str(path)!r} (array {images.array!r})", images.needed(count), images.row_bytes,
                        "asks to read" if num and not images.fortran else "declares")
            labels = None
            if NPZ_LABELS in arrays and images.array != NPZ_LABELS:
                labels = _NpzMember(path, archive, arrays[NPZ_LABELS], members)
                where = f"{str(path)!r}: array {NPZ_LABELS!r}"
                if labels.dtype.kind not in "iu":
                    raise UsageError(f"{where} must hold integer classes, not {labels.dtype}")
                if labels.shape != (images.count,):
                    raise UsageError(f"{where} has shape {labels.shape}, but the file holds {images.count} images: "
                                     f"give one class per image, shape ({images.count},)")
            array = images.read(count)
            label_array = labels.read(count).astype("int64") if labels is not None else None
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
        raise UsageError(f"{str(path)!r} is not a readable .npz of images: {exc}") from None
    if label_array is not None and num_classes is not None and count and (
            label_array.min() < 0 or label_array.max() >= num_classes):
        raise UsageError(f"{str(path)!r}: array {NPZ_LABELS!r} holds classes {label_array.min()}..{label_array.max()}, "
                         f"outside 0..{num_classes - 1} (the dataset's classes)")
    tensor = torch.from_numpy(array)  # (N, H, W), (N, H, W, C) or (N, C, H, W): checked from the header
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    elif tensor.shape[-1] in (1, 3):
        tensor = tensor.permute(0, 3, 1, 2)
    return tensor.contiguous(), torch.from_numpy(label_array) if label_array is not None else None


def _check_images_header(images: _NpzMember, image_shape: tuple[int, ...] | None, resize: bool) -> None:
    """Refuse, from its header, an array that is not ``uint8`` images of ``image_shape`` (unless ``resize``)."""
    where = f"{str(images.path)!r}: images (array {images.array!r})"
    if images.dtype.name != "uint8":
        raise UsageError(f"{where} must be uint8 in [0, 255], not {images.dtype}; convert them (for floats in "
                         "[-1, 1]: ((x + 1) * 127.5).round().clip(0, 255).astype(np.uint8))")
    shape = images.shape
    if not (len(shape) == 3 or (len(shape) == 4 and (shape[-1] in (1, 3) or shape[1] in (1, 3)))):
        raise UsageError(f"{where} of shape {shape} are neither (N, H, W), (N, H, W, C) nor (N, C, H, W) with 1 or "
                         "3 channels")
    # (C, H, W) of one image of (N, H, W), (N, H, W, C) or (N, C, H, W)
    declared = (1, *shape[1:]) if len(shape) == 3 else (shape[3], *shape[1:3]) if shape[-1] in (1, 3) else shape[1:]
    if image_shape is None or declared == tuple(image_shape):
        return
    if not resize:
        raise UsageError(f"{str(images.path)!r}: images are {_shape((0, *declared))}, but the reference images are "
                         f"{_shape((0, *image_shape))}; pass --resize (resize=True) to convert them, or evaluate "
                         "against a dataset of their size")
    from PIL import Image
    if Image.MAX_IMAGE_PIXELS and declared[1] * declared[2] > Image.MAX_IMAGE_PIXELS:
        raise UsageError(f"{str(images.path)!r}: images of {declared[2]} x {declared[1]} pixels are larger than the "
                         f"{Image.MAX_IMAGE_PIXELS} pixels ganzoo resizes (Pillow's MAX_IMAGE_PIXELS); the file is "
                         "crafted or not images")


def _shape(shape: Sequence[int]) -> str:
    c, h, w = tuple(shape)[-3:]
    return f"{c}x{h}x{w} (channels x height x width)"


def match_shape(images: torch.Tensor, shape: tuple[int, ...], source: str, dataset: str, resize: bool) -> torch.Tensor:
    """``images`` in the reference's ``(C, H, W)``: as they are, or converted by Pillow with ``resize``."""
    if tuple(images.shape[1:]) == tuple(shape):
        return images
    if not resize:
        raise UsageError(f"{source}: images are {_shape(images.shape)}, but {dataset!r} images are {_shape(shape)}; "
                         "pass --resize (resize=True) to convert them, or evaluate against a dataset of their size")
    import numpy as np
    from PIL import Image
    channels, height, width = shape
    out = torch.empty(images.shape[0], channels, height, width, dtype=torch.uint8)
    for i, image in enumerate(images):
        img = Image.fromarray(image.permute(1, 2, 0).squeeze(2).numpy())
        img = img.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.BILINEAR)
        out[i] = torch.from_numpy(np.array(img)).reshape(height, width, channels).permute(2, 0, 1)
    return out


class EvaluationResult(TypedDict):
    """What :func:`evaluate` returns: the scores and what was compared."""
    source: str
    kind: str  # "generator", "npz" or "images"
    dataset: str
    split: str
    num_fake: int
    num_real: int
    seed: int | None  # of the evaluation latents (generators only)
    feature_extractor: str | None  # None for non-image data, scored by its dataset's metrics alone
    scores: dict[str, float]


def evaluate(source: str | Path, *, dataset: str | None = None, split: str = "test", num: int | None = None,
             seed: int | None = None, feature_extractor: str = "ganzoo-mnist",
             feature_extractor_weights: str | Path | None = None, resize: bool = False,
             cache_dir: str | Path | None = None, raw: bool = False, progress: bool = True) -> EvaluationResult:
    """Score ``source`` against the ``split`` of ``dataset`` with the bench's metrics (:class:`EvaluationResult`).
    ``source`` is a checkpoint, a run directory or an exported generator (``num`` images, default the split's
    size, drawn with the bench's evaluation latents for ``seed``, default the run's), a folder of images or an
    ``.npz`` (the first ``num``, default all). At most :data:`MAX_EVAL_IMAGES` images (:data:`MAX_EVAL_BYTES`)
    are scored. ``dataset`` defaults to the generator's, else ``mnist-5k``; images of another shape are refused
    unless ``resize`` (:func:`match_shape`). With the bench's ``real_split``, ``num_fake`` and seed a run
    directory gives the bench's final figures. Example::

        ganzoo.evaluate("runs/bench/dcgan/seed-0", split="train", num=1000)["scores"]["fid"]
    """
    from .api import load_generator
    from .checkpoint import CHECKPOINT_DIR, list_checkpoints
    from .data import load_images
    from .registry import get_registry
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"source {str(path)!r} does not exist")
    if num is not None and num < 2:
        raise ConfigError(f"num must be at least 2, not {num}")
    if num is not None and num > MAX_EVAL_IMAGES:
        raise ConfigError(f"num {num} is more than the {MAX_EVAL_IMAGES} images ganzoo evaluate scores "
                          "(MAX_EVAL_IMAGES); pass a smaller --num (num=)")
    # a checkpoint, an exported generator, a run directory (one with a checkpoints folder) or that folder
    generator = path.suffix in (".pt", ".safetensors") or path.is_dir() and (
        (path / CHECKPOINT_DIR).is_dir() or (path.name == CHECKPOINT_DIR and bool(list_checkpoints(path.parent))))
    G, cfg = load_generator(path, raw=raw) if generator else (None, None)
    kind = "generator" if cfg is not None else "npz" if path.suffix == ".npz" else "images"
    if kind == "images" and path.is_file():
        raise UsageError(f"source {str(path)!r}: give a checkpoint (.pt), an exported generator (.safetensors), "
                         "a run directory, a folder of images or an .npz")
    dataset = dataset or (cfg.dataset if cfg is not None else DEFAULT_DATASET)
    registry = get_registry()
    real_data = load_images(registry, dataset, split=split)
    real = real_data.tensor(progress=progress)
    spec = registry.datasets.get(dataset).item
    if G is not None and cfg is not None:
        seed = cfg.seed if seed is None else seed
        images, labels = _generated(registry, G, cfg, path, real, num or int(real.shape[0]), seed)
    elif real.is_floating_point():
        raise UsageError(f"dataset {spec.name!r} holds samples of shape {tuple(real.shape[1:])}, not images: score "
                         "a checkpoint, a run directory or an exported generator against it, not image files")
    elif kind == "npz":
        images, labels = read_npz(path, num, num_classes=spec.num_classes, image_shape=tuple(real.shape[1:]),
                                  resize=resize)
    else:
        images, labels = read_image_folder(path, num), None
    images = _fitted(images, real, path, dataset, resize)
    scores = score_samples(images, real, labels, feature_extractor=feature_extractor, cache_dir=cache_dir,
                           feature_extractor_weights=feature_extractor_weights, dataset_metrics=spec.metrics)
    return EvaluationResult(source=str(path), kind=kind, dataset=dataset, split=split, num_fake=int(images.shape[0]),
                            num_real=int(real.shape[0]), seed=seed if kind == "generator" else None,
                            feature_extractor=feature_extractor if real_data.is_image else None, scores=scores)


def _generated(registry: Registry, G: torch.nn.Module, cfg: TrainConfig, path: Path, real: torch.Tensor, n: int,
               seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples of ``G`` (and their labels) drawn as the bench draws them (:func:`evaluation_samples`)."""
    from .data import load_images
    images = not real.is_floating_point()  # else float32 samples, 4 bytes each
    _check_size(repr(str(path)), n, math.prod(real.shape[1:]) * (1 if images else 4), "would draw")
    class_probs = None
    if getattr(G, "num_classes", None) is not None:
        train = load_images(registry, cfg.dataset, split="train", root=cfg.data_root, download=cfg.download,
                            image_size=cfg.image_size)
        class_probs = train.class_frequencies().float()
    return evaluation_samples(torch.no_grad()(partial(generate, G)), cfg.latent_dim, n, seed, "cpu", class_probs,
                              images)


def _fitted(samples: torch.Tensor, real: torch.Tensor, path: Path, dataset: str, resize: bool) -> torch.Tensor:
    """``samples`` of ``path`` in the shape of ``real`` (:func:`match_shape`), at least 2 of them."""
    if not real.is_floating_point():
        samples = match_shape(samples, tuple(real.shape[1:]), str(path), dataset, resize)
    elif tuple(samples.shape[1:]) != tuple(real.shape[1:]):
        raise UsageError(f"{str(path)!r} draws samples of shape {tuple(samples.shape[1:])}, but dataset {dataset!r} "
                         f"holds samples of shape {tuple(real.shape[1:])}")
    if samples.shape[0] < 2:
        raise UsageError(f"{str(path)!r}: at least 2 images are needed to score, found {samples.shape[0]}")
    return samples
