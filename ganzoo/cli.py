"""The ``ganzoo`` command: a thin click layer over the library API in :mod:`ganzoo.api`.

Library errors become click errors: a :class:`ganzoo.errors.UsageError` exits 2, any other
:class:`ganzoo.errors.GanzooError` exits 1; neither prints a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import api
from .errors import GanzooError, UsageError
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

    return wrapper


def warn_load_failures() -> None:
    for failure in load_failures():
        click.echo(f"warning: plugin {failure.name!r} ({failure.distribution}) failed to load: {failure.error}",
                   err=True)


@click.group()
@click.version_option(api.version(), prog_name="ganzoo")
def cli() -> None:
    """ganzoo: train, sample and benchmark GAN variants supplied by plugins.

    \b
    Examples:
      ganzoo list
      ganzoo train dcgan --steps 300 --out runs/dcgan
      ganzoo sample runs/dcgan -n 64 -o grid.png
    """


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@library_errors
def list_cmd(as_json: bool) -> None:
    """List variants, networks, losses and datasets, with the plugin that registered each."""
    variants = api.list_variants()
    components = api.list_components()
    if as_json:
        click.echo(json.dumps({"variants": variants, **components}, indent=2))
        return
    warn_load_failures()
    click.echo("Variants:")
    for v in variants:
        aliases = f" (alias: {', '.join(v['aliases'])})" if v["aliases"] else ""
        click.echo(f"  {v['name']}{aliases}  [{v['plugin']}]  G={v['generator']} D={v['discriminator']} "
                   f"loss={v['loss']}  {v['description']}")
    for kind, rows in components.items():
        click.echo(f"{kind.capitalize()}:")
        for row in rows:
            click.echo(f"  {row['name']}  [{row['plugin']}]  {row['description']}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@library_errors
def plugins_cmd(as_json: bool) -> None:
    """List loaded plugins: distribution, version, hooks; and plugins that failed to load.

    GANZOO_LOAD_PLUGINS=name1,name2 loads only those third-party plugins (empty: none); built-ins always load.
    """
    infos = list_plugins()
    failures = load_failures()
    if as_json:
        click.echo(json.dumps({
            "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                         "hooks": list(p.hooks), "builtin": p.builtin} for p in infos],
            "failed": [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in failures],
        }, indent=2))
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
              help="YAML config file (see docs/cli.md for the keys).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set lr_g=1e-4 --set loss_options.gp_lambda=5. Repeatable.")
@click.option("--steps", type=click.IntRange(min=1), help="Generator steps.")
@click.option("--dataset", help="Dataset name (default mnist-5k, offline).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--seed", type=int, help="Random seed (same seed, same CPU run).")
@click.option("--device", help="cpu, cuda, cuda:N or auto.")
@click.option("--resume", is_flag=True, help="Continue exactly from the latest checkpoint in --out.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@library_errors
def train_cmd(variant: str, config_file: Path | None, overrides: tuple[str, ...], steps: int | None,
              dataset: str | None, out: Path | None, seed: int | None, device: str | None, resume: bool,
              no_progress: bool) -> None:
    """Train VARIANT (a name or alias from `ganzoo list`).

    \b
    Examples:
      ganzoo train dcgan --steps 300 --out runs/dcgan
      ganzoo train wgan --set batch_size=32 --set loss_options.gp_lambda=5
      ganzoo train dcgan --set loss=wgan-gp --set discriminator=dcgan-critic --set betas=[0.0,0.9]
    """
    warn_load_failures()
    if out is None:
        out = Path("runs") / variant
    result = api.train(variant, config=config_file, overrides=list(overrides), steps=steps, dataset=dataset,
                       out=out, seed=seed, device=device, resume=resume, progress=not no_progress)
    click.echo(f"trained {result.variant} for {result.steps} steps ({result.images_seen} real images, "
               f"{result.train_seconds:.1f} s, {result.images_per_second:.0f} img/s)")
    click.echo(f"samples: {result.samples}")
    click.echo(f"checkpoint: {result.checkpoint}")


@cli.command("sample")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(min=1), default=64, show_default=True, help="Images.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("samples.png"),
              show_default=True, help="PNG grid to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latent batch.")
@library_errors
def sample_cmd(checkpoint: Path, count: int, out: Path, seed: int) -> None:
    """Write a grid of COUNT samples from CHECKPOINT (a .pt file or a run directory)."""
    api.sample(checkpoint, n=count, out=out, seed=seed)
    click.echo(f"wrote {count} samples to {out}")


def main() -> None:  # pragma: no cover
    cli(prog_name="ganzoo")
