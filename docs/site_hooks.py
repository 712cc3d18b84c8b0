"""MkDocs hooks for the ganzoo documentation site (named in mkdocs.yml).

The pages link committed benchmark figures (sample grids, metric plots, results.json) as
``../benchmarks/results/...``: a path outside ``docs/`` that works when the Markdown is read on GitHub
or in a checkout. For the site, :func:`on_files` adds every file under ``benchmarks/results`` that a
page can link to, at ``benchmarks/results/...`` inside the site, and :func:`on_page_markdown` points
the links at those copies, so ``mkdocs build --strict`` still fails on a link to a file that is missing.
Symbolic links are never followed: a link under ``benchmarks/results`` (to a file or a folder, wherever it
points) is left out of the site, so the build publishes only files that are really in the repository.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

RESULTS = "benchmarks/results"
LINKED_SUFFIXES = {".png", ".svg", ".json", ".yaml"}


def _repository_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def published_results(root: Path) -> list[Path]:
    """The files under ``root/benchmarks/results`` that the site publishes: those with a
    :data:`LINKED_SUFFIXES` suffix, found without following a symbolic link under it (a linked file or folder is
    left out) and each checked to resolve inside the folder."""
    results = root / RESULTS
    if not results.is_dir() or results.is_symlink() or results.parent.is_symlink():
        return []  # a linked results folder (or benchmarks/) could be any folder of the building machine
    inside = results.resolve()
    found = []
    for folder, dirs, names in os.walk(results, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(folder, d)))
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix in LINKED_SUFFIXES and not path.is_symlink() and path.is_file() \
                    and path.resolve().is_relative_to(inside):
                found.append(path)
    return sorted(found)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the committed benchmark figures to the site under ``benchmarks/results/`` (symbolic links left out)."""
    root = _repository_root(config)
    for path in published_results(root):
        src_uri = path.relative_to(root).as_posix()
        files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Rewrite ``../benchmarks/results/...`` links (relative to the page) to the copies in the site."""
    page_dir = posixpath.dirname(page.file.src_uri)
    outside = posixpath.relpath(f"../{RESULTS}", page_dir or ".")
    inside = posixpath.relpath(RESULTS, page_dir or ".")
    return markdown.replace(f"]({outside}/", f"]({inside}/")
