"""The per-puzzle table trained as TRM trains it: sparse rows, sign-SGD with decay on the used
rows only, scaled by sqrt(D) in the input, outside the EMA; and the paper configs' values."""

import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tracegym.agents.reasoners.base import InputEmbedding
from tracegym.agents.reasoners.puzzle_embedding import SparsePuzzleEmbedding
from tracegym.training.config import ConfigError, TrainConfig, from_dict, load_config
from tracegym.training.optim import EMA, SparseSignSGD, build_sparse_optimizer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def table_with(values: torch.Tensor) -> SparsePuzzleEmbedding:
    table = SparsePuzzleEmbedding(*values.shape)
    table.weight.copy_(values)
    return table


def test_sparse_sign_sgd__absent_rows_bit_unchanged_used_rows_move_by_lr_sign_plus_decay():
    torch.manual_seed(0)
    start = torch.randn(5, 3)
    table = table_with(start)
    opt = SparseSignSGD([table], lr=0.1, weight_decay=0.5)
    # row 1 twice (its gradients are summed), row 3 once; rows 0, 2, 4 unused
    rows = table(torch.tensor([1, 3, 1]))
    coef = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -4.0], [-1.0, -1.0, -0.5]])
    (rows * coef).sum().backward()
    opt.step()
    w = table.weight
    for r in (0, 2, 4):
        assert torch.equal(w[r], start[r])  # bit-unchanged: no decay either
    # by hand: summed gradient of row 1 = [1, -2, 0] -> sign [1, -1, 0]; row 3 = [0, 3, -4]
    decay = 1 - 0.1 * 0.5
    assert torch.equal(w[1], start[1] * decay - 0.1 * torch.tensor([1.0, -1.0, 0.0]))
    assert torch.equal(w[3], start[3] * decay - 0.1 * torch.tensor([0.0, 1.0, -1.0]))
    opt.zero_grad()
    assert table.row_gradients()[0].numel() == 0  # the lookups are forgotten


def test_sparse_embedding__records_only_training_lookups_with_grad():
    table = table_with(torch.arange(6.0).reshape(3, 2))
    with torch.no_grad():
        table(torch.tensor([0]))
    table.eval()
    out = table(torch.tensor([2]))
    assert not out.requires_grad and torch.equal(out, torch.tensor([[4.0, 5.0]]))
    table.train()
    table(torch.tensor([0]))  # a lookup that never gets a backward leaves nothing
    table(torch.tensor([1])).sum().backward()
    ids, grads = table.row_gradients()
    assert ids.tolist() == [1] and grads.tolist() == [[1.0, 1.0]]
    # a step with no recorded row changes nothing, not even by decay
    table.clear()
    before = table.weight.clone()
    SparseSignSGD([table], lr=1.0, weight_decay=1.0).step()
    assert torch.equal(table.weight, before)


