"""The callbacks every run has (:func:`standard_callbacks`) and :class:`Evaluation`, which the bench and the sweep add;
each is one small :class:`ganzoo.Callback`, as a third-party one for ``ganzoo.train(callbacks=[...])`` would be."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from .. import checkpoint as ckpt
from .. import runlog
from ..errors import DivergenceError
from ..images import grid_image, read_png, save_grid
from .loop import Callback, RunState
from .randomness import rng_state, set_rng_state
from .trainer import Trainer

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

DIVERGED_LOSS = 1e12  #: a loss this large means the run has blown up (no GAN loss is meaningful there)
RESULT_FILE = "result.json"  #: the file a run's :class:`~ganzoo.training.loop.TrainResult` is written to
SAMPLES_DIR, FINAL_SAMPLES = "samples", "samples.png"  #: the periodic grids' folder; the final grid
Scorer = Callable[[Trainer], dict[str, float]]  #: what :class:`Evaluation` calls: ``score(trainer) -> {metric: value}``


def is_log_step(run: RunState) -> bool:
    """Whether this step is logged: every ``log_every`` steps, and the last one."""
    cfg = run.trainer.config
    return run.step % cfg.log_every == 0 or run.step == cfg.steps or run.out_of_time


def loss_record(run: RunState) -> dict[str, Any]:
    """One ``log.jsonl`` line: losses, images seen, training seconds, throughput, ``scheduled`` values (if any)."""
    record = {"step": run.step, "d_loss": run.d_loss, "g_loss": run.g_loss,
              "images_seen": run.step * run.images_per_step, "train_s": round(run.train_seconds, 4),
              "img_per_s": run.images_per_second if run.train_seconds > 0 else None}
    if run.trainer.assembly.schedules:
        record["scheduled"] = dict(run.trainer.scheduled)
    return record


class Divergence(Callback):
    """Stop the run at a non-finite loss or one beyond :data:`DIVERGED_LOSS`; first, so nothing logs a blown-up step."""
    def on_step_end(self, run: RunState) -> None:
        d, g = run.d_loss, run.g_loss
        if not (math.isfinite(d) and math.isfinite(g)):
            raise DivergenceError(run.step, f"non-finite loss (d_loss={d}, g_loss={g})")
        if max(abs(d), abs(g)) > DIVERGED_LOSS:
            raise DivergenceError(run.step, f"loss beyond {DIVERGED_LOSS:g} (d_loss={d:.3g}, g_loss={g:.3g}); "
                                  "lower the learning rates")


class ProgressBar(Callback):
    """A tqdm bar on rank 0: seconds of training with a time budget (its ETA is then right), else steps."""
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None

    def on_run_start(self, run: RunState) -> None:
        by_time = run.max_seconds is not None
        self.bar = tqdm(total=round(run.max_seconds) if by_time else run.trainer.config.steps,  # type: ignore[arg-type]
                        initial=0 if by_time else run.step, desc=run.trainer.config.variant, dynamic_ncols=True,
                        unit="s" if by_time else "step", disable=not (self.enabled and run.is_main), leave=False,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} [{elapsed}<{remaining}{postfix}]")

    def on_step_end(self, run: RunState) -> None:
        self.bar.update(min(run.train_seconds, run.max_seconds) - self.bar.n if run.max_seconds is not None else 1)
        if is_log_step(run):
            self.bar.set_postfix(step=run.step, d=f"{run.d_loss:.3f}", g=f"{run.g_loss:.3f}")

    def on_run_end(self, run: RunState) -> None:
        self.bar.close()

    def on_run_exit(self, run: RunState, error: BaseException | None) -> None:
        if self.bar is not None:
            self.bar.close()


class LossLog(Callback):
    """``log.jsonl``: a :func:`loss_record` per logged step (a resumed run first drops those after its checkpoint)."""
    def __init__(self) -> None:
        self.file: IO[str] | None = None

    def on_run_start(self, run: RunState) -> None:
        if run.is_main:
            if run.start_step:
                runlog.drop_lines_after(run.out / runlog.LOG_FILE, run.start_step)
            self.file = open(run.out / runlog.LOG_FILE, "a")

    def on_step_end(self, run: RunState) -> None:
        if self.file is not None and is_log_step(run):
            self.file.write(json.dumps(loss_record(run)) + "\n")
            self.file.flush()

    def on_run_exit(self, run: RunState, error: BaseException | None) -> None:
        if self.file is not None:
            self.file.close()


class TensorBoard(Callback):
    """TensorBoard event files (if installed), tagged as in :mod:`ganzoo.runlog`: losses, throughput, scores, grids."""
    def __init__(self) -> None:
        self.writer: SummaryWriter | None = None

    def on_run_start(self, run: RunState) -> None:
        if run.is_main:
            self.writer = runlog.summary_writer(run.out, run.start_step)

    def on_step_end(self, run: RunState) -> None:
        if self.writer is not None and is_log_step(run):
            record = loss_record(run)
            self.writer.add_scalar(runlog.TAG_D_LOSS, record["d_loss"], run.step)
            self.writer.add_scalar(runlog.TAG_G_LOSS, record["g_loss"], run.step)
            if record["img_per_s"] is not None:
                self.writer.add_scalar(runlog.TAG_IMAGES_PER_SECOND, record["img_per_s"], run.step)
            for key, value in record.get("scheduled", {}).items():
                self.writer.add_scalar(runlog.TAG_SCHEDULED + key, value, run.step)

    def on_evaluation(self, run: RunState, scores: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in scores.items():
                self.writer.add_scalar(runlog.TAG_EVAL + key, value, run.step)

    def on_samples(self, run: RunState, grid: torch.Tensor) -> None:
        if self.writer is not None:
            self.writer.add_image(runlog.TAG_SAMPLES, grid, run.step)

    def on_run_exit(self, run: RunState, error: BaseException | None) -> None:
        if self.writer is not None:
            self.writer.close()


class SampleGrids(Callback):
    """The fixed-latent samples: ``samples/step-N.png`` every ``sample_every`` steps and ``samples.png`` at the
    end, a scatter plot over real points for non-image data."""
    def on_run_start(self, run: RunState) -> None:
        (run.out / SAMPLES_DIR).mkdir(exist_ok=True)

    def on_step_end(self, run: RunState) -> None:
        every = run.trainer.config.sample_every
        if every and run.step % every == 0 and run.is_main and not run.out_of_time:
            self.draw(run, run.out / SAMPLES_DIR / f"step-{run.step:08d}.png")

    def on_run_end(self, run: RunState) -> None:
        if run.is_main:
            run.samples = run.out / FINAL_SAMPLES
            self.draw(run, run.samples)

    @staticmethod
    def draw(run: RunState, path: Path) -> None:
        """Draw the fixed-latent samples into ``path`` and report the image to the other callbacks."""
        trainer = run.trainer
        images = trainer.sample()
        if trainer.reference_points is not None:  # 2-D points and other non-image samples
            from ..plots import plot_points  # matplotlib: only runs that draw points pay for its import
            plot_points(trainer.reference_points, images.cpu(), path, f"{trainer.config.variant}, step {run.step}")
            run.record_samples(read_png(path))
            return
        save_grid(images, path, trainer.grid_columns)
        run.record_samples(grid_image(images, trainer.grid_columns))


class Checkpoints(Callback):
    """A checkpoint every ``checkpoint_every`` steps (the newest ``keep_last`` kept) and one at the end."""
    def on_step_end(self, run: RunState) -> None:
        every = run.trainer.config.checkpoint_every
        if every and run.step % every == 0 and run.step < run.trainer.config.steps and not run.out_of_time:
            run.trainer.save_checkpoint(run.out)

    def on_run_end(self, run: RunState) -> None:
        run.checkpoint = run.trainer.save_checkpoint(run.out)


class GeneratorExport(Callback):
    """``generator.safetensors``: the final sampling generator with what rebuilds it, for ``ganzoo sample``."""
    def on_run_end(self, run: RunState) -> None:
        if not run.is_main:
            return
        trainer, assembly = run.trainer, run.trainer.assembly
        ckpt.export_generator(run.out / ckpt.GENERATOR_FILE, trainer.sampling_generator.state_dict(),
                              trainer.config.model_dump(mode="json"), assembly.names["generator"],
                              list(assembly.image_shape), source=trainer.sampler_name or "generator",
                              num_classes=trainer.num_classes if assembly.conditional_generator else None)


class ResultFile(Callback):
    """``result.json``: the run's :class:`~ganzoo.training.loop.TrainResult` when it ended by its budget or diverged."""
    def on_run_exit(self, run: RunState, error: BaseException | None) -> None:
        if run.is_main and (error is None or isinstance(error, DivergenceError)):
            (run.out / RESULT_FILE).write_text(json.dumps(run.result().to_json(), indent=2) + "\n")


