"""Engine overhead: the ganzoo trainer against plain PyTorch loops, and what each fast path buys.

For each variant, the loops train the same generator and discriminator modules (built by the plugins
through the public API) on the same in-memory data, with the same batch size, optimisers and n_critic:

- the *plain* loop runs ganzoo's algorithm (its ``generator_batch``: fresh latents or the reused fake batch);
- the *tutorial* loop runs pytorch/examples' DCGAN algorithm: one fake batch per step, detached for the
  discriminator and scored again by the updated discriminator for the generator (n_critic 1 only).

Runs rotate (ganzoo, plain, tutorial; then plain, tutorial, ganzoo; ...) so that drifts of the machine hit all
alike and no loop always runs first; the median images per second of each is reported with the ratios
ganzoo / plain and ganzoo / tutorial, each the median over rounds of that round's ratio. The FLOPs of one
training step are counted once with ``torch.utils.flop_counter``'s registry and compared with a large fp32
matmul measured in the same run.

    python benchmarks/throughput.py                      # vanilla, dcgan, wgan-gp; writes benchmarks/results/
    python benchmarks/throughput.py --variants vanilla --seconds 5 --rounds 3
    python benchmarks/throughput.py --variants vanilla --set compile=true --warmup 100 --table compile
    python benchmarks/throughput.py --fast-paths --variants vanilla,dcgan    # each switch against ganzoo's default

With ``--warmup N`` the loops first run N untimed steps (for ``compile=true``: compilation, whose seconds
are reported separately); ``--table NAME`` names the report and the table in docs/performance.md it updates.
``--fast-paths`` times ganzoo with its defaults against ganzoo with each fast-path switch flipped
(``fused_optimizer``, ``channels_last``, ``compile``, and ``discriminator_pass``: joint against separate),
alternating, for any variant (no plain loop needed).
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
from ganzoo import fast_paths
from ganzoo.bench.trial import hardware
from ganzoo.data import to_model_range
from ganzoo.registry import get_registry
from ganzoo.training.assembly import assemble
from ganzoo.training.callbacks import standard_callbacks
from ganzoo.training.loop import run_loop
from ganzoo.training.randomness import seed_everything
from ganzoo.training.run import versions
from ganzoo.training.trainer import Trainer, make_optimizer

RESULTS = Path(__file__).parent / "results"


FAST_PATHS = fast_paths.SWITCHES
#: What ``--fast-paths`` can flip: the device switches and the discriminator pass (joint or separate).
SWITCHES = (*FAST_PATHS, "discriminator_pass")


def build(variant: str, steps: int, device: torch.device, overrides: list[str]):
    """The variant's config, its assembled modules and the training images, as the trainer would get them.
    ``overrides`` are ``KEY=VALUE`` strings, as ``--set`` takes them (``generator_options.width=32``)."""
    registry = get_registry()
    cfg = ganzoo.build_config(variant, steps=steps, overrides=["sample_every=0", "log_every=1000", *overrides])
    data = ganzoo.load_dataset(cfg.dataset)
    seed_everything(0)
    assembly = assemble(registry, cfg, data.image_shape, device, num_classes=data.num_classes)
    return cfg, assembly, data  # the images with their labels, for conditional variants


def ganzoo_run(variant: str, steps: int, device: torch.device, overrides: list[str],
               warmup: int = 0) -> tuple[float, float, float]:
    """Images per second of the training loop (``run_loop`` with the standard callbacks) over ``steps`` after
    ``warmup`` untimed steps; the seconds of the warm-up; and the seconds of the files the loop writes after its
    last step.

    The rate is the wall clock of the whole ``run_loop`` call (logging, checks and progress logic included) less
    the end-of-run writes (final checkpoint, sample grid, generator export), which cost the same for any
    length of run and would otherwise dominate a run of a few steps. They are timed by calling ``run_loop`` once
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
        run_loop(trainer, Path(out), standard_callbacks(progress=False))
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_loop(trainer, Path(out), standard_callbacks(progress=False))  # no steps left: the end-of-run writes alone
        end_s = time.perf_counter() - t0
    return steps * cfg.batch_size * cfg.n_critic / (wall - end_s), warmup_s, end_s


