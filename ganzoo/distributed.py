"""Data-parallel training on torch.distributed, as launched by ``torchrun --nproc-per-node N -m ganzoo train``.
:func:`setup` joins the process group (NCCL on CUDA, gloo on the CPU); the trainer wraps G and D in DDP, shards
every global batch and lets only rank 0 write. Without ``torchrun`` nothing here does anything."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job: rank, world size, local rank (1 process: 0, 1, 0)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group if torchrun started several processes (NCCL on CUDA, else gloo): rank info, device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def teardown() -> None:
    """Leave the process group (after a final barrier), if one was joined."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_rank(code: int = 0) -> NoReturn:
    """End this torchrun rank with exit status ``code``: flush its output, then ``os._exit`` without the
    interpreter's shutdown, where gloo's threads, which outlive :func:`teardown`, would abort the rank with
    ``std::terminate`` at random. Every file a run writes is complete before this is called."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream has nothing left to flush
            stream.flush()
    logging.shutdown()
    os._exit(code)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (just ``[obj]`` in a single process)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_across_ranks(info: DistInfo, values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over the ranks (all ranks get it), so every rank decides alike."""
    if not info.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / info.world_size
