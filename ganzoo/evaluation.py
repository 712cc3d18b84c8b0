"""Score images against a dataset split: a generator's samples (as the bench scores them) or images from elsewhere.

:func:`evaluate` is ``ganzoo evaluate``. Its source is a checkpoint, a run directory or an exported
``generator.safetensors`` (sampled with the bench's evaluation latents), a folder of images or an ``.npz``
array of images (from another codebase, or from ``ganzoo sample --format``). The bench's evaluator and this
function share :func:`evaluation_samples` and :func:`score_samples`, so a run directory evaluated with the
bench's seed, split and sample count gives the bench's figures exactly.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import torch

from .errors import ConfigError, UsageError
from .images import IMAGE_SUFFIXES
from .metric_keys import CLASS_AGREEMENT, CLASS_AGREEMENT_MIN
from .sample_files import NPZ_IMAGES, NPZ_LABELS

#: The evaluation latents of seed ``s`` come from a generator seeded ``EVAL_SEED_OFFSET + s``: never the
#: training noise, so evaluating does not change a run.
EVAL_SEED_OFFSET = 10_000
#: Images generated (and scored) per batch.
EVAL_BATCH = 500


def evaluation_samples(generate: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], latent_dim: int,
                       n: int, seed: int, device: torch.device | str = "cpu",
                       class_probs: torch.Tensor | None = None,
                       images: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` generated ``uint8`` images (and, with ``class_probs``, the labels they were drawn for); with
    ``images=False`` (non-image data) the generator's float samples as they are.

    ``generate(z, labels)`` returns images in [-1, 1]; it is called on batches of :data:`EVAL_BATCH` latents
    drawn from a generator seeded ``EVAL_SEED_OFFSET + seed``, each followed by its labels drawn from
    ``class_probs`` (a conditional generator), so every evaluation of a seed sees the same inputs.
    """
    from .data import to_uint8

    rng = torch.Generator().manual_seed(EVAL_SEED_OFFSET + seed)
    fake, asked = [], []
    remaining = n
    while remaining > 0:
        size = min(EVAL_BATCH, remaining)
        z = torch.randn(size, latent_dim, generator=rng).to(device)
        labels = None
        if class_probs is not None:
            labels = torch.multinomial(class_probs.cpu(), size, replacement=True, generator=rng).to(device)
            asked.append(labels.cpu())
        out = generate(z, labels)
        fake.append((to_uint8(out) if images else out.detach().float()).cpu())
        remaining -= size
    return torch.cat(fake), torch.cat(asked) if asked else None


def score_samples(samples: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None = None, *,
                  feature_extractor: str = "ganzoo-mnist", feature_extractor_weights: str | Path | None = None,
                  cache_dir: str | Path | None = None,
                  dataset_metrics: Callable[[torch.Tensor], dict[str, float]] | None = None) -> dict[str, float]:
    """The bench's scores of generated ``samples`` against ``real``.

    ``uint8`` images: FID, KID, IS, precision/recall and digit classes (:func:`ganzoo.metrics.evaluate`), plus
    class agreement when ``labels`` says which class each image was generated for. Float samples (non-image
    data): none of those. Either way, then the dataset's own ``dataset_metrics(samples)``
    (:attr:`ganzoo.DatasetSpec.metrics`), which non-image data needs to be scored at all."""
    from . import metrics

    scores: dict[str, float] = {}
    if not samples.is_floating_point():
        scores = metrics.evaluate(samples, real, feature_extractor=feature_extractor,
                                  feature_extractor_weights=feature_extractor_weights, cache_dir=cache_dir)
        if labels is not None:
            overall, by_class = metrics.class_agreement(samples, labels)
            scores[CLASS_AGREEMENT], scores[CLASS_AGREEMENT_MIN] = overall, min(by_class.values())
    elif dataset_metrics is None:
        raise UsageError("these samples are not images, and their dataset defines no metrics (DatasetSpec.metrics) "
                         "to score them with")
    if dataset_metrics is not None:
        scores.update({key: float(value) for key, value in dataset_metrics(samples).items()})
    return scores


