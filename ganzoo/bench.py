"""The benchmark harness: train variants under one budget, score them with torch-fidelity, write results.

``bench(["vanilla", "dcgan", "wgan"])`` trains every (variant, seed) trial on the same dataset with the
profile's budget (generator steps, per row if the profile says so, and/or seconds of training), evaluates
every ``eval_every`` steps (or ``eval_every_seconds``), at step 0 (the untrained generator) and at the end,
and writes ``results.json``
with one record per trial, each pinning its protocol. Trials already recorded in ``results.json`` with the
same config are skipped, so an interrupted bench re-runs only what did not finish.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pluggy
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm.auto import tqdm

from . import rundir
from .checkpoint import atomic_write_bytes
from .config import load_yaml, merge
from .data import load_images
from .errors import ConfigError, DivergenceError, GanzooError, UsageError
from .evaluation import evaluation_samples, score_samples
from .meta import EXECUTORS, list_profiles, profiles_dir
from .metric_keys import METRICS
from .plots import plot_losses, plot_metrics
from .registry import get_registry
from .runlog import LOG_FILE
from .sweep import SweepSpec
from .training.assembly import resolve_config
from .training.callbacks import Evaluation
from .training.callbacks import Scorer as Evaluator
from .training.loop import Callback, RunState
from .training.run import run_config, versions
from .training.trainer import Trainer

RESULTS_FORMAT = 1
RESULTS_FILE = "results.json"
#: The plots a trial draws into its run directory beside what the run itself writes.
LOSS_PLOT, METRICS_PLOT = "loss.png", "metrics.png"
# metric -> lower is better
METRIC_DIRECTIONS = {m.key: m.lower_is_better for m in METRICS}
#: Beside its scores, each evaluation in a trial's ``history`` records the seconds trained before it and the
#: seconds the evaluation itself took.
TRAIN_SECONDS = "train_seconds"
EVAL_SECONDS = "eval_seconds"
TIMING_KEYS = (TRAIN_SECONDS, EVAL_SECONDS)
#: The status of a trial whose process or Ray worker died before it could report (out of memory, a lost node):
#: like an interrupted trial (``running``), it is trained again when the bench is re-run.
LOST = "lost"
RERUN_STATUSES = ("running", LOST)
#: Joins a variant and the extensions of one leaderboard row: ``dcgan+ema+diffaugment``.
EXTENSION_JOINER = "+"
#: Seconds between a ``--jobs`` worker's checks that the bench process that started it still lives.
PARENT_CHECK_SECONDS = 0.5
#: Linux ``prctl`` option: the signal a process receives when its parent dies.
_PR_SET_PDEATHSIG = 1


class Budget(BaseModel):
    """One row's budget in a profile's ``budgets``: generator steps and, optionally, its evaluation interval."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(gt=0, description="Generator steps per trial of this row.")
    eval_every: int | None = Field(None, ge=0, description="Evaluate every N generator steps (default: the "
                                                           "profile's eval_every).")


