"""A bench's plan: every (row, seed) trial of a profile with its resolved config and identity, and its checks."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from ..config import TrainConfig, merge
from ..data import load_images
from ..errors import ConfigError, GanzooError, UsageError
from ..plugins import get_plugin_manager
from ..registry import Registry
from ..training.assembly import resolve_config
from .profile import BenchProfile, trial_hash
from .records import RERUN_STATUSES, TrialRecord

#: Joins a variant and the extensions of one leaderboard row: ``dcgan+ema+diffaugment``.
EXTENSION_JOINER = "+"


class PlannedTrial(NamedTuple):
    """One trial of a bench: its profile part, row, seed, resolved config, evaluation interval and hash."""
    profile: BenchProfile
    row: str
    seed: int
    config: TrainConfig
    eval_every: int
    config_hash: str

    @property
    def key(self) -> tuple[str, int, str]:
        return self.row, self.seed, self.config_hash


def split_row(name: str, registry: Registry) -> tuple[str, list[str]]:
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


def plan_trials(prof: BenchProfile, out: Path, registry: Registry) -> list[PlannedTrial]:
    """Every trial of ``prof``, its run directory under ``out`` (``out/DATASET`` for a profile with ``datasets``)."""
    return [entry for part in prof.parts()
            for entry in _plan_part(part, out / part.dataset if prof.datasets else out, registry)]


def _plan_part(prof: BenchProfile, out: Path, registry: Registry) -> list[PlannedTrial]:
    rows: dict[str, tuple[str, str, list[str]]] = {}  # row -> (canonical, as requested, extensions): aliases once
    for requested in prof.variants:
        base, extensions = split_row(requested, registry)
        canonical = registry.variants.get(base).item.name
        rows.setdefault(EXTENSION_JOINER.join([canonical, *extensions]), (canonical, base, extensions))
    for name in prof.budgets:  # a typo in a budget's name must not silently leave a row at the default budget
        try:
            registry.variants.get(split_row(name, registry)[0])
        except GanzooError as exc:
            raise ConfigError(f"profile {prof.name!r}, budgets: {exc}") from None
    plan = []
    for row, (canonical, variant, extensions) in rows.items():
        per_variant = prof.variant_overrides.get(canonical, prof.variant_overrides.get(variant, {}))
        overrides = merge(prof.overrides, per_variant)
        if extensions:  # an extension row: the variant's recipe with these extensions added
            overrides = merge(overrides, prof.variant_overrides.get(row, {}))
            overrides = merge({"extensions": {name: {} for name in extensions}}, overrides)
        budget = prof.budget(row, canonical, variant)
        protocol = prof.protocol(budget)
        for seed in range(prof.seeds):
            cfg = resolve_config(registry, canonical, overrides=overrides, steps=budget.steps, dataset=prof.dataset,
                                 seed=seed, device=prof.device, out=str(out / row / f"seed-{seed}"))
            # no intermediate grids or checkpoints unless the profile asks for them
            cfg = cfg.model_copy(update={key: getattr(cfg, key) if key in overrides else 0
                                         for key in ("sample_every", "checkpoint_every")})
            plan.append(PlannedTrial(prof, row, seed, cfg, protocol.eval_every, trial_hash(cfg, protocol)))
    return plan


def load_reference(registry: Registry, trial: PlannedTrial, *, progress: bool = True) -> torch.Tensor:
    """The real samples ``trial`` is scored against, loaded as its config loads its training data."""
    cfg, prof = trial.config, trial.profile
    return load_images(registry, prof.dataset, split=prof.real_split, root=cfg.data_root, download=cfg.download,
                       image_size=cfg.image_size).tensor(workers=cfg.data_workers, progress=progress)


def refuse_in_process_plugins(plan: list[PlannedTrial], registry: Registry, where: str) -> None:
    """Refuse a plan run in other processes (``where``) using a plugin registered in this one only."""
    from_entry_points = getattr(get_plugin_manager(), "ganzoo_distinfo", {})
    for entry in plan:
        cfg, variant = entry.config, registry.variants.get(entry.config.variant).item
        parts = [("variant", registry.variants, cfg.variant), ("dataset", registry.datasets, cfg.dataset),
                 ("generator", registry.generators, cfg.generator or variant.generator),
                 ("discriminator", registry.discriminators, cfg.discriminator or variant.discriminator),
                 ("loss", registry.losses, cfg.loss or variant.loss),
                 *(("extension", registry.extensions, name) for name in cfg.extensions)]
        for kind, table, name in parts:
            plugin = table.get(name).plugin
            if plugin not in from_entry_points:
                raise UsageError(f"{kind} {name!r} of row {entry.row!r} comes from plugin {plugin!r}, which was "
                                 f"registered in this process, not loaded from an entry point; trials on {where} run "
                                 "in other processes, which load plugins from entry points only. Install the plugin "
                                 "as a package with a 'ganzoo' entry point, or run the trials here (jobs=1, the local "
                                 "executor)")


def refuse_training_over(out: Path, previous: list[TrialRecord], plan: list[PlannedTrial]) -> None:
    """Refuse to train ``plan`` over a finished trial of other settings at a row and seed it plans."""
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