def plain_step_fn(cfg, G, D, data: torch.Tensor, device: torch.device, reuse: bool | None = None):
    """A hand-written training step: no plugins, no checks, no logging. ``reuse`` (default: as the config's
    ``generator_batch`` says): the generator update scores the discriminator update's fake batch, as
    pytorch/examples' DCGAN does; else it generates a new one from fresh latents."""
    reuse = cfg.generator_batch == "reuse" if reuse is None else reuse
    if reuse and cfg.n_critic != 1:
        raise ValueError("reusing the fake batch needs n_critic 1")
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
            with torch.set_grad_enabled(reuse):
                kept = G(torch.randn(bs, cfg.latent_dim, device=device))
            fake = kept.detach()
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
        fake = kept if reuse else G(torch.randn(bs, cfg.latent_dim, device=device))
        g_loss = -D(fake).mean() if wgan else F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    return step


def plain_run(variant: str, steps: int, device: torch.device, overrides: list[str], warmup: int = 0,
              reuse: bool | None = None) -> float:
    """Images per second of a plain loop (eager, whatever the overrides' fast paths) after ``warmup`` steps:
    ganzoo's algorithm, or with ``reuse=True`` the tutorial's (see :func:`plain_step_fn`)."""
    cfg, assembly, images = build(variant, steps, device, overrides)
    step = plain_step_fn(cfg, assembly.generator, assembly.discriminator, to_model_range(images.images).to(device),
                         device, reuse)
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


def flops_per_image(variant: str, device: torch.device, overrides: list[str]) -> float:
    """FLOPs of one training step (all n_critic D updates and the G update) per real image."""
    cfg, assembly, images = build(variant, 1, device, overrides)
    step = plain_step_fn(cfg, assembly.generator, assembly.discriminator, to_model_range(images.images).to(device),
                         device)
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


def calibrate(variant: str, seconds: float, device: torch.device, overrides: list[str]) -> int:
    """Steps that take about ``seconds`` in ganzoo's trainer with its default fast paths: ``train_step`` timed
    after 3 untimed steps (so neither set-up nor a first step's allocations count)."""
    base = [o for o in overrides if o.split("=", 1)[0] not in FAST_PATHS]
    cfg, assembly, data = build(variant, 100, device, base)
    trainer = Trainer(assembly, data, device, versions())
    for _ in range(3):
        trainer.train_step()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < min(1.0, seconds / 4) or n < 2:
        trainer.train_step()
        n += 1
    per_step = (time.perf_counter() - t0) / n
    return max(10, int(seconds / per_step))


DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def markers(table: str) -> tuple[str, str]:
    """The comments around table ``table`` in docs/performance.md."""
    return f"<!-- {table}:begin -->", f"<!-- {table}:end -->"


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median over rounds of ``ours[i] / theirs[i]``: each round runs both back to back, so a machine that
    is slower for a while (a shared host) slows both sides of a round, where a ratio of two medians taken
    across rounds would compare runs from different moments."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def rederive(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with every ratio recomputed from its per-round runs by :func:`paired_ratio`."""
    for row in report["variants"]:
        if report.get("kind") == "fast-paths":
            for got in row["switches"].values():
                got["ratio"] = round(paired_ratio(got["runs"], got["default_runs"]), 4)
        else:
            row["ratio"] = round(paired_ratio(row["ganzoo_runs"], row["plain_runs"]), 4)
            if row.get("tutorial_runs"):
                row["ratio_tutorial"] = round(paired_ratio(row["ganzoo_runs"], row["tutorial_runs"]), 4)
    return report