class BenchProfile(BaseModel):
    """A benchmark protocol, loaded from a YAML profile (``benchmarks/profiles/*.yaml``) or built in code."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    description: str = ""
    variants: list[str] = Field(default_factory=lambda: ["vanilla", "dcgan", "wgan-gp"], min_length=1)
    dataset: str = "mnist-5k"
    real_split: Literal["train", "test"] = Field("train", description="Reference split for the real statistics.")
    seeds: int = Field(1, gt=0, description="Trials per variant, seeds 0..seeds-1.")
    steps: int = Field(1_000_000, gt=0, description="Generator steps per trial (a cap when seconds is set).")
    seconds: float | None = Field(None, gt=0, description="Seconds of training per trial (evaluation excluded).")
    eval_every: int = Field(0, ge=0, description="Evaluate every N generator steps (0: off).")
    eval_every_seconds: float = Field(0.0, ge=0, description="Evaluate every N seconds of training (0: off).")
    num_fake: int = Field(2000, gt=1, description="Generated images per evaluation.")
    feature_extractor: str = "ganzoo-mnist"
    feature_extractor_weights: Path | None = None
    device: str = "cpu"
    threads: int | None = Field(None, gt=0, description="CPU threads per trial (default: the cores, shared out by "
                                                        "--jobs); fixed, figures do not depend on --jobs.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Training config keys for every variant.")
    variant_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                          description="Training config keys per variant.")
    budgets: dict[str, Budget] = Field(default_factory=dict,
                                       description="Steps (and eval_every) per row or variant, overriding steps.")
    fid_target: float | None = Field(None, gt=0, description="Time to quality: the leaderboard shows the seconds "
                                                             "of training until a trial's FID first reached this.")
    cpus_per_trial: float | None = Field(None, gt=0, description="CPUs a trial reserves on a Ray cluster "
                                                                 "(default: threads, else 1).")
    gpus_per_trial: float = Field(0, ge=0, description="GPUs a trial reserves on a Ray cluster (with device: cuda).")
    sweep: SweepSpec | None = Field(None, description="A hyperparameter search for `ganzoo sweep` (ganzoo.sweep).")
    datasets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Run the profile on each of these datasets instead of `dataset`: dataset "
                                          "name -> changes to the profile's keys for it (its variants, budget, "
                                          "overrides...). One results file holds every dataset's trials.")

    @field_validator("datasets")
    @classmethod
    def _dataset_changes(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, changes in value.items():
            fixed = sorted(set(changes) & {"name", "description", "dataset", "datasets", "threads"})
            if fixed:
                raise ValueError(f"dataset {name!r} may not change {', '.join(fixed)} (the key names the dataset; "
                                 "threads are the whole bench's)")
        return value

    def parts(self) -> list[BenchProfile]:
        """The profile once per dataset of ``datasets`` (each with its changes applied), or itself alone."""
        if not self.datasets:
            return [self]
        base = self.model_dump(mode="json", exclude={"datasets"})
        parts = []
        for name, changes in self.datasets.items():
            try:
                parts.append(BenchProfile.model_validate(merge(base, {**changes, "dataset": name})))
            except ValidationError as exc:
                lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
                raise ConfigError(f"profile {self.name!r}, datasets.{name}:\n  " + "\n  ".join(lines)) from None
        return parts

    def budget(self, row: str, *fallbacks: str) -> Budget:
        """The budget of ``row`` (``dcgan+ema``), else of the first of ``fallbacks`` (its variant, as canonical
        name or alias) that has one, else the profile's ``steps`` and ``eval_every``."""
        for name in (row, *fallbacks):
            if name in self.budgets:
                found = self.budgets[name]
                return Budget(steps=found.steps,
                              eval_every=self.eval_every if found.eval_every is None else found.eval_every)
        return Budget(steps=self.steps, eval_every=self.eval_every)


def load_profile(profile: str | Path | None = None, **changes: Any) -> BenchProfile:
    """Load a bundled profile by name (default ``default``) or a YAML file, then apply non-``None`` ``changes``."""
    if profile is None:
        profile = "default"
    path = Path(profile)
    if not path.suffix:
        path = profiles_dir() / f"{profile}.yaml"
        if not path.is_file():
            raise UsageError(f"unknown benchmark profile {str(profile)!r}; available: {', '.join(list_profiles())} "
                             "(or pass a YAML file)")
    data = merge(load_yaml(path), {k: v for k, v in changes.items() if v is not None})
    try:
        return BenchProfile.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"invalid benchmark profile {str(path)!r}:\n  " + "\n  ".join(lines)) from None


def hardware() -> dict[str, Any]:
    """The machine a trial ran on: CPU model, threads, GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "gpu": gpu, "platform": platform.platform()}


def portable_extractor_info(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with its weights path made machine-independent: the bundled file as ``bundled:NAME``, any
    other as its file name (the sha256 beside it identifies the file wherever it lives)."""
    from .metrics import WEIGHTS_PATH

    path = Path(info["weights_path"])
    shown = f"bundled:{WEIGHTS_PATH.name}" if path.resolve() == WEIGHTS_PATH.resolve() else path.name
    return {**info, "weights_path": shown}


def split_row(name: str, registry: Any) -> tuple[str, list[str]]:
    """``"dcgan+ema+diffaugment"`` -> ``("dcgan", ["ema", "diffaugment"])``, each extension checked to exist."""
    base, *extensions = [part.strip() for part in name.split(EXTENSION_JOINER)]
    twice = sorted({ext for ext in extensions if extensions.count(ext) > 1})
    if twice:
        raise UsageError(f"variant row {name!r} names extension {', '.join(map(repr, twice))} more than once; "
                         f"name each extension once")
    for ext in extensions:
        if ext not in registry.extensions:
            raise UsageError(f"variant row {name!r} names extension {ext!r}, which no loaded plugin registers; "
                             f"available: {', '.join(registry.extensions.names()) or '(none)'}")
    return base, extensions