def is_generator_source(path: Path) -> bool:
    """A checkpoint, an exported generator, a run directory (one with a ``checkpoints`` folder) or that folder."""
    from .checkpoint import CHECKPOINT_DIR, list_checkpoints

    if path.suffix in (".pt", ".safetensors"):
        return True
    return path.is_dir() and ((path / CHECKPOINT_DIR).is_dir()
                              or (path.name == CHECKPOINT_DIR and bool(list_checkpoints(path.parent))))


def read_image_folder(folder: Path, num: int | None = None) -> torch.Tensor:
    """Every image file under ``folder`` (sorted by path, the first ``num``) as ``uint8`` ``(N, C, H, W)``:
    grayscale images with one channel, colour images (and palettes) as RGB; all must have one shape."""
    from PIL import Image

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no checkpoints")
    files = files[:num] if num else files
    arrays, first = [], None
    for path in files:
        try:
            with Image.open(path) as img:
                if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    raise UsageError(f"{str(path)!r} is a {img.mode} image; convert it to 8 bits per channel")
                img = img.convert("L" if img.mode in ("1", "L", "LA") else "RGB")
                tensor = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
                tensor = tensor.view(img.height, img.width, len(img.getbands())).permute(2, 0, 1)
        except OSError as exc:
            raise UsageError(f"{str(path)!r} is not a readable image: {exc}") from None
        if first is None:
            first = (path, tuple(tensor.shape))
        elif tuple(tensor.shape) != first[1]:
            raise UsageError(f"{str(path)!r} is {_shape(tensor.shape)}, but {str(first[0])!r} is "
                             f"{_shape(first[1])}; every image of a folder must have one size and channel count")
        arrays.append(tensor)
    return torch.stack(arrays)


