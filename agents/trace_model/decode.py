"""Using a trace model: prompts, frame prediction, rollout, and ExecTrace evaluation.

Prompts follow the data builder (``datasets/trace_lm.py``): ``BOS`` + header + frames, left-
truncated by whole frames (:func:`~tracegym.datasets.trace_lm.fit_prompt`) to leave ``reserve``
tokens for the predicted frame (default: the diffusion span, else ``DEFAULT_RESERVE``, at most
half the context). A header (source context) that does not fit raises ValueError.

Metrics (:func:`evaluate_exectrace`), on ``tracegym/ExecTrace-v0``:

* ``next_frame``: step mode, teacher forcing: frame t predicted from the true frames 0..t-1;
  exact match of the frame text, averaged over frames. ``next_frame_parts`` splits the same
  frames at ``<|action_sep|>``: ``state`` (event token and locals) and ``action`` (the source
  line) matched alone -- where a miss comes from, not a replacement for exact match.
* ``full_trace``: teacher forcing off: :func:`rollout` feeds the model's own frames back until
  the entry call returns (or ``len(true) + ROLLOUT_SLACK`` frames); exact match of the whole list.
* ``output``: answer mode: the return value's repr from source + call (CRUXEval-O).

The "copy the previous frame" baseline (``copy_previous_frame_prediction``) is scored beside the
model for next_frame and, fed its own copies, for full_trace (0 unless the call frame is the
whole trace: every later frame at least moves to another line or event).
It has no answer-mode form; ``output`` reports ``copy_baseline`` as None.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tracegym.datasets.trace_lm import answer_prompt, fit_prompt
from tracegym.tracers.cwm import ACTION_SEP, CALL_SEP, EXCEPTION_SEP, FRAME_SEP, RETURN_SEP
from tracegym.tracers.tokenizer import BOS

DEFAULT_RESERVE = 160  # tokens left for a predicted frame (90% of generated frames are < 100)
ROLLOUT_SLACK = 5  # frames a rollout may run past the true trace before it is cut
BATCH = 32  # prompts decoded at once


def reserve_of(model, reserve: int | None = None) -> int:
    if reserve is None:
        reserve = model.cfg.get("span_len", DEFAULT_RESERVE)
    return max(1, min(int(reserve), model.task.seq_len // 2))


def frame_prompt(model, header: str, frames: Sequence[np.ndarray],
                 reserve: int | None = None) -> np.ndarray:
    """``BOS`` + header + the most recent ``frames`` (ids) that fit before ``reserve``."""
    head = np.concatenate([[BOS], model.tokenizer.encode(header)])
    budget = model.task.seq_len - reserve_of(model, reserve)
    return fit_prompt(head, frames, budget)[0]


def complete_texts(model, prompts: Sequence[np.ndarray], max_new_tokens: int | None = None,
                   *, frame: bool = True) -> list[str]:
    """The decoded completion of each prompt (invalid UTF-8 replaced), BATCH at a time, at
    most ``max_new_tokens`` ids each (default: :func:`reserve_of`)."""
    if max_new_tokens is None:
        max_new_tokens = reserve_of(model)
    out: list[str] = []
    for lo in range(0, len(prompts), BATCH):
        for ids in model.complete(prompts[lo:lo + BATCH], max_new_tokens, frame=frame):
            out.append(model.tokenizer.decode(ids, errors="replace"))
    return out


def trace_ended(frames: Sequence[str]) -> bool:
    """True once the entry call has returned (call/return frames balance) or raised out, or a
    frame is empty or does not end with ``<|frame_sep|>`` (the rollout left the grammar)."""
    depth = 0
    for text in frames:
        if text.startswith(CALL_SEP):
            depth += 1
        elif text.startswith(RETURN_SEP):
            depth -= 1
            if depth <= 0:
                return True
        elif text.startswith(EXCEPTION_SEP) and depth <= 1:
            return True
        elif not text or not text.endswith(FRAME_SEP):
            return True  # not a whole frame: the rollout has gone off the grammar
    return False


def rollout(model, header: str, max_frames: int, reserve: int | None = None,
            given: Sequence[str] = ()) -> list[str]:
    """Predict a whole trace from its header, feeding each predicted frame back (no teacher
    forcing), until :func:`trace_ended` or ``max_frames`` frames. ``given``: frames known in
    advance (the call frame, holding the arguments); they start the returned list."""
    frames: list[str] = list(given)
    ids: list[np.ndarray] = [model.tokenizer.encode(text) for text in frames]
    while len(frames) < max_frames and not trace_ended(frames):
        text = complete_texts(model, [frame_prompt(model, header, ids, reserve)],
                              reserve_of(model, reserve))[0]
        frames.append(text)
        ids.append(model.tokenizer.encode(text))
    return frames


def predict_output(model, source: str, entry: str, args_repr: str) -> str:
    """The predicted return value repr of ``entry(args)``."""
    prompt = np.concatenate([[BOS], model.tokenizer.encode(answer_prompt(source, entry,
                                                                          args_repr))])
    return complete_texts(model, [prompt], frame=False)[0]


def frame_parts(text: str) -> tuple[str, str | None]:
    """``(state, action)``: a frame's text before and after its first ``<|action_sep|>``
    (action None when there is none)."""
    state, sep, action = text.partition(ACTION_SEP)
    return state, (action if sep else None)


def evaluate_exectrace(model, *, programs="generated", kind: str = "mixed", episodes: int = 20,
                       seed: int = 0, max_frames: int = 200, reserve: int | None = None,
                       rollout_episodes: int | None = None, output: bool = True,
                       given_call: bool = True, progress: bool = False) -> dict:
    """The three ExecTrace metrics of ``model`` beside the copy baseline (module docstring).

    ``programs``/``kind`` are the env's options (a list of Program: e.g. the test split's);
    episode e is ``reset(seed=seed + e)``; the first ``rollout_episodes`` (default all) also
    get a full-trace rollout (the slow part: one decode per frame). Episodes whose header does
    not fit the model's context are skipped and counted (``skipped``).

    ``given_call`` (default): the first frame, the call with its argument values, is input, not
    prediction (the header holds the source only, so no model could know the arguments): the
    env's first step is answered with it and not scored, next_frame counts frames 1.., and
    rollouts start from it. ``False`` scores every frame (the call frame is then a guess).
    ``progress`` shows a tqdm bar on stderr (one tick per episode of each pass).
    """
    import gymnasium as gym
    from tqdm import tqdm

    import tracegym.envs.exectrace  # noqa: F401  (registers the env)
    from tracegym.envs.exectrace import copy_previous_frame_prediction

    model.eval()
    step_env = gym.make("tracegym/ExecTrace-v0", programs=programs, kind=kind, mode="step",
                        max_frames=max_frames, max_tokens=1 << 20)
    frames_total = model_hits = copy_hits = traces = trace_hits = copy_trace_hits = skipped = 0
    bar = tqdm(total=episodes * (2 if output else 1), unit="episode", desc="trace-model eval",
               disable=not progress, leave=False)
    part_hits = {(part, who): 0 for part in ("state", "action") for who in ("model", "copy")}
    for e in range(episodes):
        obs, _ = step_env.reset(seed=seed + e)
        ep = step_env.unwrapped.episode
        true_ids = [model.tokenizer.encode(t) for t in ep.frame_texts]
        try:
            prompts = [frame_prompt(model, obs, true_ids[:t], reserve)
                       for t in range(len(true_ids))]
        except ValueError:
            skipped += 1
            bar.update(1)
            continue
        first = 1 if given_call else 0
        predictions = list(ep.frame_texts[:first]) + complete_texts(
            model, prompts[first:], reserve_of(model, reserve))
        seen: list[str] = []
        for t, text in enumerate(predictions):  # the env scores the model; the baseline alike
            baseline = copy_previous_frame_prediction(seen)
            _, reward, terminated, truncated, info = step_env.step(text)
            seen.append(info["frame"])
            if t < first:
                continue
            model_hits += int(reward)
            copy_hits += int(baseline == info["frame"])
            truth = frame_parts(info["frame"])
            for who, guess in (("model", frame_parts(text)), ("copy", frame_parts(baseline))):
                part_hits["state", who] += guess[0] == truth[0]
                part_hits["action", who] += guess[1] == truth[1]
        frames_total += len(predictions) - first
        if e < (episodes if rollout_episodes is None else rollout_episodes):
            cap = len(ep.frame_texts) + ROLLOUT_SLACK
            predicted = rollout(model, obs, cap, reserve, given=ep.frame_texts[:first])
            copies: list[str] = list(ep.frame_texts[:first])
            while len(copies) < len(ep.frame_texts):
                copies.append(copy_previous_frame_prediction(copies))
            traces += 1
            trace_hits += tuple(predicted) == ep.frame_texts
            copy_trace_hits += tuple(copies) == ep.frame_texts
        bar.update(1)
    result = {
        "episodes": episodes, "skipped": skipped, "frames": frames_total,
        "given_call": given_call,
        "next_frame": {"model": model_hits / max(frames_total, 1),
                       "copy_baseline": copy_hits / max(frames_total, 1)},
        "next_frame_parts": {
            part: {"model": part_hits[part, "model"] / max(frames_total, 1),
                   "copy_baseline": part_hits[part, "copy"] / max(frames_total, 1)}
            for part in ("state", "action")},
    }
    if traces:
        result["full_trace"] = {"model": trace_hits / max(traces, 1),
                                "copy_baseline": copy_trace_hits / max(traces, 1),
                                "traces": traces}
    if output:
        answer_env = gym.make("tracegym/ExecTrace-v0", programs=programs, kind=kind,
                              mode="answer", max_frames=max_frames, max_tokens=1 << 20)
        hits = n = 0
        for e in range(episodes):
            answer_env.reset(seed=seed + e)
            ep = answer_env.unwrapped.episode
            prompt = np.concatenate([[BOS], model.tokenizer.encode(ep.answer_prompt)])
            if len(prompt) < model.task.seq_len - 8:  # else the answer does not fit: skipped
                text = complete_texts(model, [prompt], frame=False)[0]
                _, reward, *_ = answer_env.step(text)
                hits += int(reward)
                n += 1
            bar.update(1)
        result["output"] = {"model": hits / max(n, 1), "copy_baseline": None, "answers": n}
    bar.close()
    return result
