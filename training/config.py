"""``TrainConfig``: every knob of a training run, loadable from YAML/JSON, overridable as
``key=value`` pairs (``lr=3e-4``, ``model.dim=64``), and compared field by field on resume.

>>> cfg = TrainConfig(task="sudoku", data="data/sudoku")
>>> apply_overrides(cfg, ["lr=3e-4", "model.dim=64", "betas=[0.9,0.95]"]).lr
0.0003
>>> cfg.model
{'dim': 64}
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from tracegym.checks import check_int, check_positive_int, unknown_names_message
from tracegym.dataclass_docs import attribute_docs, describe_fields
from tracegym.errors import TracegymError
from tracegym.losses import LOSSES  # the reasoners' list, torch-free

OPTIMIZERS = ("adamw", "adam_atan2")
AMP_MODES = ("auto", "bf16", "off")
SAMPLERS = ("examples", "groups")  # see training/sampling.py
ACT_FLOWS = ("carry", "batch")

# Fields that may change when a run resumes: how long to run (a longer max_steps also stretches
# the cosine from there on), how often to log/save, where (the data may move to another path: the
# Trainer checks its dataset.json against the checkpoint's instead) and on what hardware. Every
# other field shapes the result and must match the checkpoint.
RESUMABLE_FIELDS = frozenset({
    "data", "epochs", "max_steps", "time_budget_s", "eval_every", "eval_examples",
    "checkpoint_every", "checkpoint_minutes", "log_every", "out", "device", "compile", "progress",
    "threads",
})


class ConfigError(TracegymError):
    """A config file, field or ``key=value`` override that is not a valid TrainConfig."""


@dataclass
class TrainConfig:
    """One training run. Defaults are a small CPU run; ``configs/*.yaml`` hold the paper's."""

    task: str = "sudoku"
    """task name (an env folder: sudoku, maze, arc); with dataset.json it gives the TaskSpec"""
    data: str = ""
    """dataset directory in the TRM layout (holds identifiers.json, train/, test/)"""
    reasoner: str = "trm"
    """reasoner name (tracegym.agents.reasoners.REASONERS)"""
    backbone: str = "mlp_mixer"
    """backbone name (transformer, mlp_mixer, hybrid, ...)"""
    model: dict = field(default_factory=dict)
    """extra constructor arguments of the policy (``model.dim=64`` on the command line)"""
    epochs: int = 1
    """passes over the train split (ignored when max_steps is set)"""
    max_steps: int | None = None
    """stop after exactly this many optimizer steps (even inside a batch); None: use epochs"""
    time_budget_s: float | None = None
    """also stop once this many seconds of training have passed (between batches; the lr
    schedule still follows max_steps/epochs): fixed-budget comparisons. The run ends at the
    first limit reached; the result's ``stopped_by`` names it"""
    batch_size: int = 64
    """global batch size (split evenly across DDP ranks)"""
    sampler: str = "examples"
    """train order: "examples" (shuffled examples) or "groups" (TRM's: per group one random
    puzzle, all of its examples; see training/sampling.py)"""
    act_flow: str = "carry"
    """deep supervision of TRM and HRM: "carry" (TRM's persistent carry: batch_size slots, one
    supervision step of every slot per optimizer step, halted slots refilled from the next
    batch) or "batch" (each batch runs its supervision steps until all its samples halt)"""
    lr: float = 1e-3
    """peak learning rate of the network weights"""
    puzzle_emb_lr: float = 1e-2
    """peak learning rate of the puzzle embedding rows a batch uses (sign SGD, on the same
    schedule as lr; TRM: 1e-2 default and ARC, 1e-4 Sudoku and Maze)"""
    puzzle_emb_weight_decay: float = 0.1
    """decoupled weight decay of those rows, applied only to the rows in the batch (TRM: 0.1
    default and ARC, 1.0 Sudoku and Maze)"""
    weight_decay: float = 0.1
    """decoupled weight decay (TRM: 1.0 Sudoku/Maze, 0.1 ARC)"""
    betas: tuple[float, float] = (0.9, 0.95)
    """Adam betas"""
    warmup_steps: int = 100
    """linear warm-up steps from 0 to the peak lr"""
    min_lr_ratio: float = 1.0
    """cosine floor as a fraction of the peak; 1.0 = constant lr after warm-up (as TRM)"""
    optimizer: str = "adamw"
    """"adamw" or "adam_atan2" (Everett et al. 2024, as TRM)"""
    ema: float = 0.0
    """EMA decay of the weights (TRM 0.999); 0 = off"""
    grad_clip: float = 1.0
    """clip the global gradient norm to this; 0 = off"""
    loss: str = "stablemax"
    """cross-entropy flavour passed to the model: "stablemax" or "softmax\""""
    seed: int = 0
    """base seed; DDP rank r seeds with seed + r; data order depends on (seed, epoch) only"""
    device: str = "auto"
    """"auto" (cuda when present), "cpu", "cuda", "cuda:1", ..."""
    compile: bool = False
    """torch.compile the policy's modules (on CPU too: +40% steps/s for TRM on gated_deltanet,
    none on mlp_mixer, slower on attention, after a minute of compiling)"""
    threads: int | None = None
    """torch intra-op threads on CPU; None: torch's default (every core). On a shared machine 1
    is often fastest (benchmarks/train_speed.py)"""
    amp: str = "auto"
    """"auto" (bf16 autocast on CUDA, off on CPU), "bf16", or "off\""""
    eval_every: int = 0
    """evaluate on the test split every this many steps; 0 = only at the end"""
    eval_examples: int | None = 1024
    """test examples per evaluation; None = all"""
    checkpoint_every: int = 0
    """also write OUT/checkpoint.safetensors every this many steps (between batches); 0 = off"""
    checkpoint_minutes: float = 10.0
    """also write it when this many minutes have passed since the last write (between
    batches); 0 = off. A run always writes one at its end and on SIGINT/SIGTERM"""
    log_every: int = 10
    """write a metrics line every this many steps"""
    out: str = "runs/run"
    """run directory: metrics.jsonl, config.json, checkpoint.safetensors"""
    progress: bool = True
    """show a tqdm progress bar (rank 0)"""

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` naming the first bad field; returns self."""
        def choice(name, options):
            if getattr(self, name) not in options:
                raise ConfigError(f"{name} must be one of {list(options)}, "
                                 f"got {getattr(self, name)!r}")

        choice("optimizer", OPTIMIZERS)
        choice("loss", LOSSES)
        choice("amp", AMP_MODES)
        choice("sampler", SAMPLERS)
        choice("act_flow", ACT_FLOWS)
        positive = ["batch_size", "epochs", "log_every"]
        if self.max_steps is not None:
            positive.append("max_steps")
        for name in positive:
            check_positive_int(name, getattr(self, name), error=ConfigError)
        if self.threads is not None:
            check_positive_int("threads", self.threads, error=ConfigError)
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "seed"):
            check_int(name, getattr(self, name), 0, error=ConfigError)
        for name in ("lr", "puzzle_emb_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.time_budget_s is not None and not (
                isinstance(self.time_budget_s, (int, float)) and self.time_budget_s > 0):
            raise ConfigError(f"time_budget_s must be > 0 seconds or None, got "
                             f"{self.time_budget_s!r}")
        if not (isinstance(self.checkpoint_minutes, (int, float))
                and self.checkpoint_minutes >= 0):
            raise ConfigError(f"checkpoint_minutes must be a number >= 0, got "
                              f"{self.checkpoint_minutes!r}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError(f"weight_decay and grad_clip must be >= 0, got "
                             f"{self.weight_decay!r}, {self.grad_clip!r}")
        if not self.puzzle_emb_weight_decay >= 0:
            raise ConfigError(f"puzzle_emb_weight_decay must be >= 0, got "
                              f"{self.puzzle_emb_weight_decay!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not isinstance(self.model, dict):
            raise ConfigError(f"model must be a mapping, got {self.model!r}")
        return self

    def to_dict(self) -> dict:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def fields_help(width: int = 79) -> str:
    """Every TrainConfig field as ``name = default`` with its doc below it (the field's
    docstring): the list ``tracegym train --help`` prints."""
    docs, defaults = attribute_docs(TrainConfig), TrainConfig()
    return describe_fields(((f.name, getattr(defaults, f.name), docs.get(f.name, ""))
                            for f in fields(TrainConfig)), width=width)


def _coerce(name: str, value):
    """Give ``value`` (from YAML, JSON or a ``key=value`` string) the type of field ``name``;
    :class:`ConfigError` when it cannot have it."""
    kind = {f.name: f.type for f in fields(TrainConfig)}[name]  # a string (future annotations)
    base = kind.split(" ")[0]
    if value is None:
        if "None" not in kind:
            raise ConfigError(f"{name} must not be null")
        return None
    if name == "betas":
        try:
            return tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"betas must be two numbers, got {value!r}") from None
    if name == "model":
        if not isinstance(value, dict):
            raise ConfigError(f"model must be a mapping, got {value!r}")
        return dict(value)
    if base == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if base in ("int", "float"):
        if isinstance(value, str):
            try:  # PyYAML reads 1e-4 (no dot) as a string
                value = float(value)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if base == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ConfigError(f"{name} must be an int, got {value!r}")
            return int(value)  # 2e3 in YAML
        return float(value)
    if base == "str" and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value


def from_dict(values: dict, base: TrainConfig | None = None) -> TrainConfig:
    """A config from a mapping; unknown keys raise :class:`ConfigError` listing the valid ones
    (and the closest to each, where one is close)."""
    valid = field_names()
    if "lr_embed" in values:  # renaming it would change its meaning: say so instead
        raise ConfigError("config: lr_embed is gone: the puzzle-embedding table is trained as in "
                          "TRM, by sign-SGD at puzzle_emb_lr with puzzle_emb_weight_decay (TRM's "
                          "values: 1e-4 and 1.0 for Sudoku and Maze, 1e-2 and 0.1 for ARC)")
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError("config: " + unknown_names_message(unknown, valid, "key"))
    updates = {k: _coerce(k, v) for k, v in values.items()}
    return replace(base or TrainConfig(), **updates)


def load_config(path: str | os.PathLike, *, smoke: bool = False) -> TrainConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file.

    A file may hold a ``smoke:`` mapping beside its fields: the overrides that make the same
    recipe a CPU-sized run of a few steps (``model`` keys merge into the file's ``model``). It
    applies with ``smoke=True`` (``tracegym train --smoke``) and is checked either way.

    A missing file is FileNotFoundError; a file that does not parse, or holds something other
    than a mapping of TrainConfig fields, a :class:`ConfigError` naming the file (and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config: no such file {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config: {str(path)!r} is not UTF-8 text ({err.reason} at byte "
                          f"{err.start})") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
            what = getattr(err, "problem", None) or str(err)
            raise ConfigError(f"config: {str(path)!r}:{where} not valid YAML ({what})") from None
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config: {str(path)!r}: line {err.lineno}, column {err.colno}: "
                              f"not valid JSON ({err.msg})") from None
    if values is None:  # an empty file
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config: {str(path)!r} must hold a mapping of TrainConfig fields, "
                          f"got {type(values).__name__}")
    overrides = values.pop("smoke", None)
    try:
        cfg = from_dict(values)
        if overrides is not None:
            if not isinstance(overrides, dict):
                raise ConfigError(f"smoke must be a mapping of TrainConfig fields, got "
                                  f"{overrides!r}")
            model = {**cfg.model, **(overrides.get("model") or {})}
            smoked = from_dict({**overrides, "model": model}, base=cfg)  # checked even if unused
            if smoke:
                cfg = smoked
        elif smoke:
            raise ConfigError("has no smoke: section (the overrides --smoke applies)")
        return cfg
    except ConfigError as err:
        raise ConfigError(f"config: {str(path)!r}: {str(err).removeprefix('config: ')}") \
            from None


def _parse_value(text: str):
    """``3e-4`` -> float, ``true`` -> True, ``none`` -> None, ``[0.9,0.95]`` -> list, else str."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(cfg: TrainConfig, pairs: list[str]) -> TrainConfig:
    """Apply ``key=value`` pairs in place (``model.key=value`` for policy arguments)."""
    top: dict = {}
    model = dict(cfg.model)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override: expected key=value, got {pair!r}")
        if key.startswith("model."):
            model[key[len("model."):]] = _parse_value(text)
        else:
            top[key] = _parse_value(text)
    new = from_dict({**top, "model": model}, base=cfg)
    for f in fields(TrainConfig):
        setattr(cfg, f.name, getattr(new, f.name))
    return cfg


def config_differences(saved: dict, current: dict) -> list[str]:
    """Fields outside ``RESUMABLE_FIELDS`` whose values differ, as ``name: saved -> current``."""
    diffs = []
    for name in sorted(set(saved) | set(current)):
        if name in RESUMABLE_FIELDS:
            continue
        a, b = saved.get(name), current.get(name)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            a, b = list(a), list(b)
        if a != b:
            diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs
