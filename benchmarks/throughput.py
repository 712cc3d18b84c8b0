"""Engine overhead: the ganzoo trainer against a plain PyTorch loop of the same algorithm.

For each variant, both loops train the same generator and discriminator modules (built by the plugins
through the public API) on the same in-memory data, with the same batch size, optimisers and n_critic.
Runs alternate in counterbalanced pairs (ganzoo then plain, plain then ganzoo, ...) so that drifts of the
machine hit both alike and neither loop always runs first, and the median images per second of each is
reported with their ratio. The FLOPs of one training step are counted
once with ``torch.utils.flop_counter``'s registry and compared with a large fp32 matmul measured in the same run.

    python benchmarks/throughput.py                      # all variants, CPU, writes benchmarks/results/
    python benchmarks/throughput.py --variants vanilla --seconds 5 --rounds 3
    python benchmarks/throughput.py --variants vanilla --set compile=true --warmup 100 --table compile

With ``--warmup N`` both loops first run N untimed steps (for ``compile=true``: compilation, whose seconds
are reported separately); ``--table NAME`` names the report and the table in docs/performance.md it updates.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

import ganzoo
from ganzoo.api import versions
from ganzoo.assembly import assemble
from ganzoo.bench import hardware
from ganzoo.data import to_model_range
from ganzoo.registry import get_registry
from ganzoo.trainer import Trainer, make_optimizer, seed_everything

RESULTS = Path(__file__).parent / "results"


def build(variant: str, steps: int, device: torch.device, overrides: dict[str, Any]):
    """The variant's config, its assembled modules and the training images, as the trainer would get them."""
    registry = get_registry()
    cfg = ganzoo.build_config(variant, steps=steps, overrides={"sample_every": 0, "log_every": 1000, **overrides})
    images = ganzoo.load_dataset(cfg.dataset).images
    seed_everything(0)
    assembly = assemble(registry, cfg, tuple(images.shape[1:]), device)
    return cfg, assembly, images


def ganzoo_run(variant: str, steps: int, device: torch.device, overrides: dict[str, Any],
               warmup: int = 0) -> tuple[float, float, float]:
    """Images per second of ``Trainer.run`` over ``steps`` after ``warmup`` untimed steps; the seconds of the
    warm-up; and the seconds of the files ``run`` writes after its last step.

    The rate is the wall clock of the whole ``run`` call (logging, checks and progress logic included) less
    the end-of-run writes (final checkpoint, sample grid, generator export), which cost the same for any
    length of run and would otherwise dominate a run of a few steps. They are timed by calling ``run`` once
    more on the finished trainer, which then only writes those files.
    """
    cfg, assembly, images = build(variant, warmup + steps, device, overrides)
    trainer = Trainer(assembly, images, device, versions())
    t0 = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    warmup_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        trainer.run(Path(out), progress=False)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        trainer.run(Path(out), progress=False)  # no steps left: the end-of-run writes alone
        end_s = time.perf_counter() - t0
    return steps * cfg.batch_size * cfg.n_critic / (wall - end_s), warmup_s, end_s


