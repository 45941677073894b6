"""Reasoner configs: one frozen dataclass per reasoner, its fields the keyword arguments of
``build_policy(reasoner, backbone, task, **config)``.

:class:`ReasonerConfig` holds the keys every reasoner takes: the model's size and loss, the
puzzle embedding, then every backbone option, taken from
:class:`~tracegym.agents.backbones.config.BackboneConfig` (an option added there is a reasoner
key too). Each reasoner's config subclasses it next to the reasoner (``TRMConfig`` in trm.py).

Construction checks every field: its type (from the annotation: ``int``, ``float``, ``str``,
``bool``, ``dict``, ``... | None``) and its range or choices (from :func:`option`), raising
:class:`ReasonerConfigError` naming the field and the value. :meth:`ConfigBase.from_options`, which
the reasoners use, also rejects unknown keys with :class:`UnknownKeyError` (an
``UnknownOptionError``, as the backbones raise), suggesting the closest key.

>>> cfg = ReasonerConfig.from_options("feedforward", {"dim": 32, "norm": "pre"})
>>> cfg.dim, cfg.depth, cfg.norm, cfg.puzzle_emb_dim
(32, 2, 'pre', 32)
>>> ReasonerConfig.from_options("feedforward", {"dimm": 32})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
UnknownKeyError: unknown config key(s) ['dimm'] for reasoner 'feedforward' ('dimm': did you mean
'dim'?); valid keys: dim, depth, heads, loss, puzzle_emb_len, puzzle_emb_dim, norm, expansion, ...
"""

from __future__ import annotations

import numbers
from dataclasses import MISSING, dataclass, field, fields, make_dataclass

from tracegym.checks import unknown_names_message
from tracegym.dataclass_docs import attribute_docs
from tracegym.errors import TracegymError
from tracegym.losses import LOSSES

from ..backbones.config import BACKBONE_DEFAULTS, BackboneConfig, UnknownOptionError


class ReasonerConfigError(TracegymError):
    """A reasoner config value of the wrong type or out of range."""


class UnknownKeyError(ReasonerConfigError, UnknownOptionError):
    """A keyword that is no key of the reasoner's config (an ``UnknownOptionError``, hence also a
    TypeError, as for any unknown keyword)."""


def option(default, *, low=None, high=None, choices=None):
    """A config field with ``default`` whose value must lie in ``low..high`` (either may be None)
    or be one of ``choices``; the type comes from the annotation."""
    return field(default=default, metadata={"low": low, "high": high, "choices": choices})


# ----------------------------------------------------------------------------- checking

_TYPE_WORDS = {"int": ["an int"], "float": ["a number"], "str": ["a string"],
               "bool": ["True", "False"], "dict": ["a mapping"], "None": ["None"]}


def _is_a(kind: str, value) -> bool:
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an Integral, but no count or size
        return False
    return {"int": lambda v: isinstance(v, numbers.Integral),
            "float": lambda v: isinstance(v, numbers.Real),
            "str": lambda v: isinstance(v, str),
            "dict": lambda v: isinstance(v, dict)}[kind](value)


def _check_field(f, value) -> None:
    """ReasonerConfigError unless ``value`` has ``f``'s annotated type and lies in its bounds."""
    kinds = [k.strip() for k in str(f.type).split("|")]  # annotations are strings here
    if not set(kinds) <= set(_TYPE_WORDS):
        return  # a type this check does not know (a new backbone option): build_backbone checks
    low, high, choices = (f.metadata.get(k) for k in ("low", "high", "choices"))
    if choices is not None:
        ok, must = value in choices, f"one of {choices}"
    else:
        ok = any(_is_a(k, value) for k in kinds)
        if ok and value is not None:
            ok = (low is None or value >= low) and (high is None or value <= high)
        words = [word for k in kinds for word in _TYPE_WORDS[k]]
        if low is not None:  # the bounds belong to the number, the first word
            words[0] += f" in [{low}, {high}]" if high is not None else f" >= {low}"
        must = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    if not ok:
        raise ReasonerConfigError(f"{f.name} must be {must}, got {f.name}={value!r}")


