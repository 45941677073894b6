"""Trace LM dataset: token examples for trace language models, in the TRM layout.

Reads a ``tracegym data traces`` output directory (``traces.jsonl``) and writes::

    OUT/identifiers.json                   ["<blank>"]
    OUT/{train,test}/dataset.json          TRM metadata + "tokenizer", "task", "counts"
    OUT/{train,test}/all__inputs.npy       (N, seq_len) uint16 token ids (vocab 268 > 255)
    OUT/{train,test}/all__labels.npy       (N, seq_len) uint16
    OUT/{train,test}/all__puzzle_*.npy, all__group_indices.npy   as the TRM layout
    OUT/meta.json                          the arguments and counts

The arrays are uint16 because :class:`~tracegym.tracers.tokenizer.TraceTokenizer` has 268 ids;
``PuzzleDataset`` and the Trainer cast to int64 whatever the dtype. (``datasets/writer.py``
accepts uint8 only, so this module writes the same files itself.)

Tasks (``--task``):

* ``next_frame``: one example per frame t of each usable trace. Prompt = ``BOS`` + the header
  (``<|trace_context_start|>`` marked source ``<|frame_sep|>``) + frames ``0..t-1``; target =
  frame t's CWM text (event token through ``<|frame_sep|>``) + ``EOS``.
* ``output`` (CRUXEval-O): prompt = ``BOS`` + ``source.rstrip() + "\\n\\n" + f"{entry}({args})"
  + "\\n"`` (the ExecTrace answer-mode observation); target = the return value's repr (or the
  exception's repr for a raising call) + ``EOS``.
* ``trace``: whole-trace windows for a causal LM (every frame token is a label: at seq_len 512
  ~3x the labels per token of next_frame). Window w: prompt = ``BOS`` + header + the
  ``TRACE_OVERLAP`` frame(s) before its first frame, if they fit beside it (the most recent
  context, as the left-truncated prompts at evaluation); target = as many whole frames as fit,
  + ``EOS`` after the trace's last frame only. A model trained so ends a frame with
  ``<|frame_sep|>``, not EOS: decoding a frame stops there (``complete(..., frame=True)``). A
  frame that does not fit even alone is rejected (counted) and the next window starts after it.
* ``both``: next_frame and output. Tasks may be combined with commas (``trace,output``), the
  examples of each record in the order named.

Prompts and labels follow :mod:`tracegym.tracers.prompt` (the one home of the format, used
again at evaluation and by ``trace-model predict``): ``inputs`` hold the prompt then PAD (0),
``labels[i]`` is token ``i + 1`` of prompt + target, 0 (ignored) elsewhere.

Length (``--seq-len`` L): an example needs ``p + m <= L`` for ``p`` prompt and ``m`` target tokens
(the last label sits at position ``p + m - 2``; position ``p + m - 1`` holds the target's last
token in the teacher-forced sequence). A next_frame prompt that is too long is left-truncated
*by whole frames* (:func:`~tracegym.tracers.prompt.fit_prompt`): BOS and the header (source
context) are kept, then the most recent frames that fit, and the older frames between are
dropped (``counts.truncated``). When BOS + header + target alone do not fit, the example is
rejected (``counts.rejected_too_long``), as is every output example that does not fit (the
source is never cut).

Split: the ``split`` column of the traces (by program: every call of a program, and every program
with the same source, is in one split); the builder checks that no source is in both. Traces whose
outcome is not ``ok`` or ``exception`` (truncated, timeout, ...) are skipped (``counts.skipped``).
Puzzle = one traced call (its examples), group = one program (all of its calls), identifiers all
0, so ``sampler="groups"`` draws one example per program.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracegym.checks import check_int
from tracegym.errors import TracegymError
from tracegym.outputs import pause_point
from tracegym.tracers.prompt import (
    EXAMPLE_DTYPE,
    answer_prompt,
    encode_example,
    fit_prompt,
    prompt_ids,
)

from .engines import Chunk, Engine, batched, check_engine, open_engine
from .writer import BLANK_IDENTIFIER, NpyRows, locked_output, staged_directory

TASKS = ("next_frame", "output", "trace")
ALIASES = {"both": ("next_frame", "output")}
TRACE_OVERLAP = 1  # frames of context before a trace window's first target frame
USABLE_OUTCOMES = ("ok", "exception")
DTYPE = EXAMPLE_DTYPE


def _tokenizer():
    from tracegym.tracers.tokenizer import TraceTokenizer

    return TraceTokenizer()


# ---------------------------------------------------------------------------------------------
# examples of one record


def record_examples(record: dict, task: str, seq_len: int, tok, counts: Counter
                    ) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The ``(inputs, labels, kind)`` examples of one traces record."""
    from tracegym.envs.exectrace.source import frame_texts
    from tracegym.tracers.cwm import Trace
    from tracegym.tracers.tokenizer import EOS

    eos = np.array([EOS])
    tasks = parse_tasks(task)
    out = []
    if "next_frame" in tasks or "trace" in tasks:
        header, texts = frame_texts(Trace.from_json(record["trace_json"]))
        head = prompt_ids(tok, header)
        frames = [tok.encode(t) for t in texts]
    for name in tasks:
        if name == "next_frame":
            out += _next_frame(head, frames, seq_len, eos, counts)
        elif name == "trace":
            out += _trace_windows(head, frames, seq_len, eos, counts)
        else:
            out += _output(record, seq_len, tok, eos, counts)
    return out


