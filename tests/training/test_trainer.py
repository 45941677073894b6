"""Trainer, config, optimisers, checkpoints and the train/plot CLI, on a tiny 4x4 Sudoku set."""

import json
import os
import re
import shutil
import socket
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import TINY_TRM
from torch import nn

from tracegym.cli import main
from tracegym.training.checkpoint import Checkpoint
from tracegym.training.config import (
    TrainConfig,
    apply_overrides,
    config_differences,
    from_dict,
    load_config,
)
from tracegym.training.distributed import Distributed
from tracegym.training.optim import EMA, AdamATan2, build_optimizer, lr_factor
from tracegym.training.plot import plot_run
from tracegym.training.trainer import NonFiniteError, Trainer

torch.set_num_threads(1)


def tiny_config(data, out, **overrides) -> TrainConfig:
    values = dict(task="sudoku4", data=str(data), reasoner="trm", backbone="mlp_mixer",
                  model=dict(TINY_TRM), batch_size=16, lr=3e-3, warmup_steps=2, min_lr_ratio=0.1,
                  optimizer="adam_atan2", ema=0.9, log_every=1, eval_examples=16,
                  out=str(out), progress=False, max_steps=6)
    values.update(overrides)
    return from_dict(values).validate()


def state_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.clone() for k, v in trainer.policy.state_dict().items()}
    out.update({f"ema.{k}": v.clone() for k, v in trainer.ema.state_dict().items()})
    for i, s in trainer.optimizer.state_dict()["state"].items():
        out.update({f"optim.{i}.{k}": torch.as_tensor(v).clone() for k, v in s.items()})
    return out


# -- config -----------------------------------------------------------------------------------

def test_config__load_yaml_json_and_override(tmp_path):
    (tmp_path / "a.yaml").write_text("task: maze\nlr: 1e-4\nwarmup_steps: 2e3\nbetas: [0.9, 0.95]"
                                     "\nmodel:\n  dim: 512\n")
    (tmp_path / "a.json").write_text(json.dumps({"task": "maze", "lr": 1e-4, "warmup_steps": 2000,
                                                 "model": {"dim": 512}}))
    from_yaml, from_json = load_config(tmp_path / "a.yaml"), load_config(tmp_path / "a.json")
    assert from_yaml == from_json
    assert from_yaml.warmup_steps == 2000 and isinstance(from_yaml.warmup_steps, int)
    apply_overrides(from_yaml, ["lr=3e-4", "model.depth=2", "ema=0.999", "max_steps=none",
                                "compile=true", "betas=[0.8,0.9]"])
    assert from_yaml.lr == 3e-4 and from_yaml.model == {"dim": 512, "depth": 2}
    assert from_yaml.ema == 0.999 and from_yaml.compile is True and from_yaml.betas == (0.8, 0.9)
    assert from_yaml.max_steps is None