def _header(report: dict[str, Any]) -> str:
    hw = report["hardware"]
    warmup = report.get("warmup_steps", 0)
    overrides = report["overrides"]
    parts = report.get("merged_from", [])
    return (f"Measured {report['date']} on {hw['gpu'] or hw['cpu']} ({hw['threads']} threads), torch "
            f"{report['torch']}, ganzoo {report['ganzoo']}; fp32 matmul reference {report['matmul_gflops']} GFLOP/s"
            + (f"; overrides {overrides}" if overrides else "")
            + (f"; timed after {warmup} untimed warm-up steps" if warmup else "")
            + (f"; rows from {len(parts)} runs of the same command on this host ("
               + "; ".join(f"{', '.join(p['variants'])}: matmul {p['matmul_gflops']} GFLOP/s" for p in parts) + ")"
               if parts else "") + ".")


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from runs of the same table (re-runs of some variants): a later run's row replaces an earlier
    one's, rows keep the order in which variants first appear, and ``merged_from`` records which run measured
    which rows. The header (date, hardware, versions) is the last run's."""
    if len({r["table"] for r in reports}) != 1 or len({r["kind"] for r in reports}) != 1:
        raise ValueError("merge runs of one table only")
    rows: dict[str, dict[str, Any]] = {}
    source: dict[str, int] = {}
    for i, report in enumerate(reports):
        for row in report["variants"]:
            rows[row["variant"]] = row
            source[row["variant"]] = i
    merged = {**reports[-1], "variants": list(rows.values())}
    if merged.get("switches") is not None:
        merged["switches"] = list(dict.fromkeys(s for r in reports for s in r.get("switches", [])))
    parts = [{"variants": [v for v in rows if source[v] == i], "date": r["date"], "matmul_gflops": r["matmul_gflops"]}
             for i, r in enumerate(reports) if any(source[v] == i for v in rows)]
    if len(parts) > 1:  # one report (re-rendering its table) is not a merge
        merged["merged_from"] = parts
    return merged


