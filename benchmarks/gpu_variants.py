"""Every built-in variant on one GPU, with and without each CUDA fast path: images per second and final FID.

A one-shot script for the first time a GPU is at hand (well under 8 minutes on one H200 at the defaults): each
built-in variant (the registry's, so new ones are included) trains ``--steps`` steps on mnist-5k in each mode:
``fp32``, ``bf16`` and ``fp16`` autocast, ``channels_last`` and ``compile``. ``compile`` is skipped, and says
why, for a variant whose discriminator step differentiates D twice (a loss with ``double_backward``, such as
WGAN-GP, or an extension that adds a discriminator penalty, such as R1 or R2): compiled graphs cannot take a
double backward, and ganzoo keeps that step eager. Each run is scored once at the end with the bench's scorer
(1,000 generated images, the bundled MNIST feature extractor). Results are written after every run, so a
timeout keeps what finished::

    python benchmarks/gpu_variants.py      # on cuda, writes benchmarks/results/variants-cuda.json
    python benchmarks/gpu_variants.py --device cpu --steps 2 --modes fp32 --out /tmp/v.json   # a dry run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import ganzoo
from ganzoo.bench.profile import BenchProfile
from ganzoo.bench.trial import hardware, make_evaluator
from ganzoo.components import implements
from ganzoo.registry import get_registry
from ganzoo.training.assembly import assemble
from ganzoo.training.callbacks import Evaluation

RESULTS = Path(__file__).parent / "results"
#: Training config keys of each mode.
MODES: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"amp": "bf16"},
    "fp16": {"amp": "fp16"},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
}


def builtin_variants() -> list[str]:
    """The variants that ganzoo's own plugins register."""
    builtin = {p.name for p in ganzoo.list_plugins() if p.builtin}
    return [v["name"] for v in ganzoo.list_variants() if v["plugin"] in builtin]


def double_backward(variant: str) -> str | None:
    """Why the variant's discriminator step differentiates D twice (so compile keeps it eager), or ``None``."""
    cfg = ganzoo.build_config(variant, overrides={"device": "cpu"})
    data = ganzoo.load_dataset(cfg.dataset)
    assembly = assemble(get_registry(), cfg, data.image_shape, num_classes=data.num_classes)  # on the CPU: small
    if getattr(assembly.loss, "double_backward", False):
        return f"loss {assembly.names['loss']!r} differentiates D twice"
    penalising = [e.name for e in assembly.extensions if implements(e.extension, "discriminator_penalty")]
    return f"extension {penalising[0]!r} adds a discriminator penalty" if penalising else None


def run_one(variant: str, mode: str, args: argparse.Namespace, real: torch.Tensor) -> dict[str, Any]:
    """Train ``variant`` in ``mode`` and score it at the end; a failure is recorded, not raised."""
    profile = BenchProfile(num_fake=args.num_fake, dataset="mnist-5k")
    scorer = make_evaluator(real, profile, seed=0, cache_dir=None,
                            dataset_metrics=get_registry().datasets.get("mnist-5k").item.metrics)
    overrides = {"device": args.device, "sample_every": 0, "log_every": args.steps, **MODES[mode]}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        try:
            result = ganzoo.train(variant, steps=args.steps, out=Path(out) / "run", progress=False,
                                  overrides=overrides, callbacks=[Evaluation(scorer, at_start=False)])
        except Exception as exc:  # an unsupported combination must not stop the others
            return {"variant": variant, "mode": mode, "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                    "wall_seconds": round(time.perf_counter() - started, 1)}
    final = result.evaluations[-1] if result.evaluations else {}
    return {"variant": variant, "mode": mode, "status": "ok", "steps": result.steps,
            "images_per_second": result.images_per_second, "train_seconds": result.train_seconds,
            "fid": final.get("fid"), "wall_seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--num-fake", type=int, default=1000)
    parser.add_argument("--variants", default=None, help="comma-separated (default: every built-in variant)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--budget-seconds", type=float, default=420.0,
                        help="start no run after this many seconds (what did not run is recorded so)")
    parser.add_argument("--out", type=Path, default=RESULTS / "variants-cuda.json")
    args = parser.parse_args()
    variants = args.variants.split(",") if args.variants else builtin_variants()
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    real = ganzoo.load_dataset("mnist-5k").images
    report: dict[str, Any] = {"format": 1, "date": time.strftime("%Y-%m-%d"), "device": args.device,
                              "hardware": hardware(), "torch": torch.__version__, "ganzoo": ganzoo.version(),
                              "steps": args.steps, "num_fake": args.num_fake, "runs": []}
    started = time.perf_counter()
    for variant in variants:
        eager_reason = double_backward(variant) if "compile" in modes else None
        for mode in modes:
            if time.perf_counter() - started > args.budget_seconds:
                row = {"variant": variant, "mode": mode, "status": "not run", "reason": "time budget spent"}
            elif mode == "fp16" and args.device == "cpu":
                row = {"variant": variant, "mode": mode, "status": "skipped", "reason": "fp16 needs CUDA"}
            elif mode == "compile" and eager_reason:
                row = {"variant": variant, "mode": mode, "status": "skipped",
                       "reason": f"{eager_reason}: compile keeps that step eager"}
            else:
                row = run_one(variant, mode, args, real)
            report["runs"].append(row)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