def make_evaluator(real: torch.Tensor, profile: BenchProfile, seed: int, cache_dir: Path | None,
                   dataset_metrics: Callable[[torch.Tensor], dict[str, float]] | None = None) -> Evaluator:
    """An ``evaluate(trainer)`` for :meth:`Trainer.run` that scores ``profile.num_fake`` generated images.

    The latents (and, for a conditional generator, labels drawn from the dataset's class frequencies) come
    from :func:`~ganzoo.evaluation.evaluation_samples` for ``seed``: the same inputs at every evaluation, and
    training draws nothing less or more because of them. A conditional run is also scored by
    :data:`~ganzoo.metric_keys.CLASS_AGREEMENT`: how often the MNIST classifier sees the class asked for.
    ``ganzoo evaluate`` scores a run directory the same way. The dataset's own ``dataset_metrics``
    (:attr:`ganzoo.DatasetSpec.metrics`) are added; non-image data (``real`` a float tensor) is scored by them
    alone.
    """
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
    trained = [h for h in history if h["step"] > 0]
    best: dict[str, Any] = {}
    for key, lower in METRIC_DIRECTIONS.items():
        rows = [h for h in trained if key in h and math.isfinite(h[key])]
        if rows:
            row = (min if lower else max)(rows, key=lambda h: h[key])
            best[key] = row[key]
            best[f"{key}_step"] = row["step"]
    return best


