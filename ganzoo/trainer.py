"""The one training loop every variant runs.

Read it top to bottom: :class:`Trainer` owns everything that must survive a restart (networks, optimisers,
data position, RNG states) behind ``state_dict()`` / ``load_state_dict()``; :meth:`Trainer.train_step` is
the only place a step happens (``n_critic`` discriminator updates, then one generator update);
:meth:`Trainer.run` adds logging, sample grids, checkpoints and the progress bar around it.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .assembly import Assembly
from .config import TrainConfig
from .data import ImageData, make_batches
from .distributed import DistInfo, barrier, gather_objects, mean_across_ranks
from .errors import CheckpointError, ConfigError, DivergenceError, PluginError
from .images import save_grid

CHECKPOINT_FORMAT = 1
# What Trainer.state_dict() writes; a checkpoint missing any of these cannot be resumed exactly.
STATE_KEYS = ("format", "step", "critic_position", "generator", "discriminator", "opt_g", "opt_d", "scaler_d",
              "scaler_g", "data", "world_size", "noise", "rng", "config", "components", "image_shape", "versions")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(name: str, params: Any, lr: float, betas: tuple[float, float],
                   fused: bool = False) -> torch.optim.Optimizer:
    """Adam (with ``betas``, fused kernels if asked), RMSprop or SGD (momentum = ``betas[0]``)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=betas[0])


