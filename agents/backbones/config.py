"""``BackboneConfig``: every option of a backbone in one frozen, validated dataclass.

``build_backbone(name, dim, depth, heads, seq_len, causal, **options)`` builds one from it; the
options are its keyword-only fields, listed with their defaults in ``BACKBONE_DEFAULTS``.

Layer letters (``MIXERS``): T attention (transformer), A gated attention, G Gated DeltaNet,
K Kimi Delta Attention, L multi-head latent attention (MLA; "M" was already the MLP mixer),
S sliding-window attention, M MLP token mixer. A backbone's pattern is repeated and cut to its
depth (``layer_kinds``); the single-mixer backbones are one-letter patterns.

>>> cfg = BackboneConfig("hybrid", 64, 4, 4, 81, causal=False, pattern="GA")
>>> cfg.layers, cfg.rotary
('GAGA', True)
>>> BackboneConfig("gated_deltanet", 64, 0, 4, 81, causal=True)
Traceback (most recent call last):
...
tracegym.agents.backbones.config.BackboneConfigError: depth must be >= 1, got 0
"""

from __future__ import annotations

import numbers
from dataclasses import KW_ONLY, dataclass, fields

from tracegym.checks import check_positive_int, unknown_names_message
from tracegym.errors import TracegymError

from .blocks import NORMS
from .delta_rule import IMPLS

MIXERS = {
    "T": "attention (transformer)",
    "A": "gated attention",
    "G": "Gated DeltaNet",
    "K": "Kimi Delta Attention",
    "L": "multi-head latent attention",
    "S": "sliding-window attention",
    "M": "MLP token mixer",
}
DEFAULT_HYBRID_PATTERN = "GGGA"
# name -> layer pattern (letters in MIXERS); "hybrid" takes `pattern`.
BACKBONES = {
    "transformer": "T",
    "mlp_mixer": "M",
    "gated_attention": "A",
    "gated_deltanet": "G",
    "hybrid": DEFAULT_HYBRID_PATTERN,
    "kda": "K",
    "mla": "L",
    "sliding_window": "S",
    "qwen3_next": "GGGA",
    "kimi_linear": "KKKL",
    "gdn_h1": "GS",
}
RECIPES = ("qwen3_next", "kimi_linear", "gdn_h1")  # published hybrids, run whole by benchmarks
INITS = ("torch", "lecun_normal")  # weight init of the backbone's linear layers


class BackboneConfigError(TracegymError):
    """A backbone name, option or option value that does not make a valid backbone."""


class UnknownOptionError(BackboneConfigError, TypeError):
    """A keyword that is not a backbone option (also a TypeError, as for any unknown keyword)."""


