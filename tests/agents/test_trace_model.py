"""Trace models: tokenizer round trip on traces, the prompt format and the trace_lm data builder,
TraceLM cached decoding, learning on a tiny config, the diffusion variant, training, checkpoint
loading and ExecTrace evaluation, the trace-model CLI, the import layering, and bad inputs."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from tracegym.agents.reasoners import REASONERS, TRACE_REASONERS, TaskSpec, build_policy
from tracegym.agents.trace_model import FRAME_SEP_ID, teacher_forced, trace_task
from tracegym.agents.trace_model.decode import frame_prompt, rollout, trace_ended
from tracegym.datasets.torch_dataset import PuzzleDataset
from tracegym.datasets.trace_lm import build_trace_lm_dataset
from tracegym.datasets.traces import build_trace_dataset, read_traces
from tracegym.envs.exectrace.source import frame_texts
from tracegym.tracers.cwm import Trace
from tracegym.tracers.prompt import answer_prompt, encode_example, fit_prompt
from tracegym.tracers.strategies import traced_programs
from tracegym.tracers.tokenizer import BOS, EOS, TraceTokenizer
from tracegym.training.checkpoint import load_trace_model
from tracegym.training.evaluate_traces import evaluate_exectrace

torch.set_num_threads(1)
TOK = TraceTokenizer()
SEQ = 320


@pytest.fixture(scope="module")
def traces_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("traces") / "t"
    build_trace_dataset(out, n=24, seed=3, kind="straight_line", test_fraction=0.3,
                        progress=False)
    return out


@pytest.fixture(scope="module")
def lm_data(traces_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "d"
    build_trace_lm_dataset(traces_dir, out, task="both", seq_len=SEQ)
    return out


def tiny(reasoner="trace_lm", backbone="transformer", seq_len=SEQ, **kw):
    torch.manual_seed(0)
    kw = {"depth": 1, **kw}
    return build_policy(reasoner, backbone, trace_task(seq_len), dim=32, heads=2,
                        multiple_of=32, **kw)


# ------------------------------------------------------------------------------ tokenizer

@settings(max_examples=25)
@given(traced_programs())
def test_tokenizer__round_trip_on_traces(traced):
    text = traced.trace.to_cwm()
    ids = TOK.encode(text)
    assert TOK.decode(ids) == text
    header, frames = frame_texts(traced.trace)
    assert "".join(TOK.decode(TOK.encode(f)) for f in frames) == text[len(header):]


def test_tokenizer__unknown_special_token_is_bytes_and_bad_ids_raise():
    assert TOK.encode("<|foo|>").tolist() == [b + 4 for b in b"<|foo|>"]
    with pytest.raises(ValueError, match=re.escape("ids[1] = 268 is outside 0..267")):
        TOK.decode([5, 268])


# ------------------------------------------------------------------------------ data

def test_trace_lm_data__split_by_program_and_metadata(traces_dir, lm_data):
    records = [r for r in read_traces(traces_dir)]
    train = {r["source"] for r in records if r["split"] == "train"}
    test = {r["source"] for r in records if r["split"] == "test"}
    assert train and test and not train & test
    for split in ("train", "test"):
        meta = json.loads((lm_data / split / "dataset.json").read_text())
        assert meta["vocab_size"] == 268 and meta["seq_len"] == SEQ
        assert meta["tokenizer"] == TOK.to_dict()
        data = PuzzleDataset(lm_data, split)
        assert len(data) == meta["counts"]["examples"] > 0
        assert len(data.group_indices) - 1 == meta["counts"]["programs"]


def test_trace_lm_data__label_convention(traces_dir, lm_data):
    data = PuzzleDataset(lm_data, "train")
    record = next(r for r in read_traces(traces_dir) if r["split"] == "train")
    header, frames = frame_texts(Trace.from_json(record["trace_json"]))
    ex = data[1]  # the first record's frame 1: prompt = BOS header frame0, target frame1 EOS
    inputs, labels = ex["inputs"].numpy(), ex["labels"].numpy()
    prompt = np.concatenate([[BOS], TOK.encode(header), TOK.encode(frames[0])])
    target = np.concatenate([TOK.encode(frames[1]), [EOS]])
    p = len(prompt)
    assert (inputs[:p] == prompt).all() and (inputs[p:] == 0).all()
    assert (labels[p - 1:p - 1 + len(target)] == target).all()
    assert (labels[:p - 1] == 0).all() and (labels[p - 1 + len(target):] == 0).all()
    full = teacher_forced(ex["inputs"][None], ex["labels"][None])[0].numpy()
    assert (full[:p + len(target)] == np.concatenate([prompt, target])).all()


def test_trace_lm_data__truncation_keeps_head_and_recent_frames():
    head = np.array([1, 10, 11])
    frames = [np.array([20] * 4), np.array([21] * 3), np.array([22] * 2)]
    prompt, dropped = fit_prompt(head, frames, 3 + 3 + 2)
    assert prompt.tolist() == [1, 10, 11, 21, 21, 21, 22, 22] and dropped == 1
    with pytest.raises(ValueError, match="head"):
        fit_prompt(head, frames, 2)
    with pytest.raises(ValueError, match="fit seq_len 4"):
        encode_example(np.array([1, 5, 6]), np.array([7, 2]), 4)


def test_trace_lm_data__counts_truncated_and_rejected(traces_dir, tmp_path):
    summary = build_trace_lm_dataset(traces_dir, tmp_path / "short", task="next_frame",
                                     seq_len=200)
    counts = summary["splits"]["train"]
    assert counts["truncated"] > 0 and counts["rejected_too_long"] > 0
    data = PuzzleDataset(tmp_path / "short", "train")
    assert ((np.asarray(data.inputs) != 0).sum(1) <= 200).all()


def test_trace_lm_data__trace_windows_cover_each_frame_once(traces_dir, tmp_path):
    build_trace_lm_dataset(traces_dir, tmp_path / "w", task="trace,output", seq_len=SEQ)
    data = PuzzleDataset(tmp_path / "w", "train")
    record = next(r for r in read_traces(traces_dir) if r["split"] == "train")
    header, frames = frame_texts(Trace.from_json(record["trace_json"]))
    first, last = int(data.puzzle_indices[0]), int(data.puzzle_indices[1])
    labels = [np.asarray(data.labels[i]) for i in range(first, last)]
    inputs = [np.asarray(data.inputs[i]) for i in range(first, last)]
    targets = [lab[lab != 0] for lab in labels]
    assert targets[-2][-1] == EOS  # the trace's last window ends with EOS; then the output
    assert TOK.decode(np.concatenate(targets[:-1])) == "".join(frames)
    for x in inputs[:-1]:  # every window starts with BOS + the header
        assert TOK.decode(x[x != 0]).startswith(header)
    with pytest.raises(ValueError, match="task must be one of"):
        build_trace_lm_dataset(traces_dir, tmp_path / "bad", task="next_frame,nope")


# ------------------------------------------------------------------------------ TraceLM

@pytest.mark.parametrize("backbone", ["transformer", "hybrid", "gated_deltanet"])
def test_trace_lm__cached_generation_equals_uncached(backbone):
    # the hybrid with both of its layer kinds: a Gated DeltaNet state and a KV cache
    extra = {"depth": 2, "pattern": "GA"} if backbone == "hybrid" else {}
    model = tiny(backbone=backbone, seq_len=64, **extra).eval()
    prefix = TOK.encode("<|trace_context_start|>def f(x):", add_bos=True)
    cached = model.generate(prefix, 20, stop_ids=())
    assert len(cached) == 20
    assert (cached == model.generate(prefix, 20, stop_ids=(), use_cache=False)).all()
    # solve (batched, forced prompt) agrees with generate on each row
    rows = [prefix, prefix[:5]]
    inputs = torch.zeros(2, 64, dtype=torch.long)
    for r, p in enumerate(rows):
        inputs[r, :len(p)] = torch.from_numpy(p.astype(np.int64))
    for frame in (False, True):
        out = model.solve(inputs, stop_at_frame_sep=frame)
        for r, p in enumerate(rows):
            ref = model.generate(p, 64, stop_ids=(EOS, FRAME_SEP_ID) if frame else (EOS,))
            n = min(len(ref), 64 - len(p))
            assert (out[r, len(p) - 1:len(p) - 1 + n].numpy() == ref[:n]).all()
            assert (out[r, len(p) - 1 + n:] == 0).all()


def _loss_falls(model, lm_data, steps=40, lr=3e-3):
    data = PuzzleDataset(lm_data, "train")
    batch = {k: torch.stack([data[i][k] for i in range(8)]) for k in ("inputs", "labels")}
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        out = next(model.supervision_steps(batch))
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
    return losses


def test_trace_lm__loss_falls_on_a_tiny_config(lm_data):
    losses = _loss_falls(tiny(), lm_data)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])


def test_trace_diffusion__runs_and_loss_falls(lm_data):
    model = tiny("trace_diffusion", span_len=96, decode_steps=4)
    losses = _loss_falls(model, lm_data)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])
    model.eval()
    prompt = np.asarray(PuzzleDataset(lm_data, "test")[0]["inputs"])
    prompt = prompt[prompt != 0]
    (ids,) = model.complete([prompt])
    assert ids.ndim == 1 and len(ids) <= 96 and not (ids == EOS).any()


def test_trace_model__trainer_checkpoint_eval_and_predict(traces_dir, lm_data, tmp_path, capsys):
    from tracegym.training import TrainConfig, Trainer

    cfg = TrainConfig(task="exectrace", data=str(lm_data), reasoner="trace_lm",
                      backbone="transformer", loss="softmax", max_steps=4, batch_size=8,
                      eval_examples=4, out=str(tmp_path / "run"), progress=False, device="cpu",
                      model=dict(dim=32, depth=1, heads=2, multiple_of=32))
    Trainer(cfg).train()  # by name: REASONERS lists the trace models
    model = load_trace_model(tmp_path / "run")
    assert model.config["tokenizer"] == TOK.to_dict()
    result = evaluate_exectrace(model, kind="straight_line", episodes=1, rollout_episodes=1,
                                max_frames=20)
    assert 0 <= result["next_frame"]["model"] <= 1
    assert result["next_frame"]["copy_baseline"] == 0 or result["frames"] > 0
    for who in ("model", "copy_baseline"):  # an exact frame has both parts right
        parts = result["next_frame_parts"]
        assert result["next_frame"][who] <= min(parts["state"][who], parts["action"][who]) <= 1
    assert result["full_trace"]["traces"] == 1 and "output" in result
    # the predict command: a CWM trace, then the diff against the real (in-process) trace
    import argparse

    from tracegym.training import trace_model_cli

    source = tmp_path / "prog.py"
    source.write_text("def f(x):\n    y = x + 1\n    return y\n")
    parser = argparse.ArgumentParser()
    trace_model_cli.add_arguments(parser)
    args = parser.parse_args(["predict", "--checkpoint", str(tmp_path / "run"), "--source",
                              str(source), "--entry", "f", "--args", "2", "--max-frames", "2",
                              "--in-process"])
    assert trace_model_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("<|trace_context_start|>def f(x):  # << START_OF_TRACE")
    assert "--- real" in printed and "# frames: the call frame given" in printed
    # the call frame (argument values) is given, so the printed trace holds the real one
    assert '<|call_sep|>{"x": "2"}<|action_sep|>def f(x):' in printed.split("--- real")[0]
    args = parser.parse_args(["eval", "--checkpoint", str(tmp_path / "run"), "--traces",
                              str(traces_dir), "--episodes", "1", "--max-frames", "20"])
    assert trace_model_cli.main(args) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "trace-model eval" in captured.err  # the progress bar, on stderr
    assert report["given_call"] is True and report["episodes"] == 1
    assert report["traces"] == str(traces_dir)
    assert {"next_frame", "next_frame_parts", "full_trace", "output"} <= set(report)
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        trace_model_cli.main(parser.parse_args(["eval", "--checkpoint", "x", "--episodes", "0"]))


# ------------------------------------------------------------------------------ bad input

def test_trace_model__another_tokenizer_is_a_clear_error(tmp_path):
    other = TraceTokenizer(("<|a|>", "<|b|>")).to_dict()
    with pytest.raises(ValueError, match="tokenizer mismatch"):
        tiny(tokenizer=other)
    from tracegym.training.checkpoint import save_checkpoint

    model = tiny(seq_len=32)
    config = {**model.config, "tokenizer": {**model.config["tokenizer"], "version": 99}}
    save_checkpoint(tmp_path / "c.safetensors", model=model,
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1), config={},
                    task_spec={}, policy_config=config, trainer_state={"step": 0})
    with pytest.raises(ValueError, match=re.escape("version: recorded 99")):
        load_trace_model(tmp_path / "c.safetensors")


def test_trace_lm__bad_prefixes():
    model = tiny(seq_len=16).eval()
    with pytest.raises(ValueError, match=re.escape("prefix_ids[1] = 268 is outside 0..267")):
        model.generate([1, 268], 4)
    with pytest.raises(ValueError, match="more than the model's context seq_len=16"):
        model.generate(np.ones(17, np.int64), 4)
    assert len(model.generate(np.ones(14, np.int64), 10, stop_ids=())) == 2  # capped
    with pytest.raises(ValueError, match="at most 15"):
        model.complete([np.ones(16, np.int64)])
    with pytest.raises(ValueError, match="task.vocab_size"):
        build_policy("trace_lm", "transformer", {"name": "x", "vocab_size": 11, "seq_len": 8})
    with pytest.raises(ValueError, match="causal backbone"):
        build_policy("trace_lm", "mlp_mixer", trace_task(8))


def test_rollout__stops_when_the_entry_returns():
    call, line = "<|call_sep|>{}<|frame_sep|>", "<|line_sep|>{}<|frame_sep|>"
    assert trace_ended([call, '<|return_sep|><|action_sep|>x<|arg_sep|>"1"<|frame_sep|>'])
    assert not trace_ended([call, line])
    assert trace_ended([call, "<|line_sep|>{"])  # cut off: left the grammar
    model = tiny(seq_len=64).eval()
    header = "<|trace_context_start|>def f():<|frame_sep|>"
    assert len(frame_prompt(model, header, [])) == 1 + len(TOK.encode(header))
    assert 1 <= len(rollout(model, header, max_frames=3)) <= 3


def test_frame_parts__split_at_the_first_action_sep():
    from tracegym.agents.trace_model.decode import frame_parts

    frame = '<|line_sep|>{"x": ".."}<|action_sep|>    y = x\n<|frame_sep|>'
    assert frame_parts(frame) == ('<|line_sep|>{"x": ".."}', "    y = x\n<|frame_sep|>")
    assert frame_parts("<|line_sep|>{}") == ("<|line_sep|>{}", None)
    assert frame_parts("") == ("", None)


# ------------------------------------------------------------------------------ layering

def test_trace_model__import_loads_no_dataset_training_or_env_module():
    # the agents layer reads the prompt format from tracers; evaluation and checkpoint loading
    # live above it, in training
    code = ("import sys, tracegym.agents.trace_model.decode; "
            "print([m for m in sys.modules if m.split('.')[:2] in "
            "(['tracegym', 'datasets'], ['tracegym', 'training'], ['tracegym', 'envs'])])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_reasoners__one_registry_lists_the_trace_models():
    assert set(REASONERS) == set(TRACE_REASONERS) | {"feedforward", "trm", "hrm", "diffusion",
                                                     "autoregressive"}
    for name in REASONERS:
        assert REASONERS[name].NAME == name
    model = tiny(seq_len=32)
    again = build_policy(**model.config)  # how a checkpoint's policy_config is rebuilt
    assert type(again) is type(model) and again.config == model.config


# model.config of a trace_diffusion model built before the config dataclasses (commit 28930bc),
# but for the tokenizer (this code's): a checkpoint stores it, so it must still build the model
STORED_DIFFUSION = {
    "reasoner": "trace_diffusion", "backbone": "transformer",
    "task": {"name": "exectrace", "vocab_size": 268, "seq_len": 32, "num_puzzle_identifiers": 1,
             "pad_id": 0, "ignore_label_id": 0},
    "dim": 32, "depth": 1, "heads": 2, "loss": "softmax", "puzzle_emb_len": 0,
    "puzzle_emb_dim": 32, "norm": "post", "expansion": 4.0, "multiple_of": 32, "pattern": None,
    "qk_norm": True, "rope_base": 10000.0, "expand_v": 1.0, "conv_size": 4, "chunk_size": 64,
    "impl": "auto", "latent_dim": None, "window": 64, "rope": None, "mla_gate": False,
    "norm_gain": True, "init": "torch", "tokenizer": "this code's, filled in below",
    "decode_steps": 3, "span_len": 12,
}


def test_trace_model__a_stored_config_still_builds_and_the_config_is_typed():
    from tracegym.agents.trace_model.model import TraceDiffusionConfig, TraceLMConfig

    stored = {**STORED_DIFFUSION, "tokenizer": TOK.to_dict()}
    model = build_policy(**json.loads(json.dumps(stored)))
    assert model.config == stored and list(model.config) == list(stored)
    assert isinstance(model.cfg, TraceDiffusionConfig)
    assert (model.cfg.span_len, model.cfg.decode_steps, model.cfg.loss) == (12, 3, "softmax")
    lm = tiny(seq_len=32)
    assert isinstance(lm.cfg, TraceLMConfig) and lm.cfg.loss == "softmax"  # the trace default
    assert lm.cfg.tokenizer == TOK.to_dict()  # recorded at build time
    assert "span_len" not in TraceLMConfig.keys()


@pytest.mark.parametrize(("change", "message"), [
    (dict(puzzle_emb_len=2), "puzzle_emb_len must be 0 for a trace model, got puzzle_emb_len=2"),
    (dict(reasoner="trace_diffusion", span_len=0), "span_len must be an int >= 1, got span_len=0"),
    (dict(tokenizer="v1"), "tokenizer must be a mapping or None, got tokenizer='v1'"),
    (dict(reasoner="trace_lm", span_len=8), "unknown config key(s) ['span_len'] for reasoner "
                                            "'trace_lm'"),
])
def test_trace_model__bad_config_values_name_the_key(change, message):
    from tracegym.errors import TracegymError

    args = {"reasoner": "trace_lm", **change}
    with pytest.raises(TracegymError, match=re.escape(message)):
        tiny(**args)


def test_load_trace_model__another_reasoner_is_a_clear_error(tmp_path):
    from tracegym.errors import TracegymError
    from tracegym.training.checkpoint import save_checkpoint

    sudoku4 = TaskSpec("sudoku4", vocab_size=6, seq_len=16)
    model = build_policy("feedforward", "transformer", sudoku4, dim=16, depth=1, heads=2)
    save_checkpoint(tmp_path / "c.safetensors", model=model,
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1), config={},
                    task_spec={}, policy_config=model.config, trainer_state={"step": 0})
    with pytest.raises(TracegymError, match="holds a 'feedforward' model, not a trace model"):
        load_trace_model(tmp_path / "c.safetensors")


def test_prompt__answer_prompt_is_the_env_observation():
    from tracegym.envs.exectrace.source import Episode
    from tracegym.tracers.programs import Call, Program

    program = Program("p", "def f(x, k=1):\n    return x\n\n", "f", (Call((3,), {"k": 2}),),
                      origin="directory")
    episode = Episode(program, program.inputs[0], Trace(entry="f", context="", frames=[]), "",
                      (), "3")
    assert answer_prompt(program.source, "f", "3, k=2") == episode.answer_prompt