def _config_hash(cfg_json: dict[str, Any], profile: BenchProfile, budget: Budget) -> str:
    """What makes two trials the same trial: the training config and the protocol, with the trial's own
    budget in place of the profile's other rows' (so a row added to ``budgets`` leaves the others' hashes)."""
    protocol = profile.model_dump(mode="json", exclude={"name", "description", "variants", "seeds", "budgets",
                                                         "fid_target",  # how results are read
                                                         "datasets",  # a trial's part has its own dataset
                                                         "cpus_per_trial", "gpus_per_trial",  # where it runs
                                                         "sweep"})  # what a sweep searches
    if profile.budgets:
        protocol.update(steps=budget.steps, eval_every=budget.eval_every)
    if profile.threads is None:  # profiles from before the key hash as they did
        del protocol["threads"]
    blob = json.dumps({"config": cfg_json, "protocol": protocol}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_results(path: Path) -> dict[str, Any]:
    """Read a ``results.json`` (or the one inside a bench directory), checked by :mod:`ganzoo.results_file`."""
    from .results_file import load_results as load_checked

    return load_checked(path)


def portable_profile(profile: BenchProfile) -> dict[str, Any]:
    """``profile`` as stored beside results: a weights file by its name only (where it lives is the machine's
    business; its sha256 in each trial's protocol says which file it was)."""
    data = profile.model_dump(mode="json")
    for part in [data, *data["datasets"].values()]:
        if part.get("feature_extractor_weights"):
            part["feature_extractor_weights"] = Path(part["feature_extractor_weights"]).name
    return data


def _write_results(out: Path, profile: BenchProfile, trials: list[dict[str, Any]]) -> None:
    data = {"format": RESULTS_FORMAT, "profile": portable_profile(profile), "trials": trials}
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(out / RESULTS_FILE, lambda f: f.write(text.encode()))


def trial_record(profile: BenchProfile, row: str, seed: int, real: torch.Tensor, *, config_hash: str, cfg: Any,
                 eval_every: int, pm: pluggy.PluginManager | None, status: str = "running",
                 reason: str | None = None) -> dict[str, Any]:
    """A trial's record in ``results.json`` before it has run: what it is and its protocol (``status`` and
    ``reason`` say why, for a trial that could not run at all)."""
    from . import metrics

    return {
        "variant": row, "base_variant": cfg.variant, "extensions": list(cfg.extensions), "seed": seed,
        "status": status, "reason": reason,
        "diverged_at": None, "config_hash": config_hash,
        "protocol": {
            "profile": profile.name, "dataset": profile.dataset, "train_split": "train",
            "real_split": profile.real_split, "num_real": int(real.shape[0]), "num_fake": profile.num_fake,
            # non-image data is scored by its dataset's metrics alone: no feature extractor
            "feature_extractor": None if real.is_floating_point() else portable_extractor_info(
                metrics.extractor_info(profile.feature_extractor, profile.feature_extractor_weights)),
            "budget": {"steps": cfg.steps, "seconds": profile.seconds},
            "eval_every": eval_every, "eval_every_seconds": profile.eval_every_seconds,
            "seed": seed, "config_hash": config_hash, "config": cfg.model_dump(mode="json"),
            "versions": {**versions(), "torch_fidelity": _torch_fidelity_version()},
        },
    }


def run_trial(profile: BenchProfile, row: str, seed: int, out: Path, real: torch.Tensor, *,
              config_hash: str, cfg: Any, eval_every: int, progress: bool, cache_dir: Path | None,
              pm: pluggy.PluginManager | None) -> dict[str, Any]:
    """Train and score one (row, seed) for ``cfg.steps`` steps, evaluating every ``eval_every``; never raises
    for a failing or diverging variant. ``row`` is the leaderboard row: a variant's name, or it joined with
    extensions (``dcgan+ema``).

    The trial's run directory is locked (:func:`ganzoo.rundir.run_lock`) while it trains, and emptied first (what
    an interrupted attempt left must not mix in); a directory another live process holds (a worker of a bench
    that was killed) is not touched: the trial is recorded ``lost``, to be trained by a later run."""
    trial_dir = Path(cfg.out)
    try:
        if trial_dir.is_symlink():
            raise UsageError(f"trial directory {str(trial_dir)!r} is a symbolic link; a bench writes its trial "
                             "directories itself: remove the link")
        lock = rundir.run_lock(trial_dir)
        lock.__enter__()
    except GanzooError as exc:
        return trial_record(profile, row, seed, real, config_hash=config_hash, cfg=cfg, eval_every=eval_every,
                            pm=pm, status=LOST if isinstance(exc, rundir.RunLockedError) else "failed",
                            reason=f"{exc}" + ("; re-run the bench to train it once that process is gone"
                                               if isinstance(exc, rundir.RunLockedError) else ""))
    try:
        foreign = sorted(child.name for child in trial_dir.iterdir() if not rundir.written_by_a_run(child.name)
                         and child.name not in (LOSS_PLOT, METRICS_PLOT))
        if foreign:  # not a trial's directory: nothing in it is deleted
            return trial_record(profile, row, seed, real, config_hash=config_hash, cfg=cfg,
                                eval_every=eval_every, pm=pm, status=LOST,
                                reason=f"trial directory {str(trial_dir)!r} holds files no ganzoo run wrote "
                                       f"({', '.join(foreign[:5])}); move them away and re-run the bench, or "
                                       "choose another --out")
        for child in trial_dir.iterdir():  # what an interrupted attempt left must not mix in (the lock stays)
            if child.name == rundir.LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        return _train_trial(profile, row, seed, out, real, config_hash=config_hash, cfg=cfg,
                            eval_every=eval_every, progress=progress, cache_dir=cache_dir, pm=pm)
    finally:
        lock.__exit__(None, None, None)


def _train_trial(profile: BenchProfile, row: str, seed: int, out: Path, real: torch.Tensor, *,
                 config_hash: str, cfg: Any, eval_every: int, progress: bool, cache_dir: Path | None,
                 pm: pluggy.PluginManager | None) -> dict[str, Any]:
    """:func:`run_trial` in its locked, emptied run directory."""
    trial_dir = Path(cfg.out)
    rel = trial_dir.relative_to(out).as_posix()
    record = trial_record(profile, row, seed, real, config_hash=config_hash, cfg=cfg, eval_every=eval_every,
                          pm=pm)
    record["hardware"] = hardware()  # the thread count too: figures depend on it
    started = time.perf_counter()
    history: list[dict[str, Any]] = []
    registry = get_registry(pm)
    evaluator = make_evaluator(real, profile, seed, cache_dir, registry.datasets.get(profile.dataset).item.metrics)
    try:
        result = run_config(cfg, progress=progress, max_seconds=profile.seconds, callbacks=[
            Evaluation(evaluator, eval_every, profile.eval_every_seconds), TrialHistory(history)])
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
    record["wall_seconds"] = round(time.perf_counter() - started, 3)
    record["history"] = history
    untrained = [h for h in history if h["step"] == 0]
    record["untrained"] = ({k: v for k, v in untrained[0].items() if k not in ("step", *TIMING_KEYS)}
                           if untrained else None)
    if record["status"] == "ok":
        record["final"] = {k: v for k, v in history[-1].items() if k not in ("step", *TIMING_KEYS)}
        record["best"] = best_scores(history)
    artifacts: dict[str, str] = {}
    if (trial_dir / LOG_FILE).is_file() and (trial_dir / LOG_FILE).stat().st_size:
        artifacts["loss_plot"] = f"{rel}/{LOSS_PLOT}"
        plot_losses(trial_dir / LOG_FILE, trial_dir / LOSS_PLOT, f"{row} seed {seed}")
    if len(history) > 1:
        artifacts["metrics_plot"] = f"{rel}/{METRICS_PLOT}"
        plot_metrics(history, trial_dir / METRICS_PLOT, f"{row} seed {seed}")
    if (trial_dir / "samples.png").is_file() and record["status"] == "ok":
        artifacts["samples"] = f"{rel}/samples.png"
    if record["status"] == "ok":
        artifacts["checkpoint"] = f"{rel}/checkpoints"
    record["artifacts"] = artifacts
    return record


class TrialHistory(Callback):
    """Appends each evaluation of a trial to ``history`` as ``results.json`` records it: the step, the scores,
    the seconds trained before it and the seconds it took."""

    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.history = history

    def on_evaluation(self, run: RunState, scores: dict[str, float]) -> None:
        timing = run.evaluations[-1]
        self.history.append({"step": run.step, **scores, TRAIN_SECONDS: timing["train_seconds"],
                             EVAL_SECONDS: timing["eval_seconds"]})


def _init_worker(threads: int, parent: int) -> None:
    """Set up a ``--jobs`` worker process: ``threads`` CPU threads, and it dies with the bench process ``parent``
    (pid) that started it, so that a killed bench leaves no worker training on into its directory. On Linux the
    kernel sends it SIGTERM when ``parent`` dies; everywhere a watcher thread checks every
    :data:`PARENT_CHECK_SECONDS` that ``parent`` is still its parent."""
    torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        except (OSError, AttributeError):
            pass  # the watcher still stops it

    def orphaned() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5 * PARENT_CHECK_SECONDS)  # a handler someone installed for SIGTERM had its chance
        os._exit(1)

    if os.getppid() != parent:  # the bench died before this worker got here
        orphaned()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        orphaned()

    threading.Thread(target=watch, name="ganzoo-bench-parent-watch", daemon=True).start()


