"""Schedules: hyperparameters that change over training, resolved per step from the config, recorded in the
log, exact across resume, and extensible by a plugin's own kind."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import QUICK, assert_same_weights, registered

import ganzoo
from ganzoo import ScheduleSpec, hookimpl
from ganzoo.checkpoint import load_checkpoint
from ganzoo.errors import ConfigError

TINY = {**QUICK, "generator_options": {"hidden": [16]}, "discriminator_options": {"hidden": [16]}, "seed": 0}


def scheduled(run: Path) -> list[dict[str, float]]:
    return [json.loads(line)["scheduled"] for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("schedule", "expected"), [
    ({"constant": 0.25}, [0.25] * 5),
    ({"linear": [0.8, 0.0], "over": 4}, [0.8, 0.6, 0.4, 0.2, 0.0]),
    ({"cosine": [0.8, 0.0], "over": 4}, [0.8, 0.4 * (1 + math.cos(math.pi / 4)), 0.4,
                                         0.4 * (1 + math.cos(3 * math.pi / 4)), 0.0]),
    ({"piecewise": [[2, 0.4], [0, 0.8], [3, 0.2]]}, [0.8, 0.6, 0.4, 0.2, 0.2]),
    ({"linear": [0.8, 0.0], "over": 64, "unit": "images"}, [0.8, 0.6, 0.4, 0.2, 0.0]),  # 16 images a step
])
def test_built_in_kinds_match_hand_computed_values(tmp_path: Path, schedule: dict, expected: list[float]) -> None:
    """The values a run records at steps 1..5 are those in force during each step: the schedule at 0..4."""
    run = tmp_path / "run"
    ganzoo.train("vanilla", steps=5, out=run, progress=False,
                 overrides={**TINY, "extensions": {"ema": {"decay": schedule}}})
    assert [v["extensions.ema.decay"] for v in scheduled(run)] == pytest.approx(expected)


def test_learning_rates_and_betas_reach_the_optimisers(tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = {**TINY, "lr_g": {"linear": [1e-3, 5e-4], "over": 2}, "lr_d": {"constant": 3e-4},
              "betas": [0.5, {"piecewise": [[0, 0.9], [2, 0.99]]}]}
    ganzoo.train("vanilla", steps=3, out=run, progress=False, overrides=config)
    state = load_checkpoint(run)  # after step 3: the values in force during step 3, i.e. at 2
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(5e-4)
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(3e-4)
    assert state["opt_g"]["param_groups"][0]["betas"] == pytest.approx((0.5, 0.99))
    assert [v["lr_g"] for v in scheduled(run)] == pytest.approx([1e-3, 7.5e-4, 5e-4])
    assert state["config"]["lr_g"] == {"linear": [1e-3, 5e-4], "over": 2}  # the config keeps the schedule


def test_a_resumed_run_with_schedules_is_exact(tmp_path: Path) -> None:
    config = {**TINY, "lr_d": {"cosine": [4e-4, 1e-4], "over": 6}, "checkpoint_every": 3,
              "extensions": {"ema": {"decay": {"linear": [0.5, 0.9], "over": 6}},
                             "r1": {"gamma": {"linear": [1.0, 0.1], "over": 6}, "every": 2}}}
    ganzoo.train("vanilla", steps=6, out=tmp_path / "whole", progress=False, overrides=config)
    ganzoo.train("vanilla", steps=3, out=tmp_path / "half", progress=False, overrides=config)
    ganzoo.train("vanilla", steps=6, out=tmp_path / "half", resume=True, progress=False)
    assert_same_weights(tmp_path / "whole", tmp_path / "half")
    assert scheduled(tmp_path / "whole") == scheduled(tmp_path / "half")


def test_a_plugin_defines_its_own_kind(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def register_schedules(self, register):
            register(ScheduleSpec("halving", lambda at, args, over: args * 0.5 ** (at // over)))

    with registered(Plugin(), "halving-plugin"):
        ganzoo.train("vanilla", steps=5, out=tmp_path / "run", progress=False,
                     overrides={**TINY, "lr_g": {"halving": 1e-3, "over": 2}})
    assert [v["lr_g"] for v in scheduled(tmp_path / "run")] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"lr_g": {"sawtooth": [1, 2]}}, r"lr_g: a schedule is a mapping with one kind \(constant, cosine, linear"),
    ({"lr_g": {"linear": [1e-3, 1e-4]}}, "lr_g: linear needs over"),
    ({"lr_g": {"linear": [1e-3], "over": 5}}, r"lr_g: linear takes \[start, end\]"),
    ({"lr_g": {"constant": 1e-3, "unit": "epochs"}}, "lr_g: unit must be one of steps, images"),
    ({"lr_g": {"constant": 1e-3, "over": -1}}, "lr_g: over must be a positive number"),
    ({"extensions": {"hidden-option": {"strength": {"constant": 2}}}},
     "extensions.hidden-option.strength: extension 'hidden-option' .plugin 'hidden-plugin'. does not keep its "
     "option 'strength' as an attribute"),
])
def test_a_bad_schedule_names_the_key(tmp_path: Path, overrides: dict, message: str) -> None:
    class Hidden(ganzoo.Extension):
        def __init__(self, strength: float = 1.0) -> None:
            self._strength = strength

    class Plugin:
        @hookimpl
        def register_extensions(self, register):
            register(ganzoo.ExtensionSpec("hidden-option", Hidden))

    with registered(Plugin(), "hidden-plugin"), pytest.raises(ConfigError, match=message):
        ganzoo.train("vanilla", steps=1, out=tmp_path / "run", progress=False, overrides={**TINY, **overrides})


def test_the_built_in_kinds_are_a_plugin(tmp_path: Path) -> None:
    from ganzoo.registry import get_registry

    assert {"constant", "linear", "cosine", "piecewise"} <= set(get_registry().schedules.names())
    assert get_registry().schedules.get("cosine").plugin == "schedules"
