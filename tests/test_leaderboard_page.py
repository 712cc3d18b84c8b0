"""The committed leaderboard page is exactly what the committed results render to: docs never drift from data."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from ganzoo.bench.leaderboard import build
from ganzoo.bench.records import RESULTS_FILE, load_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "default" / "results.json"
# the default bench (the README's main job, 3 seeds), the quality profile `long`, the whole zoo under one
# 600-step budget, the conditional variants
# after 1200 steps and cgan-pd after 2400 (profile conditional with --variants cgan-pd --steps 2400), then
# DCGAN after 300 steps at the default width and at the previous (half) width, and the default rows with
# each generator_batch (docs/performance.md#generator-batch), also for the other variants with n_critic 1, and
# dcgan against dcgan+pac2 on Stacked MNIST, the collapse profile (three datasets in one results file) and the
# dcgan sweep (its trial table, then its paper-default and tuned benches); after the zoo, the modern baselines
# (r3gan, stylegan2, stylegan2+ada beside dcgan) and r3gan-conditional beside cgan-pd. Every section is
# step-budgeted and has at least 3 seeds.
PAGE_SOURCES = ["default", "long", "zoo", "modern", "generator-batch-fresh", "generator-batch-reuse",
                "generator-batch-zoo-fresh", "generator-batch-zoo-reuse", "conditional", "conditional-long",
                "conditional-modern", "early", "early-half-width", "pacgan-stacked-mnist", "pacgan-stacked-mnist-long",
                "stacked-mnist-modern", "collapse", "dcgan-sweep", "stability"]
ZOO_ROWS = {"vanilla", "dcgan", "wgan-gp", "wgan-clip", "sngan", "ragan", "cgan-pd", "acgan", "dcgan+ema",
            "dcgan+ema+diffaugment"}
PAGE = ROOT / "docs" / "leaderboard.md"
FIGURES = ROOT / "docs" / "leaderboard-figures"


def test_leaderboard_page_matches_committed_results() -> None:
    sources = [ROOT / "benchmarks" / "results" / name for name in PAGE_SOURCES]
    page, figures = build(sources, PAGE)
    regenerate = ("regenerate it with: ganzoo leaderboard " + " ".join(f"benchmarks/results/{name}" for name in
                                                                       PAGE_SOURCES) + " -o docs/leaderboard.md")
    assert PAGE.read_text() == page, f"docs/leaderboard.md is out of date; {regenerate} --overwrite"
    # every figure it shows is committed, and nothing else is in their folder
    assert sorted(p.name for p in FIGURES.iterdir()) == sorted(p.name for p in figures), f"stale figures; {regenerate}"


def headline_rows() -> dict[str, list[str]]:
    """The committed page's headline table: its cells by variant."""
    table = PAGE.read_text().split("## Which variant to use", 1)[1].split("\n\n")[2].splitlines()
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in row.strip("|").split("|")] for row in table[2:])}


def test_headline_compares_every_variant_at_the_common_budget() -> None:
    """FID's column is the zoo's budget (the one most variants ran at), each cell a row's mean linking to its section,
    the best in bold; a collapsed row is flagged there, in its section and in its sentence."""
    rows = headline_rows()
    trials = load_results(ROOT / "benchmarks" / "results" / "zoo")["trials"]
    assert set(rows) >= ZOO_ROWS
    fids = {row: statistics.fmean(t["final"]["fid"] for t in trials if t["variant"] == row) for row in ZOO_ROWS}
    best = min(fids, key=fids.get)
    for row, fid in fids.items():
        shown = f"**{fid:.2f}**" if row == best else f"{fid:.2f}"
        assert rows[row][0].startswith(f"[{shown}](#"), (row, rows[row][0])
    page = PAGE.read_text()
    zoo = page.split("## mnist-5k — `zoo`", 1)[1].split("\n## ", 1)[0]
    classes = {t["variant"]: t["final"]["classes_covered"] for t in trials if t["seed"] == 0}
    for row in ZOO_ROWS:  # the rule: a third of mnist-5k's 10 classes at most (every seed alike here)
        flagged = f"| {row}<br><small>⚠ collapsed in 3 of 3 seeds</small> |" in zoo
        assert flagged == (classes[row] <= 10 / 3), row
    assert rows["vanilla"][0].endswith("&nbsp;⚠")
    sentence = next(line for line in page.splitlines() if line.startswith("- **vanilla** "))
    assert "is last with [FID" in sentence and "collapses in [mnist-5k — `zoo`" in sentence