def test_config__unknown_key_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=re.escape("config: unknown key(s) ['lrr'] ('lrr': did "
                                                   "you mean 'lr'?); valid keys: task, data, "
                                                   "reasoner")):
        apply_overrides(TrainConfig(), ["lrr=1"])
    (tmp_path / "c.yaml").write_text("epochz: 3\n")
    with pytest.raises(ValueError, match=re.escape("unknown key(s) ['epochz']")):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("pair, message", [
    ("optimizer=sgd", "optimizer must be one of ['adamw', 'adam_atan2'], got 'sgd'"),
    ("batch_size=0", "batch_size must be >= 1, got 0"),
    ("ema=1.0", "ema must be in [0, 1), got 1.0"),
    ("amp=fp8", "amp must be one of ['auto', 'bf16', 'off'], got 'fp8'"),
    ("lr", "override: expected key=value, got 'lr'"),
])
def test_config__bad_values(pair, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        apply_overrides(TrainConfig(), [pair]).validate()


def test_config__losses_have_one_home():
    # the reasoners' configs and TrainConfig share one list, in the torch-free core layer
    from tracegym import losses
    from tracegym.agents.reasoners import config as reasoner_config
    from tracegym.training import config as train_config

    assert reasoner_config.LOSSES is losses.LOSSES and train_config.LOSSES is losses.LOSSES


def test_config_differences__ignores_run_length_fields():
    a = TrainConfig(lr=1e-3, max_steps=10, out="x").to_dict()
    b = TrainConfig(lr=2e-3, max_steps=20, out="y").to_dict()
    assert config_differences(a, b) == ["lr: 0.001 -> 0.002"]


# -- schedule, optimisers, EMA ----------------------------------------------------------------

def test_lr_factor__warmup_then_cosine_to_floor():
    f = [lr_factor(s, warmup_steps=4, total_steps=14, min_ratio=0.1) for s in range(16)]
    assert f[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert f[9] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert f[14] == pytest.approx(0.1) and f[15] == pytest.approx(0.1)  # floor after the end
    assert all(a >= b for a, b in zip(f[4:], f[5:]))
    assert lr_factor(7, warmup_steps=0, total_steps=10, min_ratio=1.0) == 1.0  # TRM: constant


def test_adam_atan2__decreases_loss_on_least_squares():
    torch.manual_seed(0)
    x, w_true = torch.randn(64, 8), torch.randn(8, 1)
    y = x @ w_true
    w = nn.Parameter(torch.zeros(8, 1))
    opt = AdamATan2([w], lr=0.05, weight_decay=0.0)
    losses = []
    for _ in range(100):
        loss = ((x @ w - y) ** 2).mean()
        losses.append(loss.item())
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert losses[-1] < 0.01 * losses[0]


def test_adam_atan2__first_step_matches_the_formula():
    # step 1: m = (1-b1) g, sqrt(v / c2) = |g|, c1 = 1-b1, so the update is
    # lr / (1-b1) * atan2((1-b1) g, |g|) = lr * atan(1-b1) / (1-b1) * sign(g): scale-free
    w = nn.Parameter(torch.tensor([1.0, -2.0, 0.0]))
    w.grad = torch.tensor([3.0, -0.001, 0.0])
    AdamATan2([w], lr=0.1, betas=(0.9, 0.95), weight_decay=0.5).step()
    decayed = torch.tensor([1.0, -2.0, 0.0]) * (1 - 0.1 * 0.5)
    size = 0.1 * np.arctan(0.1) / 0.1
    torch.testing.assert_close(w.detach(), decayed - size * torch.tensor([1.0, -1.0, 0.0]))


def test_build_optimizer__puzzle_table_is_not_in_the_adam_group():
    from tracegym.agents.reasoners import TaskSpec, build_policy

    model = build_policy("trm", "mlp_mixer", TaskSpec("sudoku4", vocab_size=6, seq_len=16),
                         puzzle_emb_len=1, **TINY_TRM)
    opt = build_optimizer(model, name="adamw", lr=1e-4, weight_decay=1.0, betas=(0.9, 0.95))
    assert [g["peak_lr"] for g in opt.param_groups] == [1e-4]
    params = opt.param_groups[0]["params"]
    assert len(params) == len(list(model.parameters()))
    assert not any(p is model.embed.puzzle.weight for p in params)  # sign-SGD trains it


def test_ema__shadow_is_exponential_average_and_swaps():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, 0.75)
    for value in (2.0, 4.0):
        with torch.no_grad():
            model.weight.fill_(value)
        ema.update(model)
    # s1 = .75*1 + .25*2 = 1.25; s2 = .75*1.25 + .25*4 = 1.9375
    assert ema.state_dict()["weight"].item() == pytest.approx(1.9375)
    ema.swap(model)
    assert model.weight.item() == pytest.approx(1.9375)
    ema.swap(model)
    assert model.weight.item() == 4.0


# -- the loop -----------------------------------------------------------------------------------

@pytest.mark.parametrize("act_flow, sampler, batches", [
    ("batch", "examples", 5),  # 2 optimizer steps per batch
    ("carry", "examples", 10),  # one batch per optimizer step; the ACT carry is checkpointed
    ("carry", "groups", 10),
])
def test_trainer__resume_continues_exactly(sudoku4, tmp_path, act_flow, sampler, batches):
    # 3 batches per epoch (48 examples / 16): 20 steps cross epochs
    def config(out):
        return tiny_config(sudoku4, out, max_steps=20, act_flow=act_flow, sampler=sampler)

    straight = Trainer(config(tmp_path / "a"))
    straight.train()
    first = Trainer(config(tmp_path / "b"))
    first.train(stop_after=10)  # cut short: same schedule, checkpoint at step 10
    assert first.step == 10 and first.batches == batches
    resumed = Trainer(config(tmp_path / "b"), resume=tmp_path / "b" / "checkpoint.safetensors")
    assert resumed.step == 10
    if act_flow == "carry":
        assert torch.equal(resumed.act_state.carry.z, first.act_state.carry.z)
        assert torch.equal(resumed.act_state.steps, first.act_state.steps)
    resumed.train()
    a, b = state_of(straight), state_of(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").open()
             if '"train"' in line]
    assert steps == list(range(1, 21))  # the resumed run appends to the same log


def test_trainer__resume_with_different_config_names_the_fields(sudoku4, tmp_path):
    Trainer(tiny_config(sudoku4, tmp_path, max_steps=2)).train()
    with pytest.raises(ValueError, match=re.escape("fields that differ: lr: 0.003 -> 0.001; "
                                                   "optimizer: 'adam_atan2' -> 'adamw'")):
        Trainer(tiny_config(sudoku4, tmp_path, lr=1e-3, optimizer="adamw"), resume=tmp_path)


class PoisonedModel(nn.Module):
    """A stand-in reasoner with ``n_sup`` supervision steps per batch whose loss turns NaN at
    optimizer step ``at`` (0-based); its metrics are tensors (``tensors``) or Python numbers."""

    def __init__(self, spec, at: int | None = None, *, n_sup: int = 1, tensors: bool = False):
        super().__init__()
        self.at, self.n_sup, self.tensors, self.calls = at, n_sup, tensors, 0
        self.head = nn.Embedding(spec["vocab_size"], spec["vocab_size"])

    @property
    def max_supervision_steps(self) -> int:
        return self.n_sup

    def supervision_steps(self, batch):
        for i in range(self.n_sup):
            logits = self.head(batch["inputs"])  # (B, T, V)
            loss = nn.functional.cross_entropy(logits.transpose(1, 2), batch["labels"])
            if self.calls == self.at:
                loss = loss * float("nan")
            self.calls += 1
            acc = (logits.detach().argmax(-1) == batch["labels"]).float().mean()
            metrics = ({"loss": loss.detach(), "token_acc": acc} if self.tensors
                       else {"loss": loss.item()})
            yield SimpleNamespace(loss=loss, logits=logits, metrics=metrics,
                                  halted=i == self.n_sup - 1)

    def solve(self, inputs, puzzle_identifiers=None):
        return self.head(inputs).argmax(-1)


def test_trainer__nan_guard_names_step_and_metric(sudoku4, tmp_path):
    cfg = tiny_config(sudoku4, tmp_path, max_steps=5, ema=0.0)
    trainer = Trainer(cfg, policy_factory=lambda spec, cfg: PoisonedModel(spec, at=3))
    with pytest.raises(NonFiniteError, match=re.escape("step 3: loss is nan (not finite)")):
        trainer.train()


def test_trainer__nan_in_device_values_is_raised_at_the_next_read(sudoku4, tmp_path):
    # the loss stays on the device until the read at step 5 (log_every): the error names the
    # step it went NaN at, and neither the log line nor a checkpoint of that state is written
    cfg = tiny_config(sudoku4, tmp_path, max_steps=10, log_every=5, ema=0.0)
    trainer = Trainer(cfg, policy_factory=lambda spec, cfg: PoisonedModel(spec, at=2,
                                                                          tensors=True))
    with pytest.raises(NonFiniteError, match=re.escape("step 2: loss is nan (not finite)")):
        trainer.train()
    assert trainer.step == 5
    assert (tmp_path / "metrics.jsonl").read_text() == ""
    assert not (tmp_path / "checkpoint.safetensors").exists()


HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__",
              "__array__")


