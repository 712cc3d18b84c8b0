"""The built-in kinds of schedule, registered through the same hook a third-party package uses.

``constant: v``; ``linear: [start, end]`` and ``cosine: [start, end]`` (half a cosine, as in SGDR's annealing)
from ``start`` at 0 to ``end`` at ``over``, then ``end``; ``piecewise: [[at, value], ...]``, linear between the
given points (sorted by ``at``) and constant outside them.
"""

from __future__ import annotations

import math
from typing import Any

from ganzoo import ScheduleSpec, hookimpl


def _pair(args: Any, kind: str) -> tuple[float, float]:
    if not (isinstance(args, (list, tuple)) and len(args) == 2
            and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)):
        raise ValueError(f"{kind} takes [start, end], two numbers, not {args!r}")
    return float(args[0]), float(args[1])


def _fraction(at: float, over: float | None, kind: str) -> float:
    if over is None or over <= 0:
        raise ValueError(f"{kind} needs over: the length of the change, a positive number of steps or images")
    return min(max(at / over, 0.0), 1.0)


def constant(at: float, args: Any, over: float | None) -> float:
    if isinstance(args, bool) or not isinstance(args, (int, float)):
        raise ValueError(f"constant takes one number, not {args!r}")
    return float(args)


def linear(at: float, args: Any, over: float | None) -> float:
    start, end = _pair(args, "linear")
    return start + (end - start) * _fraction(at, over, "linear")


def cosine(at: float, args: Any, over: float | None) -> float:
    start, end = _pair(args, "cosine")
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * _fraction(at, over, "cosine")))


def piecewise(at: float, args: Any, over: float | None) -> float:
    try:
        points = sorted((float(a), float(v)) for a, v in args)
    except (TypeError, ValueError):
        raise ValueError(f"piecewise takes [[at, value], ...], not {args!r}") from None
    if not points:
        raise ValueError("piecewise needs at least one [at, value] point")
    if at <= points[0][0]:
        return points[0][1]
    for (a0, v0), (a1, v1) in zip(points, points[1:], strict=False):
        if at <= a1:
            return v0 + (v1 - v0) * (at - a0) / (a1 - a0)
    return points[-1][1]


@hookimpl
def register_schedules(register):
    register(ScheduleSpec("constant", constant, "The same value at every step"))
    register(ScheduleSpec("linear", linear, "From start to end over `over`, then end"))
    register(ScheduleSpec("cosine", cosine, "Half a cosine from start to end over `over`, then end"))
    register(ScheduleSpec("piecewise", piecewise, "Linear between [at, value] points, constant outside"))
