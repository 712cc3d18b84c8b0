"""Which fast paths a run takes. Each switch is ``true``, ``false`` or ``auto`` (the default), which turns it on for
the device types listed in :data:`AUTO`: those where ``benchmarks/throughput.py --fast-paths`` measured it faster for
the built-in variants and the bench found equal-step quality unchanged (docs/performance.md has the tables and the
runs behind each entry); elsewhere ``auto`` leaves it off. The ``discriminator_pass`` key
(:func:`joint_discriminator_pass`) decides by the network instead of the device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

SWITCHES = ("fused_optimizer", "channels_last", "compile")
#: Device type -> the switches ``auto`` turns on there (none for a device type not listed): fused Adam, faster on the
#: CPU and on CUDA; channels-last and compile were slower, equal or within noise (docs/performance.md).
AUTO: dict[str, frozenset[str]] = {"cpu": frozenset({"fused_optimizer"}), "cuda": frozenset({"fused_optimizer"})}


def enabled(config: Any, switch: str, device_type: str) -> bool:
    """Whether ``switch`` (one of :data:`SWITCHES`) is on for a run of ``config`` on ``device_type``."""
    value = getattr(config, switch)
    return switch in AUTO.get(device_type, frozenset()) if value == "auto" else bool(value)


def joint_discriminator_pass(config: Any, discriminator: nn.Module, augmented: bool) -> bool:
    """Whether :func:`ganzoo.score_pair` scores the real and the fake batch in one discriminator call, as
    ``discriminator_pass`` says; ``auto``: when ``discriminator`` is :func:`batch_independent` and no extension
    augments what it sees (an augmentation may act across a batch, mixing real samples with fake ones)."""
    if config.discriminator_pass != "auto":
        return config.discriminator_pass == "joint"
    return not augmented and batch_independent(discriminator)


def batch_independent(module: nn.Module) -> bool:
    """True when ``module`` holds no buffers and no parametrizations, so that one forward pass on two batches
    concatenated gives the scores of two passes, one per batch: no BatchNorm statistics shared by the samples of a
    batch, no state that every pass updates (spectral norm's power iteration, whose count per step would halve)."""
    from torch.nn.utils import parametrize
    return next(module.buffers(), None) is None and not any(parametrize.is_parametrized(m) for m in module.modules())