def _torch_fidelity_version() -> str:
    import torch_fidelity

    return str(torch_fidelity.__version__)


class PlannedTrial(NamedTuple):
    """One trial of a bench: its part of the profile (the whole profile, or its part for one of ``datasets``), row,
    seed, resolved training config, evaluation interval and the hash that identifies it in ``results.json``."""

    profile: BenchProfile
    row: str
    seed: int
    config: Any
    eval_every: int
    config_hash: str

    @property
    def key(self) -> tuple[str, int, str]:
        return self.row, self.seed, self.config_hash


def plan_trials(prof: BenchProfile, out: Path, registry: Any) -> list[PlannedTrial]:
    """Every trial of ``prof``, its run directory under ``out`` (``out/DATASET`` for a profile with
    ``datasets``); resolving them all first makes a typo in a variant name fail before anything trains."""
    plan = []
    for part in prof.parts():
        plan += _plan_part(part, out / part.dataset if prof.datasets else out, registry)
    return plan


def _plan_part(prof: BenchProfile, out: Path, registry: Any) -> list[PlannedTrial]:
    plan = []
    rows: dict[str, tuple[str, str, list[str]]] = {}  # row name -> (canonical variant, as requested, extensions)
    for requested in prof.variants:
        base, extensions = split_row(requested, registry)
        canonical = registry.variants.get(base).item.name
        row = EXTENSION_JOINER.join([canonical, *extensions])
        rows.setdefault(row, (canonical, base, extensions))  # aliases run once
    for name in prof.budgets:  # a typo in a budget's name must not silently leave a row at the default budget
        try:
            registry.variants.get(split_row(name, registry)[0])
        except GanzooError as exc:
            raise ConfigError(f"profile {prof.name!r}, budgets: {exc}") from None
    for row, (canonical, variant, extensions) in rows.items():
        per_variant = prof.variant_overrides.get(canonical, prof.variant_overrides.get(variant, {}))
        overrides = merge(prof.overrides, per_variant)
        if extensions:  # an extension row: the variant's recipe with these extensions added
            overrides = merge(overrides, prof.variant_overrides.get(row, {}))
            overrides = merge({"extensions": {name: {} for name in extensions}}, overrides)
        budget = prof.budget(row, canonical, variant)
        for seed in range(prof.seeds):
            cfg = resolve_config(registry, canonical, overrides=overrides,
                                 steps=budget.steps, dataset=prof.dataset, seed=seed, device=prof.device,
                                 out=str(out / row / f"seed-{seed}"))
            # No intermediate grids or checkpoints unless the profile asks for them: a bench directory holds
            # the final grid and checkpoint of every trial, and writing is not counted as training time anyway.
            cfg = cfg.model_copy(update={key: getattr(cfg, key) if key in overrides else 0
                                         for key in ("sample_every", "checkpoint_every")})
            plan.append(PlannedTrial(prof, row, seed, cfg, budget.eval_every or 0,
                                     _config_hash(cfg.model_dump(mode="json", exclude={"out"}), prof, budget)))
    return plan


