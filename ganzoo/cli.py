"""The ``ganzoo`` command: a thin click layer over the library API, whose errors exit 2 (a
:class:`ganzoo.errors.UsageError`) or 1 (any other :class:`ganzoo.errors.GanzooError`) without a traceback."""

from __future__ import annotations

import functools
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from .config import MAX_SEED
from .errors import GanzooError, UsageError
from .meta import EXECUTORS, list_profiles, version
from .metric_keys import BY_KEY, FID, METRICS
from .plugins import list_plugins, load_failures


def library_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ganzoo's exceptions into click's, so users see a message and the right exit code."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
        except GanzooError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # the machine's, not ganzoo's: a full disk, a read-only or missing folder
            if exc.errno is None:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}; free space or choose another output, "
                                       "then run the command again") from None
    return wrapper


def warn_load_failures() -> None:
    for failure in load_failures():
        click.echo(f"warning: plugin {failure.name!r} ({failure.distribution}) failed to load: {failure.error}",
                   err=True)


@click.group()
@click.version_option(version(), prog_name="ganzoo")
def cli() -> None:
    """ganzoo: train, sample and benchmark GAN variants supplied by plugins.

    \b
    Examples:
      ganzoo list
      ganzoo train dcgan --steps 300 --out runs/dcgan
      ganzoo sample runs/dcgan -n 64 -o grid.png
      ganzoo sample pretrained:dcgan -n 64 -o grid.png
    """


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@library_errors
def list_cmd(as_json: bool) -> None:
    """List variants, networks, losses, datasets, their plugins and pretrained generators."""
    from . import api
    from .pretrained import list_pretrained
    variants, components, pretrained = api.list_variants(), api.list_components(), list_pretrained()
    if as_json:
        click.echo(json.dumps({"variants": variants, **components, "pretrained": pretrained}, indent=2))
        return
    warn_load_failures()
    click.echo("Variants:")
    for v in variants:
        aliases = f" (alias: {', '.join(v['aliases'])})" if v["aliases"] else ""
        with_ext = "".join(f" +{name}" for name in v["defaults"].get("extensions") or {})
        click.echo(f"  {v['name']}{aliases}  [{v['plugin']}]  G={v['generator']} D={v['discriminator']} "
                   f"loss={v['loss']}{with_ext}  {v['description']}")
        if v["paper"]:
            click.echo(f"      {v['paper']}")
    for kind, rows in components.items():
        click.echo(f"{kind.capitalize()}:")
        for row in rows:
            click.echo(f"  {row['name']}  [{row['plugin']}]  {row['description']}")
    click.echo("Pretrained (ganzoo sample pretrained:NAME, ganzoo interpolate pretrained:NAME):")
    for p in pretrained:
        click.echo(f"  {p['name']}  {p['section']} benchmark, seed {p['seed']}, {p['steps']} steps, "
                   f"FID {p['fid']:.{BY_KEY[FID].decimals}f}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@library_errors
def plugins_cmd(as_json: bool) -> None:
    """List loaded plugins: distribution, version, hooks; and plugins that failed to load.

    GANZOO_LOAD_PLUGINS=name1,name2 loads only those third-party plugins (empty: none); built-ins always load.
    """
    infos, failures = list_plugins(), load_failures()
    if as_json:
        click.echo(json.dumps({"plugins": list(map(asdict, infos)), "failed": list(map(asdict, failures))}, indent=2))
        return
    for p in infos:
        origin = f"{p.distribution} {p.version}" if p.distribution else "registered in-process"
        click.echo(f"{p.name}  ({origin}{', built-in' if p.builtin else ''})")
        click.echo(f"    hooks: {', '.join(p.hooks) or '-'}")
    for f in failures:
        click.echo(f"{f.name}  ({f.distribution})  FAILED TO LOAD: {f.error}")


@cli.command("train")
@click.argument("variant")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config file (keys: docs/configuration.md).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set lr_g=1e-4 --set loss_options.gp_lambda=5. Repeatable.")
@click.option("--steps", type=click.IntRange(min=1), help="Generator steps.")
@click.option("--dataset", help="Dataset name (default mnist-5k, offline).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default: the config's out, else runs/VARIANT).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), help="Random seed (same seed, same CPU run).")
@click.option("--device", help="cpu, cuda, cuda:N or auto.")
@click.option("--resume", is_flag=True, help="Continue exactly from the latest checkpoint in --out.")
@click.option("--overwrite", is_flag=True, help="Delete the run that --out holds, then train afresh.")
@click.option("--deterministic", is_flag=True, default=None,
              help="Use only deterministic algorithms (torch.use_deterministic_algorithms).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@library_errors
def train_cmd(variant: str, config_file: Path | None, overrides: tuple[str, ...], steps: int | None,
              dataset: str | None, out: Path | None, seed: int | None, device: str | None, resume: bool,
              overwrite: bool, deterministic: bool | None, no_progress: bool) -> None:
    """Train VARIANT (a name or alias from `ganzoo list`).

    \b
    Examples:
      ganzoo train dcgan --steps 300 --out runs/dcgan
      ganzoo train wgan --set batch_size=32 --set loss_options.gp_lambda=5
      ganzoo train dcgan --set loss=wgan-gp --set discriminator=dcgan-critic --set betas=[0.0,0.9]
    """
    from . import api
    warn_load_failures()
    result = api.train(variant, config=config_file, overrides=list(overrides), steps=steps, dataset=dataset,
                       out=out, seed=seed, device=device, deterministic=deterministic, resume=resume,
                       overwrite=overwrite, progress=not no_progress)
    click.echo(f"trained {result.variant} for {result.steps} steps ({result.images_seen} real images, "
               f"{result.train_seconds:.1f} s, {result.images_per_second:.0f} img/s)")
    click.echo(f"samples: {result.samples}")
    click.echo(f"checkpoint: {result.checkpoint}")


TRUNCATION = click.option("--truncation", type=float, metavar="PSI", help="Draw latents from the normal truncated "
                          "to |z| <= PSI (values outside redrawn, not clamped): variety traded for typical images; "
                          "the bundled generators degrade below about 1.5.")


@cli.command("sample")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(min=1), default=64, show_default=True, help="Images.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Where to write: an image file for the grid (default samples.png), a new or empty folder for "
                   "png-dir, an .npz file for npz.")
@click.option("--format", "fmt", type=click.Choice(["grid", "png-dir", "npz"]), default="grid", show_default=True,
              help="One grid image, or single images for metric tools: a folder of PNGs or an .npz array.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the latent batch.")
@click.option("--class", "label", type=click.IntRange(min=0), default=None,
              help="Conditional generators: draw every image of this class (default: a grid row per class).")
@TRUNCATION
@click.option("--raw", is_flag=True, help="Sample the trained generator, not an extension's (the EMA).")
@click.option("--overwrite", is_flag=True, help="Replace an existing -o (a file, a symbolic link itself, or a folder "
                                                "of an earlier png-dir export).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (png-dir and npz).")
@library_errors
def sample_cmd(checkpoint: Path, count: int, out: Path | None, fmt: str, seed: int, label: int | None,
               truncation: float | None, raw: bool, overwrite: bool, no_progress: bool) -> None:
    """Write COUNT samples from CHECKPOINT (a .pt file, a run directory, an exported generator.safetensors, or
    pretrained:NAME, a generator that ships with ganzoo: see `ganzoo list`): a grid, or single images for
    external metric tools.

    Outputs follow one rule, as train's --out does: an existing -o is not replaced without --overwrite (an
    empty folder counts as new); a symbolic link at -o is never written through (--overwrite replaces the
    link itself); an output appears only once complete, so an error or a full disk leaves what was there.

    \b
    ganzoo sample runs/dcgan -n 64 -o grid.png
    ganzoo sample pretrained:dcgan -n 64 -o grid.png --truncation 1.5
    ganzoo sample runs/cgan-pd --class 3 -n 16 -o threes.png
    ganzoo sample runs/dcgan -n 10000 --format png-dir -o runs/dcgan-samples
    ganzoo sample runs/dcgan -n 10000 --format npz -o runs/dcgan-samples.npz
    """
    from . import api
    if fmt == "grid":
        out = out or Path("samples.png")
        api.sample(checkpoint, n=count, out=out, seed=seed, labels=label, truncation=truncation, raw=raw,
                   overwrite=overwrite)
    else:
        if out is None:
            raise click.UsageError(f"--format {fmt} needs -o: " + ("a new or empty folder" if fmt == "png-dir"
                                                                   else "a file ending in .npz"))
        api.export_samples(checkpoint, count, out, format=fmt, seed=seed, labels=label, truncation=truncation,
                           raw=raw, progress=not no_progress, overwrite=overwrite)
    click.echo(f"wrote {count} samples to {out}")


@cli.command("interpolate")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("walk.png"),
              show_default=True, help="The grid image: one walk per row.")
@click.option("--rows", type=click.IntRange(min=1), default=8, show_default=True, help="Walks, each between two "
                                                                                       "random latents.")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True,
              help="Images per walk, both ends included.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Seed of the ends.")