def layer_kinds(pattern: str, depth: int) -> str:
    """``pattern`` repeated and cut to ``depth`` letters: ``layer_kinds("GGGA", 6) == "GGGAGG"``."""
    if not isinstance(pattern, str) or not pattern or set(pattern) - set(MIXERS):
        letters = ", ".join(f"{k} ({v})" for k, v in MIXERS.items())
        raise BackboneConfigError(
            f"pattern must be a non-empty string over {sorted(MIXERS)}, got {pattern!r}; "
            f"letters: {letters}"
        )
    return (pattern * (depth // len(pattern) + 1))[:depth]


def min_depth_for_pattern(name: str, depth: int, pattern: str | None = None) -> int:
    """The smallest depth >= ``depth`` that holds every layer kind of ``name``'s pattern (a
    pattern cut shorter drops its last letters: hybrid "GGGA" at depth 2 is "GG")."""
    return max(depth, len(pattern or BACKBONES[name]))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class BackboneConfig:
    """One backbone: its name, shape and options. Validated on construction (a
    :class:`BackboneConfigError` names the first bad field and its value); frozen."""

    name: str
    """one of ``BACKBONES``"""
    dim: int
    """model width D; divisible by ``heads``"""
    depth: int
    """number of residual blocks"""
    heads: int
    """attention / delta-rule heads (unused by mlp_mixer, still checked)"""
    seq_len: int
    """sequence length; fixed for mlp_mixer, informational otherwise"""
    causal: bool
    """causal (decodable) or bidirectional"""
    _: KW_ONLY
    norm: str = "post"
    """"post" (TRM) or "pre" norm blocks"""
    expansion: float = 4.0
    """SwiGLU width ratio, channel and token MLPs"""
    multiple_of: int = 256
    """SwiGLU hidden width rounding (TRM)"""
    pattern: str | None = None
    """hybrid only: layer letters from ``MIXERS`` repeated to ``depth``; None means "GGGA"
    (3 Gated DeltaNet : 1 gated attention)"""
    qk_norm: bool = True
    """QK-norm in gated and sliding-window attention (the plain transformer and MLA have none)"""
    rope_base: float = 10000.0
    """rotary base of the attention layers"""
    expand_v: float = 1.0
    """Gated DeltaNet / KDA value width over key width"""
    conv_size: int = 4
    """Gated DeltaNet / KDA short convolution kernel"""
    chunk_size: int = 64
    """Gated DeltaNet / KDA longest chunk of the chunked op (fitted to the sequence: a 16-token
    grid runs one 16-token chunk, see ``delta_rule.fit_chunk``)"""
    impl: str = "auto"
    """gated delta rule / KDA implementation, one of ``delta_rule.IMPLS``"""
    latent_dim: int | None = None
    """MLA key-value latent width; None means dim // 2"""
    window: int = 64
    """sliding-window attention window (keys seen per query causally)"""
    rope: bool | None = None
    """rotary embeddings in the attention layers (T, A, S, L); None means on, except off (NoPE)
    for ``kimi_linear``, as in Kimi Linear's MLA layers"""
    mla_gate: bool = False
    """sigmoid output gate in the MLA layers"""
    norm_gain: bool = True
    """a learnable gain in the blocks' RMSNorms (and the pre-norm final norm); False as TRM's and
    HRM's ``rms_norm``, which has none (norms inside mixers, e.g. QK-norm, keep theirs)"""
    init: str = "torch"
    """weight init of every ``nn.Linear`` in the backbone, one of ``INITS``: "torch" (PyTorch's
    default, std 1/sqrt(3 fan_in)) or "lecun_normal" (TRM's and HRM's: std 1/sqrt(fan_in), a
    normal cut at 2 of its own std, about 2.27/sqrt(fan_in), biases 0)"""

    def __post_init__(self):
        self._validate()

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keyword-only fields: the options ``build_backbone`` takes by keyword."""
        return tuple(f.name for f in fields(cls) if f.kw_only)

    @classmethod
    def check_options(cls, options) -> None:
        """Raise :class:`UnknownOptionError` naming each key of ``options`` that is not an
        option (with the closest option where one is close)."""
        valid = cls.option_names()
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UnknownOptionError(unknown_names_message(unknown, valid, "option",
                                                           kind="backbone"))

    @property
    def layers(self) -> str:
        """One layer letter per block: the pattern repeated and cut to ``depth``."""
        return layer_kinds(BACKBONES[self.name] if self.pattern is None else self.pattern,
                           self.depth)

    @property
    def rotary(self) -> bool:
        """Whether the attention layers use rotary embeddings (``rope`` with None resolved)."""
        return self.name != "kimi_linear" if self.rope is None else self.rope

    def _validate(self) -> None:
        def fail(field: str, must: str) -> None:
            value = getattr(self, field)
            raise BackboneConfigError(f"{field} must be {must}, got {field}={value!r}")

        if not isinstance(self.name, str) or self.name not in BACKBONES:
            raise BackboneConfigError(
                f"unknown backbone {self.name!r}; valid names: {', '.join(BACKBONES)}"
            )
        for field in ("dim", "depth", "heads", "seq_len", "multiple_of", "conv_size",
                      "chunk_size", "window"):
            check_positive_int(field, getattr(self, field), error=BackboneConfigError)
        check_positive_int("latent_dim", self.latent_dim, optional=True, error=BackboneConfigError)
        for field in ("causal", "qk_norm", "mla_gate", "norm_gain"):
            if not isinstance(getattr(self, field), bool):
                fail(field, "True or False")
        if self.rope is not None and not isinstance(self.rope, bool):
            fail("rope", "True, False or None")
        for field in ("expansion", "rope_base", "expand_v"):
            if not _is_real(getattr(self, field)) or not getattr(self, field) > 0:
                fail(field, "a number > 0")
        if self.dim % self.heads:
            raise BackboneConfigError(
                f"dim must be divisible by heads, got dim={self.dim}, heads={self.heads}"
            )
        if self.norm not in NORMS:
            fail("norm", f"one of {NORMS}")
        if self.impl not in IMPLS:
            fail("impl", f"one of {IMPLS}")
        if self.init not in INITS:
            fail("init", f"one of {INITS}")
        if self.pattern is not None and self.name != "hybrid":
            raise BackboneConfigError(
                f"pattern is for the hybrid backbone only, got pattern={self.pattern!r} for "
                f"{self.name!r}"
            )
        layers = self.layers  # checks the pattern's letters
        head_dim = self.dim // self.heads
        if self.rotary and set(layers) & set("TAS") and head_dim % 2:
            raise BackboneConfigError(
                f"rotary embeddings need an even head_dim, got head_dim={head_dim} "
                f"(dim={self.dim} // heads={self.heads}); use rope=False or other heads"
            )
        if set(layers) & set("GK") and int(head_dim * self.expand_v) < 1:
            raise BackboneConfigError(
                f"expand_v={self.expand_v} gives a value width of {int(head_dim * self.expand_v)} "
                f"(head_dim={head_dim})"
            )
        if "M" in layers and self.causal:
            raise BackboneConfigError(
                "mlp_mixer is bidirectional only (causal=True is not supported): its token-mixing "
                "MLP reads the whole sequence"
            )


# The options with their defaults (norm, expansion, multiple_of, pattern, ...): what a reasoner
# config passes through to the backbone.
BACKBONE_DEFAULTS = {f.name: f.default for f in fields(BackboneConfig) if f.kw_only}

__all__ = ["BACKBONES", "BACKBONE_DEFAULTS", "INITS", "MIXERS", "RECIPES", "BackboneConfig",
           "BackboneConfigError", "UnknownOptionError", "layer_kinds", "min_depth_for_pattern"]
