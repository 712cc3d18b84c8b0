"""The training loop: :func:`run_loop` calls :meth:`Trainer.train_step` until the step budget (or the budget of
training seconds) is spent and tells its callbacks what happened, in list order, at the six points of
:class:`Callback`. Everything else a run does is a callback (:mod:`ganzoo.training.callbacks`), and so is what the
bench, the sweep and any caller of :func:`ganzoo.train` add. Time spent in callbacks is not training time."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..distributed import mean_across_ranks
from ..errors import DivergenceError
from .trainer import Trainer

#: How a run ended: its step budget, its budget of training seconds, or a divergence.
STOPPED_BY_STEPS, STOPPED_BY_SECONDS, STOPPED_BY_DIVERGENCE = "steps", "seconds", "diverged"


@dataclass
class TrainResult:
    """What a run reports (also written to ``out/result.json``); a diverged run has ``stopped_by`` ``diverged``,
    ``diverged_at`` and ``reason``, and no checkpoint or samples."""
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
    stopped_by: str = STOPPED_BY_STEPS
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    diverged_at: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


class Callback:
    """Behaviour added around the steps of a run. Subclass it and override the points you need; each receives the
    :class:`RunState`. Under torchrun every rank calls every callback: check ``run.is_main`` before writing files. A
    callback that draws from the global random generators shifts training unless it restores them."""
    def on_run_start(self, run: RunState) -> None:
        """Before the first step of this call (``run.step`` is the checkpoint's on a resumed run)."""

    def on_step_end(self, run: RunState) -> None:
        """After every step: ``run.step``, ``run.d_loss``, ``run.g_loss``, ``run.train_seconds`` are current and
        ``run.out_of_time`` says whether this is the last step of a time budget."""

    def on_evaluation(self, run: RunState, scores: dict[str, float]) -> None:
        """A callback scored the sampling generator at ``run.step``."""

    def on_samples(self, run: RunState, grid: torch.Tensor) -> None:
        """A callback drew the fixed-latent samples at ``run.step`` as an image ``(3, H, W)`` in [0, 1]."""

    def on_run_end(self, run: RunState) -> None:
        """Training ended by its budget (steps or seconds); final work (grids, checkpoints, scores) goes here."""

    def on_run_exit(self, run: RunState, error: BaseException | None) -> None:
        """Always called last, after ``on_run_end`` or when ``error`` ended the run: close what you opened."""


@dataclass
class RunState:
    """A run in progress, as callbacks see it."""
    trainer: Trainer
    out: Path
    callbacks: Sequence[Callback]
    max_seconds: float | None = None
    start_step: int = 0
    train_seconds: float = 0.0  #: seconds in train_step during this call (callbacks, checkpoints, scoring excluded)
    d_loss: float = math.nan
    g_loss: float = math.nan
    out_of_time: bool = False  #: whether the budget of training seconds is spent (this step is the last)
    stopped_by: str = STOPPED_BY_STEPS
    #: every evaluation reported so far: ``{"step", "train_seconds", **scores, "eval_seconds"}``
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None  #: set by the callback that writes it
    samples: Path | None = None  #: set by the callback that draws them
    error: BaseException | None = None

    @property
    def step(self) -> int:
        return self.trainer.step

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0 under torchrun; always without it)."""
        return self.trainer.dist.is_main

    @property
    def images_per_step(self) -> int:
        """Real images one step consumes across all ranks."""
        cfg = self.trainer.config
        return cfg.batch_size * cfg.n_critic * self.trainer.dist.world_size

    @property
    def images_per_second(self) -> float:
        """Real images per second of training since this call began."""
        seen = (self.step - self.start_step) * self.images_per_step
        return round(seen / self.train_seconds, 2) if self.train_seconds > 0 else 0.0

    def notify(self, point: str, *args: Any) -> None:
        """Call ``point`` (``on_step_end``, ...) of every callback, in order."""
        for callback in self.callbacks:
            getattr(callback, point)(self, *args)

    def record_evaluation(self, scores: dict[str, float], seconds: float | None = None) -> None:
        """Add this step's scores (and the ``seconds`` scoring took) to :attr:`evaluations`; tell every callback."""
        entry = {"step": self.step, "train_seconds": round(self.train_seconds, 3), **scores}
        if seconds is not None:
            entry["eval_seconds"] = round(seconds, 3)
        self.evaluations.append(entry)
        self.notify("on_evaluation", scores)

    def record_samples(self, grid: torch.Tensor) -> None:
        """Tell every callback that the fixed-latent samples were drawn as ``grid``."""
        self.notify("on_samples", grid)

    def result(self) -> TrainResult:
        """The run as :class:`TrainResult`."""
        cfg, assembly = self.trainer.config, self.trainer.assembly
        diverged = self.error.step if isinstance(self.error, DivergenceError) else None
        return TrainResult(
            out=self.out, variant=cfg.variant, steps=self.step, images_seen=self.step * self.images_per_step,
            train_seconds=round(self.train_seconds, 3), images_per_second=self.images_per_second, samples=self.samples,
            final_d_loss=self.d_loss, final_g_loss=self.g_loss, checkpoint=self.checkpoint, stopped_by=self.stopped_by,
            components={role: f"{assembly.names[role]} ({assembly.plugins[role]})"
                        for role in ("generator", "discriminator", "loss")}, evaluations=self.evaluations,
            diverged_at=diverged, reason=str(self.error) if diverged is not None else None)


def run_loop(trainer: Trainer, out: Path, callbacks: Sequence[Callback] = (), *,
             max_seconds: float | None = None) -> TrainResult:
    """Train until ``config.steps`` generator steps (or ``max_seconds`` of training), calling ``callbacks`` at the
    points of :class:`Callback`; return what the run did. The standard callbacks write in ``out`` (made if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    run = RunState(trainer, out, list(callbacks), max_seconds, start_step=trainer.step)
    try:
        run.notify("on_run_start")
        while trainer.step < trainer.config.steps and not run.out_of_time:
            t0 = time.perf_counter()
            run.d_loss, run.g_loss = map(float, trainer.train_step())  # synchronises, so the timing below is honest
            run.train_seconds += time.perf_counter() - t0
            run.out_of_time = max_seconds is not None and run.train_seconds >= max_seconds
            if trainer.dist.enabled:  # every rank logs, stops and diverges on the same agreed values
                agreed = mean_across_ranks(trainer.dist, torch.tensor(
                    [run.d_loss, run.g_loss, float(run.out_of_time)], device=trainer.device))
                run.d_loss, run.g_loss, run.out_of_time = float(agreed[0]), float(agreed[1]), bool(agreed[2] > 0)
            run.notify("on_step_end")
        if run.out_of_time:
            run.stopped_by = STOPPED_BY_SECONDS
        trainer.batches.close()
        run.notify("on_run_end")
    except BaseException as exc:
        run.error = exc
        if isinstance(exc, DivergenceError):
            run.stopped_by = STOPPED_BY_DIVERGENCE
        run.notify("on_run_exit", exc)
        raise
    run.notify("on_run_exit", None)
    return run.result()
