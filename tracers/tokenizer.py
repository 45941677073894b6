"""A byte-level tokenizer for CWM trace text: UTF-8 bytes plus one id per special token.

Vocabulary layout (``vocab_size`` = 4 + 256 + number of special tokens, 268 by default)::

    0            <pad>    padding; skipped by decode
    1            <bos>    begin of sequence; skipped by decode
    2            <eos>    end of sequence; skipped by decode
    3            <mask>   masked-diffusion mask; decode raises (it stands for unknown text)
    4 .. 259     bytes    byte b has id 4 + b
    260 ..       special  SPECIAL_TOKENS[i] has id 260 + i (``<|trace_context_start|>`` is 260)

Encoding splits the text on the special-token strings (one ``re.split``), and turns each piece
into ids with ``str.encode`` + ``np.frombuffer``: no Python loop per byte. Only the exact special
token strings become single ids; other text that merely looks like one (``<|foo|>``) is bytes.
Text is encoded with ``errors="surrogatepass"``, so *every* Python ``str`` (lone surrogates
included) round-trips exactly: ``decode(encode(s)) == s``.

A checkpoint records ``tokenizer.to_dict()``; ``TraceTokenizer.from_dict(d)`` rebuilds it and
``tokenizer.check_compatible(d)`` raises a ValueError naming each field that differs.

>>> tok = TraceTokenizer()
>>> ids = tok.encode("<|frame_sep|>hi", add_eos=True)
>>> ids.tolist()
[261, 108, 109, 2]
>>> tok.decode(ids)
'<|frame_sep|>hi'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tracegym.tracers.cwm import SPECIAL_TOKENS

__all__ = ["BOS", "BYTE_OFFSET", "EOS", "MASK", "PAD", "RESERVED", "TraceTokenizer"]

PAD, BOS, EOS, MASK = 0, 1, 2, 3
RESERVED = ("<pad>", "<bos>", "<eos>", "<mask>")
BYTE_OFFSET = len(RESERVED)  # byte b -> id BYTE_OFFSET + b
NAME = "tracegym-bytes"
VERSION = 1


class TraceTokenizer:
    """Byte-level ids for trace text; special tokens are single ids (layout in the module doc).

    Args:
        special_tokens: the strings that get one id each, in id order (default: the CWM tokens).
    """

    name = NAME
    version = VERSION

    def __init__(self, special_tokens: Sequence[str] = SPECIAL_TOKENS) -> None:
        tokens = tuple(special_tokens)
        if not all(isinstance(t, str) and t for t in tokens):
            raise ValueError(f"special_tokens must be non-empty strings, got {tokens!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"special_tokens has duplicates: {tokens!r}")
        self.special_tokens = tokens
        self.special_offset = BYTE_OFFSET + 256
        self.vocab_size = self.special_offset + len(tokens)
        self.token_to_id = {t: self.special_offset + i for i, t in enumerate(tokens)}
        # Longest first, so a token that is a prefix of another never wins the match.
        alternatives = sorted(tokens, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")").split \
            if tokens else (lambda text: [text])

    # ------------------------------------------------------------------------------ encode
    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """The ids of ``text`` as a 1-D int32 array (with BOS / EOS around it if asked)."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        pieces = self._split(text)  # [text, token, text, token, ..., text]
        parts: list[np.ndarray] = []
        if add_bos:
            parts.append(np.array([BOS], np.int32))
        for i, piece in enumerate(pieces):
            if i % 2:
                parts.append(np.array([self.token_to_id[piece]], np.int32))
            elif piece:
                raw = np.frombuffer(piece.encode("utf-8", "surrogatepass"), np.uint8)
                parts.append(raw.astype(np.int32) + BYTE_OFFSET)
        if add_eos:
            parts.append(np.array([EOS], np.int32))
        return np.concatenate(parts) if parts else np.zeros(0, np.int32)

    # ------------------------------------------------------------------------------ decode
    def decode(self, ids: Any, *, errors: str = "surrogatepass") -> str:
        """The text of ``ids``: the exact inverse of :meth:`encode`.

        PAD, BOS and EOS are skipped (so a padded or framed sequence decodes to its text); MASK
        and ids outside ``0..vocab_size-1`` raise a ValueError naming the position and value.
        ``errors`` goes to ``bytes.decode``: the default fails (ValueError naming the position)
        on byte runs that are not UTF-8; ``"replace"`` suits a model's free output.
        """
        arr = np.asarray(ids)
        if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"ids must be a 1-D integer sequence, got shape {arr.shape} "
                             f"dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        bad = np.flatnonzero((arr < 0) | (arr >= self.vocab_size) | (arr == MASK))
        if bad.size:
            p = int(bad[0])
            what = "the <mask> id" if arr[p] == MASK else f"outside 0..{self.vocab_size - 1}"
            raise ValueError(f"ids[{p}] = {int(arr[p])} is {what}; it has no text")
        keep = np.flatnonzero(arr >= BYTE_OFFSET)  # drop pad/bos/eos
        arr = arr[keep]
        special = np.flatnonzero(arr >= self.special_offset)
        out: list[str] = []
        start = 0
        for s in [*special.tolist(), len(arr)]:
            if s > start:
                out.append(self._decode_bytes(arr[start:s], keep[start], errors))
            if s < len(arr):
                out.append(self.special_tokens[arr[s] - self.special_offset])
            start = s + 1
        return "".join(out)

    @staticmethod
    def _decode_bytes(run: np.ndarray, position: int, errors: str) -> str:
        data = (run - BYTE_OFFSET).astype(np.uint8).tobytes()
        try:
            return data.decode("utf-8", errors)
        except UnicodeDecodeError as e:
            raise ValueError(f"ids from position {position}: the bytes are not UTF-8 "
                             f"({e.reason} at byte {e.start} of the run); pass "
                             f"errors='replace' to decode anyway") from e

    # ----------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """What a checkpoint records to name this tokenizer."""
        return {"name": self.name, "version": self.version, "reserved": list(RESERVED),
                "byte_offset": BYTE_OFFSET, "special_tokens": list(self.special_tokens),
                "vocab_size": self.vocab_size}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceTokenizer:
        """The tokenizer ``d`` describes; a ValueError if this code cannot build that one."""
        if not isinstance(d, dict) or "special_tokens" not in d:
            raise ValueError(f"tokenizer config must be a dict with 'special_tokens', got {d!r}")
        tok = cls(d["special_tokens"])
        tok.check_compatible(d)
        return tok

    def check_compatible(self, d: dict[str, Any]) -> None:
        """Raise a ValueError listing every field of ``d`` that differs from this tokenizer."""
        mine = self.to_dict()
        def norm(v):  # JSON gives lists where a caller may hold tuples
            return list(v) if isinstance(v, tuple) else v

        diffs = [f"{k}: recorded {d.get(k)!r}, this tokenizer has {v!r}"
                 for k, v in mine.items() if norm(d.get(k)) != v]
        if diffs:
            raise ValueError("tokenizer mismatch (the checkpoint was made with another "
                             "tokenizer): " + "; ".join(diffs))

    def __repr__(self) -> str:
        return f"TraceTokenizer(name={self.name!r}, version={self.version}, " \
               f"vocab_size={self.vocab_size})"
