"""Benchmark profiles (:class:`BenchProfile`, the YAML's flat shape) and the :class:`Protocol`, the one part of a
profile a trial's identity is hashed from (:func:`trial_hash`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import TrainConfig, load_yaml, merge
from ..errors import ConfigError, UsageError
from ..meta import list_profiles, profiles_dir
from ..sweep.spec import SweepSpec


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
                raise ConfigError(f"profile {self.name!r}, datasets.{name}:\n  " + _errors(exc)) from None
        return parts

    def budget(self, row: str, *fallbacks: str) -> Budget:
        """The budget of ``row`` (``dcgan+ema``), else of the first of ``fallbacks`` with one, else the profile's."""
        found = next((self.budgets[name] for name in (row, *fallbacks) if name in self.budgets), None)
        if found is None:
            return Budget(steps=self.steps, eval_every=self.eval_every)
        return Budget(steps=found.steps, eval_every=self.eval_every if found.eval_every is None else found.eval_every)

    def protocol(self, budget: Budget) -> Protocol:
        """The protocol of this profile's (part's) trials that train for ``budget`` (see :class:`Protocol`)."""
        return Protocol(**{**self.model_dump(include=set(Protocol.model_fields)),
                           "steps": budget.steps, "eval_every": budget.eval_every or 0})

    @property
    def ray_resources(self) -> tuple[float, float]:
        """``(cpus, gpus)`` one trial reserves on Ray (cpus default: ``threads``, else 1)."""
        return float(self.cpus_per_trial or self.threads or 1), float(self.gpus_per_trial)

    @property
    def ray_threads(self) -> int:
        """CPU threads a trial trains with on Ray: ``threads``, else its whole CPUs."""
        return self.threads or max(1, int(self.ray_resources[0]))


class Protocol(BaseModel):
    """What a trial's figures depend on besides its training config: exactly the fields hashed into a trial's
    identity (:func:`trial_hash`). ``steps`` and ``eval_every`` are the trial's own budget (adding a row to
    ``budgets`` changes no other trial), and ``threads`` is hashed only when set (older hashes stay). The rest of
    a profile (presentation, rows and seeds, ``datasets``, Ray resources, ``sweep``) is left out by not being here."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: str
    real_split: str
    steps: int
    seconds: float | None
    eval_every: int
    eval_every_seconds: float
    num_fake: int
    feature_extractor: str
    feature_extractor_weights: Path | None
    device: str
    threads: int | None
    overrides: dict[str, Any]
    variant_overrides: dict[str, dict[str, Any]]

    def hashed(self) -> dict[str, Any]:
        """The protocol as it enters a trial's hash (``threads`` only when set)."""
        return self.model_dump(mode="json", exclude={"threads"} if self.threads is None else set())


def trial_hash(config: TrainConfig | dict[str, Any], protocol: Protocol) -> str:
    """What makes two trials the same trial: the training config (or its JSON) without ``out``, and the protocol."""
    cfg = config.model_dump(mode="json") if isinstance(config, TrainConfig) else dict(config)
    cfg.pop("out", None)
    blob = json.dumps({"config": cfg, "protocol": protocol.hashed()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _errors(exc: ValidationError) -> str:
    return "\n  ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def load_profile(profile: str | Path | None = None, **changes: Any) -> BenchProfile:
    """Load a bundled profile by name (default ``default``) or a YAML file, then apply non-``None`` ``changes``."""
    profile = "default" if profile is None else profile
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
        raise ConfigError(f"invalid benchmark profile {str(path)!r}:\n  " + _errors(exc)) from None


def portable_profile(profile: BenchProfile) -> dict[str, Any]:
    """``profile`` as stored beside results: a weights file by its name only (its sha256 is in each trial)."""
    data = profile.model_dump(mode="json")
    for part in [data, *data["datasets"].values()]:
        if part.get("feature_extractor_weights"):
            part["feature_extractor_weights"] = Path(part["feature_extractor_weights"]).name
    return data
