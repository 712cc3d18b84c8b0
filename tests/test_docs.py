"""Meta-tests of the documentation: it must not drift from the code.

- every hookspec is documented with its exact signature, and implemented by a built-in plugin or a test;
- docs/cli.md is what ``python -m ganzoo.cli_reference`` renders;
- every ``ganzoo ...`` command line in README.md and docs/*.md code blocks names a real command and options;
- every relative Markdown link points to an existing file;
- files quoted between ``<!-- include: PATH -->`` markers are quoted verbatim;
- the MkDocs site builds with ``--strict``: no broken link, image or anchor, no page left out of the navigation;
  its leaderboard opens with the headline table, keeps section tables to 8 columns, shows one comparison image per
  section, repeats no heading and loads every image lazily;
- the home page copies the README's two commands, and no paragraph of the long pages runs past 150 words.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import click
import pytest
from test_leaderboard_page import PAGE_SOURCES

from ganzoo import cli_reference, hookspecs
from ganzoo.bench import load_profile
from ganzoo.cli import cli
from ganzoo.meta import list_profiles

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

PAGES = sorted(DOCS.glob("*.md"))
MARKDOWN = [ROOT / "README.md", *PAGES]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
INCLUDE = re.compile(r"<!-- include: (?P<path>\S+) -->\n```[^\n]*\n(?P<body>.*?)```\n<!-- end include -->", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def hookspec_functions() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "ganzoo_spec")}


# -- hooks --------------------------------------------------------------------------------------------------

def test_hookspecs_found() -> None:
    assert set(hookspec_functions()) >= {"register_generators", "register_datasets"}


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hook_documented_with_exact_signature(name: str) -> None:
    signature = f"{name}({', '.join(hookspec_functions()[name].parameters)})"
    assert signature in (DOCS / "hooks.md").read_text(), f"docs/hooks.md does not show `{signature}`"


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hook_has_an_implementation(name: str) -> None:
    sources = [*(ROOT / "plugins").glob("*.py"), *(ROOT / "tests").glob("*.py")]
    pattern = re.compile(rf"@hookimpl\s*\n\s*def {name}\(")
    assert any(pattern.search(p.read_text()) for p in sources if p.name != "test_docs.py"), (
        f"no built-in plugin or test implements {name}")


# -- configuration keys -------------------------------------------------------------------------------------

def test_every_config_key_is_documented() -> None:
    from ganzoo.config import TrainConfig

    page = (DOCS / "configuration.md").read_text()
    missing = [key for key in TrainConfig.model_fields if f"| `{key}` |" not in page]
    assert not missing, f"docs/configuration.md has no table row for TrainConfig keys {missing}"


def test_every_profile_key_is_documented() -> None:
    from ganzoo.bench import BenchProfile

    page = (DOCS / "benchmarks.md").read_text()
    missing = [key for key in BenchProfile.model_fields if f"`{key}`" not in page]
    assert not missing, f"docs/benchmarks.md does not describe profile keys {missing}"


def _profile_rows(page: str, name: str, count: int) -> list[list[str]]:
    rows = [line for line in page.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == count, (f"docs/benchmarks.md needs {count} row(s) for the bundled profile {name!r} (one per "
                                "dataset of its datasets)")
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def _count(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:g}"


@pytest.mark.parametrize("name", list_profiles())
def test_bundled_profile_table_states_its_protocol(name: str) -> None:
    parts = load_profile(name).parts()  # a profile that spans datasets has a row per dataset
    for profile, row in zip(parts, _profile_rows((DOCS / "benchmarks.md").read_text(), name, len(parts)),
                            strict=True):
        _check_profile_row(profile, row)


def _check_profile_row(profile, row: list[str]) -> None:
    _, dataset, variants, seeds, budget, evaluation, samples, features = row
    assert dataset.startswith(f"`{profile.dataset}` ({profile.real_split}")
    assert variants == ", ".join(profile.variants)
    assert seeds == str(profile.seeds)
    if profile.seconds:
        assert budget == f"{_count(profile.seconds)} s of training"
        assert evaluation == f"every {_count(profile.eval_every_seconds)} s of training"
    else:  # a row of its own per budget entry: "vanilla: 20,000 steps; dcgan: 3,000 steps"
        budgets = {row: profile.budget(row, row.split("+")[0]) for row in profile.variants}

        def per_row(text) -> str:
            texts = {row: text(b) for row, b in budgets.items()}
            return texts[profile.variants[0]] if len(set(texts.values())) == 1 else "; ".join(
                f"{row}: {t}" for row, t in texts.items())

        assert budget == per_row(lambda b: f"{_count(b.steps)} steps")
        assert evaluation == per_row(lambda b: f"every {_count(b.eval_every)} steps" if b.eval_every else "at the end")
    assert samples == _count(profile.num_fake)
    assert features == f"`{profile.feature_extractor}`"


# -- CLI reference ------------------------------------------------------------------------------------------

def test_cli_reference_is_up_to_date() -> None:
    page = DOCS / "cli.md"
    assert page.is_file() and page.read_text() == cli_reference.render(), (
        "docs/cli.md is out of date; regenerate it with: python -m ganzoo.cli_reference > docs/cli.md")


def test_cli_reference_ignores_terminal_size(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "37")
    narrow = cli_reference.render()
    monkeypatch.setenv("COLUMNS", "250")
    assert cli_reference.render() == narrow


# -- command lines in code blocks ---------------------------------------------------------------------------

def command_lines() -> list[tuple[str, str]]:
    """(file, command) for every ``ganzoo`` invocation in a non-Python code block."""
    found = []
    for path in MARKDOWN:
        for lang, body in FENCE.findall(path.read_text()):
            if lang.strip().lower() in ("python", "py", "toml", "yaml", "json"):
                continue
            for line in body.replace("\\\n", " ").splitlines():
                try:
                    tokens = shlex.split(line, comments=True)
                except ValueError:
                    continue
                segment: list[str] = []
                for token in [*tokens, "&&"]:
                    if token in ("&&", "||", ";", "|"):
                        command = _ganzoo_args(segment)
                        if command is not None:
                            found.append((_rel(path), shlex.join(command)))
                        segment = []
                    else:
                        segment.append(token)
    return found


def _ganzoo_args(tokens: list[str]) -> list[str] | None:
    """The arguments after ``ganzoo`` if ``tokens`` run ganzoo (after env assignments and a path), else None."""
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]
    if not tokens:
        return None
    if tokens[0] == "ganzoo" or tokens[0].endswith("/ganzoo"):
        return tokens[1:]
    if len(tokens) >= 3 and re.fullmatch(r"(.*/)?python3?", tokens[0]) and tokens[1:3] == ["-m", "ganzoo"]:
        return tokens[3:]
    return None


def _check_options(command: click.Command, args: list[str], where: str) -> None:
    known = {"--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            known.update(param.opts)
            known.update(param.secondary_opts)
    for arg in args:
        if arg.startswith("-") and arg != "-" and not re.fullmatch(r"-\d.*", arg):
            option = arg.split("=", 1)[0]
            assert option in known, f"{where}: {command.name or 'ganzoo'} has no option {option}"


COMMAND_LINES = command_lines()


def test_command_lines_found() -> None:
    assert len(COMMAND_LINES) > 10


@pytest.mark.parametrize(("where", "line"), COMMAND_LINES)
def test_command_line_parses(where: str, line: str) -> None:
    args = shlex.split(line)
    ctx = click.Context(cli)
    position = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
    if position is None:  # group options only: ganzoo --version
        _check_options(cli, args, f"{where}: ganzoo {line}")
        return
    _check_options(cli, args[:position], f"{where}: ganzoo {line}")
    name = args[position]
    command = cli.get_command(ctx, name)
    assert command is not None, f"{where}: `ganzoo {line}`: no command {name!r} (commands: {cli.list_commands(ctx)})"
    _check_options(command, args[position + 1:], f"{where}: ganzoo {line}")


# -- links and includes -------------------------------------------------------------------------------------

def relative_links() -> list[tuple[str, str]]:
    links = []
    for path in MARKDOWN:
        text = FENCE.sub("", path.read_text())
        text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            links.append((_rel(path), target))
    return links


@pytest.mark.parametrize(("page", "target"), relative_links())
def test_relative_link_exists(page: str, target: str) -> None:
    resolved = ((ROOT / page).parent / target.split("#", 1)[0]).resolve()
    if resolved == (DOCS / "leaderboard.md").resolve() and not resolved.exists():
        pytest.skip("docs/leaderboard.md is generated by `ganzoo leaderboard` and not written yet")
    assert resolved.exists(), f"{page}: link to {target} points to a missing file"


def includes() -> list[tuple[str, str, str]]:
    return [(_rel(page), m["path"], m["body"]) for page in PAGES for m in INCLUDE.finditer(page.read_text())]


def test_plugin_tutorial_quotes_the_example_module() -> None:
    quoted = {(page, path) for page, path, _ in includes()}
    assert ("docs/plugins.md", "examples/ganzoo-lsgan/ganzoo_lsgan.py") in quoted
    assert ("docs/plugins.md", "examples/ganzoo-lsgan/pyproject.toml") in quoted


@pytest.mark.parametrize(("page", "path", "body"), includes())
def test_included_file_is_verbatim(page: str, path: str, body: str) -> None:
    source = (ROOT / page).parent / path
    assert source.is_file(), f"{page} includes missing file {path}"
    assert body == source.read_text(), f"{page}: the block included from {path} differs from the file; copy it again"


# -- the documentation site ---------------------------------------------------------------------------------

def _build_site(project: Path, site: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    return subprocess.run(command, cwd=project, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` fails on a missing page, image or anchor and on a page outside the nav."""
    site = tmp_path / "site"
    result = _build_site(ROOT, site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    leaderboard = (site / "leaderboard" / "index.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+)"', leaderboard)
    assert images, "the leaderboard page shows no images"
    for src in images:
        assert (site / "leaderboard" / unquote(src)).resolve().is_file(), f"leaderboard image {src} is not in the site"
    check_leaderboard_html(leaderboard)
    for page in ("index.html", "leaderboard/index.html"):  # no image is fetched before it is scrolled to
        html = (site / page).read_text()
        assert all('loading="lazy"' in img for img in re.findall(r"<img[^>]*>", _article(html))), page


def _article(html: str) -> str:
    return html.split('<article class="md-content__inner md-typeset">', 1)[1].split("</article>", 1)[0]


def check_leaderboard_html(html: str) -> None:
    """What a reader sees first and how wide it gets: the headline table before any section, no section table
    wider than 8 columns, one image of every row's samples per section, headings that name their section once."""
    article = _article(html)
    sections = re.split(r"(?=<h2 )", article)[1:]
    assert re.match(r'<h2 id="which-variant-to-use"', sections[0]) and "<table>" in sections[0], (
        "the page opens with the headline table")
    assert article.index("<table>") > article.index('id="which-variant-to-use"')
    headings = re.findall(r'<h([1-6]) id="([^"]+)"[^>]*>(.*?)<a class="headerlink"', article, re.S)
    texts = [re.sub(r"<[^>]+>", "", text).strip() for _, _, text in headings]
    assert len(set(texts)) == len(texts) and len({i for _, i, _ in headings}) == len(headings), "a repeated heading"
    sweeps = [s for s in sections if s.startswith('<h2 id="sweep-')]
    benches = [s for s in sections if re.search(r"<th[^>]*>Variant</th>", s) and "which-variant-to-use" not in s
               and s not in sweeps]
    assert len(benches) + len(sweeps) >= len(PAGE_SOURCES), "a section without a table"
    for section in sweeps:  # a table of rows, and every configuration's final score drawn once
        assert re.search(r"<th[^>]*>Variant</th>", section) and section.count("alt=\"Every configuration's final") == 1
    for section in benches:
        name = re.sub(r"<[^>]+>", "", section.split("</h2>", 1)[0])
        for table in re.findall(r"<table>(.*?)</table>", section, re.S):
            assert len(re.findall(r"<th[ >]", table.split("</thead>")[0])) <= 8, f"{name}: a table over 8 columns"
        assert section.count('alt="The samples of every row side by side') == 1, f"{name}: not one comparison image"


def test_home_page_shows_the_readme_commands() -> None:
    """docs/index.md shows the README's two commands (the bench and the tests) exactly as the README has them."""
    commands = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("python3 -m venv ")]
    assert len(commands) == 2 and set(commands) <= set((DOCS / "index.md").read_text().splitlines())


#: The most words in one paragraph (or list item) of a page a reader has to get through.
PARAGRAPH_WORDS = 150


@pytest.mark.parametrize("name", ["benchmarks.md", "leaderboard.md", "index.md"])
def test_no_paragraph_is_a_wall_of_text(name: str) -> None:
    text = FENCE.sub("", (DOCS / name).read_text())
    blocks = [item for block in re.split(r"\n\s*\n", text) if not block.lstrip().startswith(("|", "<"))
              for item in re.split(r"\n(?=- )", block)]
    long = [f"{len(b.split())} words: {b[:60]}" for b in blocks if len(b.split()) > PARAGRAPH_WORDS]
    assert not long, f"docs/{name}: paragraphs over {PARAGRAPH_WORDS} words (split them): {long}"


def test_site_build_catches_a_missing_image(tmp_path: Path) -> None:
    """The strict build is a real check: a page linking a missing figure fails it."""
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(DOCS), str(docs)], check=True)
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    config = (ROOT / "mkdocs.yml").read_text()
    (tmp_path / "mkdocs.yml").write_text(config)
    page = docs / "quickstart.md"
    page.write_text(page.read_text() + "\n![gone](../benchmarks/results/default/no-such-run/samples.png)\n")
    result = _build_site(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-run/samples.png" in result.stderr


# -- rendering -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_list_item_or_bold_renders_as_literal_text(page: Path) -> None:
    """A list item that Markdown swallows into the paragraph before it (a continuation indented too little, no
    blank line) shows up as a literal "- **..." in the page; rendered with the site's extensions, none may."""
    import markdown
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    extensions = [e if isinstance(e, str) else next(iter(e)) for e in config["markdown_extensions"]]
    html = markdown.Markdown(extensions=extensions).convert(page.read_text())
    paragraphs = re.findall(r"<p>(.*?)</p>", html, re.S)
    literal = [p[:80] for p in paragraphs if re.search(r"(^|\n)\s*- (\*\*|<strong>)", p)]
    assert not literal, f"{_rel(page)}: list items rendered as text: {literal}"


def test_every_install_line_names_the_distribution() -> None:
    """The package index's ``ganzoo`` is another project: install lines and extras name ``ganzoo-gan``."""
    from ganzoo.meta import DISTRIBUTION

    files = [ROOT / "README.md", *PAGES, *(ROOT / "ganzoo").rglob("*.py"), *(DOCS / "examples").rglob("*.toml")]
    wrong = re.compile(r"(?<![\w-])ganzoo\[|pip install ['\"]?ganzoo(?![\w-])|\"ganzoo(>=[^\"]*)?\"\]")
    found = [f"{_rel(f)}: {m.group(0)}" for f in files for m in wrong.finditer(f.read_text())]
    assert not found, f"install lines naming `ganzoo` instead of `{DISTRIBUTION}`: {found}"
    assert f'name = "{DISTRIBUTION}"' in (ROOT / "pyproject.toml").read_text()


def test_generated_variant_lists_are_up_to_date() -> None:
    """The pages' lists of built-in variants are what the registry holds (regenerate: python docs/site_hooks.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("site_hooks", DOCS / "site_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    builtin = {p.name for p in __import__("ganzoo").list_plugins() if p.builtin}
    names = [v["name"] for v in __import__("ganzoo").list_variants() if v["plugin"] in builtin]
    for name in hooks.VARIANT_PAGES:
        text = (DOCS / name).read_text()
        assert hooks.VARIANTS_BEGIN in text and text == hooks.with_variants(text), (
            f"docs/{name}'s list of built-in variants is out of date; regenerate it: python docs/site_hooks.py")
        assert all(f"- `{n}`" in text for n in names) and len(names) >= 8
