"""The execution-trace environment, ``tracegym/ExecTrace-v0``."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from tracegym.checks import check_positive_int
from tracegym.episode import EpisodicEnv
from tracegym.errors import ActionError, TracegymError
from tracegym.tracers.cwm import SPECIAL_TOKENS
from tracegym.tracers.programs import Program
from tracegym.tracers.tokenizer import PAD, TraceTokenizer

from .render import render_episode
from .source import Episode, default_tracer, make_episode, make_program_source

MODES = ("step", "answer")
OBS_FORMATS = ("text", "tokens")
# printable ASCII and whitespace; the special tokens are spelled in it ("<|frame_sep|>").
CHARSET = string.printable
assert all(set(t) <= set(CHARSET) for t in SPECIAL_TOKENS)
MAX_DRAWS = 100  # draws tried at reset before a source whose episodes never fit is an error
RESET_OPTIONS = ("program",)


def copy_previous_frame_prediction(prefix_frames: Sequence[str]) -> str:
    """The "copy the previous frame" baseline: predict frame t as frame t-1's text verbatim.

    ``prefix_frames`` holds the CWM texts of frames 0..t-1 (``info["frame"]`` of each step);
    with no frame yet the prediction is the empty string (always wrong).
    """
    return prefix_frames[-1] if len(prefix_frames) else ""


class ExecTraceEnv(EpisodicEnv):
    """Predict a Python program's execution, frame by frame or as its final result.

    ## Description
    An episode is a program, one call of it, and the call's CWM-style state trace, made with
    the in-process tracer at reset (:mod:`tracegym.tracers`). In ``mode="step"`` the agent
    predicts the next trace frame from the source and the frames so far and is then shown the
    true frame (teacher forcing), as a trace model is trained. In ``mode="answer"`` it predicts
    the call's result (CRUXEval's output prediction).

    ## Action Space
    ``Text(0, max_length, charset=string.printable)`` in both modes.
    - step mode: the CWM text of the next frame, from its event token (``<|line_sep|>`` ...)
      through its closing ``<|frame_sep|>``, exactly as ``Trace.to_cwm()`` writes it
      (``".."`` for a value unchanged since the previous call/line frame).
    - answer mode: the return value's repr as the tracer records it (``trace.return_repr``), or
      the exception's repr (``trace.exception_repr``, e.g. ``"ZeroDivisionError('...')"``).
    Any ``str`` is scored (text outside the charset or over ``max_length`` simply fails to
    match). A 1-D integer array is read as :class:`TraceTokenizer` ids and decoded first
    (pad/bos/eos skipped, invalid UTF-8 replaced).

    ## Observation Space
    ==========  ===============================================  ============================
    obs_format  space                                            value
    ==========  ===============================================  ============================
    "text"      ``Text(0, max_length, charset=string.printable)``  step: CWM text of the header
                                                                 and frames 0..t-1; answer:
                                                                 source, blank line, the call
    "tokens"    ``Dict(tokens=Box(0, V-1, (max_tokens,), int32),   that text as tokenizer ids,
                length=Box(0, max_tokens, (), int32))``            then 0 (``<pad>``) after
                                                                 ``length`` ids
    ==========  ===============================================  ============================

    ``V = TraceTokenizer().vocab_size`` (268). At reset, an episode is skipped (another program
    is drawn, up to 100 draws, then a ValueError) when its longest observation would not fit
    (``max_length`` characters, ``max_tokens`` ids), or when it or a true action holds a
    character outside the charset (a non-ASCII string value). Traces are never cut mid-text;
    the tracer records at most ``max_frames`` frames (a longer run is a truncated trace whose
    frames are all predicted; its result is still the real one).

    ## Rewards
    ``1.0`` for an exact match with the true frame text (step) or result repr (answer),
    else ``0.0``.

    ## Starting State
    step: the header (``<|trace_context_start|>`` source ``<|frame_sep|>``), no frame yet.
    answer: the source and the call. ``reset(options=...)`` takes (optional) ``"program"``: a
    :class:`~tracegym.tracers.programs.Program` to play this episode (one of its calls drawn
    with the env's seed); its episode must fit as a drawn one must, else a TracegymError. Any
    other key raises a TracegymError naming it.

    ## Episode End
    - terminated: step mode after the trace's last frame; answer mode after the one action.
    - truncated: step mode after ``max_steps`` predictions (None: no limit).

    After either, ``step`` raises :class:`~tracegym.episode.ResetNeededError` until ``reset``
    (as before the first ``reset``).

    ## Arguments
    - ``programs`` (``"generated"``): ``"generated"``, ``"cruxeval"``, a list of
      :class:`~tracegym.tracers.programs.Program`, or a callable ``rng -> Program``.
    - ``kind`` (str, ``"mixed"``): generated program kind (``straight_line | loops | mixed``).
    - ``mode`` (str, ``"step"``): ``"step"`` or ``"answer"``.
    - ``obs_format`` (str, ``"text"``): ``"text"`` or ``"tokens"``.
    - ``max_length`` (int, 32768): characters in a text observation or action.
    - ``max_tokens`` (int, 8192): ids in a token observation.
    - ``max_frames`` (int, 1000): the tracer's ``max_events``.
    - ``max_steps`` (int | None, None); ``render_mode``: ``"ansi"``.

    ``info``: at reset ``program`` (name), ``location`` (seed/index or file line), ``call``,
    ``num_frames``; after a step also ``correct``
    and, in step mode, ``frame`` (the true frame text) and ``frame_index``; in answer mode
    ``answer`` (the true result repr).

    ## Version History
    - v0: first release. Object addresses in reprs are now written ``0x...`` (were ``0x0``), as
      the trace dataset writes them.
      ``reset`` takes ``options["program"]`` (unknown keys raise); a step after the episode's
      end raises ResetNeededError (step mode raised a bare RuntimeError, answer mode played on).

    Determinism: the same seed gives the same text (object addresses in reprs are written
    ``0x...``, as in ``tracegym data traces``: :func:`tracegym.tracers.cwm.scrub_addresses`),
    except that a set of strings reprs in ``PYTHONHASHSEED`` order (CRUXEval sample_736): fix
    that variable to compare runs across processes.

    >>> import gymnasium as gym, tracegym
    >>> env = gym.make("tracegym/ExecTrace-v0", kind="straight_line")
    >>> obs, info = env.reset(seed=0)
    >>> obs.startswith("<|trace_context_start|>")
    True
    >>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.true_next_frame)
    >>> reward, info["frame_index"]
    (1.0, 0)
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    reset_options = RESET_OPTIONS

    def __init__(self, programs="generated", kind: str = "mixed", mode: str = "step",
                 obs_format: str = "text", max_length: int = 32768, max_tokens: int = 8192,
                 max_frames: int = 1000, max_steps: int | None = None,
                 render_mode: str | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if obs_format not in OBS_FORMATS:
            raise ValueError(f"obs_format must be one of {list(OBS_FORMATS)}, got {obs_format!r}")
        for name, v in (("max_length", max_length), ("max_tokens", max_tokens),
                        ("max_frames", max_frames)):
            check_positive_int(name, v)
        check_positive_int("max_steps", max_steps, optional=True)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, "
                             f"got {render_mode!r}")
        self.source = make_program_source(programs, kind)
        self.mode, self.obs_format = mode, obs_format
        self.max_length, self.max_tokens = int(max_length), int(max_tokens)
        self.max_steps = None if max_steps is None else int(max_steps)
        self.render_mode = render_mode
        self.tracer = default_tracer(int(max_frames))
        self.tokenizer = TraceTokenizer()
        self._charset = frozenset(CHARSET)
        text_space = spaces.Text(self.max_length, min_length=0, charset=CHARSET)
        self.action_space = text_space
        if obs_format == "text":
            self.observation_space = text_space
        else:
            v, n = self.tokenizer.vocab_size, self.max_tokens
            self.observation_space = spaces.Dict({
                "tokens": spaces.Box(0, v - 1, (n,), np.int32),
                "length": spaces.Box(0, n, (), np.int32),
            })
        self.episode: Episode | None = None
        self._t = 0  # frames shown
        self._steps = 0
        self._prediction: str | None = None

    # -- episode text -------------------------------------------------------------------
    @property
    def true_next_frame(self) -> str:
        """Step mode: the frame the next action must reproduce (for oracles and tests)."""
        return self.episode.frame_texts[self._t] if self._t < len(self.episode.frame_texts) \
            else ""

    def _text(self) -> str:
        ep = self.episode
        if self.mode == "answer":
            return ep.answer_prompt
        return ep.header + "".join(ep.frame_texts[:self._t])

    def _fits(self, ep: Episode) -> bool:
        # The longest observation: answer prompt, or the header + every frame but the last.
        # The true actions (every frame, or the answer) must lie in the action space too.
        if self.mode == "answer":
            text, actions = ep.answer_prompt, (ep.answer,)
        else:
            text, actions = ep.header + "".join(ep.frame_texts[:-1]), ep.frame_texts[-1:]
        if not ep.frame_texts or len(text) > self.max_length or \
                any(len(a) > self.max_length for a in actions) or \
                not self._charset.issuperset(text) or \
                not all(self._charset.issuperset(a) for a in actions):
            return False
        return self.obs_format == "text" or len(self.tokenizer.encode(text)) <= self.max_tokens

    def _obs(self):
        text = self._text()
        if self.obs_format == "text":
            return text
        ids = self.tokenizer.encode(text)
        tokens = np.full(self.max_tokens, PAD, np.int32)
        tokens[:len(ids)] = ids  # (max_tokens,), ids then <pad>
        return {"tokens": tokens, "length": np.array(len(ids), np.int32)}

    def _info(self, **extra) -> dict[str, Any]:
        ep = self.episode
        return {"program": ep.program.name, "location": ep.program.location,
                "call": ep.call_text,
                "num_frames": len(ep.frame_texts), **extra}

    def _action_text(self, action) -> str:
        if isinstance(action, str):
            return action
        if isinstance(action, np.ndarray) and action.ndim == 1 and (
                action.size == 0 or np.issubdtype(action.dtype, np.integer)):
            try:
                return self.tokenizer.decode(action, errors="replace")
            except ValueError as e:
                raise ActionError(f"action: {e}") from e
        raise ActionError("action: expected a str (or a 1-D integer token array), got "
                          f"{type(action).__name__}")

    # -- gymnasium API (reset and step come from EpisodicEnv) ---------------------------
    def _reset(self, options: dict[str, Any]):
        ep = self._given_episode(options["program"]) if "program" in options \
            else self._drawn_episode()
        self.episode, self._t, self._steps, self._prediction = ep, 0, 0, None
        return self._obs(), self._info()

    def _drawn_episode(self) -> Episode:
        for _ in range(MAX_DRAWS):
            ep = make_episode(self.source(self.np_random), self.np_random, self.tracer)
            if self._fits(ep):
                return ep
        raise ValueError(f"programs: none of {MAX_DRAWS} drawn episodes fits "
                         f"max_length={self.max_length} / max_tokens={self.max_tokens} "
                         "in the printable-ASCII charset")

    def _given_episode(self, program) -> Episode:
        """The episode of ``options["program"]``: it must fit as a drawn one must."""
        field = "options['program']"
        if not isinstance(program, Program):
            raise TracegymError(f"{field}: expected a Program, got {type(program).__name__}")
        if not program.inputs:
            raise TracegymError(f"{field} ({program.name!r}): has no inputs to call it with")
        ep = make_episode(program, self.np_random, self.tracer)
        if not self._fits(ep):
            raise TracegymError(f"{field} ({program.name!r}): its episode does not fit "
                                f"max_length={self.max_length} / max_tokens={self.max_tokens} "
                                "in the printable-ASCII charset")
        return ep

    def _step(self, action):
        text = self._action_text(action)
        self._prediction = text
        self._steps += 1
        ep = self.episode
        if self.mode == "answer":
            correct = text == ep.answer
            return self._obs(), float(correct), True, False, self._info(
                correct=correct, answer=ep.answer)
        n = len(ep.frame_texts)  # > 0: an episode without frames never fits
        truth = ep.frame_texts[self._t]
        correct = text == truth
        index, self._t = self._t, self._t + 1
        terminated = self._t >= n
        truncated = not terminated and self.max_steps is not None and \
            self._steps >= self.max_steps
        return self._obs(), float(correct), terminated, truncated, self._info(
            correct=correct, frame=truth, frame_index=index)

    def render(self):
        if self.render_mode != "ansi" or self.episode is None:
            return None
        return render_episode(self.episode, self._t, self.mode, self._prediction)