def test_sparse_embedding__many_backwards_without_a_step_are_summed_per_row():
    from tracegym.agents.reasoners.puzzle_embedding import MAX_PENDING

    table = table_with(torch.zeros(3, 2))
    for i in range(MAX_PENDING + 5):  # a loop that never steps the sparse optimiser
        table(torch.tensor([i % 2, 2])).sum().backward()
    ids, grads = table.row_gradients()
    assert len(ids) < MAX_PENDING  # bounded
    summed = torch.zeros(3, 2).index_add_(0, ids, grads)
    n = MAX_PENDING + 5
    assert summed.tolist() == [[(n + 1) // 2] * 2, [n // 2] * 2, [n] * 2]


def test_sparse_embedding__table_is_a_buffer_in_the_state_dict_not_a_parameter():
    emb = InputEmbedding(vocab_size=6, dim=8, num_identifiers=4, puzzle_emb_len=2,
                         puzzle_emb_dim=12)
    assert "puzzle.weight" in emb.state_dict()
    assert all(p is not emb.puzzle.weight for p in emb.parameters())
    assert (emb.puzzle.weight == 0).all()  # zero-initialised, as TRM
    assert build_sparse_optimizer(emb, lr=1e-2, weight_decay=0.1).tables == [emb.puzzle]
    assert build_sparse_optimizer(nn.Linear(2, 2), lr=1e-2, weight_decay=0.1) is None


def test_input_embedding__puzzle_tokens_scaled_by_sqrt_dim_as_trm():
    # TRM: embed_scale * cat(pad(puzzle_emb(id)).view(P, D), embed_tokens(x)), embed_scale =
    # sqrt(hidden_size): the puzzle tokens get the same scale as the token embeddings
    torch.manual_seed(0)
    dim, plen, pdim = 8, 2, 12
    emb = InputEmbedding(vocab_size=6, dim=dim, num_identifiers=3, puzzle_emb_len=plen,
                         puzzle_emb_dim=pdim)
    emb.puzzle.weight.normal_()
    tokens, ids = torch.tensor([[1, 2, 3]]), torch.tensor([2])
    out = emb(tokens, ids)
    trm = math.sqrt(dim) * torch.cat(
        [F.pad(emb.puzzle.weight[ids], (0, plen * dim - pdim)).view(1, plen, dim),
         emb.tokens.weight[tokens]], dim=1)
    torch.testing.assert_close(out, trm, rtol=0, atol=1e-6)


def test_ema__averages_parameters_not_the_puzzle_table():
    # TRM's EMAHelper averages named_parameters; its EMA copy evaluates with the live table
    emb = InputEmbedding(vocab_size=4, dim=4, num_identifiers=3, puzzle_emb_len=1,
                         puzzle_emb_dim=4)
    ema = EMA(emb, 0.5)
    tokens0 = emb.tokens.weight.detach().clone()
    with torch.no_grad():
        emb.tokens.weight.add_(2.0)
        emb.puzzle.weight.fill_(3.0)
    ema.update(emb)
    shadow = ema.state_dict()
    torch.testing.assert_close(shadow["tokens.weight"], tokens0 + 1.0)
    assert torch.equal(shadow["puzzle.weight"], torch.full((3, 4), 3.0))  # the live rows
    ema.swap(emb)
    torch.testing.assert_close(emb.tokens.weight.detach(), tokens0 + 1.0)
    assert torch.equal(emb.puzzle.weight, torch.full((3, 4), 3.0))  # not swapped
    ema.swap(emb)
    torch.testing.assert_close(emb.tokens.weight.detach(), tokens0 + 2.0)


def test_config__puzzle_emb_fields_default_to_trm_and_are_checked():
    cfg = TrainConfig()
    assert (cfg.puzzle_emb_lr, cfg.puzzle_emb_weight_decay) == (1e-2, 0.1)  # cfg_pretrain.yaml
    with pytest.raises(ConfigError, match="puzzle_emb_lr must be > 0, got 0.0"):
        from_dict({"puzzle_emb_lr": 0}).validate()
    with pytest.raises(ConfigError, match="puzzle_emb_weight_decay must be >= 0, got -1.0"):
        from_dict({"puzzle_emb_weight_decay": -1}).validate()


@pytest.mark.parametrize("name, lr, wd", [("trm-sudoku-extreme", 1e-4, 1.0),
                                          ("trm-maze-hard", 1e-4, 1.0),
                                          ("trm-arc-agi-1", 1e-2, 0.1)])
def test_configs__puzzle_emb_lr_and_decay_are_trms(name, lr, wd):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert (cfg.puzzle_emb_lr, cfg.puzzle_emb_weight_decay) == (lr, wd)


# -- DDP: the rows of every rank, summed -----------------------------------------------------

def _sparse_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        table = table_with(torch.ones(4, 2))
        opt = SparseSignSGD([table], lr=0.25, weight_decay=1.0, world_size=world)
        # rank 0 uses row 1 with gradient [1, -1] and row 2 with [1, 1]; rank 1 uses row 1
        # with [-3, 0]; a second step where only rank 1 has rows (rank 0's batch halted)
        if rank == 0:
            (table(torch.tensor([1, 2])) * torch.tensor([[1.0, -1.0], [1.0, 1.0]])).sum() \
                .backward()
        else:
            (table(torch.tensor([1])) * torch.tensor([[-3.0, 0.0]])).sum().backward()
        opt.step()
        opt.zero_grad()
        if rank == 1:
            (table(torch.tensor([3])) * torch.tensor([[1.0, -1.0]])).sum().backward()
        opt.step()
        torch.save(table.weight, os.path.join(out, f"table{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_sparse_sign_sgd__ddp_sums_rows_over_ranks(tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_sparse_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "table0.pt"), torch.load(tmp_path / "table1.pt")
    assert torch.equal(a, b)
    # row 1: summed gradient [-2, -1] -> 1 * 0.75 + 0.25 = 1.0 in both; row 2: [1, 1] -> 0.5;
    # row 3 (second step, rank 1 only): [1, -1] -> [0.5, 1.0]; row 0 unused
    assert a.tolist() == [[1.0, 1.0], [1.0, 1.0], [0.5, 0.5], [0.5, 1.0]]


def test_config__lr_embed_is_refused_with_the_fields_that_replace_it():
    from tracegym.training.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="lr_embed is gone: .*puzzle_emb_lr.*puzzle_emb_weight"):
        from_dict({"lr_embed": 1e-2})
