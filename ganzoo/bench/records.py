"""The records a bench and a sweep write (``results.json``, ``sweep.json``): their typed schema, read and written.
Results files travel, so every reader goes through :func:`read_results` (or :func:`load_sweep`), which raises a
:class:`~ganzoo.errors.ResultsFileError` naming the file and the field for one that does not pass; what passes
is the file's JSON unchanged (unknown keys kept)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..checkpoint import atomic_write_bytes
from ..errors import GanzooError, ResultsFileError, UsageError
from ..metric_keys import BY_KEY
from ..sweep.spec import SWEEP_FILE, SWEEP_FORMAT
from .profile import BenchProfile, portable_profile

RESULTS_FORMAT = 1
RESULTS_FILE = "results.json"
#: A trial whose worker died before it could report: like ``running`` (interrupted), trained again on a re-run.
LOST = "lost"
RERUN_STATUSES = ("running", LOST)
#: Beside its scores, each evaluation in a trial's ``history`` records the seconds trained before it and its own.
TRAIN_SECONDS = "train_seconds"
EVAL_SECONDS = "eval_seconds"
TIMING_KEYS = (TRAIN_SECONDS, EVAL_SECONDS)
#: A trial's record in ``results.json`` as a bench writes it, JSON as it is (read back typed: :class:`Trial`).
TrialRecord = dict[str, Any]
#: The largest results or sweep file read (ganzoo's own are well under a megabyte).
MAX_FILE_BYTES = 64 * 2**20
#: How a trial may end (``running``: a record written before the trial ran).
TRIAL_STATUSES = ("ok", "failed", "diverged", LOST, "running")
#: Errors listed in one message (a badly broken file has hundreds).
SHOWN_ERRORS = 5
_COUNT_LIMIT = 2**53  # steps, image counts: beyond any run, and exact as a float (the leaderboard averages them)


class _Record(BaseModel):
    """A part of a results file: the keys ganzoo reads are typed (strictly: ``"12"`` is no number), others kept."""
    model_config = ConfigDict(extra="allow", strict=True)


class Scores(_Record):
    """Metric values by key (``final``, ``untrained``, ``best``, one evaluation of ``history``): numbers only."""
    __pydantic_extra__: dict[str, float]

    @property
    def values(self) -> dict[str, float]:
        """The values by metric key (timings too, in an evaluation)."""
        return self.__pydantic_extra__


class Evaluation(Scores):
    """One entry of a trial's ``history``: the generator step it was made at, and its scores and timings."""
    step: int = Field(ge=0, le=_COUNT_LIMIT)


class FeatureExtractorInfo(_Record):
    name: str
    sha256: str


class TrialBudget(_Record):
    steps: int = Field(gt=0, le=_COUNT_LIMIT)
    seconds: float | None = Field(None, gt=0)


class Versions(_Record):
    ganzoo: str
    torch: str
    torch_fidelity: str


class TrialProtocol(_Record):
    """What a trial's figures depend on besides its seed, as recorded (``ganzoo.bench.trial.trial_record``)."""
    profile: str
    dataset: str
    real_split: str
    num_real: int = Field(ge=0, le=_COUNT_LIMIT)
    num_fake: int = Field(ge=0, le=_COUNT_LIMIT)
    feature_extractor: FeatureExtractorInfo | None
    budget: TrialBudget
    config: dict[str, Any]
    versions: Versions


class Hardware(_Record):
    cpu: str | None = None
    cpu_capability: str | None = None
    threads: int | None = Field(None, gt=0)
    gpu: str | None = None


