"""Train the ``ganzoo-mnist`` feature extractor (the small MNIST CNN) reproducibly.

Trains on the mnist-5k ``train`` split (4,500 images) with light augmentation (random small rotations,
scalings and shifts), for a fixed number of epochs (no model selection on the test split), then reports
accuracy on the ``test`` split (500 images). Writes ``ganzoo/metrics/weights/mnist_cnn.safetensors``,
prints its sha256 (paste it into ``WEIGHTS_SHA256`` in ``ganzoo/metrics/classifier.py``) and writes
``benchmarks/results/feature_extractor.json``.

    python benchmarks/train_feature_extractor.py [--seed 0] [--epochs 15]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import ganzoo
from ganzoo.metrics.classifier import (
    WEIGHTS_PATH,
    MnistCNN,
    sha256_file,
    uint8_to_input,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = ROOT / "benchmarks" / "results" / "feature_extractor.json"


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random rotation (+-10 deg), scale (0.9-1.1) and shift (+-2 px) of images in [-1, 1]."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 0.9 + torch.rand(n, generator=generator) * 0.2
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)  # 2 px in normalised coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    rows = [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)]
    theta = torch.stack(rows, 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Sample in [0, 2] so that zero padding is the black background (-1 after shifting back).
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@torch.no_grad()
def accuracy(model: MnistCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on preprocessed inputs ``x``."""
    model.eval()
    pred = torch.cat([model(chunk).argmax(1) for chunk in x.split(500)])
    return float((pred == y).float().mean())


def train(seed: int, epochs: int, batch_size: int = 64, lr: float = 3e-3) -> tuple[MnistCNN, dict]:
    """Train the classifier from ``seed``; return it and a summary dictionary."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    train, test = ganzoo.load_dataset("mnist-5k", "train"), ganzoo.load_dataset("mnist-5k", "test")
    x_train_u8, y_train = train.images, train.labels
    x_test_u8, y_test = test.images, test.labels
    x_train, x_test = uint8_to_input(x_train_u8), uint8_to_input(x_test_u8)

    model = MnistCNN()
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            xb, yb = augment(x_train[idx], generator), y_train[idx]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x_train):.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    model.eval()
    summary = {
        "seed": seed,
        "epochs": epochs,
        "train_size": len(x_train),
        "test_size": len(x_test),
        "train_accuracy": accuracy(model, x_train, y_train),
        "test_accuracy": accuracy(model, x_test, y_test),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return model, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--results", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()

    model, summary = train(args.seed, args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # No safetensors metadata: its key order is not stable, and the file's sha256 must be reproducible.
    save_file(state, str(args.out))
    digest = sha256_file(args.out)
    summary.update(sha256=digest, torch_version=torch.__version__, weights_bytes=args.out.stat().st_size)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"test accuracy {summary['test_accuracy']:.4f} on {summary['test_size']} images")
    print(f"wrote {args.out} ({summary['weights_bytes']} bytes)")
    print(f"sha256 {digest}")


if __name__ == "__main__":
    main()
