"""A trace model scored on ``tracegym/ExecTrace-v0``: the three ExecTrace metrics beside the copy
baseline (``tracegym trace-model eval``).

Metrics (:func:`evaluate_exectrace`):

* ``next_frame``: step mode, teacher forcing: frame t predicted from the true frames 0..t-1;
  exact match of the frame text, averaged over frames. ``next_frame_parts`` splits the same
  frames at ``<|action_sep|>``: ``state`` (event token and locals) and ``action`` (the source
  line) matched alone -- where a miss comes from, not a replacement for exact match.
* ``full_trace``: teacher forcing off: :func:`~tracegym.agents.trace_model.decode.rollout` feeds
  the model's own frames back until the entry call returns (or ``len(true) + ROLLOUT_SLACK``
  frames); exact match of the whole list.
* ``output``: answer mode: the return value's repr from source + call (CRUXEval-O).

The "copy the previous frame" baseline (``copy_previous_frame_prediction``) is scored beside the
model for next_frame and, fed its own copies, for full_trace (0 unless the call frame is the
whole trace: every later frame at least moves to another line or event).
It has no answer-mode form; ``output`` reports ``copy_baseline`` as None.
"""

from __future__ import annotations

import gymnasium as gym
from tqdm import tqdm

from tracegym.agents.trace_model.decode import (
    complete_texts,
    frame_parts,
    frame_prompt,
    reserve_of,
    rollout,
)
from tracegym.envs.exectrace import copy_previous_frame_prediction  # (registers the env)
from tracegym.tracers.prompt import prompt_ids

ROLLOUT_SLACK = 5  # frames a rollout may run past the true trace before it is cut


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
            prompt = prompt_ids(model.tokenizer, ep.answer_prompt)
            if len(prompt) < model.task.seq_len - 8:  # else the answer does not fit: skipped
                text = complete_texts(model, [prompt], frame=False)[0]
                _, reward, *_ = answer_env.step(text)
                hits += int(reward)
                n += 1
            bar.update(1)
        result["output"] = {"model": hits / max(n, 1), "copy_baseline": None, "answers": n}
    bar.close()
    return result