class Evaluation(Callback):
    """Score the sampling generator with ``score(trainer)`` on rank 0: every ``every`` steps and/or ``every_seconds`` of
    training, at step 0 (the untrained generator; not with ``at_start=False``) and at the end, reporting scores and
    seconds taken (:meth:`RunState.record_evaluation`). The global random generators (python, numpy, torch) are restored
    after each call, so scoring never changes training; a scorer wanting reproducible scores uses its own generator."""
    def __init__(self, score: Scorer, every: int = 0, every_seconds: float = 0.0, at_start: bool = True) -> None:
        self.score, self.every, self.every_seconds, self.at_start = score, every, every_seconds, at_start
        self.next_at = math.inf

    def on_run_start(self, run: RunState) -> None:
        self.next_at = self.every_seconds or math.inf
        if self.at_start and run.step == 0:
            self.evaluate(run)

    def on_step_end(self, run: RunState) -> None:
        due = (self.every and run.step % self.every == 0) or run.train_seconds >= self.next_at
        if due and run.step < run.trainer.config.steps and not run.out_of_time:
            self.evaluate(run)
            while self.next_at <= run.train_seconds:
                self.next_at += self.every_seconds

    def on_run_end(self, run: RunState) -> None:
        self.evaluate(run)

    def evaluate(self, run: RunState) -> None:
        """Score now (rank 0 only), the global random streams put back afterwards."""
        if not run.is_main:
            return
        saved = rng_state()  # whatever the scorer draws, training's global random streams go on as if it had not
        started = time.perf_counter()
        try:                 # run (a gradient penalty draws from torch's global generator)
            scores = self.score(run.trainer)
        finally:
            set_rng_state(saved)
        run.record_evaluation(scores, seconds=time.perf_counter() - started)


def standard_callbacks(progress: bool = True) -> list[Callback]:
    """What every run does around its steps, in this order (stopping on divergence first)."""
    return [Divergence(), ProgressBar(progress), LossLog(), TensorBoard(), Checkpoints(), SampleGrids(),
            GeneratorExport(), ResultFile()]