def test_headline_stability_column_is_each_rows_share_of_configurations_reaching_the_target() -> None:
    """The stability sweep trains 6 configurations per unconditional variant to the end (FIFO); its headline column
    is the share of each row's that end at FID <= 30, its section the count, median and best, by hand here."""
    import json

    data = json.loads((ROOT / "benchmarks" / "results" / "stability" / "sweep.json").read_text())
    spec = data["profile"]["sweep"]
    assert spec["scheduler"] == "fifo" and data["profile"]["fid_target"] == 30 and spec["samples"] == 6
    assert set(data["rows"]) == {"vanilla", "dcgan", "wgan-gp", "wgan-clip", "sngan", "ragan", "r3gan", "stylegan2"}
    column = next(i for i, title in enumerate(PAGE.read_text().split("## Which variant to use", 1)[1].split(
        "\n\n")[2].splitlines()[0].strip("|").split("|")[1:]) if "Configs to FID ≤ 30" in title)
    rows, section = headline_rows(), PAGE.read_text().split("sweep `stability`", 1)[1].split("\n## ", 1)[0]
    shares = {}
    for row, found in data["rows"].items():
        finals = [t["final"] for t in found["trials"] if t["status"] == "completed"]
        assert len(found["trials"]) == 6 and all(t["evaluations"][-1]["step"] == 600 for t in found["trials"]
                                                 if t["status"] == "completed")
        shares[row] = 100 * sum(f <= 30 for f in finals) / 6
        failed = sum(t["status"] == "failed" for t in found["trials"])
        assert (f"| {row} | 600 | {sum(f <= 30 for f in finals)} of 6 | {statistics.median(finals):.2f} | "
                f"{min(finals):.2f} | 0 · {failed} |") in section, row
    for row, share in shares.items():
        shown = f"**{share:.0f}%**" if share == max(shares.values()) else f"{share:.0f}%"
        assert rows[row][column].startswith(f"[{shown}](#sweep-stability-mnist-5k)"), (row, rows[row][column])


def section_results() -> list[Path]:
    """The results files behind the page's sections (a sweep's two benches for a sweep directory)."""
    found = []
    for name in PAGE_SOURCES:
        folder = ROOT / "benchmarks" / "results" / name
        own = folder / RESULTS_FILE
        found += [own] if own.is_file() else sorted(folder.glob(f"*/{RESULTS_FILE}"))
    return found


def test_every_leaderboard_section_is_step_budgeted_with_at_least_3_seeds() -> None:
    # dcgan-sweep's paper-defaults and tuned benches for its directory; stability is a sweep alone (--no-compare)
    assert len(section_results()) == len(PAGE_SOURCES)
    for path in section_results():
        trials = load_results(path)["trials"]
        for row in {(t["protocol"]["dataset"], t["variant"]) for t in trials}:
            mine = [t for t in trials if (t["protocol"]["dataset"], t["variant"]) == row]
            assert len({t["seed"] for t in mine}) >= 3, (path, row)
            assert all(t["protocol"]["budget"]["seconds"] is None for t in mine), (path, row)


def test_committed_early_results_support_the_default_dcgan_width() -> None:
    def fids(name: str) -> list[float]:
        trials = load_results(ROOT / "benchmarks" / "results" / name / "results.json")["trials"]
        assert [t["status"] for t in trials] == ["ok"] * 3 and {t["steps"] for t in trials} == {300}
        return [t["final"]["fid"] for t in trials]

    default, half = fids("early"), fids("early-half-width")
    assert sum(default) / 3 < sum(half) / 3


def test_committed_default_bench_beats_an_untrained_generator_on_every_metric() -> None:
    data = load_results(RESULTS)
    trials = data["trials"]
    assert data["profile"]["name"] == "default" and data["profile"]["threads"] == 1
    assert {t["variant"] for t in trials} == {"vanilla+ema", "dcgan", "wgan-gp"}
    for t in trials:
        assert t["status"] == "ok", t["reason"]
        assert t["hardware"]["threads"] == 1 and t["hardware"]["cpu_capability"]
        final, untrained = t["final"], t["untrained"]
        assert final["fid"] < untrained["fid"] / 5
        assert final["kid_mean"] < untrained["kid_mean"] / 5
        for key in ("is_mean", "precision", "recall", "classes_covered"):
            assert final[key] > untrained[key], (t["variant"], t["seed"], key)
        assert final["class_kl"] < untrained["class_kl"]
    # every picture the page shows was committed with the results
    for t in trials:
        for rel in t["artifacts"].values():
            if rel.endswith(".png"):
                assert (RESULTS.parent / rel).is_file(), rel