@click.option("--class", "label", type=click.IntRange(min=0), default=None,
              help="Conditional generators: walk within this class (default: walk r in class r).")
@click.option("--linear", is_flag=True, help="Walk in a straight line rather than along the sphere (slerp).")
@TRUNCATION
@click.option("--raw", is_flag=True, help="Walk the trained generator, not an extension's (the EMA).")
@click.option("--overwrite", is_flag=True, help="Replace an existing -o (a symbolic link there is replaced itself).")
@library_errors
def interpolate_cmd(checkpoint: Path, out: Path, rows: int, steps: int, seed: int, label: int | None, linear: bool,
                    truncation: float | None, raw: bool, overwrite: bool) -> None:
    """Write a grid of latent walks from CHECKPOINT: each row walks between two random latents in --steps images.

    CHECKPOINT is what sample takes, pretrained:NAME included. A walk follows the sphere that Gaussian latents
    lie near (slerp), or a straight line with --linear; a conditional generator keeps one class per row.

    \b
    ganzoo interpolate pretrained:dcgan -o walk.png
    ganzoo interpolate runs/cgan-pd --class 3 --rows 4 --steps 12 -o walk3.png
    """
    from . import api
    api.interpolate(checkpoint, rows, steps, out=out, seed=seed, labels=label, linear=linear, truncation=truncation,
                    raw=raw, overwrite=overwrite)
    click.echo(f"wrote {rows} walks of {steps} steps to {out}")


