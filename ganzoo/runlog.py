"""What a run records as it trains: ``log.jsonl`` and, when tensorboard is installed, TensorBoard event files.

Both live in the run directory, so ``tensorboard --logdir runs`` shows every run (and every bench trial) by
its path. The tags, one scheme for every variant:

=============================  ==================================================================
``loss/discriminator``         the discriminator loss at every logged step (``log_every``)
``loss/generator``             the generator loss at the same steps
``throughput/images_per_second``  real images per second of training since the run (or resume) began
``eval/<metric>``              every evaluation (the bench's, or ``evaluate=`` of ``Trainer.run``):
                               ``eval/fid``, ``eval/kid_mean``, ``eval/precision``, ... (the keys of
                               :mod:`ganzoo.metric_keys`)
``samples/fixed_latents``      the fixed-latent sample grid, at every ``sample_every`` and at the end
=============================  ==================================================================

The x axis is the generator step. A resumed run continues both files from its checkpoint's step: lines and
events of steps after it (written by the run that was interrupted) are dropped, so no step appears twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

#: The run directory's log of losses and throughput, one JSON object per logged step.
LOG_FILE = "log.jsonl"
#: The prefix of the event files TensorBoard's SummaryWriter writes into the run directory.
EVENTS_PREFIX = "events.out.tfevents."
TAG_D_LOSS = "loss/discriminator"
TAG_G_LOSS = "loss/generator"
TAG_IMAGES_PER_SECOND = "throughput/images_per_second"
TAG_EVAL = "eval/"  # + metric key
TAG_SAMPLES = "samples/fixed_latents"


def summary_writer(out: Path, start_step: int) -> Any | None:
    """TensorBoard's ``SummaryWriter`` into ``out`` (purging events after ``start_step`` on a resume), or
    ``None`` when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional (ganzoo[tensorboard])
        return None
    if start_step:
        # Readers take a run's event files in name order, which starts with the second a file was created (the
        # rest is not zero-padded): a resume's file must come from a later second than the files it continues,
        # or its purge of the interrupted run's later steps is read before them.
        created = [_created(p) for p in out.glob(EVENTS_PREFIX + "*")]
        latest = max((c for c in created if c is not None), default=0)
        while int(time.time()) <= latest:
            time.sleep(0.05)
    return SummaryWriter(str(out), purge_step=start_step + 1 if start_step else None)


def _created(path: Path) -> int | None:
    """The creation second in an event file's name (``events.out.tfevents.SECONDS.HOST...``)."""
    try:
        return int(path.name[len(EVENTS_PREFIX):].split(".", 1)[0])
    except ValueError:
        return None


def drop_lines_after(path: Path, step: int) -> None:
    """Keep the lines of ``path`` (a ``log.jsonl``) up to ``step``: those after it belong to an interrupted run
    that is resumed from ``step``."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines(keepends=True)
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(kept))


class RunLog:
    """The run directory's logs: ``log.jsonl`` always, TensorBoard events when tensorboard is installed.

    ``enabled=False`` (a rank other than 0 under torchrun) writes nothing."""

    def __init__(self, out: Path, start_step: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self.file = None
        self.writer = None
        if enabled:
            if start_step:
                drop_lines_after(out / LOG_FILE, start_step)
            self.file = open(out / LOG_FILE, "a")
            self.writer = summary_writer(out, start_step)

    def losses(self, record: dict[str, Any]) -> None:
        """One ``log.jsonl`` line (``step``, ``d_loss``, ``g_loss``, ``img_per_s``, ...) and its scalars."""
        if self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is not None:
            step = record["step"]
            self.writer.add_scalar(TAG_D_LOSS, record["d_loss"], step)
            self.writer.add_scalar(TAG_G_LOSS, record["g_loss"], step)
            if record.get("img_per_s") is not None:
                self.writer.add_scalar(TAG_IMAGES_PER_SECOND, record["img_per_s"], step)

    def evaluation(self, step: int, scores: dict[str, float]) -> None:
        """An evaluation's scores, as ``eval/<metric>`` scalars."""
        if self.writer is not None:
            for key, value in scores.items():
                self.writer.add_scalar(TAG_EVAL + key, value, step)

    def samples(self, step: int, grid: torch.Tensor) -> None:
        """A sample grid image, ``(3, H, W)`` floats in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(TAG_SAMPLES, grid, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.writer is not None:
            self.writer.close()
