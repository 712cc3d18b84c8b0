"""Run under torchrun by test_distributed.py: trains a few steps with DDP on gloo and records, after every
step, whether all ranks hold identical weights (and that they trained on different data). The optional
fourth argument is the data_loading mode (memory or stream)."""

import json
import sys

import torch

import ganzoo
from ganzoo import distributed
from ganzoo.assembly import assemble
from ganzoo.registry import get_registry
from ganzoo.trainer import Trainer, seed_everything

variant, steps, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
loading = sys.argv[4] if len(sys.argv) > 4 else "memory"
torch.set_num_threads(1)
cfg = ganzoo.build_config(variant, steps=steps, overrides={"batch_size": 8, "data_loading": loading,
                                                           "data_workers": 1})
info, device = distributed.setup(torch.device("cpu"))
images = ganzoo.load_dataset().images
seed_everything(cfg.seed)
trainer = Trainer(assemble(get_registry(), cfg, tuple(images.shape[1:])), images, device, {}, dist_info=info)
batches: list[torch.Tensor] = []  # what this rank trained on during the current step
next_batch = trainer.batches.next
trainer.batches.next = lambda: batches.append(next_batch()) or batches[-1]
unequal_after, same_batches = [], []
for _ in range(steps):
    batches.clear()
    trainer.train_step()
    weights = torch.cat([p.detach().flatten() for m in (trainer.G, trainer.D) for p in m.parameters()])
    everyone = distributed.gather_objects(info, weights)
    if not all(torch.equal(everyone[0], w) for w in everyone[1:]):
        unequal_after.append(trainer.step)
    shards = distributed.gather_objects(info, torch.cat(batches))
    if torch.equal(shards[0], shards[1]):
        same_batches.append(trainer.step)
trainer.batches.close()
if info.is_main:
    with open(report, "w") as f:
        json.dump({"world_size": info.world_size, "steps": trainer.step, "loader": type(trainer.batches).__name__,
                   "unequal_after": unequal_after,
                   "same_batches": same_batches}, f)
distributed.teardown()
