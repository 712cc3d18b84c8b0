"""Run under torchrun by test_distributed.py: trains a few steps with DDP on gloo and records, after every
step, whether all ranks hold identical weights (and that they trained on different data)."""

import json
import sys

import torch

import ganzoo
from ganzoo import distributed
from ganzoo.assembly import assemble
from ganzoo.registry import get_registry
from ganzoo.trainer import Trainer, seed_everything

variant, steps, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
cfg = ganzoo.build_config(variant, steps=steps, overrides={"batch_size": 8})
info, device = distributed.setup(torch.device("cpu"))
images = ganzoo.load_dataset().images
seed_everything(cfg.seed)
trainer = Trainer(assemble(get_registry(), cfg, tuple(images.shape[1:])), images, device, {}, dist_info=info)
unequal_after, same_batches = [], []
for _ in range(steps):
    first = trainer.batches.position
    trainer.train_step()
    weights = torch.cat([p.detach().flatten() for m in (trainer.G, trainer.D) for p in m.parameters()])
    everyone = distributed.gather_objects(info, weights)
    if not all(torch.equal(everyone[0], w) for w in everyone[1:]):
        unequal_after.append(trainer.step)
    shard = trainer.batches.data[trainer.batches._perm[first : first + cfg.batch_size * info.world_size]]
    mine = shard[info.rank * cfg.batch_size : (info.rank + 1) * cfg.batch_size]
    shards = distributed.gather_objects(info, mine)
    if torch.equal(shards[0], shards[1]):
        same_batches.append(trainer.step)
if info.is_main:
    with open(report, "w") as f:
        json.dump({"world_size": info.world_size, "steps": trainer.step, "unequal_after": unequal_after,
                   "same_batches": same_batches}, f)
distributed.teardown()