def test_performance_table_matches_committed_throughput_figures() -> None:
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("throughput", ROOT / "benchmarks" / "throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    doc = (ROOT / "docs" / "performance.md").read_text()
    reports = sorted([*(ROOT / "benchmarks" / "results").glob("throughput*-cpu.json"),
                      *(ROOT / "benchmarks" / "results").glob("fast-paths*-cpu.json"),
                      *(ROOT / "benchmarks" / "results").glob("fast-paths*-cuda.json")])
    assert {"throughput-cpu.json", "fast-paths-cpu.json", "fast-paths-layout-cpu.json"} <= {r.name for r in reports}
    for path in reports:
        report = json.loads(path.read_text())
        assert throughput.render_table(report) in doc, (
            f"docs/performance.md is out of date for {path.name}; rerun benchmarks/throughput.py with --update-doc "
            f"and the options recorded in that file"
        )


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_merged_throughput_reports_take_later_rows() -> None:
    throughput = _script("throughput")
    head = {"table": "t", "kind": "fast-paths", "device": "cpu", "switches": ["compile"]}
    first = {**head, "date": "d1", "matmul_gflops": 1.0,
             "variants": [{"variant": "a", "x": 1}, {"variant": "b", "x": 1}]}
    second = {**head, "date": "d2", "matmul_gflops": 2.0, "switches": ["compile", "channels_last"],
              "variants": [{"variant": "b", "x": 2}, {"variant": "c", "x": 2}]}
    merged = throughput.merge_reports([first, second])
    assert merged["variants"] == [{"variant": "a", "x": 1}, {"variant": "b", "x": 2}, {"variant": "c", "x": 2}]
    assert merged["date"] == "d2" and merged["switches"] == ["compile", "channels_last"]
    assert merged["merged_from"] == [{"variants": ["a"], "date": "d1", "matmul_gflops": 1.0},
                                     {"variants": ["b", "c"], "date": "d2", "matmul_gflops": 2.0}]


def test_time_to_quality_table_matches_the_committed_generator_batch_runs() -> None:
    ttq = _script("time_to_quality")
    sections = [ROOT / "benchmarks" / "results" / f"generator-batch-{part}{mode}" for part in ("", "zoo-")
                for mode in ("fresh", "reuse")]
    assert ttq.render(sections, [25, 20, 15, 12]) in (ROOT / "docs" / "performance.md").read_text(), (
        "docs/performance.md is out of date; rerun benchmarks/time_to_quality.py (command in that page)")


@pytest.mark.parametrize("part", ["", "zoo-"])
def test_generator_batch_runs_differ_only_in_that_key(part: str) -> None:
    """Each pair of sections is one experiment: the same rows, seeds, budgets and config but generator_batch,
    with the seconds of training and of evaluation recorded at every evaluation."""
    fresh, reuse = (load_results(ROOT / "benchmarks" / "results" / f"generator-batch-{part}{m}")["trials"]
                    for m in ("fresh", "reuse"))
    assert len(fresh) >= 6 and {t["seed"] for t in fresh} == {0, 1, 2}
    assert [(t["variant"], t["seed"]) for t in fresh] == [(t["variant"], t["seed"]) for t in reuse]
    for a, b in zip(fresh, reuse, strict=True):
        ca, cb = ({k: v for k, v in t["protocol"]["config"].items() if k not in ("out", "generator_batch")}
                  for t in (a, b))
        assert ca == cb and a["protocol"]["eval_every"] == b["protocol"]["eval_every"]
        assert (a["protocol"]["config"]["generator_batch"], b["protocol"]["config"]["generator_batch"]) == (
            "fresh", "reuse")
        assert all("eval_seconds" in h and "train_seconds" in h for h in a["history"] + b["history"])


def test_zoo_results_hold_every_variant_and_the_extension_rows() -> None:
    trials = load_results(ROOT / "benchmarks" / "results" / "zoo" / "results.json")["trials"]
    assert {t["variant"] for t in trials} == ZOO_ROWS
    for row in ZOO_ROWS:
        mine = [t for t in trials if t["variant"] == row]
        assert sorted(t["seed"] for t in mine) == [0, 1, 2], row
        assert all(t["status"] == "ok" and t["steps"] == 600 for t in mine), row
    ema = [t for t in trials if t["variant"] == "dcgan+ema"]
    assert all(t["extensions"] == ["ema"] for t in ema)


def test_committed_cgan_pd_draws_every_class_as_asked() -> None:
    import json

    long = ROOT / "benchmarks" / "results" / "conditional-long"
    agreement = json.loads((long / "class_agreement.json").read_text())
    rows = [r for r in agreement["trials"] if r["variant"] == "cgan-pd"]
    assert len(rows) == 3 and agreement["per_class_samples"] >= 100 and {r["steps"] for r in rows} == {2400}
    assert load_results(long)["profile"]["steps"] == 2400
    for row in rows:
        assert len(row["per_class"]) == 10
        assert row["min"] >= 0.9, (row["seed"], row["per_class"])


def test_committed_results_hold_no_machine_paths() -> None:
    """No committed results file names a place on the machine that made it (weights, data, run directories)."""
    import json

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    files = sorted((ROOT / "benchmarks" / "results").rglob("results.json"))
    assert len(files) >= len(PAGE_SOURCES)
    for path in files:
        for text in strings(json.loads(path.read_text())):
            assert not Path(text).is_absolute() and not text.startswith("~/work"), (path, text)
            assert "/work/" not in text and "/root/" not in text and "/home/" not in text, (path, text)


def test_default_bench_spends_under_a_tenth_of_its_training_time_evaluating() -> None:
    trials = load_results(RESULTS)["trials"]
    evaluating = sum(h["eval_seconds"] for t in trials for h in t["history"])
    training = sum(t["train_seconds"] for t in trials)
    assert evaluating < 0.10 * training, (evaluating, training)


def test_long_section_holds_every_row_with_its_budget_and_curve() -> None:
    """The quality profile: each row's 3 seeds trained to its step budget and scored along the way."""
    from ganzoo.bench import load_profile

    profile = load_profile("long")
    trials = load_results(ROOT / "benchmarks" / "results" / "long" / "results.json")["trials"]
    assert sorted({t["variant"] for t in trials}) == sorted(profile.variants)
    for row in profile.variants:
        budget = profile.budget(row, row.split("+")[0])
        mine = [t for t in trials if t["variant"] == row]
        assert sorted(t["seed"] for t in mine) == [0, 1, 2], row
        for t in mine:
            assert t["status"] == "ok" and t["steps"] == budget.steps, (row, t["seed"])
            assert [h["step"] for h in t["history"]] == list(range(0, budget.steps + 1, budget.eval_every))
            assert t["train_seconds"] < 30 * 60  # at most 30 minutes of training per trial on this CPU
    # every dcgan and wgan-gp row draws all ten digit classes at the end of every seed
    for t in trials:
        if t["base_variant"] in ("dcgan", "wgan-gp"):
            assert t["final"]["classes_covered"] == 10, (t["variant"], t["seed"])


def test_startup_table_matches_the_committed_measurement() -> None:
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("startup", ROOT / "benchmarks" / "startup.py")
    startup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(startup)
    report = json.loads((ROOT / "benchmarks" / "results" / "startup-cpu.json").read_text())
    assert [row["args"] for row in report["commands"]] == [["--help"], ["--version"], ["list"]]
    assert startup.render_table(report) in (ROOT / "docs" / "performance.md").read_text(), (
        "docs/performance.md is out of date; rerun python benchmarks/startup.py --update-doc")


def test_each_default_row_names_the_command_that_samples_its_bundled_generator() -> None:
    import ganzoo

    page = PAGE.read_text()
    for bundled in ganzoo.list_pretrained():
        row = next(line for line in page.splitlines() if line.startswith(f"| {bundled['name']}<br>")
                   and f"<code>ganzoo sample {bundled['source']}</code>" in line)
        assert "(seed 0, no training)" in row
    assert page.count("<code>ganzoo sample pretrained:") == len(ganzoo.list_pretrained())