def load_reference(registry: Any, trial: PlannedTrial, *, progress: bool = True) -> torch.Tensor:
    """The real samples that ``trial``'s scores compare against: its profile's ``dataset`` at ``real_split``,
    loaded the way the trial's config loads its training data (root, download, image size, workers)."""
    cfg, prof = trial.config, trial.profile
    return load_images(registry, prof.dataset, split=prof.real_split, root=cfg.data_root, download=cfg.download,
                       image_size=cfg.image_size).tensor(workers=cfg.data_workers, progress=progress)


def refuse_in_process_plugins(plan: list[PlannedTrial], registry: Any, pm: pluggy.PluginManager | None,
                              where: str) -> None:
    """Refuse a plan whose trials would run in other processes (``where``: the ``--jobs`` pool, Ray, Tune) while
    a component they use (variant, networks, loss, extensions, dataset) comes from a plugin registered in this
    process only: a worker loads its plugins from the entry points, so it would not find that component, or find
    another under its name."""
    from .plugins import get_plugin_manager

    from_entry_points = getattr(pm or get_plugin_manager(), "ganzoo_distinfo", {})
    used: dict[str, str] = {}  # plugin -> the first component of it a trial uses
    for entry in plan:
        cfg = entry.config
        variant = registry.variants.get(cfg.variant)
        parts = [("variant", registry.variants, cfg.variant), ("dataset", registry.datasets, cfg.dataset),
                 ("generator", registry.generators, cfg.generator or variant.item.generator),
                 ("discriminator", registry.discriminators, cfg.discriminator or variant.item.discriminator),
                 ("loss", registry.losses, cfg.loss or variant.item.loss),
                 *(("extension", registry.extensions, name) for name in cfg.extensions)]
        for kind, table, name in parts:
            plugin = table.get(name).plugin
            if plugin not in from_entry_points:
                used.setdefault(plugin, f"{kind} {name!r} of row {entry.row!r}")
    if used:
        plugin, what = next(iter(used.items()))
        raise UsageError(f"{what} comes from plugin {plugin!r}, which was registered in this process, not loaded "
                         f"from an entry point; trials on {where} run in other processes, which load plugins from "
                         "entry points only. Install the plugin as a package with a 'ganzoo' entry point, or run "
                         "the trials here (jobs=1, the local executor)")


def _refuse_training_over(out: Path, previous: list[dict[str, Any]], plan: list[PlannedTrial]) -> None:
    """Refuse to run ``plan`` into ``out`` when a row and seed it plans holds a finished trial of other settings
    or another budget in ``out/results.json``: training it anew would delete that trial's checkpoints and
    grids. Finished trials at rows and seeds the plan does not touch are kept, whatever they are."""
    planned = {entry.key for entry in plan}
    places = {(entry.row, entry.seed) for entry in plan}
    replaced = [t for t in previous if t["status"] not in RERUN_STATUSES
                and (t["variant"], t["seed"]) in places and (t["variant"], t["seed"], t["config_hash"]) not in planned]
    if not replaced:
        return
    shown = [f"{t['variant']} seed {t['seed']}" for t in replaced[:4]]
    more = f" and {len(replaced) - len(shown)} more" if len(replaced) > len(shown) else ""
    raise UsageError(f"--out {str(out)!r} holds {len(replaced)} finished trial(s) of the same rows and seeds with "
                     f"other settings or another budget ({', '.join(shown)}{more}), which this bench would train "
                     "over; pass --overwrite (overwrite=True) to replace them, or choose another --out")