def read_npz(path: Path, num: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ``uint8`` images of an ``.npz`` (``arr_0``, or its only array) as ``(N, C, H, W)``, and its
    ``labels`` if it has them. Images may be stored ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` with
    1 or 3 channels. Nothing is unpickled."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            key = NPZ_IMAGES if NPZ_IMAGES in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise UsageError(f"{str(path)!r} holds arrays {keys}; name the images {NPZ_IMAGES!r} (numpy's name "
                                 "for np.savez(path, images)) or store only them")
            array = data[key][:num] if num else data[key]
            labels = data[NPZ_LABELS][:len(array)] if NPZ_LABELS in keys and key != NPZ_LABELS else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{str(path)!r} is not a readable .npz of images: {exc}") from None
    if array.dtype != np.uint8:
        raise UsageError(f"{str(path)!r}: images must be uint8 in [0, 255], not {array.dtype}; convert them "
                         "(for floats in [-1, 1]: ((x + 1) * 127.5).round().clip(0, 255).astype(np.uint8))")
    images = torch.from_numpy(np.ascontiguousarray(array))
    if images.ndim == 3:
        images = images.unsqueeze(1)
    elif images.ndim == 4 and images.shape[-1] in (1, 3):
        images = images.permute(0, 3, 1, 2)
    elif not (images.ndim == 4 and images.shape[1] in (1, 3)):
        raise UsageError(f"{str(path)!r}: images of shape {tuple(array.shape)} are neither (N, H, W), "
                         "(N, H, W, C) nor (N, C, H, W) with 1 or 3 channels")
    return images.contiguous(), torch.from_numpy(labels).long() if labels is not None else None


def _shape(shape: Any) -> str:
    c, h, w = tuple(shape)[-3:]
    return f"{c}x{h}x{w} (channels x height x width)"


def match_shape(images: torch.Tensor, shape: tuple[int, ...], source: str, dataset: str,
                resize: bool) -> torch.Tensor:
    """``images`` as they are if they have the reference's ``(C, H, W)``; with ``resize``, converted to it
    (RGB to grayscale by ITU-R 601 luma, grayscale to RGB by repetition, then bilinear resizing with
    antialiasing, both by Pillow); otherwise an error that says so."""
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


def evaluate(
    source: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    num: int | None = None,
    seed: int | None = None,
    feature_extractor: str = "ganzoo-mnist",
    feature_extractor_weights: str | Path | None = None,
    resize: bool = False,
    cache_dir: str | Path | None = None,
    raw: bool = False,
    progress: bool = True,
    pm: pluggy.PluginManager | None = None,
) -> dict[str, Any]:
    """Score ``source`` against the ``split`` of ``dataset`` with the bench's metrics; return the scores and
    what was compared (``{"scores": {...}, "source": ..., "kind": ..., "num_fake": ..., ...}``).

    ``source`` is a checkpoint, a run directory or an exported ``generator.safetensors`` (``num`` images,
    default as many as the reference split has, drawn with the bench's evaluation latents for ``seed``,
    default the run's seed, and for a conditional generator labels from its training data's class
    frequencies), a folder of images or an ``.npz`` (the first ``num`` images, default all). ``dataset``
    defaults to the generator's training dataset, else ``mnist-5k``. Images whose size or channel count
    differ from the dataset's are refused unless ``resize`` (see :func:`match_shape`).

    A run directory evaluated with the bench's ``real_split``, ``num_fake`` and seed gives the bench's final
    figures for that trial. Example::

        ganzoo.evaluate("runs/bench/dcgan/seed-0", split="train", num=1000)["scores"]["fid"]
    """
    from .api import load_generator
    from .data import load_images
    from .registry import get_registry

    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"source {str(path)!r} does not exist")
    if num is not None and num < 2:
        raise ConfigError(f"num must be at least 2, not {num}")
    registry = get_registry(pm)
    labels = None
    if is_generator_source(path):
        G, cfg = load_generator(path, pm, raw=raw)
        kind = "generator"
        dataset = dataset or cfg.dataset
        seed = cfg.seed if seed is None else seed
    else:
        kind = "npz" if path.suffix == ".npz" else "images"
        if path.is_file() and kind != "npz":
            raise UsageError(f"source {str(path)!r}: give a checkpoint (.pt), an exported generator (.safetensors), "
                             "a run directory, a folder of images or an .npz")
        dataset = dataset or "mnist-5k"
    real_data = load_images(registry, dataset, split=split)
    real = real_data.tensor(progress=progress)
    dataset_metrics = registry.datasets.get(dataset).item.metrics
    if not real_data.is_image and kind != "generator":
        raise UsageError(f"dataset {dataset!r} holds samples of shape {tuple(real.shape[1:])}, not images: score a "
                         "checkpoint, a run directory or an exported generator against it, not image files")
    if kind == "generator":
        n = num or int(real.shape[0])
        class_probs = None
        if getattr(G, "num_classes", None) is not None:
            train = load_images(registry, cfg.dataset, split="train", root=cfg.data_root, download=cfg.download,
                                image_size=cfg.image_size)
            class_probs = train.class_frequencies().float()

        @torch.no_grad()
        def generate(z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
            return G(z, y) if y is not None else G(z)

        images, labels = evaluation_samples(generate, cfg.latent_dim, n, seed, "cpu", class_probs,
                                            images=real_data.is_image)
    elif kind == "npz":
        images, labels = read_npz(path, num)
    else:
        images = read_image_folder(path, num)
    if real_data.is_image:
        images = match_shape(images, tuple(real.shape[1:]), str(path), dataset, resize)
    elif tuple(images.shape[1:]) != tuple(real.shape[1:]):
        raise UsageError(f"{str(path)!r} draws samples of shape {tuple(images.shape[1:])}, but dataset {dataset!r} "
                         f"holds samples of shape {tuple(real.shape[1:])}")
    if images.shape[0] < 2:
        raise UsageError(f"{str(path)!r}: at least 2 images are needed to score, found {images.shape[0]}")
    scores = score_samples(images, real, labels,
                           feature_extractor=feature_extractor, feature_extractor_weights=feature_extractor_weights,
                           cache_dir=cache_dir, dataset_metrics=dataset_metrics)
    return {"source": str(path), "kind": kind, "dataset": dataset, "split": split, "num_fake": int(images.shape[0]),
            "num_real": int(real.shape[0]), "seed": seed if kind == "generator" else None,
            "feature_extractor": feature_extractor if real_data.is_image else None, "scores": scores}
