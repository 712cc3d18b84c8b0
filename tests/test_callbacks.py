"""The training loop's callbacks: the points they are called at, in order; what the standard ones write; the
documented example; and that the bench and the sweep add behaviour through them alone."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import ganzoo
from ganzoo.errors import DivergenceError

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"batch_size": 8, "log_every": 1, "sample_every": 0, "sample_count": 4,
         "generator_options": {"width": 4}, "discriminator_options": {"width": 4}}


class Recorder(ganzoo.Callback):
    """Every point it is called at, with the step."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.error: BaseException | None = None

    def on_run_start(self, run: ganzoo.RunState) -> None:
        self.calls.append(("start", run.step))

    def on_step_end(self, run: ganzoo.RunState) -> None:
        self.calls.append(("step", run.step))

    def on_evaluation(self, run: ganzoo.RunState, scores: dict[str, float]) -> None:
        self.calls.append((f"evaluation {scores}", run.step))

    def on_samples(self, run: ganzoo.RunState, grid) -> None:
        assert grid.ndim == 3 and grid.shape[0] == 3 and 0 <= float(grid.min()) <= float(grid.max()) <= 1
        self.calls.append(("samples", run.step))

    def on_run_end(self, run: ganzoo.RunState) -> None:
        self.calls.append(("end", run.step))

    def on_run_exit(self, run: ganzoo.RunState, error: BaseException | None) -> None:
        self.calls.append(("exit", run.step))
        self.error = error


def test_points_are_called_in_order(tmp_path: Path) -> None:
    seen = Recorder()
    constant = ganzoo.Evaluation(lambda trainer: {"one": 1.0}, every=2)
    result = ganzoo.train("dcgan", steps=3, out=tmp_path / "run", progress=False,
                          overrides={**QUICK, "sample_every": 2}, callbacks=[constant, seen])
    assert seen.calls == [
        ("evaluation {'one': 1.0}", 0), ("start", 0),  # the evaluation before it acts at start, at step 0
        ("step", 1), ("samples", 2), ("evaluation {'one': 1.0}", 2), ("step", 2), ("step", 3),  # standard ones first
        ("samples", 3), ("evaluation {'one': 1.0}", 3), ("end", 3), ("exit", 3)]
    assert seen.error is None
    assert [e["step"] for e in result.evaluations] == [0, 2, 3]
    assert all(e["one"] == 1.0 and e["eval_seconds"] >= 0 for e in result.evaluations)
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["evaluations"] == result.evaluations and written["stopped_by"] == "steps"


def test_a_diverging_run_exits_with_its_error_and_says_so_in_result_json(tmp_path: Path) -> None:
    seen = Recorder()
    with pytest.raises(DivergenceError):
        ganzoo.train("dcgan", steps=5, out=tmp_path / "run", progress=False,
                     overrides={**QUICK, "lr_d": 1e30, "lr_g": 1e30}, callbacks=[seen])
    assert isinstance(seen.error, DivergenceError)
    assert ("end", seen.error.step) not in seen.calls and seen.calls[-1][0] == "exit"
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["stopped_by"] == "diverged" and written["diverged_at"] == seen.error.step
    assert written["reason"] == str(seen.error) and written["checkpoint"] is None


def test_a_resumed_run_starts_its_callbacks_at_the_checkpoint(tmp_path: Path) -> None:
    ganzoo.train("dcgan", steps=2, out=tmp_path / "run", progress=False, overrides=QUICK)
    seen = Recorder()
    ganzoo.train("dcgan", steps=4, out=tmp_path / "run", resume=True, progress=False, callbacks=[seen])
    assert seen.calls == [("start", 2), ("step", 3), ("step", 4), ("samples", 4), ("end", 4), ("exit", 4)]


def test_the_documented_callback_example_runs(tmp_path: Path, monkeypatch) -> None:
    text = (ROOT / "docs" / "plugins.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "ganzoo.Callback" in block)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)  # noqa: S102 - our own documentation
    result, watch = namespace["result"], namespace["watch"]
    assert [e["step"] for e in result.evaluations] == [0, 10, 20]
    assert watch.step is None or 1 <= watch.step <= 20
    assert os.path.isfile(tmp_path / "runs" / "dcgan-callbacks" / "result.json")


def test_bench_and_sweep_add_behaviour_through_callbacks_only() -> None:
    """Neither passes anything to a run but its config and callbacks: no evaluate closure, no trainer hook."""
    for package in ("bench", "sweep"):
        source = "\n".join(p.read_text() for p in sorted((ROOT / "ganzoo" / package).glob("*.py")))
        calls = re.findall(r"\brun_config\((.*?)\)\n", source, re.S)
        assert calls, package
        for call in calls:
            assert "evaluate=" not in call and "callbacks=" in call, (package, call)
