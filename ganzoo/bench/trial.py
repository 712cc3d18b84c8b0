"""One bench trial: train a planned (row, seed) in its run directory, score it, and return its record.
:func:`run_trial` is what every executor runs; it never raises for a failing or diverging variant."""

from __future__ import annotations

import contextlib
import math
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .. import rundir
from ..errors import DivergenceError, GanzooError, UsageError
from ..evaluation import evaluation_samples, score_samples
from ..metric_keys import METRICS
from ..plots import plot_losses, plot_metrics
from ..registry import get_registry
from ..runlog import LOG_FILE
from ..training.callbacks import Evaluation, Scorer
from ..training.loop import Callback, RunState
from ..training.run import run_config, versions
from ..training.trainer import Trainer
from .plan import PlannedTrial
from .profile import BenchProfile
from .records import LOST, TIMING_KEYS, TrialRecord

#: The plots a trial draws into its run directory beside what the run itself writes.
LOSS_PLOT, METRICS_PLOT = "loss.png", "metrics.png"
METRIC_DIRECTIONS = {m.key: m.lower_is_better for m in METRICS}  # metric -> lower is better


def hardware() -> dict[str, Any]:
    """The machine a trial ran on: CPU model, threads, GPU."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # Linux names the model
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "gpu": gpu, "platform": platform.platform()}


def make_evaluator(real: torch.Tensor, profile: BenchProfile, seed: int, cache_dir: Path | None,
                   dataset_metrics: Callable[[torch.Tensor], dict[str, float]] | None = None) -> Scorer:
    """A scorer for :class:`~ganzoo.training.callbacks.Evaluation`: ``profile.num_fake`` samples drawn for ``seed`` as
    ``ganzoo evaluate`` draws them, scored by :func:`~ganzoo.evaluation.score_samples` with ``dataset_metrics``."""
    images = not real.is_floating_point()
    def evaluate(trainer: Trainer) -> dict[str, float]:
        conditional = trainer.assembly.conditional_generator
        samples, labels = evaluation_samples(trainer.sample, trainer.config.latent_dim, profile.num_fake, seed,
                                             trainer.device, trainer.class_probs if conditional else None, images)
        return score_samples(samples, real, labels, feature_extractor=profile.feature_extractor,
                             feature_extractor_weights=profile.feature_extractor_weights, cache_dir=cache_dir,
                             dataset_metrics=dataset_metrics)
    return evaluate


def best_scores(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The best value of each metric over the evaluations after step 0, with the step it was reached at."""
    best: dict[str, Any] = {}
    for key, lower in METRIC_DIRECTIONS.items():
        rows = [h for h in history if h["step"] > 0 and key in h and math.isfinite(h[key])]
        if rows:
            row = (min if lower else max)(rows, key=lambda h: h[key])
            best.update({key: row[key], f"{key}_step": row["step"]})
    return best


def trial_record(entry: PlannedTrial, real: torch.Tensor, status: str = "running",
                 reason: str | None = None) -> TrialRecord:
    """A trial's record in ``results.json`` before it has run: what it is and its protocol."""
    import torch_fidelity

    from .. import metrics  # heavy (torch-fidelity): only where a trial is recorded
    profile, cfg, seed = entry.profile, entry.config, entry.seed
    extractor: dict[str, Any] | None = None  # non-image data is scored by its dataset's metrics alone
    if not real.is_floating_point():  # its weights path machine-independent: bundled:NAME, else the file name
        extractor = metrics.extractor_info(profile.feature_extractor, profile.feature_extractor_weights)
        path = Path(extractor["weights_path"])
        bundled = path.resolve() == metrics.WEIGHTS_PATH.resolve()
        extractor["weights_path"] = f"bundled:{metrics.WEIGHTS_PATH.name}" if bundled else path.name
    return {"variant": entry.row, "base_variant": cfg.variant, "extensions": list(cfg.extensions), "seed": seed,
            "status": status, "reason": reason, "diverged_at": None, "config_hash": entry.config_hash,
            "protocol": {"profile": profile.name, "dataset": profile.dataset, "train_split": "train",
                         "real_split": profile.real_split, "num_real": int(real.shape[0]), "num_fake": profile.num_fake,
                         "feature_extractor": extractor, "budget": {"steps": cfg.steps, "seconds": profile.seconds},
                         "eval_every": entry.eval_every, "eval_every_seconds": profile.eval_every_seconds,
                         "seed": seed, "config_hash": entry.config_hash, "config": cfg.model_dump(mode="json"),
                         "versions": {**versions(), "torch_fidelity": str(torch_fidelity.__version__)}}}


def lost_record(entry: PlannedTrial, real: torch.Tensor, reason: str) -> TrialRecord:
    """The record of a trial whose worker died before it could report (trained again on a re-run)."""
    return trial_record(entry, real, status=LOST,
                        reason=f"the trial's worker died ({reason}); re-run the bench to train it again")