def test_trainer__reads_the_device_once_per_log_interval(sudoku4, tmp_path, monkeypatch):
    # A host read (.item(), bool(t), ...) makes the host wait for the device. With a reasoner
    # that returns tensor metrics, 12 more optimizer steps (4 batches of 3 supervision steps)
    # add 3 reads: one per log_every=4 steps. The reads around the loop (checkpoint, eval) are
    # the same in both runs. (AdamW's step counter is a host tensor that torch.optim reads each
    # step: not a device read, not counted.)
    reads = {}

    def counting(name, into):
        real = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            if f"torch{os.sep}optim{os.sep}" not in sys._getframe(1).f_code.co_filename:
                into.append(name)
            return real(self, *args, **kwargs)
        return read

    for steps in (12, 24):
        cfg = tiny_config(sudoku4, tmp_path / str(steps), max_steps=steps, log_every=4,
                          optimizer="adamw", ema=0.9)
        trainer = Trainer(cfg, policy_factory=lambda spec, cfg: PoisonedModel(
            spec, n_sup=3, tensors=True))
        reads[steps] = []
        with monkeypatch.context() as m:
            for name in HOST_READS:
                m.setattr(torch.Tensor, name, counting(name, reads[steps]))
            trainer.train()
        train = [json.loads(line) for line in (tmp_path / str(steps) / "metrics.jsonl").open()
                 if '"train"' in line]
        assert [r["step"] for r in train] == list(range(4, steps + 1, 4))
        assert all(isinstance(r[k], float) for r in train for k in ("loss", "token_acc",
                                                                    "grad_norm"))
    assert len(reads[24]) - len(reads[12]) == 3, (reads[12], reads[24])


