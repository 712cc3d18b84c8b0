"""The library API: train, sample, interpolate, export and list; the CLI formats what these (and evaluate, bench,
reproduce, sweep) return, every check and effect happens here."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import rundir
from .config import TrainConfig, check_seed, validate_config
from .data import ImageData, load_images, to_uint8
from .errors import CheckpointError, ConfigError, UsageError
from .images import IMAGE_SUFFIXES, save_grid
from .outputs import atomic_file, check_output
from .pretrained import resolve
from .registry import get_registry
from .sample_files import NpzImageWriter, PngDirWriter
from .training.assembly import resolve_config, user_settings
from .training.loop import Callback, TrainResult
from .training.run import run_config
from .training.sampling import draw_latents, generate, slerp


def list_variants() -> list[dict[str, Any]]:
    """Every registered variant with its components, defaults and plugin."""
    registry = get_registry()
    return [{"name": v.item.name, "aliases": list(v.item.aliases), "plugin": v.plugin, "generator": v.item.generator,
             "discriminator": v.item.discriminator, "loss": v.item.loss, "description": v.item.description,
             "paper": v.item.paper, "defaults": v.item.defaults}
            for v in (registry.variants.entries[name] for name in registry.variants.names())]


def list_components() -> dict[str, list[dict[str, Any]]]:
    """Generators, discriminators, losses, extensions and datasets, each with its plugin and description."""
    registry = get_registry()
    kinds = ("generators", "discriminators", "losses", "extensions", "datasets")
    return {kind: [{"name": n, "plugin": t.entries[n].plugin, "description": t.entries[n].item.description}
                   for n in t.names()] for kind, t in ((kind, getattr(registry, kind)) for kind in kinds)}


def build_config(variant: str, *, config: str | Path | dict[str, Any] | None = None,
                 overrides: list[str] | dict[str, Any] | None = None, **explicit: Any) -> TrainConfig:
    """Resolve a run's :class:`TrainConfig` without training (variant defaults, file, overrides, keywords)."""
    return resolve_config(get_registry(), variant, config=config, overrides=overrides, **explicit)


def _resume_config(saved: dict[str, Any], requested: TrainConfig, asked: set[str], step: int,
                   where: Path) -> TrainConfig:
    """The checkpoint's config; of the keys ``asked`` for only ``steps`` may differ, upwards."""
    config = validate_config(saved, "config stored in the checkpoint")
    if requested.variant != config.variant:
        raise ConfigError(f"--resume: {str(where)!r} holds a {config.variant} run, not {requested.variant}; "
                          f"resume it with `ganzoo train {config.variant} --resume --out {where}`")
    if "steps" in asked and requested.steps <= step:
        raise ConfigError(f"--resume: the checkpoint in {str(where)!r} is at step {step}, so --steps "
                          f"{requested.steps} leaves nothing to train; pass --steps above {step}")
    changed = sorted(k for k in asked - {"steps", "out", "variant"} if getattr(requested, k) != getattr(config, k))
    if changed:
        shown = ", ".join(f"{k} (checkpoint {getattr(config, k)!r}, asked {getattr(requested, k)!r})" for k in changed)
        raise ConfigError("--resume continues the run as it was configured (only steps may change); these differ "
                          f"from the checkpoint: {shown}")
    return config.model_copy(update={"steps": requested.steps if "steps" in asked else config.steps,
                                     "out": requested.out})