@cli.command("evaluate")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--dataset", help="Reference dataset (default: the generator's training dataset, else mnist-5k).")
@click.option("--split", default="test", show_default=True, help="Reference split.")
@click.option("--num", type=click.IntRange(min=2), help="Images to score (default: generators as many as the "
                                                         "reference split holds; images and .npz all of them).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED),
              help="Generators: seed of the evaluation latents (default: the run's seed, as the bench uses).")
@click.option("--feature-extractor", default="ganzoo-mnist", show_default=True,
              help="ganzoo-mnist (offline) or inception-v3-compat.")
@click.option("--feature-extractor-weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights file of the feature extractor.")
@click.option("--resize", is_flag=True, help="Convert images of another size or channel count to the dataset's "
                                             "(luma grayscale or repeated channels, bilinear antialiased resize).")
@click.option("--raw", is_flag=True, help="Generators: score the trained generator, not an extension's (the EMA).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@library_errors
def evaluate_cmd(source: Path, dataset: str | None, split: str, num: int | None, seed: int | None,
                 feature_extractor: str, feature_extractor_weights: Path | None, resize: bool, raw: bool,
                 as_json: bool, no_progress: bool) -> None:
    """Score SOURCE against a dataset split with the bench's metrics (FID, KID, IS, precision/recall, and the
    dataset's own, such as MNIST's digit classes): a checkpoint, run directory or exported generator, a folder
    of images, or an .npz of images.

    At most ganzoo.evaluation.MAX_EVAL_IMAGES images (and MAX_EVAL_BYTES bytes of them) are scored; a larger
    --num, or an .npz whose header declares more, is refused before anything is read or generated, and of an
    .npz only the first --num images are read. Folder images are the suffixes of ganzoo.images.IMAGE_SUFFIXES;
    symbolic links that lead outside the folder are skipped. An .npz's labels must be integers, one per image.

    \b
    ganzoo evaluate runs/dcgan --split test
    ganzoo evaluate runs/bench/dcgan/seed-0 --split train --num 1000   # the bench's final figures
    ganzoo evaluate my-samples/ --dataset mnist-5k --split test
    ganzoo evaluate samples.npz --dataset mnist-5k --json
    """
    from .evaluation import evaluate
    result = evaluate(source, dataset=dataset, split=split, num=num, seed=seed, feature_extractor=feature_extractor,
                      feature_extractor_weights=feature_extractor_weights, resize=resize, raw=raw,
                      progress=not no_progress)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    seed_text = f", seed {result['seed']}" if result["seed"] is not None else ""
    extractor = result["feature_extractor"]
    what = "images" if extractor else "samples"  # non-image data: scored by its dataset's metrics alone
    click.echo(f"{result['num_fake']} {what} from {result['source']} ({result['kind']}{seed_text}) against "
               f"{result['num_real']} {result['dataset']} {result['split']} {what}"
               + (f", {extractor} features" if extractor else ", the dataset's own metrics"))
    for key, value in result["scores"].items():
        info = BY_KEY.get(key)  # a dataset's own metric may have a key ganzoo does not know
        title = info.title + (" ↓" if info.lower_is_better else " ↑") if info else key
        click.echo(f"{title:<26} {value:.{info.decimals + 2 if info else 4}f}")


def main() -> None:
    """The ``ganzoo`` command; under ``torchrun`` each rank ends through :func:`ganzoo.distributed.exit_rank`."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        cli(prog_name="ganzoo")
        return
    from .distributed import exit_rank
    try:
        cli(prog_name="ganzoo")
    except SystemExit as exc:  # click ends every command this way, with its exit status
        exit_rank(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)
    except BaseException:  # a collective that failed because a peer died, an interrupt: say it, then end alike
        traceback.print_exc()
        exit_rank(1)
    exit_rank(0)


def _rows(profile_name: str | None, profile_file: Path | None, variants: str | None) -> list[str] | None:
    """bench's and sweep's --variants as names (``None``: the profile's), after their common checks."""
    if profile_name and profile_file:
        raise click.UsageError("give --profile or --config, not both")
    warn_load_failures()
    names = [v.strip() for v in variants.split(",") if v.strip()] if variants is not None else None
    if names == []:
        raise click.BadParameter("names no variant; give at least one (e.g. --variants dcgan)", param_hint="--variants")
    return names


def _num(trial: dict, scores: str, key: str, fmt: str) -> str:
    """The trial's ``scores`` (final, untrained) of ``key`` formatted for the bench table, or '-' where it has none."""
    found = trial.get(scores) or {}
    return format(found[key], fmt) if key in found else format("-", ">" + fmt.split(".")[0])


@cli.command("bench")
@click.option("--variants", help="Comma-separated variants (default: the profile's variants).")
@click.option("--profile", "profile_name", help=f"Bundled profile: {', '.join(list_profiles())} (default: default).")
@click.option("--config", "profile_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A profile YAML file instead of a bundled profile.")
@click.option("--seeds", type=click.IntRange(min=1), help="Trials per variant (mean and std over seeds).")
@click.option("--steps", type=click.IntRange(min=1), help="Generator steps per trial.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), help="Seconds of training per trial.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Bench directory (results.json, plots, grids, checkpoints). Default: runs/bench, or "
                   "runs/reproduce/PROFILE with --reproduce.")
@click.option("--reproduce", type=click.Path(exists=True, path_type=Path), metavar="RESULTS",
              help="Re-run the profile stored in a results file (or its directory) and compare with its figures; "
                   "--seeds and --variants pick a subset, --feature-extractor-weights says where the weights "
                   "file is here. Exit 1 if a row's FID is outside the committed spread.")
@click.option("--feature-extractor", help="ganzoo-mnist (offline) or inception-v3-compat.")
@click.option("--feature-extractor-weights", type=click.Path(dir_okay=False, path_type=Path),
              help="Weights file of the feature extractor (Inception: weights-inception-2015-12-05-6726825d.pth).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials run in parallel processes (cores are shared between them).")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="local: this machine (--jobs); ray: each trial a Ray task with the profile's cpus_per_trial and "
                   "gpus_per_trial (needs ganzoo-gan[ray]; --out on storage every node shares).")
@click.option("--address", help="The Ray cluster to run on (HOST:6379, auto); default: RAY_ADDRESS, else a Ray "
                                "instance started here. With --executor ray.")
@click.option("--overwrite", is_flag=True, help="Train over finished trials of the same rows and seeds with other "
                                                "settings or another budget that --out holds.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@library_errors
def bench_cmd(variants: str | None, profile_name: str | None, profile_file: Path | None, seeds: int | None,
              steps: int | None, seconds: float | None, out: Path | None, reproduce: Path | None,
              feature_extractor: str | None, feature_extractor_weights: Path | None, jobs: int, executor: str,
              address: str | None, overwrite: bool, no_progress: bool) -> None:
    """Train variants under one budget, score them with torch-fidelity, write OUT/results.json.

    \b
    Examples:
      ganzoo bench --variants vanilla,dcgan,wgan
      ganzoo bench --profile long --jobs 2 --out runs/bench-long
      ganzoo bench --profile cifar10 --feature-extractor-weights ~/weights/weights-inception-2015-12-05-6726825d.pth
      ganzoo bench --reproduce benchmarks/results/default --seeds 1
      ganzoo bench --profile zoo --seeds 3 --executor ray --address head-node:6379 --out /shared/zoo

    An interrupted bench re-run with the same --out re-runs only the trials that did not finish. Trials of
    other rows or seeds already in --out are kept; a row and seed finished with other settings or another
    budget is refused unless --overwrite, which trains over it.
    """
    from .bench.harness import bench
    names = _rows(profile_name, profile_file, variants)
    if address is not None and executor != "ray":
        raise click.UsageError("--address names a Ray cluster; give it with --executor ray")
    if jobs > 1 and executor == "ray":
        raise click.UsageError("--jobs is for the local executor; on Ray the cluster's CPUs and cpus_per_trial "
                               "decide how many trials run at once")
    if reproduce is not None:
        given = {"--profile": profile_name, "--config": profile_file, "--steps": steps, "--seconds": seconds,
                 "--feature-extractor": feature_extractor}
        clash = [flag for flag, value in given.items() if value is not None]
        if clash:
            raise click.UsageError(f"--reproduce re-runs the stored protocol as it was; drop {', '.join(clash)}")
        if executor != "local":
            raise click.UsageError("--reproduce runs on this machine; drop --executor")
        if overwrite:
            raise click.UsageError("--reproduce never trains over finished trials; drop --overwrite and choose "
                                   "another --out")
        _reproduce(reproduce, out, seeds, names, feature_extractor_weights, jobs, not no_progress)
        return
    out = out or Path("runs/bench")
    results = bench(names, profile=profile_file or profile_name, out=out, seeds=seeds, steps=steps, seconds=seconds,
                    feature_extractor=feature_extractor, feature_extractor_weights=feature_extractor_weights, jobs=jobs,
                    executor=executor, address=address, overwrite=overwrite, progress=not no_progress)
    _bench_table(results["trials"])
    click.echo(f"results: {out / 'results.json'}")


def _bench_table(trials: list[dict[str, Any]]) -> None:
    """``bench``'s table of its trials: each one's status, steps and final scores."""
    from .bench.reproduction import row_label
    datasets = len({t["protocol"]["dataset"] for t in trials})
    labels = [row_label(t, datasets) for t in trials]
    width = max([10, *map(len, labels)])
    # every leaderboard metric that some trial scored, then the untrained generator's FID
    shown = [(m, max(8, len(m.title))) for m in METRICS
             if m.column and any(m.key in (t.get("final") or {}) for t in trials)]
    untrained = f"untrained {BY_KEY[FID].title}"
    click.echo(f"{'variant':<{width}} {'seed':>4} {'status':<9} {'steps':>7}"
               + "".join(f" {m.title:>{w}}" for m, w in shown) + f" {untrained}")
    for label, t in zip(labels, trials, strict=True):
        click.echo(f"{label:<{width}} {t['seed']:>4} {t['status']:<9} {t.get('steps', '-')!s:>7}"
                   + "".join(f" {_num(t, 'final', m.key, f'{w}.{m.decimals}f')}" for m, w in shown)
                   + f" {_num(t, 'untrained', FID, f'{len(untrained)}.{BY_KEY[FID].decimals}f')}")
        if t["status"] != "ok":
            click.echo(f"    {t['reason']}")


def _reproduce(results: Path, out: Path | None, seeds: int | None, variants: list[str] | None,
               weights: Path | None, jobs: int, progress: bool) -> None:
    """``bench --reproduce``: re-run, then a table of committed against new values per row and metric."""
    from .bench.reproduction import reproduce
    report = reproduce(results, out=out, seeds=seeds, variants=variants, feature_extractor_weights=weights, jobs=jobs,
                       progress=progress)
    width = max([10, *(len(c.variant) for c in report.comparisons)])
    click.echo(f"re-ran seeds {', '.join(map(str, report.seeds))} of {report.results} into {report.out}")
    click.echo(f"committed on: {'; '.join(report.committed_machine)}")
    click.echo(f"re-run on:    {'; '.join(report.machine)}")
    click.echo("expected: " + ("identical figures (same machine type)" if report.same_machine_type else
                               "figures within the committed seed spread (another machine type)"))
    click.echo(f"{'variant':<{width}} {'metric':<16} {'committed':>10} {'new':>10} {'committed mean ± std':>26} "
               f"{'95% interval':>21}  verdict")
    for c in report.comparisons:
        dec = BY_KEY[c.metric].decimals + 1
        same_seeds = [c.committed[s] for s in c.new if s in c.committed]
        old = f"{sum(same_seeds) / len(same_seeds):.{dec}f}" if same_seeds else "-"
        spread = f"{c.committed_mean:.{dec}f} ± {c.committed_std:.{dec}f} (n={len(c.committed)})"
        interval = f"[{c.low:.{dec}f}, {c.high:.{dec}f}]"
        click.echo(f"{c.variant:<{width}} {BY_KEY[c.metric].title:<16} {old:>10} {c.new_mean:>10.{dec}f} "
                   f"{spread:>26} {interval:>21}  {c.verdict}")
    for line in report.failed_trials:
        click.echo(f"failed: {line}")
    summary = ", ".join(f"{row}: {verdict}" for row, verdict in report.rows.items())
    if not report.reproduced:
        raise click.ClickException(f"not reproduced (FID per row: {summary})")
    click.echo(f"reproduced (FID per row: {summary})")


@cli.command("sweep")
@click.option("--profile", "profile_name", help="Bundled profile with a sweep section (e.g. dcgan-sweep).")
@click.option("--config", "profile_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A profile YAML file with a sweep section instead of a bundled profile.")
@click.option("--variants", help="Comma-separated rows to tune (default: the profile's variants).")
@click.option("--samples", type=click.IntRange(min=1), help="Configurations tried per row (sweep.samples).")
@click.option("--seeds", type=click.IntRange(min=1), help="Seeds of the tuned and paper-default benches.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/sweep"),
              show_default=True, help="Sweep directory (sweep.json, tuned.yaml, tune/, tuned/, paper-defaults/).")
@click.option("--address", help="The Ray cluster (HOST:6379, auto); default: RAY_ADDRESS, else a Ray instance "
                                "started here.")
@click.option("--no-compare", is_flag=True, help="Stop after the search (no tuned and paper-default benches).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@library_errors
def sweep_cmd(profile_name: str | None, profile_file: Path | None, variants: str | None, samples: int | None,
              seeds: int | None, out: Path, address: str | None, no_compare: bool, no_progress: bool) -> None:
    """Tune each row's hyperparameters on Ray Tune under the profile's step budget, then bench the tuned rows
    beside the paper defaults. Needs ganzoo-gan[ray].

    \b
    Examples:
      ganzoo sweep --profile dcgan-sweep --out runs/sweep
      ganzoo sweep --profile dcgan-sweep --address head-node:6379 --out /shared/sweep
      ganzoo leaderboard runs/sweep/paper-defaults runs/sweep/tuned -o leaderboard.md

    An interrupted sweep re-run with the same --out continues where it stopped.
    """
    from .bench.trial import METRIC_DIRECTIONS
    from .sweep.spec import COMPLETED, DEFAULTS_DIR, SWEEP_FILE, TUNED_DIR, TUNED_PROFILE
    from .sweep.tune import sweep
    if not (profile_name or profile_file):
        raise click.UsageError("name the profile to sweep with --profile or --config (its sweep section says "
                               "what to search)")
    names = _rows(profile_name, profile_file, variants)
    data = sweep(profile_file or profile_name, out=out, variants=names, samples=samples, seeds=seeds,
                 address=address, compare=not no_compare, progress=not no_progress)
    click.echo(f"{'row':<24} {'trials':>6} {'completed':>9} {'best':>10}  best configuration")
    for row, found in data["rows"].items():
        metric, best = found["metric"], found["best"]
        completed = sum(t["status"] == COMPLETED for t in found["trials"])
        shown = f"{best['final']:.4g}" if best else "-"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in (best or {}).get("params", {}).items()) or "no trial trained the whole budget"
        click.echo(f"{row:<24} {len(found['trials']):>6} {completed:>9} {shown:>10}  {params}")
    click.echo(f"{metric} ({'lower' if METRIC_DIRECTIONS[metric] else 'higher'} is better) after each row's full "
               "budget")
    click.echo(f"trials: {out / SWEEP_FILE}; tuned profile: {out / TUNED_PROFILE}")
    if not no_compare:
        click.echo(f"benches: {out / DEFAULTS_DIR}, {out / TUNED_DIR} "
                   f"(ganzoo leaderboard {out / DEFAULTS_DIR} {out / TUNED_DIR} -o leaderboard.md)")


@cli.command("leaderboard")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/leaderboard.md"),
              show_default=True, help="Markdown page to write.")
@click.option("--check", is_flag=True, help="Exit 1 if OUT differs from what RESULTS give (for CI).")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT (a symbolic link there is replaced itself, "
                                                "never its target).")
@library_errors
def leaderboard_cmd(results: tuple[Path, ...], out: Path, check: bool, overwrite: bool) -> None:
    """Render the leaderboard page from RESULTS (results.json files or bench directories) only. OUT follows the
    rule of every output: an existing page is replaced only with --overwrite."""
    from .bench.leaderboard import render, write_leaderboard
    if check:
        expected = render(list(results), out)
        if not out.is_file() or out.read_text() != expected:
            raise click.ClickException(f"{out} is out of date; regenerate it with: ganzoo leaderboard "
                                       f"{' '.join(map(str, results))} -o {out} --overwrite")
        click.echo(f"{out} is up to date")
        return
    write_leaderboard(list(results), out, overwrite=overwrite)
    click.echo(f"wrote {out}")
