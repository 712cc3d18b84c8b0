"""What a sweep searches: a profile's ``sweep:`` section (:class:`SweepSpec`) and the names of a sweep's files
(a leaf module: it imports nothing of the bench)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..config import set_path

SWEEP_FILE = "sweep.json"
#: The figure of every configuration's final score that a sweep draws beside its ``sweep.json``.
SWEEP_PLOT = "sweep.png"
TUNED_PROFILE = "tuned.yaml"
TUNED_DIR = "tuned"
DEFAULTS_DIR = "paper-defaults"
SWEEP_FORMAT = 1
#: How a sweep trial ended: trained the whole budget, stopped early by the scheduler, or raised.
COMPLETED, STOPPED, FAILED = "completed", "stopped", "failed"
#: The sampling distributions of a search-space entry: ``{loguniform: [low, high]}`` and so on.
DISTRIBUTIONS = ("loguniform", "uniform", "choice", "randint")


class SweepSpec(BaseModel):
    """A profile's ``sweep:`` section: what to search, how many configurations, how to schedule them."""
    model_config = ConfigDict(extra="forbid")
    space: dict[str, dict[str, Any]] = Field(
        min_length=1, description="Training config key (dotted for nested keys) -> one distribution: "
                                  "{loguniform: [low, high]}, {uniform: [low, high]}, {choice: [a, b, ...]} or "
                                  "{randint: [low, high]} (high excluded).")
    variant_space: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="Per row or variant: entries added to (or replacing those of) space.")
    samples: int = Field(8, gt=0, description="Configurations tried per row.")
    scheduler: Literal["asha", "fifo"] = Field("asha", description="asha: stop the worst trials at each "
                                                                   "evaluation; fifo: train every trial fully.")
    metric: str = Field("fid", description="The bench metric that ranks configurations (its direction is known).")
    grace_period: int = Field(1, gt=0, description="Evaluations every trial gets before ASHA may stop it.")
    reduction_factor: float = Field(2, gt=1, description="ASHA keeps 1/reduction_factor of the trials per rung.")
    search_seed: int = Field(0, ge=0, description="Seed of the configuration sampler.")
    trial_seed: int = Field(0, ge=0, description="Training seed of every trial (the benches afterwards use the "
                                                 "profile's seeds).")

    @field_validator("space", "variant_space")
    @classmethod
    def _distributions(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        spaces = value.values() if info.field_name == "variant_space" else [value]
        for key, dist in (item for space in spaces for item in space.items()):
            if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
                raise ValueError(f"{key}: give one distribution, e.g. {{loguniform: [1.0e-5, 1.0e-3]}}; "
                                 f"known: {', '.join(DISTRIBUTIONS)}")
            (kind, args), = dist.items()
            if kind != "choice" and (not isinstance(args, list) or len(args) != 2 or not args[0] < args[1]):
                raise ValueError(f"{key}: {kind} takes [low, high] with low < high, got {args!r}")
            if kind == "loguniform" and args[0] <= 0:
                raise ValueError(f"{key}: loguniform needs a positive low end, got {args[0]!r}")
            if kind == "choice" and (not isinstance(args, list) or not args):
                raise ValueError(f"{key}: choice takes a non-empty list of values")
        return value

    def row_space(self, row: str, variant: str) -> dict[str, dict[str, Any]]:
        """The space of one row: ``space`` with the row's (else its variant's) ``variant_space`` entries."""
        return {**self.space, **self.variant_space.get(row, self.variant_space.get(variant, {}))}


def nest(params: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys to nested dicts: ``{"extensions.ema.decay": 0.99}`` -> ``{"extensions": {"ema": {...}}}``."""
    nested: dict[str, Any] = {}
    for key, value in params.items():
        set_path(nested, key.split("."), value)
    return nested
