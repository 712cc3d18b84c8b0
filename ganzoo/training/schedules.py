"""Hyperparameters given as schedules (:class:`ganzoo.ScheduleSpec`): ``lr_g``, ``lr_d``, each of ``betas``, or a
numeric option of the loss or an extension. Components are built with each schedule's value at step 0; before every step
the trainer sets every value at that step (a pure function of the step, so a resumed run is exact): the optimisers'
``lr`` and ``betas`` (SGD's momentum is ``betas[0]``), and the loss's or extension's attribute named as the option."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..components import ScheduleSpec
from ..config import TrainConfig
from ..errors import ConfigError
from ..registry import Registry

SCHEDULE_KEYS = ("over", "unit")  #: the keys of a schedule mapping besides its kind
UNITS = ("steps", "images")  #: what a schedule counts: generator steps done, or real images shown to D


@dataclass(frozen=True)
class Schedule:
    """One scheduled value: its config key (``lr_g``, ``betas.1``, ``loss_options.gamma``, ...), kind and arguments."""
    key: str
    spec: ScheduleSpec
    args: Any
    over: float | None
    unit: str

    def at(self, step: int, images: int) -> float:
        """The value after ``step`` generator steps (``images`` real images)."""
        return float(self.spec.value(step if self.unit == "steps" else images, self.args, self.over))


def parse_schedule(registry: Registry, key: str, value: dict[str, Any]) -> Schedule:
    """The schedule ``value`` gives ``key``, checked: one known kind, ``over`` a positive number if given,
    ``unit`` steps or images, and a value at step 0 the kind accepts."""
    kinds = [name for name in value if name not in SCHEDULE_KEYS]
    if len(kinds) != 1 or kinds[0] not in registry.schedules:
        raise ConfigError(f"{key}: a schedule is a mapping with one kind ({', '.join(registry.schedules.names())}) and "
                          f"optionally over and unit, e.g. {{cosine: [2.0e-4, 5.0e-5], over: 10000}}; got {value!r}")
    over, unit = value.get("over"), value.get("unit", "steps")
    if over is not None and (isinstance(over, bool) or not isinstance(over, (int, float)) or over <= 0):
        raise ConfigError(f"{key}: over must be a positive number of {unit}, not {over!r}")
    if unit not in UNITS:
        raise ConfigError(f"{key}: unit must be one of {', '.join(UNITS)}, not {unit!r}")
    entry = registry.schedules.get(kinds[0])
    schedule = Schedule(key, entry.item, value[kinds[0]], None if over is None else float(over), unit)
    try:
        schedule.at(0, 0)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"{key}: schedule kind {kinds[0]!r} (plugin {entry.plugin!r}) failed: "
                          f"{type(exc).__name__}: {exc}") from None
    return schedule


def find_schedules(registry: Registry, config: TrainConfig) -> list[Schedule]:
    """Every schedule of ``config``: ``lr_g``, ``lr_d`` and ``betas`` that are mappings, and each option of the loss or
    an extension that is a mapping whose one key besides ``over`` and ``unit`` is a registered kind."""
    top = {"lr_g": config.lr_g, "lr_d": config.lr_d, "betas.0": config.betas[0], "betas.1": config.betas[1]}
    found = [parse_schedule(registry, key, value) for key, value in top.items() if isinstance(value, dict)]
    options = {f"loss_options.{k}": v for k, v in config.loss_options.items()}
    options.update({f"extensions.{name}.{k}": v for name, opts in config.extensions.items() for k, v in opts.items()})
    for key, value in options.items():
        kinds = [k for k in value if k not in SCHEDULE_KEYS] if isinstance(value, dict) else []
        if len(kinds) == 1 and kinds[0] in registry.schedules:
            found.append(parse_schedule(registry, key, value))
    return found


def values_at(schedules: list[Schedule], step: int, images: int) -> dict[str, float]:
    """Every scheduled value after ``step`` generator steps (``images`` real images), by key."""
    return {s.key: s.at(step, images) for s in schedules}


def with_values(config: TrainConfig, values: dict[str, float]) -> TrainConfig:
    """``config`` with the scheduled ``values`` in place of their schedules (what components are built with)."""
    if not values:
        return config
    data = copy.deepcopy(config.model_dump())
    for key, value in values.items():
        *path, last = key.split(".")
        node: Any = data
        for part in path:
            node = node[part]
        if isinstance(node, tuple):  # betas
            node = data["betas"] = list(node)
        node[int(last) if isinstance(node, list) else last] = value
    return TrainConfig.model_validate(data)