def parse_tasks(task: str) -> tuple[str, ...]:
    """``"both"`` / ``"a,b"`` -> task names; TracegymError naming an unknown one."""
    if not isinstance(task, str):
        raise TracegymError(f"task must be a str, got {task!r}")
    names = ALIASES.get(task) or tuple(t.strip() for t in task.split(","))
    bad = [t for t in names if t not in TASKS]
    if bad or not names or len(set(names)) != len(names):
        raise TracegymError(f"task must be one of {list(TASKS)} or 'both', or a comma list of "
                            f"distinct ones, got {task!r}")
    return names


def _next_frame(head, frames, seq_len, eos, counts) -> list:
    out = []
    for t, frame in enumerate(frames):
        target = np.concatenate([frame, eos])
        try:
            prompt, dropped = fit_prompt(head, frames[:t], seq_len - len(target))
        except ValueError:
            counts["rejected_too_long"] += 1
            continue
        counts["truncated"] += dropped > 0
        out.append((*encode_example(prompt, target, seq_len), "next_frame"))
    return out


def _trace_windows(head, frames, seq_len, eos, counts) -> list:
    out, s, n = [], 0, len(frames)
    while s < n:
        try:  # the context frames that fit beside frame s (the most recent first)
            prompt = fit_prompt(head, frames[max(0, s - TRACE_OVERLAP):s],
                                seq_len - len(frames[s]) - (s + 1 == n))[0]
        except ValueError:
            prompt = head  # not even head + frame s fit: rejected just below
        room, e = seq_len - len(prompt), s
        while e < n and len(frames[e]) + (e + 1 == n) <= room:
            room -= len(frames[e]) + (e + 1 == n)
            e += 1
        if e == s:  # frame s does not fit even alone after its context
            counts["rejected_too_long"] += 1
            s += 1
            continue
        target = np.concatenate([*frames[s:e], eos] if e == n else frames[s:e])
        out.append((*encode_example(prompt, target, seq_len), "trace"))
        s = e
    return out


def _output(record, seq_len, tok, eos, counts) -> list:
    answer = record["exception_repr"] if record["exception_repr"] is not None \
        else record["return_repr"]
    prompt = prompt_ids(tok, answer_prompt(record["source"], record["entry"],
                                           record["args_repr"]))
    target = np.concatenate([tok.encode(answer or ""), eos])
    if len(prompt) + len(target) > seq_len:
        counts["rejected_too_long"] += 1
        return []
    return [(*encode_example(prompt, target, seq_len), "output")]


# ---------------------------------------------------------------------------------------------
# the examples of a chunk of records (an engine task)

RECORDS_PER_CHUNK = 64  # records sent to a worker at a time (a record may hold a long trace)
_KEPT = ("split", "program", "source")  # what the builder reads of a record itself


@dataclass(frozen=True)
class _Examples:
    """Per record of a chunk: ``(the record's split, program and source, examples or None,
    Counter of counts)``; None for a record skipped or without examples."""

    task: str
    seq_len: int
    tok: object

    def __call__(self, chunk: Chunk) -> list[tuple]:
        out = []
        for record in chunk.data:
            counts: Counter = Counter()
            kept = {key: record[key] for key in _KEPT}
            if record["outcome"] not in USABLE_OUTCOMES or record["trace_json"] is None:
                counts["skipped"] += 1
                out.append((kept, None, counts))
                continue
            examples = record_examples(record, self.task, self.seq_len, self.tok, counts)
            if not examples:
                counts["calls_without_examples"] += 1
            out.append((kept, examples or None, counts))
        return out


# ---------------------------------------------------------------------------------------------
# the builder


