"""Training configuration: a validated model, YAML loading (safe only) and ``key=value`` overrides.
Precedence, lowest first: the defaults below, the variant's, the config file, ``--set``, keyword arguments.
A bad key, type or value raises :class:`ganzoo.errors.ConfigError` naming the key's path."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

#: Defaults that changed after results were committed: key -> the value every earlier run had. ``--reproduce``
#: pins each to what the committed trials recorded (this value where they lack the key).
FORMER_DEFAULTS: dict[str, Any] = {"generator_batch": "fresh", "compile": False, "channels_last": False,
                                   "fused_optimizer": False, "discriminator_pass": "separate"}
MAX_SEED = 2**62  #: the largest seed ganzoo accepts anywhere: torch's generators take 64-bit seeds
Schedule = dict[str, Any]  #: ``{kind: args, over: N, unit: steps}`` (:mod:`ganzoo.training.schedules`)
MAX_DEPTH = 50  #: deepest nesting a config may have (a few thousand levels would exhaust Python's stack)
MAX_SHOWN = 80  #: longest text of a value shown in an error message


def check_seed(seed: int, what: str = "seed") -> int:
    """``seed`` when it is an integer in ``0..MAX_SEED``; else a :class:`ConfigError` naming ``what``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{what} must be an integer from 0 to {MAX_SEED} (2**62), not {seed!r}")
    return seed


