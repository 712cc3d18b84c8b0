"""Results files are untrusted input: checked against one schema on load, rendered as inert Markdown, their
artifact paths kept inside their directory, and the site build publishes no symbolic link (issue 25, points 1, 2,
5 and 8). Every hostile file is built here, in tmp_path."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import ganzoo
from ganzoo.bench.leaderboard import render, write_leaderboard
from ganzoo.bench.reproduction import IDENTICAL, NOT_COMPARED, Comparison, Reproduction
from ganzoo.cli import cli
from ganzoo.errors import ResultsFileError, UsageError

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<script>alert(1)</script>"
# every way a string could add HTML or Markdown structure: a script, a new line starting a heading, a
# javascript: link, a table pipe, an attr_list attribute, a backtick closing a code span
HOSTILE = f"{EVIL}\n# heading\n[x](javascript:alert(1)) | {{: onclick=alert(1) }} `code` \\"


def trial(variant: str = "dcgan", seed: int = 0, **changes: Any) -> dict[str, Any]:
    """A finished trial record as ``ganzoo bench`` writes it (the keys the leaderboard and --reproduce read)."""
    scores = {"fid": 200.0 + seed, "classes_covered": 8.0}
    record = {
        "variant": variant, "base_variant": "dcgan", "extensions": [], "seed": seed, "status": "ok", "reason": None,
        "diverged_at": None, "config_hash": "0123456789abcdef",
        "protocol": {"profile": "small", "dataset": "mnist-5k", "train_split": "train", "real_split": "train",
                     "num_real": 100, "num_fake": 100,
                     "feature_extractor": {"name": "ganzoo-mnist", "sha256": "ab" * 32},
                     "budget": {"steps": 2, "seconds": None}, "eval_every": 0, "eval_every_seconds": 0.0,
                     "seed": seed, "config_hash": "0123456789abcdef", "config": {"variant": "dcgan"},
                     "versions": {"ganzoo": "0.1", "torch": "2.5", "torch_fidelity": "0.3", "plugins": {}}},
        "hardware": {"cpu": "Some CPU", "cpu_capability": "AVX2", "threads": 1, "gpu": None, "platform": "linux"},
        "steps": 2, "images_seen": 32, "train_seconds": 1.0, "images_per_second": 32.0, "wall_seconds": 2.0,
        "history": [{"step": 0, "fid": 300.0, "train_seconds": 0.0, "eval_seconds": 0.1},
                    {"step": 2, **scores, "train_seconds": 1.0, "eval_seconds": 0.1}],
        "untrained": {"fid": 300.0}, "final": scores, "best": {"fid": 200.0, "fid_step": 2},
        "artifacts": {"samples": f"{variant}/seed-{seed}/samples.png"},
    }
    return {**record, **changes}


def results(*trials: dict[str, Any], **profile: Any) -> dict[str, Any]:
    return {"format": 1,
            "profile": {"name": "small", "variants": ["dcgan"], "steps": 2, "num_fake": 100, "device": "cpu",
                        **profile},
            "trials": list(trials) or [trial()]}


def write(folder: Path, data: dict[str, Any] | bytes | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def to_html(markdown_text: str) -> str:
    """The page as the docs site's Markdown (mkdocs.yml's extensions) turns it into HTML."""
    import markdown

    extensions = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["markdown_extensions"]
    names = [e if isinstance(e, str) else next(iter(e)) for e in extensions]
    configs = {next(iter(e)): next(iter(e.values())) for e in extensions if isinstance(e, dict)}
    return markdown.markdown(markdown_text, extensions=names, extension_configs=configs)


class Elements(HTMLParser):
    """Every element of an HTML text, with its attributes (as a browser would read them)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def assert_inert(html: str) -> None:
    elements = Elements(html).found
    assert "script" not in {tag for tag, _ in elements}
    for tag, attrs in elements:
        assert not [a for a in attrs if a.startswith("on")], f"an event-handler attribute was injected: {tag} {attrs}"
        for key in ("href", "src"):
            assert not (attrs.get(key) or "").strip().lower().startswith("javascript:"), (tag, attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, not dropped


# -- point 1: nothing a results file says becomes HTML, a link or page structure -----------------------------

def hostile_results() -> dict[str, Any]:
    ok = trial(HOSTILE, artifacts={"samples": "javascript:alert(1).png"})
    ok["final"] = {**ok["final"], "<b onmouseover=alert(3)>k</b>": 1.0}
    ok["hardware"] = {**ok["hardware"], "cpu": "<img src=x onerror=alert(2)>\n## cpu"}
    ok["protocol"] = {**ok["protocol"], "profile": HOSTILE, "dataset": HOSTILE, "real_split": HOSTILE,
                      "feature_extractor": {"name": HOSTILE, "sha256": "`<script>alert(1)</script>"},
                      "versions": {"ganzoo": HOSTILE, "torch": "[y](javascript:alert(5))", "torch_fidelity": "|"}}
    failed = trial(HOSTILE, seed=1, status="failed", reason=f"\n{HOSTILE}\n## more", final=None, artifacts={})
    failed["protocol"] = ok["protocol"]
    return results(ok, failed, name=HOSTILE)


def test_hostile_strings_render_as_inert_text(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    write(folder, hostile_results())
    (folder / "javascript:alert(1).png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a samples file: a comparison image
    page = render([folder], folder / "board.md")  # the page beside the results: the links are bare
    lines = page.splitlines()
    # the page's own headings: its title, the headline, the section, the definitions
    assert [line.split(" ")[0] for line in lines if line.startswith("#")] == ["#", "##", "##", "##"]
    assert not re.search(r"(?<!\\)\]\(\s*javascript:", page)  # a link to a javascript: URL: only as escaped text
    html = to_html(page)
    assert_inert(html)
    elements = Elements(html).found
    assert [tag for tag, _ in elements if re.fullmatch(r"h[1-6]", tag)] == ["h1", "h2", "h2", "h2"]  # none injected
    ids = [attrs["id"] for tag, attrs in elements if re.fullmatch(r"h[1-6]", tag) and "id" in attrs]
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids) and len(ids) == 4  # the results' names as a slug
    for table in re.findall(r"<table>(.*?)</table>", html, re.S):  # the headline's and the section's
        header = len(re.findall(r"<th[ >]", table))
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
        assert len(rows) == 1 and all(len(re.findall(r"<td[ >]", row)) == header for row in rows), "a pipe added a cell"
    images = [attrs["src"] for tag, attrs in elements if tag == "img"]
    assert images == ["board-figures/script-alert-1-script-heading-x-javascript-alert-1-onclick-a.png"]
    links = [attrs["href"] for tag, attrs in elements if tag == "a" and ".png" in attrs.get("href", "")]
    assert links == ["javascript%3Aalert%281%29.png"]  # percent-encoded: a file name, not a scheme


def _links_out(results_dir: Path, tmp_path: Path, file_link: str, folder_link: str) -> Path:
    """A folder outside the project holding a secret .json and .png, linked from ``results_dir`` as a file
    (``file_link``) and as a folder (``folder_link``); returns that folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"secret": "TOPSECRET"}')
    (outside / "b.png").write_text("TOPSECRET")
    (results_dir / file_link).symlink_to(outside / "secret.json")
    (results_dir / folder_link).symlink_to(outside, target_is_directory=True)
    return outside


def test_hostile_page_builds_into_an_inert_site_without_linked_files(tmp_path: Path) -> None:
    """The one site build here: the hostile page through mkdocs (with site_hooks.py), beside a symbolic link to a
    file and one to a folder outside the project, neither of which may be published."""
    project = tmp_path / "project"
    results_dir = project / "benchmarks" / "results"
    folder = results_dir / "evil"
    write(folder, hostile_results())
    (folder / "javascript:alert(1).png").write_bytes(b"\x89PNG\r\n\x1a\n")
    _links_out(results_dir, tmp_path, "secret.json", "linked")
    docs = project / "docs"
    docs.mkdir()
    (docs / "site_hooks.py").write_text((ROOT / "docs" / "site_hooks.py").read_text())
    write_leaderboard([folder], docs / "leaderboard.md")  # the page and its figure
    (docs / "benchmarks.md").write_text("# Methodology\n")  # the page's one link to another page
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config.update(nav=["leaderboard.md", "benchmarks.md"], exclude_docs="/site_hooks.py\n")
    (project / "mkdocs.yml").write_text(yaml.safe_dump(config))
    site = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                           cwd=project, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-4000:]
    html = (site / "leaderboard" / "index.html").read_text()
    body = html.split('<article class="md-content__inner md-typeset">')[1].split("</article>")[0]
    assert_inert(body)
    assert (site / "benchmarks" / "results" / "evil" / "results.json").is_file()
    published = [p for p in site.rglob("*") if p.is_file()]
    assert not any("TOPSECRET" in p.read_text(errors="ignore") for p in published)
    assert not (site / "benchmarks" / "results" / "secret.json").exists()
    assert not (site / "benchmarks" / "results" / "linked").exists()


def _symlink_out(folder: Path) -> str:
    (folder / "evil.png").symlink_to("/etc/passwd")
    return "evil.png"


def _symlinked_folder(folder: Path) -> str:
    (folder / "sub").symlink_to(folder.parent.parent, target_is_directory=True)
    return "sub/samples.png"


@pytest.mark.parametrize(("make", "why"), [
    (lambda folder: "../../../../etc/passwd", "climbs out with '..'"),
    (lambda folder: "dcgan/../../x.png", "climbs out with '..'"),
    (lambda folder: "/etc/passwd", "is absolute"),
    (lambda folder: "C:\\Windows\\x.png", "is absolute"),
    (_symlink_out, "resolves outside it"),
    (_symlinked_folder, "resolves outside it"),
], ids=["dotdot", "inner-dotdot", "absolute", "windows-absolute", "symlink", "symlinked-folder"])
def test_artifact_paths_outside_the_results_directory_are_refused(tmp_path: Path, make: Callable[[Path], str],
                                                                  why: str) -> None:
    folder = tmp_path / "a" / "r"
    folder.mkdir(parents=True)
    path = write(folder, results(trial(artifacts={"samples": make(folder)})))
    with pytest.raises(ResultsFileError, match=re.escape(why)) as caught:
        render([folder], tmp_path / "board.md")
    assert str(path) in str(caught.value) and "trials[0].artifacts.samples" in str(caught.value)
    out = CliRunner().invoke(cli, ["leaderboard", str(folder), "-o", str(tmp_path / "board.md")])
    assert out.exit_code == 2 and why in out.output and "Traceback" not in out.output
    assert not (tmp_path / "board.md").exists()


# -- point 2: the site build never follows a symbolic link ----------------------------------------------------

def test_site_hooks_publish_no_symbolic_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("site_hooks", ROOT / "docs" / "site_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    # what on_files would add to the site: (its place in the site, the file it is copied from)
    monkeypatch.setattr(hooks.File, "generated", staticmethod(lambda config, uri, abs_src_path: (uri, abs_src_path)))
    project = tmp_path / "project"
    results_dir = project / "benchmarks" / "results" / "run"
    results_dir.mkdir(parents=True)
    (project / "mkdocs.yml").write_text("site_name: x\n")
    (results_dir / "results.json").write_text("{}")
    (results_dir / "samples.png").write_bytes(b"png")
    outside = _links_out(results_dir, tmp_path, "leak.json", "folder")
    (results_dir / "inner.png").symlink_to(results_dir / "samples.png")  # a link, even to a file inside
    added = hooks.on_files([], SimpleNamespace(config_file_path=str(project / "mkdocs.yml")))
    assert sorted(uri for uri, _ in added) == ["benchmarks/results/run/results.json",
                                               "benchmarks/results/run/samples.png"]
    linked = tmp_path / "linked"  # benchmarks/results itself a link to a folder outside the project
    (linked / "benchmarks").mkdir(parents=True)
    (linked / "mkdocs.yml").write_text("site_name: x\n")
    (linked / "benchmarks" / "results").symlink_to(outside, target_is_directory=True)
    assert hooks.on_files([], SimpleNamespace(config_file_path=str(linked / "mkdocs.yml"))) == []


# -- point 5: nothing compared is not a reproduction ----------------------------------------------------------

def test_reproduce_refuses_results_without_a_score_to_compare(tmp_path: Path) -> None:
    path = write(tmp_path / "r", results(trial(final={}), trial(seed=1, final={})))
    with pytest.raises(UsageError, match="nothing to compare"):
        ganzoo.reproduce(path, out=tmp_path / "again", progress=False)
    out = CliRunner().invoke(cli, ["bench", "--reproduce", str(path), "--out", str(tmp_path / "again"),
                                   "--no-progress"])
    assert out.exit_code == 2 and "nothing to compare" in out.output and "Traceback" not in out.output
    assert "reproduced (" not in out.output and not (tmp_path / "again").exists()  # nothing trained


def test_a_report_with_nothing_compared_is_not_reproduced() -> None:
    report = Reproduction(results=Path("r.json"), out=Path("o"), seeds=[0])
    assert report.rows == {} and not report.reproduced
    same = Comparison("dcgan", "fid", {0: 1.0}, {0: 1.0}, 1.0, 1.0, IDENTICAL)
    report = Reproduction(results=Path("r.json"), out=Path("o"), seeds=[0], comparisons=[same],
                          expected_rows=["dcgan", "wgan-gp"])
    assert report.rows == {"dcgan": IDENTICAL, "wgan-gp": NOT_COMPARED} and not report.reproduced
    report.expected_rows = ["dcgan"]
    assert report.reproduced


# -- point 8: a malformed results file is a usage error naming the file and the field, never a traceback -------

def _mutated(change: Callable[[dict[str, Any]], Any]) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        data = results(trial(), trial(seed=1))
        change(data)
        return data
    return build


def _failed_without_reason(data: dict[str, Any]) -> None:
    data["trials"][0].update(status="failed", reason="", final=None)


MALFORMED: dict[str, tuple[Callable[[], Any], str]] = {
    "missing-protocol": (_mutated(lambda d: d["trials"][0].pop("protocol")), "trials[0].protocol"),
    "missing-final": (_mutated(lambda d: d["trials"][1].pop("final")), "trials[1]: a finished trial"),
    "ints-as-trials": (_mutated(lambda d: d.update(trials=[1, 2])), "trials[0]"),
    "trials-an-object": (_mutated(lambda d: d.update(trials={"a": 1})), "trials"),
    "profile-a-string": (_mutated(lambda d: d.update(profile="default")), "profile"),
    "hardware-null": (_mutated(lambda d: d["trials"][0].update(hardware=None)), "trials[0].hardware"),
    "string-fid": (_mutated(lambda d: d["trials"][0]["final"].update(fid="12.5")), "trials[0].final.fid"),
    "empty-failure-reason": (_mutated(_failed_without_reason), "needs a reason"),
    "100k-digit-int": (lambda: json.dumps(results(trial(seed=-7))).replace("-7", "1" + "0" * 100_000),
                       "too many digits"),
    "deep-nesting": (lambda: json.dumps(results(trial(extra=-7))).replace("-7", "[" * 100_000 + "]" * 100_000),
                     "too deeply"),
    "non-utf8": (lambda: json.dumps(results(trial("XX"))).encode().replace(b"XX", b"\xff\xfe"), "not UTF-8"),
    "profile-steps-abc": (_mutated(lambda d: d["profile"].update(steps="abc")), "profile.steps"),
    "no-profile": (_mutated(lambda d: d.pop("profile")), "profile"),
    "profile-dataset-part": (_mutated(lambda d: d["profile"].update(datasets={"ring-8": {"steps": "x"}})),
                             "datasets.ring-8"),
    "json-list": (lambda: "[1, 2]", "is not a ganzoo results file"),
}


@pytest.mark.parametrize("command", ["leaderboard", "reproduce"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_results_file_is_a_usage_error(tmp_path: Path, case: str, command: str) -> None:
    build, field = MALFORMED[case]
    path = write(tmp_path / "r", build())
    args = (["leaderboard", str(path), "-o", str(tmp_path / "board.md")] if command == "leaderboard" else
            ["bench", "--reproduce", str(path), "--out", str(tmp_path / "again"), "--no-progress"])
    out = CliRunner().invoke(cli, args)
    assert isinstance(out.exception, SystemExit) and out.exit_code == 2, out.output[-2000:]
    assert "Traceback" not in out.output and str(path) in out.output and field in out.output, out.output[-2000:]
    assert not (tmp_path / "again").exists() and not (tmp_path / "board.md").exists()


def test_committed_and_well_formed_results_files_pass_the_schema(tmp_path: Path) -> None:
    from ganzoo.bench.records import load_sweep, read_results

    # the base the malformed cases change is itself valid: each case fails for its own change
    assert read_results(write(tmp_path / "r", results(trial(), trial(seed=1)))).profile.name == "small"
    out = CliRunner().invoke(cli, ["leaderboard", str(tmp_path / "r"), "-o", str(tmp_path / "board.md")])
    assert out.exit_code == 0, out.output
    assert "| dcgan | 200.50&nbsp;<small>±&nbsp;0.71</small> |" in (tmp_path / "board.md").read_text()
    found = sorted((ROOT / "benchmarks" / "results").rglob("results.json"))
    assert len(found) >= 15
    for path in found:
        checked = read_results(path)
        assert checked.data == json.loads(path.read_text())  # the JSON as written, nothing dropped or coerced
    sweeps = sorted((ROOT / "benchmarks" / "results").rglob("sweep.json"))
    assert sweeps and all(load_sweep(p)["rows"] for p in sweeps)


def test_malformed_sweep_file_is_a_usage_error(tmp_path: Path) -> None:
    data = json.loads((ROOT / "benchmarks" / "results" / "dcgan-sweep" / "sweep.json").read_text())
    bad = copy.deepcopy(data)
    bad["rows"]["dcgan"]["trials"][0]["final"] = "11.6"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text(json.dumps(bad))
    out = CliRunner().invoke(cli, ["leaderboard", str(tmp_path / "s"), "-o", str(tmp_path / "board.md")])
    assert out.exit_code == 2 and "rows.dcgan.trials[0].final" in out.output and "Traceback" not in out.output
    hostile = copy.deepcopy(data)
    hostile["rows"] = {HOSTILE: hostile["rows"]["dcgan"]}
    hostile["rows"][HOSTILE]["trials"][0]["params"]["lr_g"] = HOSTILE
    hostile["rows"][HOSTILE]["trials"][0]["trial_id"] = HOSTILE
    (tmp_path / "s" / "sweep.json").write_text(json.dumps(hostile))
    assert_inert(to_html(render([tmp_path / "s"], tmp_path / "board.md")))


def test_values_that_pass_the_schema_render_without_a_traceback(tmp_path: Path) -> None:
    """A profile value of a laxer type, a non-finite score, a count too large for a float: the page renders
    what was checked, leaves what is not finite out of a mean, and refuses the count."""
    nan = trial(seed=1, final={"fid": float("nan")}, train_seconds=float("inf"))
    path = write(tmp_path / "lax", results(trial(), nan, fid_target="5"))
    page = render([path], tmp_path / "board.md")
    assert "200.00" in page and not re.search(r"\bnan\b", page.lower())  # seed 0's FID alone
    huge = write(tmp_path / "huge", results(trial(steps=10**400)))
    out = CliRunner().invoke(cli, ["leaderboard", str(huge), "-o", str(tmp_path / "b.md")])
    assert out.exit_code == 2 and "trials[0].steps" in out.output and "Traceback" not in out.output