def test_trainer__metrics_jsonl_and_plot(sudoku4, tmp_path):
    Trainer(tiny_config(sudoku4, tmp_path, max_steps=4, eval_every=2)).train()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in train] == [1, 2, 3, 4] and [r["step"] for r in evals] == [2, 4]
    assert {"loss", "lr", "grad_norm", "exact_acc", "token_acc"} <= set(train[0])
    assert 0 <= evals[-1]["exact_acc"] <= 1 and evals[-1]["examples"] == 16
    png = plot_run(tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = Checkpoint(tmp_path)
    assert ckpt.trainer_state["step"] == 4 and ckpt.config["reasoner"] == "trm"
    assert ckpt.policy_config["N_sup"] == 2 and ckpt.task_spec["seq_len"] == 16


class EchoModel(PoisonedModel):
    """A stand-in whose answer is its input."""

    def solve(self, inputs, puzzle_identifiers=None):
        return inputs.clone()


def test_trainer__evaluate_counts_as_the_reasoners_metrics(sudoku4, tmp_path):
    # One rule with answer_correctness: an example with no valid label is left out of exact
    # accuracy (the old count called it exact: 15/16 here; "not exact" would give 14/16).
    data = tmp_path / "data"
    shutil.copytree(sudoku4, data)
    inputs = np.load(data / "test" / "all__inputs.npy")
    labels = inputs.copy()  # EchoModel answers every example exactly,
    labels[0] = 0  # but example 0 has no valid label (ignore_label_id 0)
    labels[1, 0] = inputs[1, 0] % 5 + 1  # and example 1 has one token wrong
    np.save(data / "test" / "all__labels.npy", labels)
    trainer = Trainer(tiny_config(data, tmp_path / "run"),
                      policy_factory=lambda spec, cfg: EchoModel(spec))
    assert trainer.evaluate() == {"exact_acc": 14 / 15, "token_acc": (15 * 16 - 1) / (15 * 16),
                                  "examples": 16}


def test_trainer__groups_sampler_batches_repeat_and_resume(sudoku4, tmp_path):
    cfg = tiny_config(sudoku4, tmp_path, sampler="groups")
    t1, t2 = Trainer(cfg), Trainer(cfg)
    first = [t1.next_batch()["inputs"] for _ in range(7)]  # 48 groups / 16: crosses 2 epochs
    assert all(torch.equal(a, t2.next_batch()["inputs"]) for a in first)
    t3 = Trainer(cfg)
    t3.order.load_state(t1.order.state())
    assert torch.equal(t1.next_batch()["inputs"], t3.next_batch()["inputs"])


# -- DDP ----------------------------------------------------------------------------------------

def _ddp_worker(rank: int, world: int, port: int, data: str, out: str,
                uneven: bool = False, act_flow: str = "batch") -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    # uneven: rank r's batches halt after r + 1 supervision steps
    factory = (lambda spec, cfg: PoisonedModel(spec, n_sup=rank + 1, tensors=True)) \
        if uneven else None
    trainer = Trainer(tiny_config(data, out, max_steps=4, device="cpu", act_flow=act_flow),
                      policy_factory=factory)
    calls = []
    all_reduce = torch.distributed.all_reduce

    def counted(tensor, *args, **kwargs):
        calls.append(tensor.numel())
        return all_reduce(tensor, *args, **kwargs)

    torch.distributed.all_reduce = counted  # a spawned process of its own: nothing to undo
    try:
        trainer.train()
        torch.save(state_of(trainer), os.path.join(out, f"rank{rank}.pt"))
        n_params = sum(p.numel() for p in trainer.params)
        torch.save({"calls": calls, "steps": trainer.step, "batches": trainer.batches,
                    "n_params": n_params}, os.path.join(out, f"calls{rank}.pt"))
    finally:
        trainer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("act_flow, flags", [("batch", 3), ("carry", 1)])
def test_trainer__ddp_gloo_two_processes_stay_in_sync(sudoku4, tmp_path, act_flow, flags):
    import torch.multiprocessing as mp

    port = _free_port()
    mp.spawn(_ddp_worker, args=(2, port, str(sudoku4), str(tmp_path), False, act_flow),
             nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (tmp_path / "checkpoint.safetensors").is_file()  # written by rank 0 only
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4]  # one writer
    # gradients bucketed: per optimizer step one all-reduce of every gradient and the flags
    # (the tiny model fits one bucket); per batch, and once at the end, one of 2 stop flags
    run = torch.load(tmp_path / "calls0.pt")
    sizes = [run["n_params"] + flags] * run["steps"] + [2] * (run["batches"] + 1)
    assert sorted(run["calls"]) == sorted(sizes)


@pytest.mark.slow
def test_trainer__ddp_rank_that_halts_first_waits_for_the_others(sudoku4, tmp_path):
    # rank 0 halts each batch after 1 step, rank 1 after 2: both take 2 optimizer steps a batch
    # (rank 0 with zero gradients in the second) and end with the same weights
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(sudoku4), str(tmp_path), True), nprocs=2,
             join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for rank in (0, 1):
        run = torch.load(tmp_path / f"calls{rank}.pt")
        assert (run["steps"], run["batches"]) == (4, 2)
    calls = [torch.load(tmp_path / f"calls{rank}.pt")["calls"] for rank in (0, 1)]
    assert calls[0] == calls[1]  # every all-reduce joined by both ranks
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 3]  # rank 0's steps