def build_trace_lm_dataset(traces_dir, out, *, task: str = "next_frame", seq_len: int = 512,
                           overwrite: bool = False, engine: str | Engine = "local",
                           workers: int | None = None, ray_address: str | None = None) -> dict:
    """Build the TRM-layout token dataset of ``task`` from a traces directory (or a list of
    them, read in order); returns the summary written to ``OUT/meta.json`` (plus ``out``).
    TracegymError for bad arguments, and when a program source is in both splits.

    ``engine``, ``workers``, ``ray_address``: where records become examples (:mod:`.engines`:
    ``"local"`` with ``workers`` processes, default 1, or ``"ray"``); the driver reads the
    records and sends them, so workers need no access to the traces directory. The files are
    the same on every engine."""
    from tracegym.datasets.traces import read_traces

    parse_tasks(task)
    seq_len = check_int("seq_len", seq_len, 8)
    engine = check_engine(engine, workers, ray_address)
    if seq_len > np.iinfo(np.int32).max:
        raise TracegymError(f"seq_len is too large: {seq_len}")
    dirs = [Path(d) for d in ([traces_dir] if isinstance(traces_dir, (str, os.PathLike))
                              else traces_dir)]
    for d in dirs or [Path("")]:
        if not (d / "traces.jsonl").is_file():
            raise TracegymError(f"traces_dir: no traces.jsonl in {str(d)!r} (build it with "
                                "`tracegym data traces`)")
    # fail before the slow part; one writer of OUT from here to the end
    with locked_output(out, overwrite=overwrite) as out, open_engine(*engine) as engine:
        tok = _tokenizer()

        summary = {"arguments": {"traces_dir": [str(d) for d in dirs], "task": task,
                                 "seq_len": seq_len},
                   "tokenizer": tok.to_dict(), "splits": {}}
        with staged_directory(out, overwrite=overwrite) as tmp:
            # the token rows go to their files as they come: memory stays flat as records grow
            splits: dict[str, dict] = {}
            for s in ("train", "test"):
                (tmp / s).mkdir()
                splits[s] = {"rows": NpyRows(tmp / s / "all__inputs.npy", DTYPE, (seq_len,)),
                             "labels": NpyRows(tmp / s / "all__labels.npy", DTYPE, (seq_len,)),
                             "examples": 0, "puzzles": [0], "groups": [], "group_of": {},
                             "kinds": Counter(), "counts": Counter(), "sources": set()}
            records = (r for d in dirs for r in read_traces(d))
            batches = (Chunk(lo, lo + len(batch), batch) for lo, batch in
                       batched(records, RECORDS_PER_CHUNK))
            results = engine.map(_Examples(task, seq_len, tok), batches)
            for record, examples, record_counts in (r for part in results for r in part):
                split = splits[record["split"]]
                counts = split["counts"]
                counts.update(record_counts)  # update keeps zero counts, as += on each key did
                if examples is None:
                    continue
                split["sources"].add(record["source"])
                # a new group when the program changes (records of one program are contiguous)
                key = (record["program"], record["source"])
                if key not in split["group_of"]:
                    split["group_of"][key] = len(split["group_of"])
                    split["groups"].append(len(split["puzzles"]) - 1)  # its first puzzle
                split["rows"].append(np.stack([inputs for inputs, _, _ in examples]))
                split["labels"].append(np.stack([labels for _, labels, _ in examples]))
                split["kinds"].update(kind for _, _, kind in examples)
                split["examples"] += len(examples)
                split["puzzles"].append(split["examples"])
                counts["calls"] += 1
                pause_point("generate")
            shared = splits["train"]["sources"] & splits["test"]["sources"]
            if shared:  # the traces builder splits by source; a mixed-up input would not
                raise TracegymError(f"traces_dir: {len(shared)} program source(s) are in both "
                                    "train and test; the split must be by program")

            for name, split in splits.items():
                n = split["examples"]
                puzzles = np.asarray(split["puzzles"], np.int32)
                groups = np.asarray(split["groups"] + [len(puzzles) - 1], np.int32)
                arrays = {
                    "puzzle_identifiers": np.zeros(len(puzzles) - 1, np.int32),
                    "puzzle_indices": puzzles,
                    "group_indices": groups,
                }
                counts = {**dict(sorted(split["counts"].items())), "examples": n,
                          **{f"examples_{k}": v for k, v in sorted(split["kinds"].items())},
                          "programs": len(split["group_of"])}
                meta = {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0,
                        "vocab_size": tok.vocab_size, "seq_len": seq_len,
                        "num_puzzle_identifiers": 1, "total_groups": len(groups) - 1,
                        "mean_puzzle_examples": n / max(len(puzzles) - 1, 1),
                        "total_puzzles": len(puzzles) - 1, "sets": ["all"],
                        "tokenizer": tok.to_dict(), "task": task, "counts": counts,
                        "label_convention": "shifted: labels[i] = token i+1 of prompt+target; "
                                            "inputs hold the prompt only"}
                folder = tmp / name
                (folder / "dataset.json").write_text(json.dumps(meta, sort_keys=True, indent=2)
                                                     + "\n", encoding="utf-8")
                split["rows"].close()
                split["labels"].close()
                for key, arr in arrays.items():
                    np.save(folder / f"all__{key}.npy", arr, allow_pickle=False)
                summary["splits"][name] = counts
            (tmp / "identifiers.json").write_text(json.dumps([BLANK_IDENTIFIER]) + "\n",
                                                  encoding="utf-8")
            (tmp / "meta.json").write_text(json.dumps(summary, sort_keys=True, indent=2) + "\n",
                                           encoding="utf-8")
        return {**summary, "out": str(out)}