def extension_names_as_mapping(value: Any) -> Any:
    """A list of extension names (or a comma-separated string) as ``{name: {}}``; anything else unchanged."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(name, str) for name in value):
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:  # an extension acts once per point of a step: a second copy is a typo, not a stronger effect
            raise ConfigError(f"extensions: {', '.join(map(repr, twice))} given more than once; list each extension "
                              f"once (its options say how strongly it acts)")
        return {name: {} for name in value}
    return value


class TrainConfig(BaseModel):
    """Everything a training run needs. The trainer reads it; it never parses anything itself."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    variant: str = Field(description="Variant name or alias (see `ganzoo list`).")
    generator: str | None = Field(None, description="Generator name; default: the variant's.")
    discriminator: str | None = Field(None, description="Discriminator name; default: the variant's.")
    loss: str | None = Field(None, description="Loss name; default: the variant's.")
    generator_options: dict[str, Any] = Field(default_factory=dict)
    discriminator_options: dict[str, Any] = Field(default_factory=dict)
    loss_options: dict[str, Any] = Field(default_factory=dict)
    extensions: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Training extensions in the order they act, each with its options "
        "(`{ema: {decay: 0.999}}`); a list of names enables them with default options; `NAME: false` turns off "
        "one that the variant enables.")
    dataset: str = Field("mnist-5k", description="Dataset name (see `ganzoo list`).")
    data_root: Path = Field(Path("~/.cache/ganzoo/data"), description="Where datasets are stored or downloaded.")
    download: bool = Field(True, description="Download datasets that are missing from data_root.")
    image_size: int | None = Field(None, gt=0, description="Resize images to this size (square).")
    data_loading: Literal["auto", "memory", "stream"] = Field(
        "auto", description="'memory': one tensor on the device, batched by indexing; 'stream': a DataLoader with "
        "workers (pinned memory on CUDA); 'auto': memory when the float32 copy fits memory_limit_gb.")
    data_workers: int = Field(2, ge=0, description="DataLoader worker processes for streamed or decoded datasets.")
    memory_limit_gb: float = Field(4.0, ge=0, description="Largest float32 dataset copy 'auto' holds in memory (GB).")
    steps: int = Field(1000, gt=0, description="Generator steps.")
    n_critic: int = Field(1, gt=0, description="Discriminator steps per generator step.")
    batch_size: int = Field(64, gt=0)
    latent_dim: int = Field(100, gt=0)
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr_g: float | Schedule = Field(2e-4, description="Generator learning rate (> 0), or a schedule.")
    lr_d: float | Schedule = Field(2e-4, description="Discriminator learning rate (> 0), or a schedule.")
    betas: tuple[float | Schedule, float | Schedule] = (0.5, 0.999)
    generator_batch: Literal["fresh", "reuse"] = Field(
        "fresh", description="What the generator update scores: 'fresh': a new latent batch (Goodfellow 2014, "
        "Algorithm 1); 'reuse': the fake batch of the step's discriminator update, generated once with its graph "
        "(pytorch/examples' DCGAN loop; one generator forward per step, n_critic 1 only).")
    discriminator_pass: Literal["auto", "joint", "separate"] = Field(
        "auto", description="How a loss that scores a real and a fake batch (ganzoo.score_pair) calls the "
        "discriminator: 'joint': once, on the two batches concatenated; 'separate': once per batch; 'auto': joint "
        "when that gives the same scores (no buffers or parametrizations in D, such as BatchNorm statistics or "
        "spectral norm's power iteration, and no extension augmenting what D sees), else separate.")
    init: Literal["default", "normal"] = Field(
        "default", description="'normal': weights N(0, init_std), BatchNorm scales N(1, init_std).")
    init_std: float = Field(0.02, gt=0)
    # Fast paths: 'auto' is on for the device types where it was measured faster (ganzoo.fast_paths.AUTO).
    compile: bool | Literal["auto"] = Field(
        "auto", description="torch.compile the generator's forward and each loss step (D and loss; a double-backward "
        "loss keeps its D step eager); 'auto': where measured faster.")
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="Channels-last memory format for networks and data; 'auto': where measured faster.")
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="Autocast dtype; fp16 (CUDA only) uses scalers.")
    fused_optimizer: bool | Literal["auto"] = Field(
        "auto", description="Fused Adam kernels (torch.optim.Adam(fused=True)); 'auto': where measured faster.")
    sync_batchnorm: bool = Field(False, description="Under torchrun on CUDA: BatchNorm statistics over all ranks.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Random seed (0 .. 2**62).")
    deterministic: bool = Field(False, description="torch.use_deterministic_algorithms (and what CUDA needs).")
    device: str = Field("cpu", description="'cpu', 'cuda', 'cuda:N' or 'auto'.")
    out: Path = Field(Path("runs/run"), description="Run directory (ganzoo train: runs/VARIANT unless set).")
    log_every: int = Field(10, gt=0, description="Write a JSONL log line every N steps.")
    sample_every: int = Field(100, ge=0, description="Save a sample grid every N steps (0: only at the end).")
    sample_count: int = Field(64, gt=0, description="Images in each sample grid.")
    checkpoint_every: int = Field(0, ge=0, description="Save a checkpoint every N steps (0: only at the end).")
    keep_last: int = Field(2, gt=0, description="Checkpoints to keep.")

    @model_validator(mode="before")
    @classmethod
    def _strict_numbers(cls, data: Any) -> Any:
        """A bool is not a number and a string is not a number (pydantic's lax mode would take both)."""
        for key, value in data.items() if isinstance(data, dict) else ():
            field = cls.model_fields.get(key)
            if field is not None and isinstance(value, (bool, str)):
                kinds = set(typing.get_args(field.annotation)) or {field.annotation}
                if kinds & {int, float} and bool not in kinds:
                    raise ValueError(f"{key}: must be a number, not {type(value).__name__} {shown(value)}")
        return data

    @model_validator(mode="after")
    def _reuse_needs_one_critic_step(self) -> TrainConfig:
        if self.generator_batch == "reuse" and self.n_critic != 1:
            raise ValueError(f"generator_batch: 'reuse' scores the fake batch of the one discriminator update of a "
                             f"step, but n_critic is {self.n_critic}; set generator_batch=fresh (or n_critic=1)")
        return self

    @field_validator("extensions", mode="before")
    @classmethod
    def _extensions_mapping(cls, value: Any) -> Any:
        value = extension_names_as_mapping(value)
        if isinstance(value, (list, tuple)):
            raise ValueError("a list of extensions must hold names (strings)")
        if isinstance(value, dict):  # `NAME: false` (or null) turns an extension off; `NAME: true` or {}: on
            return {name: {} if options is True else options for name, options in value.items()
                    if options is not False and options is not None}
        return value

    @field_validator("out")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()  # `out: ~/runs/x` is in the home directory, not a folder named "~"

    @field_validator("lr_g", "lr_d")
    @classmethod
    def _positive(cls, value: float | Schedule) -> float | Schedule:
        if not isinstance(value, dict) and not value > 0:
            raise ValueError("Input should be greater than 0")
        return value

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float | Schedule, float | Schedule]) -> tuple[float | Schedule, ...]:
        if not all(0.0 <= b < 1.0 for b in value if not isinstance(b, dict)):
            raise ValueError("each beta must be in [0, 1)")
        return value


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-4``), refusing aliases and duplicate keys."""
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in ganzoo config files; "
                                              "write the value out", self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {str(key)[:40]!r}",
                                                        key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


_SafeLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"""^(?:
    [-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
    |[-+]?[0-9][0-9_]*\.[0-9_]*
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    return level if children is None else max([_depth(v, level + 1) for v in children], default=level + 1)


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN` characters: error messages never echo an unbounded value."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for repr
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 5] + "...)"


def safe_load(text: str) -> Any:
    """Parse YAML with :class:`_SafeLoader` (no Python tags, aliases or duplicate keys), :data:`MAX_DEPTH` deep."""
    loader = _SafeLoader(text)
    try:
        data = loader.get_single_data()
    except RecursionError:
        raise yaml.YAMLError(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise yaml.YAMLError(str(exc)[:200]) from None
    finally:
        loader.dispose()
    if _depth(data) > MAX_DEPTH:
        raise yaml.YAMLError(f"nested more than {MAX_DEPTH} levels deep")
    return data


def validate_config(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a plain dict into a :class:`TrainConfig`, turning pydantic's errors into a ConfigError."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or "<root>"
            if not err["loc"]:  # a check of the whole config, whose message names the key
                lines.append(str(err["msg"]).removeprefix("Value error, "))
            elif err["type"] == "extra_forbidden":
                lines.append(f"{key}: unknown key (known keys: {', '.join(sorted(TrainConfig.model_fields))})")
            else:
                lines.append(f"{key}: {err['msg']} (got {shown(err.get('input'))})")
        raise ConfigError(f"invalid {source}:\n  " + "\n  ".join(lines)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping with safe loading (no Python object tags are ever constructed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid safe YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, not {type(data).__name__}")
    return data or {}  # an empty file is an empty mapping


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b=value`` into (``["a", "b"]``, value); the value is read as a YAML scalar or list."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. lr_g=1e-4)")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if not all(path):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``data[path[0]][path[1]]... = value``, creating nested mappings as needed."""
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(path)}: {'.'.join(path[: i + 1])} is not a mapping")
        node = child
    node[path[-1]] = value


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive merge of two mappings; values of ``update`` win."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else copy.deepcopy(value)
    return out
