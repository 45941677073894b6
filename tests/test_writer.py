import numpy as np
import pyarrow.parquet as pq

from tracegym.datasets.writer import RowSpill, SplitData, read_split, write_dataset


def test_row_spill__keeps_small_arrays_in_memory(tmp_path):
    spill = RowSpill(tmp_path / "x.bin", 4)
    spill.append(np.ones((2, 4), np.uint8))
    out = spill.array()
    assert not isinstance(out, np.memmap) and out.shape == (2, 4)
    assert not (tmp_path / "x.bin").exists()


def test_row_spill__spills_past_its_memory_and_returns_every_row_in_order(tmp_path):
    spill = RowSpill(tmp_path / "x.bin", 3, memory=10)
    blocks = [np.full((k + 1, 3), k, np.uint8) for k in range(6)]
    for block in blocks:
        spill.append(block)
    out = spill.array()
    assert isinstance(out, np.memmap)
    assert np.array_equal(out, np.concatenate(blocks))


def test_write_dataset__memory_mapped_split_round_trips_through_many_row_groups(tmp_path,
                                                                            monkeypatch):
    from tracegym.datasets import writer

    monkeypatch.setattr(writer, "PARQUET_ROWS", 7)  # several row groups from a small split
    spill = RowSpill(tmp_path / "in.bin", 5, memory=0)
    labels = RowSpill(tmp_path / "lab.bin", 5, memory=0)
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 4, (30, 5)).astype(np.uint8)
    for lo in range(0, 30, 4):
        spill.append(inputs[lo:lo + 4])
        labels.append(inputs[lo:lo + 4][:, ::-1])
    split = SplitData(spill.array(), labels.array(), np.arange(1, 11, dtype=np.int32),
                      np.arange(0, 31, 3, dtype=np.int32), np.array([0, 4, 10], np.int32),
                      columns={"name": [f"p{i // 3}" for i in range(30)]})
    meta = split.metadata(vocab_size=4, num_puzzle_identifiers=11)
    write_dataset(tmp_path / "d", {"train": split}, {"train": meta},
                  ["<blank>", *(f"p{i}" for i in range(10))])
    _, arrays = read_split(tmp_path / "d", "train", mmap=False)
    assert np.array_equal(arrays["inputs"], inputs)
    table = pq.read_table(tmp_path / "d" / "train" / "all.parquet")
    assert pq.ParquetFile(tmp_path / "d" / "train" / "all.parquet").num_row_groups == 5
    assert table.num_rows == 30 and table["name"].to_pylist()[-1] == "p9"
    assert table["group_index"].to_pylist() == [0] * 12 + [1] * 18
    assert np.array_equal(np.array(table["labels"].to_pylist()), inputs[:, ::-1])