def render_table(report: dict[str, Any]) -> str:
    """The Markdown table of a throughput report, as docs/performance.md shows it."""
    begin, end = markers(report.get("table", "throughput"))
    if report.get("kind") == "fast-paths":
        return "\n".join([begin, _header(report), "", *_fast_path_rows(report), end])
    warmup = report.get("warmup_steps", 0)
    writes = all("ganzoo_end_of_run_s" in row for row in report["variants"])  # older reports lack it
    tutorial = any("tutorial_img_per_s" in row for row in report["variants"])
    lines = [begin, _header(report), "",
             "| Variant | ganzoo img/s | plain loop img/s | ratio |"
             + (" tutorial loop img/s | ratio to tutorial |" if tutorial else "") + " GFLOP/s | of matmul |"
             + (" ganzoo end-of-run writes s |" if writes else "") + (" ganzoo warm-up s |" if warmup else ""),
             "|---|---|---|---|" + ("---|---|" if tutorial else "") + "---|---|" + ("---|" if writes else "")
             + ("---|" if warmup else "")]
    for row in report["variants"]:
        cells = [row["variant"], f"{row['ganzoo_img_per_s']:.1f}", f"{row['plain_img_per_s']:.1f}",
                 f"{row['ratio']:.3f}"]
        if tutorial:
            has = row.get("tutorial_img_per_s") is not None
            cells += [f"{row['tutorial_img_per_s']:.1f}" if has else "– (n_critic > 1)",
                      f"{row['ratio_tutorial']:.3f}" if has else "–"]
        cells += [f"{row['achieved_gflops']:.2f}", f"{row['fraction_of_matmul']:.1%}"]
        if writes:
            cells.append(f"{row['ganzoo_end_of_run_s']:.2f}")
        if warmup:
            cells.append(f"{row['ganzoo_warmup_s']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(end)
    return "\n".join(lines)


def _fast_path_rows(report: dict[str, Any]) -> list[str]:
    switches = report["switches"]
    lines = ["| Variant | default img/s | " + " | ".join(f"`{s}` flipped img/s (ratio)" for s in switches)
             + " | default settings |",
             "|---|---|" + "---|" * len(switches) + "---|"]
    for row in report["variants"]:
        cells = [row["variant"], f"{row['default_img_per_s']:.1f}"]
        for switch in switches:
            got = row["switches"].get(switch)
            cells.append(f"{got['img_per_s']:.1f} ({got['ratio']:.3f})" if got else "–")
        cells.append(", ".join(f"{k}={v}" for k, v in row["defaults"].items()))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def update_doc(report: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the report's table (between its markers) in ``doc`` with :func:`render_table` of ``report``."""
    text = doc.read_text()
    begin, end = markers(report.get("table", "throughput"))
    start, stop = text.index(begin), text.index(end) + len(end)
    doc.write_text(text[:start] + render_table(report) + text[stop:])


def measure_loops(variant: str, args: argparse.Namespace, device: torch.device, overrides: list[str],
                  peak: float) -> dict[str, Any]:
    """ganzoo against the plain loop of its algorithm and the tutorial loop, rotating the order each round."""
    steps = calibrate(variant, args.seconds, device, overrides)
    cfg = ganzoo.build_config(variant, overrides=overrides)
    same_as_tutorial = cfg.generator_batch == "reuse"  # then the plain loop is the tutorial loop
    loops = ["ganzoo", "plain"] + (["tutorial"] if cfg.n_critic == 1 and not same_as_tutorial else [])
    rates: dict[str, list[float]] = {name: [] for name in loops}
    warm, ends = [], []
    for r in range(args.rounds):
        for name in loops[r % len(loops):] + loops[: r % len(loops)]:
            if name == "ganzoo":
                rate, warmup_s, end_s = ganzoo_run(variant, steps, device, overrides, args.warmup)
                warm.append(warmup_s)
                ends.append(end_s)
            else:
                rate = plain_run(variant, steps, device, overrides, args.warmup, reuse=name == "tutorial" or None)
            rates[name].append(rate)
    if same_as_tutorial:
        rates["tutorial"] = rates["plain"]
    g, p = statistics.median(rates["ganzoo"]), statistics.median(rates["plain"])
    t = statistics.median(rates["tutorial"]) if rates.get("tutorial") else None
    fpi = flops_per_image(variant, device, overrides)
    achieved = g * fpi / 1e9
    ratio_tutorial = round(paired_ratio(rates["ganzoo"], rates["tutorial"]), 4) if t else None
    return {"variant": variant, "steps": steps, "rounds": args.rounds, "generator_batch": cfg.generator_batch,
            "ganzoo_img_per_s": round(g, 1), "plain_img_per_s": round(p, 1),
            "ratio": round(paired_ratio(rates["ganzoo"], rates["plain"]), 4),
            "tutorial_img_per_s": round(t, 1) if t else None, "ratio_tutorial": ratio_tutorial,
            "ganzoo_runs": [round(x, 1) for x in rates["ganzoo"]], "plain_runs": [round(x, 1) for x in rates["plain"]],
            "tutorial_runs": [round(x, 1) for x in rates.get("tutorial", [])],
            "flops_per_image": fpi, "ganzoo_warmup_s": round(statistics.median(warm), 2),
            "ganzoo_end_of_run_s": round(statistics.median(ends), 3),
            "achieved_gflops": round(achieved, 2), "fraction_of_matmul": round(achieved / peak, 4)}


def default_switches(variant: str, device: torch.device, overrides: list[str]) -> dict[str, Any]:
    """What the trainer turns on for ``variant`` with ``overrides``: each fast path (bool) and the discriminator
    pass ('joint' or 'separate')."""
    _, assembly, data = build(variant, 10, device, overrides)
    trainer = Trainer(assembly, data, device, versions())
    return {**trainer.fast, "discriminator_pass": "joint" if trainer.joint_pass else "separate"}


def flip(switch: str, default: Any) -> str:
    """The ``--set`` value that turns ``switch`` the other way from ``default``."""
    if switch == "discriminator_pass":
        return "separate" if default == "joint" else "joint"
    return str(not default).lower()


def measure_fast_paths(variant: str, args: argparse.Namespace, device: torch.device,
                       overrides: list[str], switches: tuple[str, ...] = SWITCHES) -> dict[str, Any]:
    """ganzoo with its defaults against ganzoo with each fast-path switch flipped, alternating per round. A
    flipped ``compile`` gets ``--warmup`` untimed steps (compilation) like every run of its pair."""
    steps = calibrate(variant, args.seconds, device, overrides)
    defaults = default_switches(variant, device, overrides)
    row: dict[str, Any] = {"variant": variant, "steps": steps, "rounds": args.rounds, "defaults": defaults,
                           "switches": {}}
    default_runs: list[float] = []
    for switch in switches:
        flipped = [*overrides, f"{switch}={flip(switch, defaults[switch])}"]
        warmup = args.warmup if switch == "compile" else 0
        base, other = [], []
        for r in range(args.rounds):
            pair = [(base, overrides), (other, flipped)]
            for runs, sets in pair if r % 2 == 0 else pair[::-1]:
                runs.append(ganzoo_run(variant, steps, device, sets, warmup)[0])
        default_runs += base
        b, o = statistics.median(base), statistics.median(other)
        row["switches"][switch] = {"img_per_s": round(o, 1), "ratio": round(paired_ratio(other, base), 4),
                                   "default_img_per_s": round(b, 1),
                                   "runs": [round(x, 1) for x in other], "default_runs": [round(x, 1) for x in base],
                                   "warmup_steps": warmup}
        print(f"  {variant:<12} {switch}={flip(switch, defaults[switch])}: {o:.1f} img/s against {b:.1f} "
              f"({row['switches'][switch]['ratio']:.3f})")
    row["default_img_per_s"] = round(statistics.median(default_runs), 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="vanilla,dcgan,wgan-gp")
    parser.add_argument("--seconds", type=float, default=8.0, help="Target seconds per timed run.")
    parser.add_argument("--rounds", type=int, default=4,
                        help="Rounds per variant, the order of the loops rotating between rounds.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="Config override KEY=VALUE (dotted keys as in ganzoo train --set).")
    parser.add_argument("--warmup", type=int, default=0, help="Untimed steps before each timed run.")
    parser.add_argument("--fast-paths", action="store_true",
                        help="Time each fast-path switch flipped against ganzoo's defaults instead of the plain loops.")
    parser.add_argument("--switches", default=",".join(SWITCHES),
                        help="With --fast-paths: the switches to time (comma-separated).")
    parser.add_argument("--table", default=None, help="Report and docs/performance.md table name (default: "
                                                       "throughput, or fast-paths with --fast-paths).")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default benchmarks/results/TABLE-DEVICE.json).")
    parser.add_argument("--update-doc", action="store_true", help="Also rewrite the table in docs/performance.md.")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="REPORT",
                        help="Measure nothing: merge these reports of one table (later rows replace earlier rows of "
                             "the same variant, rows in --variants order) into --out, and with --update-doc its "
                             "table.")
    args = parser.parse_args()
    if args.merge:
        merged = merge_reports([json.loads(p.read_text()) for p in args.merge])
        order = args.variants.split(",")  # rows in this order, any others after them
        merged["variants"].sort(key=lambda row: order.index(row["variant"]) if row["variant"] in order else len(order))
        target = args.out or RESULTS / f"{merged['table']}-{merged['device'].split(':')[0]}.json"
        target.write_text(json.dumps(merged, indent=2) + "\n")
        print(f"wrote {target}")
        if args.update_doc:
            update_doc(merged)
            print(f"updated {DOC}")
        return
    table = args.table or ("fast-paths" if args.fast_paths else "throughput")
    device = torch.device(args.device)
    overrides = list(args.sets)
    switches = tuple(args.switches.split(","))
    unknown = [s for s in switches if s not in SWITCHES]
    if unknown:
        parser.error(f"unknown switches {unknown}; choose from {', '.join(SWITCHES)}")
    peak = matmul_gflops(device)
    print(f"device {device}, {torch.get_num_threads()} threads; fp32 matmul 2048^3: {peak:.1f} GFLOP/s")
    rows: list[dict[str, Any]] = []
    out = args.out or RESULTS / f"{table}-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def report() -> dict[str, Any]:
        data = {"table": table, "kind": "fast-paths" if args.fast_paths else "loops", "warmup_steps": args.warmup,
                "device": str(device), "hardware": hardware(), "matmul_gflops": round(peak, 2),
                "overrides": overrides, "torch": str(torch.__version__), "ganzoo": ganzoo.version(),
                "platform": platform.platform(), "date": time.strftime("%Y-%m-%d"), "variants": rows}
        if args.fast_paths:
            data["switches"] = list(switches)
        return data

    for variant in args.variants.split(","):
        if args.fast_paths:
            rows.append(measure_fast_paths(variant, args, device, overrides, switches))
            out.write_text(json.dumps(report(), indent=2) + "\n")  # what is measured survives a later failure
            continue
        row = measure_loops(variant, args, device, overrides, peak)
        rows.append(row)
        tutorial = f"tutorial {row['tutorial_img_per_s']} img/s ({row['ratio_tutorial']})" \
            if row["tutorial_img_per_s"] else "no tutorial loop (n_critic > 1)"
        print(f"{variant:<9} {row['steps']:>6} steps: ganzoo {row['ganzoo_img_per_s']} img/s, plain "
              f"{row['plain_img_per_s']} ({row['ratio']}), {tutorial}; {row['fraction_of_matmul']:.1%} of matmul")
    out.write_text(json.dumps(report(), indent=2) + "\n")
    print(f"wrote {out}")
    if args.update_doc:
        update_doc(report())
        print(f"updated {DOC}")


if __name__ == "__main__":
    main()