def run_trial(entry: PlannedTrial, out: Path, real: torch.Tensor, *, progress: bool,
              cache_dir: Path | None) -> TrialRecord:
    """Train and score one planned (row, seed) in its locked, emptied run directory; never raises for a failing
    or diverging variant. A directory another live process holds is not touched: the trial is recorded ``lost``."""
    trial_dir = Path(entry.config.out)
    try:
        if trial_dir.is_symlink():
            raise UsageError(f"trial directory {str(trial_dir)!r} is a symbolic link; a bench writes its trial "
                             "directories itself: remove the link")
        lock = rundir.run_lock(trial_dir)
        lock.__enter__()
    except GanzooError as exc:
        locked = isinstance(exc, rundir.RunLockedError)
        retry = "; re-run the bench to train it once that process is gone" if locked else ""
        return trial_record(entry, real, status=LOST if locked else "failed", reason=f"{exc}{retry}")
    try:
        foreign = sorted(child.name for child in trial_dir.iterdir() if not rundir.written_by_a_run(child.name)
                         and child.name not in (LOSS_PLOT, METRICS_PLOT))
        if foreign:  # not a trial's directory: nothing in it is deleted
            return trial_record(entry, real, status=LOST, reason=f"trial directory {str(trial_dir)!r} holds files no "
                                f"ganzoo run wrote ({', '.join(foreign[:5])}); move them away and re-run the bench, or "
                                "choose another --out")
        for child in trial_dir.iterdir():  # what an interrupted attempt left, the lock aside
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            elif child.name != rundir.LOCK_FILE:
                child.unlink(missing_ok=True)
        return _train_trial(entry, out, real, progress=progress, cache_dir=cache_dir)
    finally:
        lock.__exit__(None, None, None)


class TrialHistory(Callback):
    """Appends each evaluation of a trial to ``history``: the step, the scores and its timings (the run's own)."""
    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.history = history

    def on_evaluation(self, run: RunState, scores: dict[str, float]) -> None:
        self.history.append({"step": run.step, **scores, **{key: run.evaluations[-1][key] for key in TIMING_KEYS}})


def _train_trial(entry: PlannedTrial, out: Path, real: torch.Tensor, *, progress: bool,
                 cache_dir: Path | None) -> TrialRecord:
    """:func:`run_trial` in its locked, emptied run directory: train under the profile's budget, record the history."""
    record, profile = trial_record(entry, real), entry.profile
    record["hardware"] = hardware()  # the thread count too: figures depend on it
    started = time.perf_counter()
    history: list[dict[str, Any]] = []
    try:
        evaluator = make_evaluator(real, profile, entry.seed, cache_dir,
                                   get_registry().datasets.get(profile.dataset).item.metrics)
        result = run_config(entry.config, progress=progress, max_seconds=profile.seconds, callbacks=[
            Evaluation(evaluator, entry.eval_every, profile.eval_every_seconds), TrialHistory(history)])
    except DivergenceError as exc:
        record.update(status="diverged", reason=str(exc), diverged_at=exc.step)
    except GanzooError as exc:
        record.update(status="failed", reason=str(exc))
    except Exception as exc:  # a plugin bug must not stop the other variants
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    else:
        record.update(status="ok", steps=result.steps, images_seen=result.images_seen,
                      train_seconds=result.train_seconds, images_per_second=result.images_per_second,
                      stopped_by=result.stopped_by, components=result.components)
    record.update(wall_seconds=round(time.perf_counter() - started, 3), history=history,
                  untrained=next((_scores(h) for h in history if h["step"] == 0), None))
    if record["status"] == "ok":
        record.update(final=_scores(history[-1]), best=best_scores(history))
    record["artifacts"] = _artifacts(entry, out, history, ok=record["status"] == "ok")
    return record


def _artifacts(entry: PlannedTrial, out: Path, history: list[dict[str, Any]], *, ok: bool) -> dict[str, str]:
    """Draw a trial's plots; its artifacts (plots, sample grid, checkpoints) relative to the bench directory."""
    trial_dir = Path(entry.config.out)
    rel = trial_dir.relative_to(out).as_posix()
    title = f"{entry.row} seed {entry.seed}"
    artifacts: dict[str, str] = {}
    if (trial_dir / LOG_FILE).is_file() and (trial_dir / LOG_FILE).stat().st_size:
        artifacts["loss_plot"] = f"{rel}/{LOSS_PLOT}"
        plot_losses(trial_dir / LOG_FILE, trial_dir / LOSS_PLOT, title)
    if len(history) > 1:
        artifacts["metrics_plot"] = f"{rel}/{METRICS_PLOT}"
        plot_metrics(history, trial_dir / METRICS_PLOT, title)
    if (trial_dir / "samples.png").is_file() and ok:
        artifacts["samples"] = f"{rel}/samples.png"
    if ok:
        artifacts["checkpoint"] = f"{rel}/checkpoints"
    return artifacts


def _scores(evaluation: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evaluation.items() if k not in ("step", *TIMING_KEYS)}
