"""The names and files of what a run records as it trains: ``log.jsonl`` and, when tensorboard is installed,
TensorBoard event files (written by the :class:`~ganzoo.training.callbacks.LossLog` and
:class:`~ganzoo.training.callbacks.TensorBoard` callbacks), both in the run directory, so ``tensorboard --logdir
runs`` shows every run (and every bench trial) by its path. The tags below (docs/concepts.md says what each holds)
are one scheme for every variant, against the generator step. A resumed run continues both files from its
checkpoint's step: lines and events of steps after it (written by the run that was interrupted) are dropped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

#: The run directory's log of losses and throughput, one JSON object per logged step.
LOG_FILE = "log.jsonl"
#: The prefix of the event files TensorBoard's SummaryWriter writes into the run directory.
EVENTS_PREFIX = "events.out.tfevents."
TAG_D_LOSS = "loss/discriminator"
TAG_G_LOSS = "loss/generator"
TAG_IMAGES_PER_SECOND = "throughput/images_per_second"
TAG_EVAL = "eval/"  # + metric key
TAG_SAMPLES = "samples/fixed_latents"
TAG_SCHEDULED = "scheduled/"  # + config key of a scheduled hyperparameter (lr_g, extensions.r1.gamma, ...)


def summary_writer(out: Path, start_step: int) -> Any | None:
    """TensorBoard's ``SummaryWriter`` into ``out`` (purging events after ``start_step``), or ``None`` without it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional (ganzoo-gan[tensorboard])
        return None
    if start_step:
        # Readers take a run's event files in name order, which starts with the second a file was created (the
        # rest is not zero-padded): a resume's file must come from a later second than the files it continues,
        # or its purge of the interrupted run's later steps is read before them.
        latest = max((_created(p) for p in out.glob(EVENTS_PREFIX + "*")), default=0)
        while int(time.time()) <= latest:
            time.sleep(0.05)
    return SummaryWriter(str(out), purge_step=start_step + 1 if start_step else None)


def _created(path: Path) -> int:
    """The creation second in an event file's name (``events.out.tfevents.SECONDS.HOST...``), 0 if it has none."""
    try:
        return int(path.name[len(EVENTS_PREFIX):].split(".", 1)[0])
    except ValueError:
        return 0


def drop_lines_after(path: Path, step: int) -> None:
    """Keep the lines of ``path`` (a ``log.jsonl``) up to ``step``: later ones are an interrupted run's."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines(keepends=True)
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(kept))