class Trial(_Record):
    """One trial of ``results.json`` (a :data:`TrialRecord`): a (row, seed) and how it ended."""
    variant: str = Field(min_length=1)
    seed: int = Field(ge=0, lt=2**63)  # a seed torch accepts
    status: Literal[TRIAL_STATUSES]  # type: ignore[valid-type]
    reason: str | None = None
    diverged_at: int | None = Field(None, ge=0, le=_COUNT_LIMIT)
    config_hash: str
    protocol: TrialProtocol
    hardware: Hardware | None = None  # absent for a trial that never ran; never null
    steps: int | None = Field(None, ge=0, le=_COUNT_LIMIT)
    train_seconds: float | None = Field(None, ge=0)
    wall_seconds: float | None = Field(None, ge=0)
    images_per_second: float | None = Field(None, ge=0)
    history: list[Evaluation] = Field(default_factory=list)
    untrained: Scores | None = None
    final: Scores | None = None
    best: Scores | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)

    @field_validator("hardware", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must be an object (leave the key out where the trial never ran)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Trial:
        if self.status == "ok":
            missing = [k for k in ("steps", "train_seconds", "images_per_second", "final") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"a finished trial (status ok) needs {', '.join(missing)}")
        elif self.status != "running" and not (self.reason or "").strip():
            raise ValueError(f"a {self.status} trial needs a reason (a non-empty string)")
        if self.status == "diverged" and self.diverged_at is None:
            raise ValueError("a diverged trial needs diverged_at (the step)")
        return self


class ResultsSchema(_Record):
    """The whole of ``results.json``: its format, the profile it was run with and its trials."""
    format: Literal[RESULTS_FORMAT]  # type: ignore[valid-type]
    profile: BenchProfile
    trials: list[Trial]


class SweepCluster(_Record):
    cpus: float
    cpus_per_trial: float
    driver: Hardware


class SweepBest(_Record):
    trial_id: str


class SweepTrial(_Record):
    trial_id: str
    params: dict[str, Any]
    status: str
    reason: str | None = None
    evaluations: list[Evaluation]
    final: float | None


class SweepRow(_Record):
    steps: int = Field(gt=0)
    eval_every: int = Field(gt=0)
    wall_seconds: float | None = Field(None, ge=0)
    cluster: SweepCluster | None = None
    best: SweepBest | None
    trials: list[SweepTrial]


class SweepSchema(_Record):
    """The whole of ``sweep.json``: the profile with its ``sweep`` section, and per row every trial Tune ran."""
    format: Literal[SWEEP_FORMAT]  # type: ignore[valid-type]
    profile: BenchProfile
    rows: dict[str, SweepRow]

    @model_validator(mode="after")
    def _has_search(self) -> SweepSchema:
        if self.profile.sweep is None:
            raise ValueError("profile has no sweep section")
        if self.profile.sweep.metric not in BY_KEY:
            raise ValueError(f"profile.sweep.metric {self.profile.sweep.metric!r} is no metric ganzoo knows")
        return self


@dataclass(frozen=True)
class ResultsFile:
    """A results file that passed :class:`ResultsSchema`: its path, its JSON as written, and typed."""
    path: Path
    data: dict[str, Any]
    profile: BenchProfile
    trials: list[Trial]


def results_path(path: str | Path, name: str = RESULTS_FILE) -> Path:
    """``path`` itself, or the ``results.json`` (``name``) inside it where it is a bench (sweep) directory."""
    path = Path(path)
    return path / name if path.is_dir() else path


def _load(path: Path, what: str, fmt: int, schema: type[BaseModel]) -> tuple[dict[str, Any], Any]:
    """A results or sweep file's JSON checked against ``schema``, its profile's known keys as validation typed them."""
    try:
        data = _read_json(path, what)
        if not isinstance(data, dict) or data.get("format") != fmt:
            raise ResultsFileError(f"{str(path)!r} is not a ganzoo {what} (a JSON object with format {fmt})")
        checked = schema.model_validate(data)
    except RecursionError:
        raise ResultsFileError(f"{what} {str(path)!r} nests arrays or objects too deeply") from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        lines = [f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in errors[:SHOWN_ERRORS]]
        if len(errors) > SHOWN_ERRORS:
            lines.append(f"... and {len(errors) - SHOWN_ERRORS} more")
        raise ResultsFileError(f"{what} {str(path)!r} does not match what ganzoo writes:\n  " + "\n  ".join(lines)
                               ) from None
    known = set(data["profile"]) & set(BenchProfile.model_fields)
    data["profile"] = {**data["profile"], **checked.profile.model_dump(mode="json", include=known)}
    return data, checked


def read_results(path: str | Path) -> ResultsFile:
    """Read and check a ``results.json`` (or a bench directory's), else a :class:`ResultsFileError`."""
    path = results_path(path)
    data, checked = _load(path, "results file", RESULTS_FORMAT, ResultsSchema)
    try:
        checked.profile.parts()
    except GanzooError as exc:
        raise ResultsFileError(f"results file {str(path)!r}: {exc}") from None
    for i, trial in enumerate(checked.trials):
        for key, rel in trial.artifacts.items():
            _check_artifact(path, f"trials[{i}].artifacts.{key}", rel)
    return ResultsFile(path=path, data=data, profile=checked.profile, trials=checked.trials)


def load_results(path: str | Path) -> dict[str, Any]:
    """The JSON of a ``results.json`` (or of the one inside a bench directory), checked by :func:`read_results`."""
    return read_results(path).data


def load_sweep(path: str | Path) -> dict[str, Any]:
    """The JSON of a ``sweep.json`` (or of the one inside a sweep directory), checked against :class:`SweepSchema`."""
    return _load(results_path(path, SWEEP_FILE), "sweep file", SWEEP_FORMAT, SweepSchema)[0]


def _read_json(path: Path, what: str) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ResultsFileError(f"{what} {str(path)!r} is {size} bytes; ganzoo reads at most {MAX_FILE_BYTES}")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what} {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ResultsFileError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ResultsFileError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{what} {str(path)!r} is not valid JSON: {exc}") from None
    except ValueError:  # Python's cap on the digits of an int
        raise ResultsFileError(f"{what} {str(path)!r} holds a number with too many digits") from None


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the file)"


def _check_artifact(path: Path, field: str, rel: str) -> None:
    """Refuse an artifact path that is empty, absolute, climbs with ``..`` or resolves outside ``path``'s folder."""
    posix, windows = PurePosixPath(rel), PureWindowsPath(rel)
    if not rel or not rel.isprintable():
        why = "is empty or holds control characters"
    elif posix.is_absolute() or windows.is_absolute() or windows.drive or rel.startswith("\\"):
        why = "is absolute"
    elif ".." in posix.parts or ".." in windows.parts:
        why = "climbs out with '..'"
    else:
        root = path.parent.resolve()
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            if (root / rel).resolve().is_relative_to(root):
                return
        why = "resolves outside it (through a symbolic link)"
    shown = repr(rel if len(rel) <= 200 else rel[:200] + "...")
    raise ResultsFileError(f"results file {str(path)!r}: {field} = {shown} {why}; an artifact must be a relative "
                           "path inside the results file's directory")


def write_results(out: Path, profile: BenchProfile, trials: list[TrialRecord]) -> None:
    """Write ``out/results.json`` (the portable ``profile`` and ``trials``), whole or not at all."""
    _write(out / RESULTS_FILE, {"format": RESULTS_FORMAT, "profile": portable_profile(profile), "trials": trials})


def write_sweep(out: Path, profile: BenchProfile, rows: dict[str, Any]) -> dict[str, Any]:
    """Write ``out/sweep.json`` (``profile`` and every row's search) and return what it holds."""
    return _write(out / SWEEP_FILE, {"format": SWEEP_FORMAT, "profile": portable_profile(profile), "rows": rows})


def _write(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(data, indent=2) + "\n"
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
    return data