def test_distributed__buckets_cut_by_size_dtype_and_order():
    params = [nn.Parameter(torch.zeros(n, dtype=dtype)) for n, dtype in [
        (100, torch.float32), (100, torch.float32), (300, torch.float32), (10, torch.float64),
        (10, torch.float64), (1000, torch.float32)]]
    ddp = Distributed("cpu", bucket_mb=800 / 2**20)  # 800 bytes: 200 float32 values
    assert [[p.numel() for p in bucket] for bucket in ddp.buckets(params)] == [
        [100, 100], [300], [10, 10], [1000]]


# -- bad input through the CLI ------------------------------------------------------------------

def _train_argv(data, out, *extra):
    return ["train", "--task", "sudoku4", "--data", str(data), "--reasoner", "trm",
            "--backbone", "mlp_mixer", "--out", str(out), "max_steps=2", "batch_size=16",
            "progress=false", *(f"model.{k}={v}" for k, v in TINY_TRM.items()), *extra]


def _broken_copy(src, dst, edit):
    shutil.copytree(src, dst)
    edit(dst)
    return dst


def _set_meta(path, **fields):
    meta = json.loads(path.read_text())
    meta.update(fields)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("case, message", [
    ("reasoner", "tracegym: error: reasoner: unknown reasoner 'trmx'; valid names: feedforward,"),
    ("backbone", "tracegym: error: unknown backbone 'mlpx'; valid names: transformer,"),
    ("task", "tracegym: error: task: unknown task 'chess'; valid names: arc,"),
    ("key", "tracegym: error: config: unknown key(s) ['epoch'] ('epoch': did you mean "
            "'epochs'?); valid keys: task,"),
    ("no_meta", "tracegym: error: dataset: missing file"),
    ("bad_vocab", "tracegym: error: dataset: "),
    ("no_field", "tracegym: error: dataset: "),
    ("split_mismatch", "tracegym: error: dataset: "),
])
def test_cli_train__bad_input_is_one_line_and_exit_2(case, message, sudoku4, tmp_path, capsys):
    data, extra = sudoku4, []
    if case == "reasoner":
        extra = ["reasoner=trmx"]
    elif case == "backbone":
        extra = ["backbone=mlpx"]
    elif case == "task":
        extra = ["task=chess"]
    elif case == "key":
        extra = ["epoch=3"]
    elif case == "no_meta":
        data = _broken_copy(sudoku4, tmp_path / "d", lambda d: (d / "train/dataset.json").unlink())
    elif case == "bad_vocab":
        data = _broken_copy(sudoku4, tmp_path / "d",
                            lambda d: _set_meta(d / "train/dataset.json", vocab_size=3))
    elif case == "no_field":
        def drop(d):
            meta = json.loads((d / "train/dataset.json").read_text())
            del meta["vocab_size"]
            (d / "train/dataset.json").write_text(json.dumps(meta))
        data = _broken_copy(sudoku4, tmp_path / "d", drop)
    elif case == "split_mismatch":
        data = _broken_copy(sudoku4, tmp_path / "d",
                            lambda d: _set_meta(d / "test/dataset.json", vocab_size=7))
    assert main(_train_argv(data, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_cli_train__resume_with_changed_field_exits_2(sudoku4, tmp_path, capsys):
    assert main(_train_argv(sudoku4, tmp_path)) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 2
    assert main(["train", "--resume", str(tmp_path), "lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "was written by a different config; fields that differ: lr: 0.001 -> 0.5" in err
    assert main(["train", "--resume", str(tmp_path), "max_steps=4"]) == 0  # run length may change
    assert json.loads(capsys.readouterr().out)["step"] == 4


def test_cli_plot__writes_png_and_rejects_missing_run(sudoku4, tmp_path, capsys):
    assert main(_train_argv(sudoku4, tmp_path)) == 0
    assert main(["plot", str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").is_file()
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("tracegym: error: plot: no metrics file")


def test_trainer__resume_on_another_dataset_layout_names_the_fields(sudoku4, tmp_path):
    Trainer(tiny_config(sudoku4, tmp_path / "run", max_steps=2)).train()
    other = _broken_copy(sudoku4, tmp_path / "moved", lambda d: None)
    resumed = Trainer(tiny_config(other, tmp_path / "run", max_steps=4), resume=tmp_path / "run")
    assert resumed.step == 2  # a moved dataset with the same layout resumes
    for split in ("train", "test"):
        _set_meta(other / split / "dataset.json", num_puzzle_identifiers=5)
    with pytest.raises(ValueError, match=re.escape("dataset.json fields that differ: "
                                                   "num_puzzle_identifiers: 1 -> 5")):
        Trainer(tiny_config(other, tmp_path / "run", max_steps=4), resume=tmp_path / "run")


def test_trainer__bf16_autocast_and_loss_decreases(sudoku4, tmp_path):
    # amp=bf16 runs the CPU autocast path; a one-pass model learns a little in 30 steps
    cfg = tiny_config(sudoku4, tmp_path, reasoner="feedforward", model={"dim": 32, "depth": 1,
                      "heads": 2, "multiple_of": 32}, amp="bf16", max_steps=30, lr=1e-2,
                      optimizer="adamw", ema=0.0, loss="softmax")
    trainer = Trainer(cfg)
    assert trainer.amp and trainer.total_steps == 30
    trainer.train()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").open()
              if '"train"' in line]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_trainer__time_budget_stops_between_batches(sudoku4, tmp_path):
    cfg = tiny_config(sudoku4, tmp_path / "run", max_steps=100_000, time_budget_s=1.0)
    result = Trainer(cfg).train()
    assert result["stopped_by"] == "time_budget_s" and 0 < result["step"] < 100_000
    with pytest.raises(ValueError, match=re.escape("time_budget_s must be > 0 seconds or None")):
        tiny_config(sudoku4, tmp_path / "bad", time_budget_s=0).validate()


def test_trainer__resume_continues_exactly_with_the_sparse_puzzle_table(sudoku4, tmp_path):
    # the puzzle table (a buffer trained by sign-SGD) resumes exactly too; its optimiser has no
    # state beyond the lr the schedule sets
    model = {**TINY_TRM, "puzzle_emb_len": 2}
    straight = Trainer(tiny_config(sudoku4, tmp_path / "a", max_steps=8, model=model))
    assert straight.sparse_optimizer is not None
    straight.train()
    first = Trainer(tiny_config(sudoku4, tmp_path / "b", max_steps=8, model=model))
    first.train(stop_after=4)
    resumed = Trainer(tiny_config(sudoku4, tmp_path / "b", max_steps=8, model=model),
                      resume=tmp_path / "b" / "checkpoint.safetensors")
    resumed.train()
    table = straight.policy.embed.puzzle.weight
    assert table.abs().sum() > 0  # the rows moved, so the comparison means something
    a, b = state_of(straight), state_of(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_trainer__grad_clip_zero_turns_clipping_off(sudoku4, tmp_path):
    # TRM and HRM do not clip (their paper configs set grad_clip: 0.0): 0 must leave every step
    # exactly as an unreachable limit does, while a tiny limit changes the run (AdamW's eps makes
    # the update depend on the gradient's scale, so the clipping shows in the weights)
    def run(out, clip):
        trainer = Trainer(tiny_config(sudoku4, tmp_path / out, optimizer="adamw", grad_clip=clip,
                                      max_steps=3))
        trainer.train()
        return state_of(trainer)

    off, huge, tiny = run("off", 0.0), run("huge", 1e30), run("tiny", 1e-12)
    assert all(torch.equal(off[k], huge[k]) for k in off)
    assert not all(torch.equal(off[k], tiny[k]) for k in off)


def test_trainer__threads_sets_torch_threads_and_is_checked(sudoku4, tmp_path):
    before = torch.get_num_threads()
    try:
        Trainer(tiny_config(sudoku4, tmp_path, threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        tiny_config(sudoku4, tmp_path, threads=0)