def train(variant: str, *, config: str | Path | dict[str, Any] | None = None,
          overrides: list[str] | dict[str, Any] | None = None, steps: int | None = None, dataset: str | None = None,
          out: str | Path | None = None, seed: int | None = None, device: str | None = None,
          deterministic: bool | None = None, resume: bool = False, overwrite: bool = False, progress: bool = True,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train a variant and return its :class:`TrainResult`.
    ``config`` is a YAML file or a dict; ``overrides`` are ``key=value`` strings (``["lr_g=1e-4"]``) or a dict
    of dotted keys; the keyword arguments win over both. ``resume=True`` continues from the latest checkpoint in
    ``out`` (only ``steps`` may change, upwards); a fresh run refuses a directory holding another run unless
    ``overwrite=True``. ``callbacks`` (:class:`ganzoo.Callback`) act after the standard ones. Example::

        import ganzoo
        result = ganzoo.train("dcgan", steps=300, out="runs/dcgan")
        print(result.samples)
    """
    user, source = user_settings(config, overrides, steps=steps, dataset=dataset, out=out, seed=seed,  # parsed once
                                 device=device, deterministic=deterministic)
    cfg = resolve_config(get_registry(), variant, config=user, source=source)
    state = None
    out_dir = Path(cfg.out)
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite deletes it: give one of them")
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 alone looks after the directory
    with rundir.run_lock(out_dir) if main else contextlib.nullcontext():
        if main:
            ckpt.clean_stale_temporaries(out_dir / ckpt.CHECKPOINT_DIR)
        if resume:
            latest = ckpt.latest_checkpoint(out_dir)
            if latest is None:
                raise CheckpointError(f"--resume: no checkpoint in {str(out_dir / ckpt.CHECKPOINT_DIR)!r}; "
                                      "run without --resume to start afresh")
            state = ckpt.load_checkpoint(latest)
            if not isinstance(state.get("config"), dict) or not isinstance(state.get("step"), int):
                raise CheckpointError(f"checkpoint {str(latest)!r} lacks its config or step; it cannot be resumed")
            cfg = _resume_config(state["config"], cfg, set(user), int(state["step"]), out_dir)
        elif main:
            rundir.claim_fresh(out_dir, overwrite)
        return run_config(cfg, state, progress=progress, callbacks=callbacks)


def load_dataset(name: str = "mnist-5k", split: str = "train", *, root: str | Path = "~/.cache/ganzoo/data",
                 download: bool = True, image_size: int | None = None, lazy: bool = False,
                 workers: int = 0) -> ImageData:
    """Load a registered dataset split as ``uint8`` images ``(N, C, H, W)`` (and labels where it has them); a lazy
    dataset is read into one tensor by ``workers`` processes unless ``lazy=True``. Example::

        test = ganzoo.load_dataset("mnist-5k", "test")   # 500 images, 50 per digit
        print(test.images.shape, test.labels.bincount())
    """
    data = load_images(get_registry(), name, split=split, root=root, download=download, image_size=image_size)
    if not (lazy or data.in_memory):
        data = dataclasses.replace(data, images=data.tensor(workers=workers), image_size=None)
    return data


def _saved_generator(path: Path, device: str,
                     raw: bool) -> tuple[dict[str, Any], object, str, list[int], int | None, int | None]:
    """What a checkpoint or export records of its generator: ``(weights, config as stored, generator name, image
    shape, num_classes, elements)``, the weights the sampling generator's unless ``raw``, ``elements`` an export's
    tensor elements (a bound on the generator it may describe; ``None`` for a checkpoint)."""
    if path.suffix == ".safetensors":
        if raw:
            raise CheckpointError(f"{str(path)!r} is an export, which holds only the sampling generator; "
                                  "pass a checkpoint or run directory for the raw generator")
        weights, meta = ckpt.load_exported_generator(path)
        return weights, meta["config"], meta["generator"], meta["image_shape"], meta["num_classes"], meta["elements"]
    state = ckpt.load_checkpoint(path, map_location=device)
    missing = [key for key in ("generator", "config", "components", "image_shape") if key not in state]
    names = state.get("components", {}).get("names", {}) if isinstance(state.get("components"), dict) else {}
    if missing or not isinstance(names, dict) or not isinstance(names.get("generator"), str):
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {', '.join(missing) or 'components.names'}; "
                              "it was not written by ganzoo or is damaged")
    sampled = state.get("sample_generator")
    num_classes = state.get("num_classes") if state["components"].get("conditional_generator") else None
    return (state["generator"] if raw or sampled is None else sampled, state["config"], names["generator"],
            state["image_shape"], num_classes, None)


def load_generator(checkpoint: str | Path, device: str = "cpu",
                   raw: bool = False) -> tuple[torch.nn.Module, TrainConfig]:
    """Rebuild the generator of a checkpoint, run directory, exported ``generator.safetensors`` or bundled
    ``pretrained:NAME`` (:func:`~ganzoo.pretrained.list_pretrained`), in eval mode: the sampling generator (``ema``)
    unless ``raw=True``; a conditional one has ``num_classes`` (``G(z, y)``)."""
    path, bundled = resolve(checkpoint)
    weights, saved_config, name, shape, num_classes, elements = _saved_generator(path, device, raw)
    if bundled:  # shipped in fp16, sampled in fp32
        weights = {key: value.float() if value.is_floating_point() else value for key, value in weights.items()}
    if not isinstance(saved_config, dict):
        raise CheckpointError(f"the config stored in {str(path)!r} is not a mapping")
    cfg = validate_config(saved_config, f"config stored in {str(path)!r}")
    entry = get_registry().generators.get(name)
    if entry.item.conditional and num_classes is None:
        raise CheckpointError(f"generator {name!r} is conditional, but {str(path)!r} records no number of classes")
    classes = {"num_classes": num_classes} if entry.item.conditional else {}
    def build() -> torch.nn.Module:
        try:
            return entry.item.build(cfg.latent_dim, tuple(shape), **classes, **cfg.generator_options)
        except Exception as exc:
            raise CheckpointError(f"generator {name!r} (plugin {entry.plugin!r}) cannot be built from what "
                                  f"{str(path)!r} records: {type(exc).__name__}: {exc}") from None
    with torch.device("meta"):  # the network's layout, nothing allocated, before trusting the file's metadata
        expected = build().state_dict()
    needed = sum(t.numel() for t in expected.values())
    if elements is not None and needed > elements:
        raise CheckpointError(f"{str(path)!r} describes generator {name!r} with {needed} weights but holds "
                              f"{elements}; its metadata does not match its weights")
    wrong = next((key for key, value in weights.items()
                  if key in expected and isinstance(value, torch.Tensor) and value.dtype != expected[key].dtype), None)
    if wrong is not None:
        raise CheckpointError(f"{str(path)!r}: tensor {wrong!r} is {weights[wrong].dtype}, but generator {name!r} "
                              f"holds {expected[wrong].dtype} there; refusing to cast weights")
    G = build()
    try:
        G.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"the weights in {str(path)!r} do not fit generator {name!r} "
                              f"(plugin {entry.plugin!r}): {str(exc)[:500]}") from None
    G.num_classes = num_classes if entry.item.conditional else None  # type: ignore[assignment]
    return G.to(device).eval(), cfg


def _sample_labels(G: torch.nn.Module, checkpoint: str | Path, n: int,
                   labels: int | list[int] | torch.Tensor | None) -> tuple[torch.Tensor | None, int | None]:
    """The class of each of ``n`` images for a conditional ``G`` (and a grid row length), or ``None``."""
    num_classes = getattr(G, "num_classes", None)
    if num_classes is None:
        if labels is not None:
            raise ConfigError(f"labels were given, but the generator of {str(checkpoint)!r} is not conditional")
        return None, None
    if labels is None:  # cycle through the classes, a grid row per class
        nrow = max(1, n // num_classes) if n >= num_classes else None
        return (torch.arange(n) // nrow % num_classes if nrow else torch.arange(n) % num_classes), nrow
    try:
        y = torch.as_tensor(labels, dtype=torch.int64).flatten()
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise ConfigError(f"labels must be classes 0..{num_classes - 1} (the generator's), not {labels!r}") from None
    if y.numel() == 1:
        y = y.expand(n)
    if y.numel() != n:
        raise ConfigError(f"labels: give one class or one per image ({n}), not {y.numel()}")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ConfigError(f"labels must lie in 0..{num_classes - 1} (the generator's classes), got "
                          f"{int(y.min())}..{int(y.max())}")
    return y, None


def _with_latents(checkpoint: str | Path, raw: bool, n: int, seed: int,
                  truncation: float | None) -> tuple[torch.nn.Module, TrainConfig, torch.Tensor]:
    """:func:`load_generator`'s generator and config, and ``n`` latents of ``seed`` for it (:func:`draw_latents`)."""
    G, cfg = load_generator(checkpoint, raw=raw)
    return G, cfg, draw_latents(n, cfg.latent_dim, torch.Generator().manual_seed(check_seed(seed)), truncation)


def _sample_batches(G: torch.nn.Module, z: torch.Tensor, y: torch.Tensor | None,
                    batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """``(images in [-1, 1], their labels)`` for the latents ``z``, ``batch_size`` at a time."""
    with torch.no_grad():
        for start in range(0, len(z), batch_size):
            part = slice(start, start + batch_size)
            labels = y[part] if y is not None else None
            yield generate(G, z[part], labels), labels


def _check_grid_file(out: str | Path | None) -> None:
    if out is not None and Path(out).suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"-o {str(out)!r}: name an image file ending in {', '.join(IMAGE_SUFFIXES)}")


def sample(checkpoint: str | Path, n: int = 64, *, out: str | Path | None = None, seed: int = 0,
           labels: int | list[int] | torch.Tensor | None = None, truncation: float | None = None, raw: bool = False,
           batch_size: int = 500, overwrite: bool = False) -> torch.Tensor:
    """Generate ``n`` images in [-1, 1] from a checkpoint, run directory, exported generator or ``pretrained:NAME``;
    with ``out``, also save a PNG grid (a scatter plot for non-image data), under :mod:`ganzoo.outputs`' rule.
    ``labels`` (conditional generators) is one class for every image or one per image; without it a grid row
    per class. ``truncation`` psi draws latents from the normal truncated to ``|z| <= psi`` (redrawn, not clamped).
    ``raw=True`` samples the trained generator, not the EMA. :func:`export_samples` writes files."""
    if n <= 0:
        raise ConfigError(f"n must be positive, not {n}")
    _check_grid_file(out)
    G, cfg, z = _with_latents(checkpoint, raw, n, seed, truncation)
    if out is not None:
        out = check_output(out, overwrite)  # before generating anything
    y, nrow = _sample_labels(G, checkpoint, n, labels)
    images = torch.cat([batch for batch, _ in _sample_batches(G, z, y, batch_size)])
    if out is not None and images.ndim != 4:  # non-image samples (2-D points): a scatter plot, not a grid
        from .plots import plot_points
        with atomic_file(out) as tmp:
            plot_points(None, images, tmp, f"{cfg.variant}, {n} samples")
    elif out is not None:
        save_grid(images, out, nrow)
    return images


def export_samples(checkpoint: str | Path, n: int, out: str | Path, *, format: str = "png-dir", seed: int = 0,
                   labels: int | list[int] | torch.Tensor | None = None, truncation: float | None = None,
                   raw: bool = False, batch_size: int = 500, progress: bool = True, overwrite: bool = False) -> Path:
    """Write ``n`` samples of :func:`sample` for external metric tools, ``batch_size`` at a time; return ``out``.
    ``format="png-dir"``: a new or empty folder of ``000000.png``, ... (and ``labels.csv``); ``format="npz"``:
    an ``.npz`` with ``arr_0``, ``uint8`` ``(N, H, W, C)``, and ``labels``. ``out`` follows
    :mod:`ganzoo.outputs`' rule (a folder is replaced only if it holds an earlier png-dir export)."""
    writers = {"png-dir": PngDirWriter, "npz": NpzImageWriter}
    if format not in writers:
        raise ConfigError(f"format must be one of {', '.join(writers)}, not {format!r}")
    if n <= 0:
        raise ConfigError(f"n must be positive, not {n}")
    G, _, z = _with_latents(checkpoint, raw, n, seed, truncation)
    y, _ = _sample_labels(G, checkpoint, n, labels)
    out = Path(out).expanduser()
    writer = writers[format](out, n, overwrite)  # checks out before generating anything
    with tqdm(total=n, desc="sample", unit="img", disable=not progress, dynamic_ncols=True) as bar, writer:
        for images, batch_labels in _sample_batches(G, z, y, batch_size):
            if images.ndim != 4:
                raise UsageError(f"{str(checkpoint)!r} generates samples of shape {tuple(images.shape[1:])}, not "
                                 "images: export writes image files; get the samples as a tensor with "
                                 "ganzoo.sample(...) instead")
            writer.write(to_uint8(images).cpu(), batch_labels)
            bar.update(images.shape[0])
    return out


def interpolate(checkpoint: str | Path, rows: int = 8, steps: int = 10, *, out: str | Path | None = None,
                seed: int = 0, labels: int | list[int] | torch.Tensor | None = None, linear: bool = False,
                truncation: float | None = None, raw: bool = False, overwrite: bool = False) -> torch.Tensor:
    """A latent walk: ``rows`` walks, each between two latents of ``seed`` in ``steps`` images (``rows * steps``
    images in [-1, 1], walk after walk); with ``out``, a PNG grid of one walk per row. The walk is spherical
    (:func:`~ganzoo.training.sampling.slerp`, for ganzoo's Gaussian latents) unless ``linear=True``. A
    conditional generator keeps one class per walk: ``labels`` (one class, or one per walk), else class
    ``r mod num_classes`` for walk ``r``. ``checkpoint``, ``truncation`` and ``raw`` are :func:`sample`'s. Example::

        walk = ganzoo.interpolate("pretrained:dcgan", rows=4, steps=8, out="walk.png")
    """
    if rows <= 0 or steps < 2:
        raise ConfigError(f"a walk needs rows >= 1 and steps >= 2, not rows={rows}, steps={steps}")
    _check_grid_file(out)
    G, _, ends = _with_latents(checkpoint, raw, 2 * rows, seed, truncation)
    classes = getattr(G, "num_classes", None)
    y, _ = _sample_labels(G, checkpoint, rows, torch.arange(rows) % classes if classes and labels is None else labels)
    if out is not None:
        out = check_output(out, overwrite)
    a, b, t = ends[:rows, None], ends[rows:, None], torch.linspace(0, 1, steps)[None, :, None]
    z = (torch.lerp(a, b, t) if linear else slerp(a, b, t)).flatten(0, 1)
    y = y.repeat_interleave(steps) if y is not None else None
    images = torch.cat([batch for batch, _ in _sample_batches(G, z, y, 500)])
    if out is not None:
        if images.ndim != 4:
            raise UsageError(f"{str(checkpoint)!r} generates samples of shape {tuple(images.shape[1:])}, not images, "
                             "which a grid cannot show; get the walk as a tensor with ganzoo.interpolate(...)")
        save_grid(images, out, steps)
    return images