def bench(
    variants: list[str] | None = None,
    *,
    profile: str | Path | BenchProfile | None = None,
    out: str | Path = "runs/bench",
    seeds: int | None = None,
    steps: int | None = None,
    seconds: float | None = None,
    feature_extractor: str | None = None,
    feature_extractor_weights: str | Path | None = None,
    cache_dir: str | Path | None = None,
    jobs: int = 1,
    threads: int | None = None,
    executor: Literal["local", "ray"] = "local",
    address: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    pm: pluggy.PluginManager | None = None,
) -> dict[str, Any]:
    """Run a benchmark and return the contents of its ``results.json``.

    ``profile`` is a bundled profile name (``default``, the default, runs offline on mnist-5k in minutes on a
    CPU), a YAML file or a :class:`BenchProfile`; the keyword arguments override it (``steps`` replaces every
    row's budget). Trials already in
    ``out/results.json`` with the same config are kept and not re-run. ``jobs > 1`` runs trials in that many
    processes at once (each with ``cpu_count // jobs`` threads); wall-clock budgets then share the machine.
    ``threads`` sets each trial's CPU threads on the local executor in place of the profile's ``threads`` and
    that default, without entering any trial's config hash (the profile's ``threads`` does).
    ``executor="ray"`` runs each trial as a Ray task instead, on the cluster at ``address`` (default: the one
    ``RAY_ADDRESS`` names, else a Ray instance started on this machine), with the profile's
    ``cpus_per_trial`` and ``gpus_per_trial``; ``out`` must then be on storage every node shares
    (docs/distributed.md). Ray is the optional extra ``ganzoo[ray]``.
    The returned dictionary holds this bench's trials, in plan order; ``results.json`` also keeps the finished
    trials of earlier benches into ``out`` at rows and seeds this one does not plan. A planned row and seed that
    holds a finished trial of other settings or another budget is refused unless ``overwrite=True``, which trains
    over it and leaves ``results.json`` with this bench's trials alone; re-running the same bench into its
    ``out`` (trials already done are kept) needs no flag.

    Example::

        results = ganzoo.bench(["vanilla", "dcgan", "wgan"], out="runs/bench")
        print([(t["variant"], t["final"]["fid"]) for t in results["trials"]])
    """
    changes = {"variants": variants, "seeds": seeds, "steps": steps, "seconds": seconds,
               "feature_extractor": feature_extractor,
               "feature_extractor_weights": str(feature_extractor_weights) if feature_extractor_weights else None}
    prof = (profile.model_copy(update={k: v for k, v in changes.items() if v is not None})
            if isinstance(profile, BenchProfile) else load_profile(profile, **changes))
    if steps is not None:  # an explicit step budget is every row's
        prof = prof.model_copy(update={"budgets": {}})
    if prof.datasets:  # what is asked for explicitly holds for every dataset, whatever its own changes say
        explicit = {k: v for k, v in prof.model_dump(mode="json").items()
                    if changes.get(k) is not None or (k == "budgets" and steps is not None)}
        prof = prof.model_copy(update={"datasets": {name: {**part, **{k: v for k, v in explicit.items() if k in part}}
                                                    for name, part in prof.datasets.items()}})
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise UsageError("an address names a Ray cluster: give it with executor='ray' (--executor ray)")
    if address is not None:  # a malformed address is refused before anything loads
        from .ray_cluster import parse_address

        parse_address(address)
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be at least 1, not {threads}")
    if threads is not None and executor == "ray":
        raise UsageError("threads is for the local executor; on Ray the profile's threads (else cpus_per_trial) "
                         "sets a trial's threads")
    if jobs > 1 and executor == "ray":
        raise UsageError("jobs is for the local executor; on Ray the cluster's CPUs and cpus_per_trial decide how "
                         "many trials run at once")
    # a Ray worker resolves a relative path against its own working directory, not the shared storage
    out = Path(out).resolve() if executor == "ray" else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with rundir.run_lock(out):  # one bench at a time writes into out
        cache = Path(cache_dir).expanduser() if cache_dir is not None else None
        registry = get_registry(pm)
        from . import metrics

        for part in prof.parts():  # fail early, clearly
            metrics.extractor_info(part.feature_extractor, part.feature_extractor_weights)
        # Resolve every trial's config first: a typo in a variant name fails before anything trains.
        plan = plan_trials(prof, out, registry)
        if executor == "ray" or jobs > 1:
            refuse_in_process_plugins(plan, registry, pm, "Ray" if executor == "ray" else f"{jobs} worker processes")
        previous = load_results(out)["trials"] if (out / RESULTS_FILE).is_file() else []
        if not overwrite:
            _refuse_training_over(out, previous, plan)
        reals: dict[int, torch.Tensor] = {}  # id(part) -> its reference data, loaded once per part
        for entry in plan:
            if id(entry.profile) not in reals:
                reals[id(entry.profile)] = load_reference(registry, entry, progress=progress)
        records = {(t["variant"], t["seed"], t["config_hash"]): t for t in previous
                   if t["status"] not in RERUN_STATUSES}
        order = [entry.key for entry in plan]
        places = {(entry.row, entry.seed) for entry in plan}
        # Another bench's finished trials at rows and seeds this one does not plan stay in results.json (their
        # run directories are not touched), unless overwrite asks for this bench's trials alone.
        others = [] if overwrite else [t for t in previous if t["status"] not in RERUN_STATUSES
                                       and (t["variant"], t["seed"]) not in places]
        todo = [entry for entry in plan if entry.key not in records]
        bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc="bench", unit="trial", disable=not progress,
                   dynamic_ncols=True)
        def finished(entry: PlannedTrial, record: dict[str, Any]) -> None:
            records[entry.key] = record
            _write_results(out, prof, [records[k] for k in order if k in records] + others)
            bar.update(1)

        def lost(entry: PlannedTrial, reason: str) -> dict[str, Any]:
            """The record of a trial whose worker died (out of memory, a lost node) before it could report; a
            re-run of the bench trains it again."""
            return trial_record(entry.profile, entry.row, entry.seed, reals[id(entry.profile)],
                                config_hash=entry.config_hash, cfg=entry.config, eval_every=entry.eval_every, pm=pm,
                                status=LOST, reason=f"the trial's worker died ({reason}); re-run the bench to train "
                                                    "it again")

        fixed_threads = threads or prof.threads  # else the machine's: all cores, shared out among the jobs
        if executor == "ray":
            from .ray_cluster import run_trials_on_ray

            run_trials_on_ray(todo, reals, out=out, address=address, cache_dir=cache,
                              finished=finished, lost=lost)
        elif jobs <= 1:
            threads_before = torch.get_num_threads()
            torch.set_num_threads(fixed_threads or threads_before)
            try:
                for entry in todo:
                    bar.set_description(f"bench {entry.row} seed {entry.seed}")
                    finished(entry, run_trial(
                        entry.profile, entry.row, entry.seed, out, reals[id(entry.profile)],
                        config_hash=entry.config_hash, cfg=entry.config, eval_every=entry.eval_every,
                        progress=progress, cache_dir=cache, pm=pm))
            finally:
                torch.set_num_threads(threads_before)
        else:
            # Independent trials in separate processes, sharing the cores between them. Each worker builds its
            # own plugin manager from the entry points (plugins registered in-process here are not seen there).
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                     initargs=(fixed_threads or max(1, (os.cpu_count() or 1) // jobs),
                                               os.getpid())) as pool:
                futures = {pool.submit(run_trial, entry.profile, entry.row, entry.seed, out, reals[id(entry.profile)],
                                       config_hash=entry.config_hash, cfg=entry.config, eval_every=entry.eval_every,
                                       progress=False, cache_dir=cache, pm=None): entry
                           for entry in todo}
                for future in as_completed(futures):
                    try:
                        record = future.result()
                    except Exception as exc:  # run_trial never raises: its process died
                        record = lost(futures[future], f"{type(exc).__name__}: {exc}")
                    finished(futures[future], record)
        bar.close()
        _write_results(out, prof, [records[k] for k in order] + others)
        (out / "profile.yaml").write_text(yaml.safe_dump(portable_profile(prof), sort_keys=False))
    written = load_results(out)
    return {**written, "trials": written["trials"][:len(order)]}  # this bench's trials, in plan order