def plain_step_fn(cfg, G, D, data: torch.Tensor, device: torch.device):
    """A hand-written training step of the same algorithm: no plugins, no checks, no logging."""
    opt_g = make_optimizer(cfg.optimizer, G.parameters(), cfg.lr_g, cfg.betas)
    opt_d = make_optimizer(cfg.optimizer, D.parameters(), cfg.lr_d, cfg.betas)
    wgan = cfg.loss == "wgan-gp" or (cfg.loss is None and cfg.variant == "wgan-gp")
    gp_lambda = float(cfg.loss_options.get("gp_lambda", 10.0))
    n, bs = data.shape[0], cfg.batch_size
    state = {"perm": torch.randperm(n), "pos": 0}

    def batch() -> torch.Tensor:
        if state["pos"] + bs > n:
            state["perm"], state["pos"] = torch.randperm(n), 0
        idx = state["perm"][state["pos"] : state["pos"] + bs]
        state["pos"] += bs
        return data[idx]

    def step() -> None:
        for _ in range(cfg.n_critic):
            real = batch()
            with torch.no_grad():
                fake = G(torch.randn(bs, cfg.latent_dim, device=device))
            if wgan:
                alpha = torch.rand(bs, 1, 1, 1, device=device)
                x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
                gp = (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
                d_loss = D(fake).mean() - D(real).mean() + gp_lambda * gp
            else:
                d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        fake = G(torch.randn(bs, cfg.latent_dim, device=device))
        g_loss = -D(fake).mean() if wgan else F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step


def plain_run(variant: str, steps: int, device: torch.device, overrides: dict[str, Any], warmup: int = 0) -> float:
    """Images per second of the plain loop (eager, whatever the overrides' fast paths) after ``warmup`` steps."""
    cfg, assembly, images = build(variant, steps, device, overrides)
    step = plain_step_fn(cfg, assembly.generator, assembly.discriminator, to_model_range(images).to(device), device)
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return steps * cfg.batch_size * cfg.n_critic / wall


class _FlopCounter(TorchDispatchMode):
    """Counts FLOPs with torch.utils.flop_counter's registry. (FlopCounterMode itself tracks modules with
    hooks that torch.autograd.grad, which the gradient penalty calls, does not support.)"""

    total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def flops_per_image(variant: str, device: torch.device, overrides: dict[str, Any]) -> float:
    """FLOPs of one training step (all n_critic D updates and the G update) per real image."""
    cfg, assembly, images = build(variant, 1, device, overrides)
    step = plain_step_fn(cfg, assembly.generator, assembly.discriminator, to_model_range(images).to(device), device)
    with _FlopCounter() as counter:
        step()
    return counter.total / (cfg.batch_size * cfg.n_critic)


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def calibrate(variant: str, seconds: float, device: torch.device, overrides: dict[str, Any]) -> int:
    """Steps that take about ``seconds`` in the plain loop."""
    rate = plain_run(variant, 5, device, overrides)
    cfg = ganzoo.build_config(variant, overrides=overrides)
    return max(10, int(rate * seconds / (cfg.batch_size * cfg.n_critic)))


DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def markers(table: str) -> tuple[str, str]:
    """The comments around table ``table`` in docs/performance.md."""
    return f"<!-- {table}:begin -->", f"<!-- {table}:end -->"


def render_table(report: dict[str, Any]) -> str:
    """The Markdown table of a throughput report, as docs/performance.md shows it."""
    hw = report["hardware"]
    begin, end = markers(report.get("table", "throughput"))
    warmup = report.get("warmup_steps", 0)
    writes = all("ganzoo_end_of_run_s" in row for row in report["variants"])  # older reports lack it
    lines = [begin,
             f"Measured {report['date']} on {hw['gpu'] or hw['cpu']} ({hw['threads']} threads), torch "
             f"{report['torch']}, ganzoo {report['ganzoo']}; fp32 matmul reference {report['matmul_gflops']} GFLOP/s"
             + (f"; overrides {report['overrides']}" if report["overrides"] else "")
             + (f"; timed after {warmup} untimed warm-up steps" if warmup else "") + ".",
             "",
             "| Variant | ganzoo img/s | plain loop img/s | ratio | GFLOP/s | of matmul |"
             + (" ganzoo end-of-run writes s |" if writes else "") + (" ganzoo warm-up s |" if warmup else ""),
             "|---|---|---|---|---|---|" + ("---|" if writes else "") + ("---|" if warmup else "")]
    for row in report["variants"]:
        lines.append(f"| {row['variant']} | {row['ganzoo_img_per_s']:.1f} | {row['plain_img_per_s']:.1f} | "
                     f"{row['ratio']:.3f} | {row['achieved_gflops']:.2f} | {row['fraction_of_matmul']:.1%} |"
                     + (f" {row['ganzoo_end_of_run_s']:.2f} |" if writes else "")
                     + (f" {row['ganzoo_warmup_s']:.1f} |" if warmup else ""))
    lines.append(end)
    return "\n".join(lines)


def update_doc(report: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the report's table (between its markers) in ``doc`` with :func:`render_table` of ``report``."""
    text = doc.read_text()
    begin, end = markers(report.get("table", "throughput"))
    start, stop = text.index(begin), text.index(end) + len(end)
    doc.write_text(text[:start] + render_table(report) + text[stop:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="vanilla,dcgan,wgan-gp")
    parser.add_argument("--seconds", type=float, default=8.0, help="Target seconds per timed run.")
    parser.add_argument("--rounds", type=int, default=4,
                        help="Pairs of runs per variant, the order alternating (even: balanced).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="Config override key=value.")
    parser.add_argument("--warmup", type=int, default=0, help="Untimed steps before each timed run.")
    parser.add_argument("--table", default="throughput", help="Report and docs/performance.md table name.")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default benchmarks/results/TABLE-DEVICE.json).")
    parser.add_argument("--update-doc", action="store_true", help="Also rewrite the table in docs/performance.md.")
    args = parser.parse_args()
    device = torch.device(args.device)
    overrides = dict(s.split("=", 1) for s in args.sets)
    peak = matmul_gflops(device)
    print(f"device {device}, {torch.get_num_threads()} threads; fp32 matmul 2048^3: {peak:.1f} GFLOP/s")
    print(f"{'variant':<9} {'steps':>6} {'ganzoo img/s':>13} {'plain img/s':>12} {'ratio':>6} {'GFLOP/s':>8} "
          f"{'of matmul':>9}")
    rows = []
    for variant in args.variants.split(","):
        steps = calibrate(variant, args.seconds, device, overrides)
        ours, plain, warm, ends = [], [], [], []
        for r in range(args.rounds):
            if r % 2:  # odd rounds time the plain loop first: neither loop always runs first
                plain.append(plain_run(variant, steps, device, overrides, args.warmup))
            rate, warmup_s, end_s = ganzoo_run(variant, steps, device, overrides, args.warmup)
            ours.append(rate)
            warm.append(warmup_s)
            ends.append(end_s)
            if r % 2 == 0:
                plain.append(plain_run(variant, steps, device, overrides, args.warmup))
        g, p = statistics.median(ours), statistics.median(plain)
        fpi = flops_per_image(variant, device, overrides)
        achieved = g * fpi / 1e9
        row = {"variant": variant, "steps": steps, "rounds": args.rounds, "ganzoo_img_per_s": round(g, 1),
               "plain_img_per_s": round(p, 1), "ratio": round(g / p, 4), "ganzoo_runs": [round(x, 1) for x in ours],
               "plain_runs": [round(x, 1) for x in plain], "flops_per_image": fpi,
               "ganzoo_warmup_s": round(statistics.median(warm), 2),
               "ganzoo_end_of_run_s": round(statistics.median(ends), 3),
               "achieved_gflops": round(achieved, 2), "fraction_of_matmul": round(achieved / peak, 4)}
        rows.append(row)
        print(f"{variant:<9} {steps:>6} {g:>13.1f} {p:>12.1f} {g / p:>6.3f} {achieved:>8.2f} {achieved / peak:>9.1%}")
    report = {"table": args.table, "warmup_steps": args.warmup, "device": str(device), "hardware": hardware(),
              "matmul_gflops": round(peak, 2),
              "overrides": overrides, "torch": str(torch.__version__), "ganzoo": ganzoo.version(),
              "platform": platform.platform(), "date": time.strftime("%Y-%m-%d"), "variants": rows}
    out = args.out or RESULTS / f"{args.table}-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    if args.update_doc:
        update_doc(report)
        print(f"updated {DOC}")


if __name__ == "__main__":
    main()