class ConfigBase:
    """What every reasoner config can do: check itself, list its keys and their docs, and turn
    into the JSON-ready dict a checkpoint stores."""

    def __post_init__(self):
        for f in fields(self):
            _check_field(f, getattr(self, f.name))
        self._check()

    def _check(self) -> None:
        """Checks across fields (after each field's own); subclasses extend it."""

    @classmethod
    def keys(cls) -> list[str]:
        """The config keys, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def defaults(cls) -> dict:
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """``{key: doc}`` from the attribute docstrings (the generated backbone options take
        BackboneConfig's)."""
        docs = {**attribute_docs(BackboneConfig), **attribute_docs(_CommonFields),
                **attribute_docs(cls)}
        return {key: docs.get(key, "") for key in cls.keys()}

    @classmethod
    def from_options(cls, reasoner: str, options: dict):
        """The config of ``options`` (keyword arguments of ``build_policy``);
        :class:`UnknownKeyError` names each unknown key and the closest valid one."""
        valid = cls.keys()
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UnknownKeyError(unknown_names_message(
                unknown, valid, "key", kind="config", context=f" for reasoner {reasoner!r}"))
        return cls(**options)

    def to_dict(self) -> dict:
        """Every key and its value (what ``model.config`` and checkpoints store)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def backbone_options(self) -> dict:
        """The keyword options ``build_backbone`` takes (norm, pattern, expansion, ...)."""
        return {key: getattr(self, key) for key in BACKBONE_DEFAULTS}


# ----------------------------------------------------------------------------- the common keys

@dataclass(frozen=True, kw_only=True)
class _CommonFields:
    """The keys of :class:`ReasonerConfig` before the backbone options (a template: its fields
    are copied into the config classes, less those a reasoner does not take)."""

    dim: int = option(64, low=1)
    """model width D: embeddings, every backbone block, the heads"""
    depth: int = option(2, low=1)
    """blocks of the backbone"""
    heads: int = option(4, low=1)
    """attention / delta-rule heads; dim must be divisible by it"""
    loss: str = option("stablemax", choices=LOSSES)
    """answer cross-entropy: "stablemax" (TRM; float64) or "softmax" (the Trainer passes
    TrainConfig.loss)"""
    puzzle_emb_len: int = option(0, low=0)
    """learned per-identifier prefix tokens in front of the sequence; 0 = none (TRM uses 16)"""
    puzzle_emb_dim: int | None = option(None, low=1)
    """width of one identifier's embedding, cut into puzzle_emb_len tokens; None = dim (TRM)"""


def common_config(name: str, *, without: tuple[str, ...] = ()) -> type:
    """A frozen, keyword-only config class holding the common keys (less ``without``) and then
    every backbone option of :class:`BackboneConfig` with its default: the one list of them."""
    template = [f for f in fields(_CommonFields) if f.name not in without]
    backbone = [f for f in fields(BackboneConfig) if f.kw_only]
    specs = [(f.name, f.type, field(default=f.default, metadata=f.metadata))
             for f in template + backbone]
    cls = make_dataclass(name, specs, bases=(ConfigBase,), frozen=True, kw_only=True,
                         namespace={"_check": _check_common})
    cls.__module__ = __name__
    return cls


def _check_common(self) -> None:
    if self.puzzle_emb_dim is None:  # resolved, so a stored config says what was built
        object.__setattr__(self, "puzzle_emb_dim", self.dim)
    if self.puzzle_emb_len and self.puzzle_emb_dim > self.puzzle_emb_len * self.dim:
        raise ReasonerConfigError(
            f"puzzle_emb_dim must be <= puzzle_emb_len * dim = {self.puzzle_emb_len * self.dim}, "
            f"got puzzle_emb_dim={self.puzzle_emb_dim}"
        )


ReasonerConfig = common_config("ReasonerConfig")
ReasonerConfig.__doc__ = """The keys every reasoner takes: dim, depth, heads, loss, puzzle_emb_len,
puzzle_emb_dim, then the backbone options (norm, expansion, multiple_of, pattern, ...). The config
of the one-pass reasoners (feedforward, autoregressive); the others subclass it."""

__all__ = ["LOSSES", "ConfigBase", "ReasonerConfig", "ReasonerConfigError", "UnknownKeyError",
           "common_config", "option"]