def rng_state() -> dict[str, Any]:
    """Every global RNG state: python, numpy, torch CPU and each CUDA device."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainResult:
    """What a finished run reports (also written to ``out/result.json``)."""

    out: Path
    variant: str
    steps: int
    images_seen: int
    train_seconds: float
    images_per_second: float
    final_d_loss: float
    final_g_loss: float
    checkpoint: Path | None
    samples: Path | None
    components: dict[str, str] = field(default_factory=dict)
    stopped_by: str = "steps"
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


class Trainer:
    """One GAN training run: build it from an :class:`Assembly` and the training images, then :meth:`run`."""

    def __init__(self, assembly: Assembly, images: torch.Tensor | ImageData, device: torch.device,
                 versions: dict[str, Any], dist_info: DistInfo | None = None, progress: bool = False):
        """``images``: the training split, ``uint8`` ``(N, C, H, W)`` (or an :class:`ImageData`, possibly
        lazy); held in memory or streamed as the ``data_loading`` config key says. ``progress`` shows a bar
        while a lazy dataset is read into memory."""
        cfg: TrainConfig = assembly.config
        self.config, self.assembly, self.device, self.versions = cfg, assembly, device, versions
        self.dist = dist_info or DistInfo()
        self.G: nn.Module = assembly.generator
        self.D: nn.Module = assembly.discriminator
        self.loss = assembly.loss
        if isinstance(images, torch.Tensor):
            images = ImageData("tensor", "train", images, None, "ganzoo")
        # One global batch per step, the same permutation on every rank; each rank trains on its own slice.
        self.batches = make_batches(images, cfg.batch_size, cfg.seed + 1, device, mode=cfg.data_loading,
                                    workers=cfg.data_workers, memory_limit_gb=cfg.memory_limit_gb,
                                    world_size=self.dist.world_size, rank=self.dist.rank,
                                    channels_last=cfg.channels_last, progress=progress and self.dist.is_main)
        # -- fast paths, each a config switch ------------------------------------------------------------
        if cfg.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        if cfg.amp == "fp16" and device.type != "cuda":
            raise ConfigError("amp: fp16 needs a CUDA device; on the CPU use amp=bf16")
        self.autocast_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp]
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        if cfg.sync_batchnorm and self.dist.enabled:
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        # Forward passes go through G_fwd and D_fwd (DDP-wrapped under torchrun); state_dict() and sampling
        # use the plain modules. The generator step calls the plain D (D_gen): it needs gradients through D,
        # not a gradient all-reduce for D's frozen weights.
        self.G_fwd, self.D_fwd = self.G, self.D
        if self.dist.enabled:
            ddp_args = {"device_ids": [device.index]} if device.type == "cuda" else {}
            self.G_fwd, self.D_fwd = DDP(self.G, **ddp_args), DDP(self.D, **ddp_args)
        self.D_gen: nn.Module = self.D if self.dist.enabled else self.D_fwd
        # With compile, each loss computation (networks and loss together) becomes one compiled graph. A loss
        # that differentiates D twice (a gradient penalty) keeps its discriminator step eager: compiled graphs
        # do not support double backward. Its generator step, which differentiates D once, still compiles.
        self.discriminator_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._discriminator_loss
        self.generator_loss: Callable[[torch.Tensor], torch.Tensor] = self._generator_loss
        if cfg.compile:
            if not getattr(self.loss, "double_backward", False):
                self.discriminator_loss = torch.compile(self._discriminator_loss)
            self.generator_loss = torch.compile(self._generator_loss)
        self.opt_g = make_optimizer(cfg.optimizer, self.G.parameters(), cfg.lr_g, cfg.betas, cfg.fused_optimizer)
        self.opt_d = make_optimizer(cfg.optimizer, self.D.parameters(), cfg.lr_d, cfg.betas, cfg.fused_optimizer)
        # Latents come from a dedicated generator (one stream per rank), so nothing else that draws random
        # numbers shifts them.
        self.noise = torch.Generator(device=device).manual_seed(cfg.seed + 2 + 7919 * self.dist.rank)
        fixed = torch.Generator().manual_seed(cfg.seed + 3)
        self.fixed_z = torch.randn(cfg.sample_count, cfg.latent_dim, generator=fixed).to(device)
        self.step = 0

    # -- state that survives a restart ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "critic_position": 0,  # checkpoints are taken between generator steps
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "data": self.batches.state_dict(),
            # Per-rank random streams, in rank order (one entry without torchrun).
            "world_size": self.dist.world_size,
            "noise": gather_objects(self.dist, self.noise.get_state()),
            "rng": gather_objects(self.dist, rng_state()),
            "config": self.config.model_dump(mode="json"),
            "components": {"names": self.assembly.names, "plugins": self.assembly.plugins},
            "image_shape": list(self.assembly.image_shape),
            "versions": self.versions,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything :meth:`state_dict` saved; a checkpoint missing any part is refused, never half-used."""
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise CheckpointError(f"checkpoint lacks {', '.join(missing)}; it cannot be resumed exactly")
        if state["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint format {state['format']} is not {CHECKPOINT_FORMAT}, which this "
                                  f"ganzoo version writes")
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        if state["world_size"] != self.dist.world_size:
            raise CheckpointError(f"checkpoint was written by {state['world_size']} process(es); resume it with "
                                  f"the same number (now {self.dist.world_size})")
        self.batches.load_state_dict(state["data"])
        self.noise.set_state(state["noise"][self.dist.rank])
        set_rng_state(state["rng"][self.dist.rank])
        self.step = int(state["step"])

    # -- the step --------------------------------------------------------------------------------------
    def _latents(self) -> torch.Tensor:
        cfg = self.config
        return torch.randn(cfg.batch_size, cfg.latent_dim, device=self.device, generator=self.noise)

    def _checked(self, value: Any, method: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise PluginError(self.assembly.plugins["loss"],
                              f"loss {self.assembly.names['loss']!r}.{method} must return a scalar tensor, got {got}",
                              "register_losses")
        return value

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def _discriminator_loss(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fake = self.G_fwd(z)
        return self.loss.discriminator_loss(self.D_fwd, real, fake)

    def _generator_loss(self, z: torch.Tensor) -> torch.Tensor:
        return self.loss.generator_loss(self.D_gen, self.G_fwd(z))

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One generator step: ``n_critic`` discriminator updates, then one generator update."""
        self.D.requires_grad_(True)
        for _ in range(self.config.n_critic):
            real = self.batches.next()  # this rank's slice of the global batch
            with self._autocast():
                d_loss = self._checked(self.discriminator_loss(real, self._latents()), "discriminator_loss")
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(d_loss).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
        self.D.requires_grad_(False)  # the generator step needs gradients through D, not for D's weights
        with self._autocast():
            g_loss = self._checked(self.generator_loss(self._latents()), "generator_loss")
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(g_loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.D.requires_grad_(True)
        self.step += 1
        return d_loss.detach(), g_loss.detach()

    # -- around the step -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """Images from the generator in eval mode (BatchNorm running statistics), in [-1, 1]."""
        was_training = self.G.training
        self.G.eval()
        try:
            return self.G(self.fixed_z if z is None else z)
        finally:
            self.G.train(was_training)

    def _parameters_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for m in (self.G, self.D) for p in m.parameters())

    def save_checkpoint(self, out: Path) -> Path:
        """Write a checkpoint (rank 0 writes; every rank contributes its random states, then waits)."""
        if not self._parameters_finite():
            raise DivergenceError(self.step, "non-finite parameters; refusing to write a checkpoint")
        state = self.state_dict()
        path = out / ckpt.CHECKPOINT_DIR / ckpt.checkpoint_name(self.step)
        if self.dist.is_main:
            path = ckpt.save_checkpoint(out, self.step, state, keep_last=self.config.keep_last)
        barrier(self.dist)
        return path

    def run(
        self,
        out: Path,
        progress: bool = True,
        *,
        max_seconds: float | None = None,
        evaluate: Callable[[Trainer], dict[str, float]] | None = None,
        eval_every: int = 0,
        eval_every_seconds: float = 0.0,
    ) -> TrainResult:
        """Train until ``config.steps`` generator steps (or ``max_seconds`` of training), writing logs, grids
        and checkpoints under ``out``.

        ``evaluate(trainer)`` is called every ``eval_every`` steps and/or every ``eval_every_seconds`` of
        training time, and once at the end; its time is not counted as training time. It must draw its random
        numbers from its own generator, so that evaluating never changes the training trajectory.
        """
        cfg = self.config
        main = self.dist.is_main  # under torchrun only rank 0 writes files, logs and shows progress
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        images_per_step = cfg.batch_size * cfg.n_critic * self.dist.world_size
        start_step = self.step
        train_seconds = 0.0  # training only: evaluation, grids and checkpoints are not counted
        next_eval_at = eval_every_seconds or math.inf
        d_val = g_val = math.nan
        evaluations: list[dict[str, Any]] = []
        stopped_by = "steps"
        # With a time budget the bar counts seconds of training (its ETA is then right); otherwise steps.
        by_time = max_seconds is not None
        bar = tqdm(total=round(max_seconds) if by_time else cfg.steps, initial=0 if by_time else self.step,
                   desc=cfg.variant, unit="s" if by_time else "step", disable=not (progress and main),
                   dynamic_ncols=True, leave=False,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} [{elapsed}<{remaining}{postfix}]")

        def run_evaluation() -> None:
            if evaluate is not None and main:
                metrics = evaluate(self)
                evaluations.append({"step": self.step, "train_seconds": round(train_seconds, 3), **metrics})

        if self.step == 0:
            run_evaluation()  # the untrained generator: the baseline every later score is compared with
        with open(out / "log.jsonl", "a") if main else contextlib.nullcontext() as log:
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                d_loss, g_loss = self.train_step()
                d_val, g_val = float(d_loss), float(g_loss)  # synchronises, so the timing below is honest
                train_seconds += time.perf_counter() - t0
                out_of_time = max_seconds is not None and train_seconds >= max_seconds
                if self.dist.enabled:  # every rank logs, stops and diverges on the same agreed values
                    agreed = mean_across_ranks(self.dist, torch.tensor([d_val, g_val, float(out_of_time)],
                                                                       device=self.device))
                    d_val, g_val, out_of_time = float(agreed[0]), float(agreed[1]), bool(agreed[2] > 0)
                if not (math.isfinite(d_val) and math.isfinite(g_val)):
                    raise DivergenceError(self.step, f"non-finite loss (d_loss={d_val}, g_loss={g_val})")
                bar.update(min(train_seconds, max_seconds) - bar.n if by_time else 1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps or out_of_time:
                    seen = (self.step - start_step) * images_per_step
                    record = {"step": self.step, "d_loss": d_val, "g_loss": g_val,
                              "images_seen": self.step * images_per_step, "train_s": round(train_seconds, 4),
                              "img_per_s": round(seen / train_seconds, 2) if train_seconds > 0 else None}
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    bar.set_postfix(step=self.step, d=f"{d_val:.3f}", g=f"{g_val:.3f}")
                if out_of_time:
                    stopped_by = "seconds"
                    break
                if cfg.sample_every and self.step % cfg.sample_every == 0 and main:
                    save_grid(self.sample(), out / "samples" / f"step-{self.step:08d}.png")
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                    self.save_checkpoint(out)
                due = (eval_every and self.step % eval_every == 0) or train_seconds >= next_eval_at
                if due and self.step < cfg.steps:
                    run_evaluation()
                    while next_eval_at <= train_seconds:
                        next_eval_at += eval_every_seconds
        bar.close()
        self.batches.close()
        run_evaluation()
        samples = out / "samples.png"
        last_ckpt = self.save_checkpoint(out)
        if main:
            save_grid(self.sample(), samples)
            ckpt.export_generator(out / ckpt.GENERATOR_FILE, self.G.state_dict(),
                                  self.config.model_dump(mode="json"), self.assembly.names["generator"],
                                  list(self.assembly.image_shape))
        seen = (self.step - start_step) * images_per_step
        result = TrainResult(
            out=out, variant=cfg.variant, steps=self.step, images_seen=self.step * images_per_step,
            train_seconds=round(train_seconds, 3),
            images_per_second=round(seen / train_seconds, 2) if train_seconds > 0 else 0.0,
            final_d_loss=d_val, final_g_loss=g_val, checkpoint=last_ckpt, samples=samples,
            components={role: f"{self.assembly.names[role]} ({self.assembly.plugins[role]})"
                        for role in ("generator", "discriminator", "loss")},
            stopped_by=stopped_by, evaluations=evaluations,
        )
        if main:
            (out / "result.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
        return result
