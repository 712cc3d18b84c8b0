"""Per-class agreement of the conditional generators in a bench directory: for every trial whose generator is
conditional, draw ``--per-class`` samples of each class from its final checkpoint and report the share that the
bundled MNIST classifier assigns to the class asked for, per class, and the lowest.

    python benchmarks/class_agreement.py benchmarks/results/conditional

writes ``class_agreement.json`` into that directory (the checkpoints must be there: they are not committed,
so run this right after the bench).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from ganzoo_plugins.datasets import class_agreement

import ganzoo
from ganzoo.bench import load_results
from ganzoo.bench.trial import hardware
from ganzoo.data import to_uint8
from ganzoo.metrics import predict_digits


def trial_agreement(run: Path, per_class: int, seed: int) -> dict[str, object] | None:
    """Per-class agreement of the run's sampling generator, or ``None`` if it is not conditional."""
    G, _ = ganzoo.load_generator(run)
    num_classes = getattr(G, "num_classes", None)
    if num_classes is None:
        return None
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    images = to_uint8(ganzoo.sample(run, n=len(labels), labels=labels, seed=seed))
    _, by_class = class_agreement(predict_digits(images), labels)
    return {"per_class": {str(k): round(v, 4) for k, v in sorted(by_class.items())},
            "min": round(min(by_class.values()), 4),
            "mean": round(sum(by_class.values()) / len(by_class), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench_dir", type=Path)
    parser.add_argument("--per-class", type=int, default=200, help="samples drawn for each class")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the latents")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for trial in load_results(args.bench_dir)["trials"]:
        if trial["status"] != "ok":
            continue
        run = args.bench_dir / trial["artifacts"]["checkpoint"]
        found = trial_agreement(run.parent, args.per_class, args.seed)
        if found is not None:
            rows.append({"variant": trial["variant"], "seed": trial["seed"], "steps": trial["steps"],
                         "train_seconds": trial["train_seconds"], **found})
            print(f"{trial['variant']:<10} seed {trial['seed']}  min {found['min']:.3f}  mean {found['mean']:.3f}  "
                  + " ".join(f"{k}:{v:.2f}" for k, v in found["per_class"].items()))
    out = {"per_class_samples": args.per_class, "seed": args.seed, "classifier": "ganzoo-mnist",
           "hardware": hardware(), "trials": rows}
    (args.bench_dir / "class_agreement.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
