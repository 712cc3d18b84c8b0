"""Which fast paths a run takes: each switch is ``true``, ``false`` or ``auto``, on where it was measured faster.

``auto`` (every switch's default) turns a switch on for the device types listed in :data:`AUTO`: those where
``benchmarks/throughput.py --fast-paths`` measured it faster for the built-in variants and the bench found
equal-step quality unchanged (docs/performance.md has the tables and the runs behind each entry). Elsewhere
``auto`` leaves it off; ``true`` and ``false`` force it either way.
"""

from __future__ import annotations

from typing import Any

SWITCHES = ("fused_optimizer", "channels_last", "compile")
#: Device type -> the switches ``auto`` turns on there. A device type not listed gets none of them. On the CPU,
#: fused Adam was timed against the unfused default for every built-in variant (benchmarks/results/
#: fast-paths-cpu.json); channels-last and compile stay off until measured faster. CUDA has not been measured
#: yet: there ``auto`` turns nothing on.
AUTO: dict[str, frozenset[str]] = {
    "cpu": frozenset({"fused_optimizer"}),
}


def enabled(config: Any, switch: str, device_type: str) -> bool:
    """Whether ``switch`` (one of :data:`SWITCHES`) is on for a run of ``config`` on ``device_type``."""
    value = getattr(config, switch)
    if value == "auto":
        return switch in AUTO.get(device_type, frozenset())
    return bool(value)
