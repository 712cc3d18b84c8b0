"""MkDocs hooks for the ganzoo documentation site (named in mkdocs.yml).

The pages link committed benchmark figures (sample grids, metric plots, results.json) as
``../benchmarks/results/...``: a path outside ``docs/`` that works when the Markdown is read on GitHub
or in a checkout. For the site, :func:`on_files` adds every file under ``benchmarks/results`` that a
page can link to, at ``benchmarks/results/...`` inside the site, and :func:`on_page_markdown` points
the links at those copies, so ``mkdocs build --strict`` still fails on a link to a file that is missing.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

RESULTS = "benchmarks/results"
LINKED_SUFFIXES = {".png", ".svg", ".json", ".yaml"}


def _repository_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the committed benchmark figures to the site under ``benchmarks/results/``."""
    results = _repository_root(config) / RESULTS
    for path in sorted(results.rglob("*")):
        if path.is_file() and path.suffix in LINKED_SUFFIXES:
            src_uri = path.relative_to(results.parent.parent).as_posix()
            files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Rewrite ``../benchmarks/results/...`` links (relative to the page) to the copies in the site."""
    page_dir = posixpath.dirname(page.file.src_uri)
    outside = posixpath.relpath(f"../{RESULTS}", page_dir or ".")
    inside = posixpath.relpath(RESULTS, page_dir or ".")
    return markdown.replace(f"]({outside}/", f"]({inside}/")
