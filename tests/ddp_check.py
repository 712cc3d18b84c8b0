"""Run under torchrun by test_distributed.py: trains a few steps with DDP on gloo and records, after every
step, whether all ranks hold identical weights, the sampling generator of an extension (EMA) included, and
that they trained on different data. The optional fourth argument is the data_loading mode (memory or
stream), the fifth a comma-separated list of extensions (without it, the variant's own)."""

import json
import sys

import torch

import ganzoo
from ganzoo import distributed
from ganzoo.training.run import build_trainer

variant, steps, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
loading = sys.argv[4] if len(sys.argv) > 4 else "memory"
overrides = {"batch_size": 8, "data_loading": loading, "data_workers": 1}
if len(sys.argv) > 5:
    overrides["extensions"] = sys.argv[5]
torch.set_num_threads(1)
cfg = ganzoo.build_config(variant, steps=steps, overrides=overrides)
info, device = distributed.setup(torch.device("cpu"))
trainer = build_trainer(cfg, ganzoo.load_dataset(), device=device, dist_info=info)
batches: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # what this rank trained on during the current step
next_batch = trainer.batches.next
trainer.batches.next = lambda: batches.append(next_batch()) or batches[-1]
unequal_after, same_batches = [], []
for _ in range(steps):
    batches.clear()
    trainer.train_step()
    # parameters (BatchNorm running statistics are per rank without sync_batchnorm, as in any DDP run)
    networks = (trainer.G, trainer.D, trainer.sampling_generator)
    weights = torch.cat([p.detach().flatten() for m in networks for p in m.parameters()])
    everyone = distributed.gather_objects(info, weights)
    if not all(torch.equal(everyone[0], w) for w in everyone[1:]):
        unequal_after.append(trainer.step)
    shards = distributed.gather_objects(info, torch.cat([images for images, _ in batches]))
    if torch.equal(shards[0], shards[1]):
        same_batches.append(trainer.step)
trainer.batches.close()
if info.is_main:
    with open(report, "w") as f:
        json.dump({"world_size": info.world_size, "steps": trainer.step, "loader": type(trainer.batches).__name__,
                   "labelled": all(labels is not None for _, labels in batches),
                   "sampler": trainer.sampler_name,
                   "unequal_after": unequal_after,
                   "same_batches": same_batches}, f)
distributed.teardown()
distributed.exit_rank(0)  # not the interpreter's shutdown, during which gloo's threads can abort the rank
