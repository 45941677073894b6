"""Tests of the trace dataset builder (``tracegym data traces``)."""

import json
import re

import pyarrow.parquet as pq
import pytest

from tracegym import cli
from tracegym.datasets import traces
from tracegym.datasets.traces import COLUMNS, build_trace_dataset, read_traces
from tracegym.errors import TracegymError
from tracegym.tracers import Trace, in_process
from tracegym.tracers.programs import Call

FILES = ("meta.json", "traces.jsonl", "traces.parquet")

PROGRAMS = '''\
def add(a, b):
    return a + b


def boom(x):
    y = x * 2
    raise ValueError(f"bad {y}")


def forever(n):
    i = 0
    while True:
        try:
            i += n
        except BaseException:
            pass


def long(n):
    t = 0
    for i in range(n):
        t += i
    return t
'''
SPEC = {"progs.py": {"add": ["1, 2", "a=[1], b=[2]"], "boom": ["3"], "forever": ["1"],
                     "long": ["100000"]}}


@pytest.fixture
def program_dir(tmp_path):
    folder = tmp_path / "programs"
    folder.mkdir()
    (folder / "progs.py").write_text(PROGRAMS)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    return folder, spec


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "d"
    summary = build_trace_dataset(out, n=20, seed=3, progress=False)
    return out, summary


@pytest.fixture
def cli_main():
    return cli.main


def _lines(out):
    return (out / "traces.jsonl").read_text(encoding="utf-8").splitlines()


def test_build__generated_files_and_columns(generated):
    out, summary = generated
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    table = pq.read_table(out / "traces.parquet")
    assert table.column_names == list(COLUMNS)
    records = list(read_traces(out))
    assert table.num_rows == len(records) == summary["records"] == 20 * 3
    assert table.to_pylist() == [{k: r[k] for k in COLUMNS} for r in records]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["outcomes"] == {"ok": 60} and meta["arguments"]["n"] == 20
    assert [r["program_index"] for r in records] == [i for i in range(20) for _ in range(3)]
    assert {r["origin"] for r in records} == {"generated"}


def test_build__cwm_parses_back_and_matches_json(generated):
    out, _ = generated
    for record in read_traces(out):
        trace = Trace.from_json(record["trace_json"])
        assert trace.to_cwm() == record["cwm"]
        assert Trace.from_cwm(record["cwm"]).to_cwm() == record["cwm"]
        assert record["num_frames"] == len(trace.frames) > 0
        assert record["return_repr"] == trace.return_repr
        call = json.loads(record["args_json"])
        assert record["args_repr"] == ", ".join(repr(a) for a in call["args"])


def test_build__same_arguments_give_identical_bytes(tmp_path, generated):
    out, _ = generated
    again = tmp_path / "again"
    build_trace_dataset(again, n=20, seed=3, progress=False)
    for name in FILES:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_build__other_seed_gives_other_programs(tmp_path, generated):
    out, _ = generated
    build_trace_dataset(tmp_path / "d", n=20, seed=4, progress=False)
    assert _lines(tmp_path / "d") != _lines(out)


def test_shard__shards_concatenate_to_the_whole(tmp_path, generated):
    out, _ = generated
    lines, rows = [], []
    for i in range(3):
        part = tmp_path / f"s{i}"
        summary = build_trace_dataset(part, n=20, seed=3, shard=(i, 3), progress=False)
        assert summary["program_range"] == [i * 20 // 3, (i + 1) * 20 // 3]
        lines += _lines(part)
        rows += pq.read_table(part / "traces.parquet").to_pylist()
    assert lines == _lines(out)
    assert rows == pq.read_table(out / "traces.parquet").to_pylist()


def test_split__by_program_never_both(tmp_path):
    out = tmp_path / "d"
    summary = build_trace_dataset(out, n=40, seed=1, kind="straight_line", test_fraction=0.3,
                                  inputs_per_program=2, progress=False)
    split_of: dict[str, set] = {}
    for record in read_traces(out):
        split_of.setdefault(record["source"], set()).add(record["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert summary["programs_per_split"]["test"] > 0 and summary["programs_per_split"]["train"] > 0
    assert summary["records_per_split"]["test"] == 2 * summary["programs_per_split"]["test"]


def test_split__fraction_zero_and_one(tmp_path):
    for fraction, split in ((0, "train"), (1, "test")):
        out = tmp_path / str(fraction)
        build_trace_dataset(out, n=5, test_fraction=fraction, progress=False)
        assert {r["split"] for r in read_traces(out)} == {split}


def test_build__cruxeval_slice(tmp_path):
    out = tmp_path / "d"
    summary = build_trace_dataset(out, source="cruxeval", n=6, shard=(1, 2), progress=False)
    assert summary["programs_in_source"] == 6 and summary["program_range"] == [3, 6]
    records = list(read_traces(out))
    assert [r["program"] for r in records] == ["sample_3", "sample_4", "sample_5"]
    for r in records:
        assert r["origin"] == "cruxeval" and r["outcome"] == "ok"
        assert r["return_repr"] == r["expected_output"]


def test_build__directory_sandbox_records_every_outcome(tmp_path, program_dir):
    folder, spec = program_dir
    out = tmp_path / "d"
    summary = build_trace_dataset(out, source=str(folder), spec=spec, timeout=1.0,
                                  max_events=500, workers=2, progress=False)
    assert summary["arguments"]["sandbox"] is True
    got = [(r["program"], r["outcome"]) for r in read_traces(out)]
    assert got == [("progs.add", "ok"), ("progs.add", "ok"), ("progs.boom", "exception"),
                   ("progs.forever", "timeout"), ("progs.long", "truncated")]
    records = list(read_traces(out))
    assert records[1]["args_repr"] == "a=[1], b=[2]" and records[1]["return_repr"] == "[1, 2]"
    assert records[2]["exception_repr"] == "ValueError('bad 6')" and records[2]["cwm"]
    assert records[3]["error"] and records[3]["cwm"] is None and records[3]["num_frames"] == 0
    assert records[4]["num_frames"] == 500 and records[4]["truncated"]
    assert summary["outcomes"] == {"exception": 1, "ok": 2, "timeout": 1, "truncated": 1}


@pytest.mark.parametrize("source", ["generated", "directory"])
def test_build__warm_sandbox_writes_the_bytes_of_a_process_per_call(tmp_path, program_dir,
                                                                    source):
    # the warm workers (tracers/zygote.py) are a speed-up only: same records, same files
    folder, spec = program_dir
    kwargs = ({"n": 4, "seed": 5, "inputs_per_program": 2, "sandbox": True}
              if source == "generated" else
              {"source": str(folder), "spec": spec, "timeout": 1.0, "max_events": 500})
    for warm in (True, False):
        build_trace_dataset(tmp_path / str(warm), workers=2, progress=False, warm_sandbox=warm,
                            **kwargs)
    for name in FILES:
        assert (tmp_path / "True" / name).read_bytes() == (tmp_path / "False" / name).read_bytes()
    assert len(_lines(tmp_path / "True")) == (8 if source == "generated" else 5)


def test_build__in_process_is_bounded(tmp_path, program_dir):
    folder, spec = program_dir
    out = tmp_path / "d"
    build_trace_dataset(out, source=folder, spec=spec, sandbox=False, timeout=0.3,
                        max_events=200, inputs_per_program=1, progress=False)
    got = {r["program"]: r for r in read_traces(out)}
    assert [r["outcome"] for r in got.values()] == ["ok", "exception", "timeout", "truncated"]
    forever = got["progs.forever"]
    if in_process._FORKED:  # 3.10: no signal handler runs inside this loop; the worker was killed
        assert forever["exception_repr"] is None and "killed" in forever["error"]
    else:
        assert "CallTimeout" in forever["exception_repr"]
    assert got["progs.long"]["return_repr"] == repr(sum(range(100000)))


# The forked worker itself (timeouts, kills, deaths, replacement) is tested with the runner, in
# tests/tracers/test_in_process.py; here, that a build through it writes the same records.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_build__forked_worker_writes_what_this_process_writes(tmp_path, monkeypatch):
    spec = {"progs.py": {k: v for k, v in SPEC["progs.py"].items() if k != "forever"}}
    (tmp_path / "progs.py").write_text(PROGRAMS)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    files = []
    for fork in (False, True):
        worker = in_process._Worker()
        monkeypatch.setattr(in_process, "_FORKED", fork)
        monkeypatch.setattr(in_process, "_WORKER", worker)
        out = tmp_path / f"d{fork}"
        build_trace_dataset(out, source=tmp_path, spec=tmp_path / "spec.json", sandbox=False,
                            max_events=500, progress=False)
        assert (worker.process is not None) == fork
        worker.close()
        files.append(_lines(out))
    assert files[0] == files[1] and len(files[0]) == 4


def test_args_json__only_exact_values():
    assert traces._args_json(Call(([1, "a"],), {"k": None})) == \
        '{"args": [[1, "a"]], "kwargs": {"k": null}}'
    assert traces._args_json(Call(((1, 2),))) is None  # a tuple would come back a list
    assert traces._args_json(Call(({1: 2},))) is None  # an int key would come back a str
    assert traces._args_json(Call((float("nan"),))) is None


def test_build__failure_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    real = traces._record
    monkeypatch.setattr(traces, "_record", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_trace_dataset(tmp_path / "d", n=3, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_build__overwrite_replaces(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "old.txt").write_text("x")
    build_trace_dataset(out, n=2, overwrite=True, progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "nope"}, "source: expected 'generated', 'cruxeval' or a directory, got 'nope'"),
    ({"source": "DIR"}, "spec: a directory source needs a spec file"),
    ({"spec": "x.json"}, "spec: only a directory source takes a spec"),
    ({"n": 0}, "n must be >= 1, got 0"),
    ({"shard": (2, 2)}, "shard must be (i, n) with 0 <= i < n, got (2, 2)"),
    ({"kind": "loopy"}, "kind must be one of"),
    ({"max_events": 0}, "max_events must be >= 1, got 0"),
    ({"test_fraction": 1.5}, "test_fraction must be a number in 0..1, got 1.5"),
    ({"timeout": 0}, "timeout must be a number of seconds > 0, got 0"),
    ({"workers": 0}, "workers must be >= 1, got 0"),
    ({"inputs_per_program": 0}, "inputs_per_program must be >= 1, got 0"),
    ({"max_statements": 1}, "max_statements must be >= 2, got 1"),
    ({"max_params": 0}, "max_params must be >= 1, got 0"),
])
def test_build__bad_arguments_name_the_field(tmp_path, kwargs, message):
    if kwargs.get("source") == "DIR":
        kwargs = {"source": str(tmp_path)}
    with pytest.raises(ValueError, match=re.escape(message)):
        build_trace_dataset(tmp_path / "d", progress=False, **kwargs)
    assert not (tmp_path / "d").exists()


def test_build__program_size_options_bound_the_generated_programs(tmp_path):
    import ast

    summary = build_trace_dataset(tmp_path / "d", n=12, kind="straight_line", max_statements=3,
                                  max_params=1, progress=False)
    assert summary["arguments"]["max_statements"] == 3 and summary["arguments"]["max_params"] == 1
    sources = {r["source"] for r in read_traces(tmp_path / "d")}
    assert len(sources) > 1
    for source in sources:
        f = ast.parse(source).body[-1]
        assert len(f.args.args) == 1
        assert 1 <= len(f.body) - 1 <= 3  # the statements, then the return


def test_build__non_empty_out_needs_overwrite(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match=re.escape("pass overwrite=True (--overwrite)")):
        build_trace_dataset(tmp_path / "d", n=1, progress=False)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["keep.txt"]


def test_cli__builds(tmp_path, cli_main, capsys):
    out = tmp_path / "d"
    assert cli_main(["data", "traces", "--out", str(out), "--n", "3", "--kind", "loops",
                     "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 9 traces of 3 programs")
    assert json.loads((out / "meta.json").read_text())["arguments"]["kind"] == "loops"


@pytest.mark.parametrize("extra, message", [
    (["--n", "0"], "tracegym: error: n must be >= 1, got 0"),
    (["--source", "nope"], "tracegym: error: source: expected"),
    (["--source", "{tmp}"], "tracegym: error: spec: a directory source needs a spec file"),
    (["--shard", "3/2"], "shard must look like i/n"),
    (["--sandbox", "--in-process"], "not allowed with argument"),
    (["--out", "{tmp}"], "tracegym: error: out: directory"),
])
def test_cli__bad_arguments_exit_2_with_one_line(tmp_path, cli_main, extra, message, capsys):
    (tmp_path / "x.txt").write_text("x")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    try:
        code = cli_main(["data", "traces", "--out", str(tmp_path / "d"), "--no-progress",
                         *extra])
    except SystemExit as exc:  # argparse-level rejection
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "d").exists()


def test_shard__empty_shard_writes_empty_files(tmp_path):
    out = tmp_path / "d"
    summary = build_trace_dataset(out, n=2, shard=(0, 3), progress=False)
    assert summary["records"] == 0 and summary["program_range"] == [0, 0]
    assert _lines(out) == []
    assert pq.read_table(out / "traces.parquet").column_names == list(COLUMNS)


def test_build__sandbox_and_in_process_give_the_same_cwm(tmp_path):
    runs = {}
    for sandbox in (True, False):
        out = tmp_path / str(sandbox)
        build_trace_dataset(out, n=3, seed=7, sandbox=sandbox, inputs_per_program=1,
                            workers=2, progress=False)
        runs[sandbox] = [(r["outcome"], r["cwm"], r["return_repr"]) for r in read_traces(out)]
    assert runs[True] == runs[False]


def test_split_programs__rebuild_the_split_for_the_env(tmp_path):
    from tracegym.datasets.traces import split_programs

    build_trace_dataset(tmp_path / "d", n=20, kind="loops", test_fraction=0.3, progress=False)
    records = list(read_traces(tmp_path / "d"))
    for split in ("train", "test"):
        programs = split_programs(tmp_path / "d", split)
        want = {r["source"] for r in records if r["split"] == split}
        assert {p.source for p in programs} == want
        for p in programs:  # the same calls, in order: each gives the recorded result
            rows = sorted((r for r in records if r["source"] == p.source),
                          key=lambda r: r["call_index"])
            assert len(p.inputs) == len(rows)
            for i, r in enumerate(rows):
                if r["outcome"] == "ok":
                    assert repr(p.run(i)) == r["return_repr"]
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'dev'"):
        split_programs(tmp_path / "d", "dev")


@pytest.mark.parametrize("sandbox", [True, False])
def test_build__a_file_that_does_not_parse_is_a_per_record_outcome(tmp_path, program_dir,
                                                                   sandbox):
    folder, _ = program_dir
    (folder / "broken.py").write_text("def f(x):\n    return x +\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"broken.py": {"f": ["1", "2"]}, "progs.py": {"add": ["1, 2"]}}))
    out = tmp_path / "d"
    summary = build_trace_dataset(out, source=folder, spec=spec, sandbox=sandbox,
                                  progress=False)
    records = list(read_traces(out))
    assert [(r["program"], r["outcome"]) for r in records] == [
        ("broken.f", "syntax_error"), ("broken.f", "syntax_error"), ("progs.add", "ok")]
    assert records[0]["error"] == "line 2: invalid syntax" and records[0]["cwm"] is None
    assert records[1]["args_repr"] == "2" and records[1]["num_frames"] == 0
    assert records[2]["return_repr"] == "3"
    assert summary["outcomes"] == {"ok": 1, "syntax_error": 2}


def test_build__directory_spec_errors_still_name_the_spec_file(tmp_path, program_dir):
    folder, _ = program_dir
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"progs.py": {"nope": ["1"]}}))
    with pytest.raises(TracegymError, match=re.escape(f"spec {str(spec)!r}['progs.py']['nope']: "
                                                      f"no top-level function 'nope'")):
        build_trace_dataset(tmp_path / "d", source=folder, spec=spec, progress=False)
    (folder / "broken.py").write_text("def f(:\n")
    spec.write_text(json.dumps({"broken.py": {"f": ["1 +"]}}))  # inputs are checked all the same
    with pytest.raises(TracegymError, match=re.escape(f"spec {str(spec)!r}['broken.py']['f'][0]: "
                                                      f"not an argument list")):
        build_trace_dataset(tmp_path / "d", source=folder, spec=spec, progress=False)
    assert not (tmp_path / "d").exists()


def test_cli__directory_with_a_broken_file_builds(tmp_path, program_dir, cli_main, capsys):
    folder, _ = program_dir
    (folder / "broken.py").write_text("def f(:\n")
    spec = tmp_path / "spec.toml"
    spec.write_text('["broken.py"]\nf = ["1"]\n["progs.py"]\nadd = ["1, 2"]\n')
    out = tmp_path / "d"
    assert cli_main(["data", "traces", "--source", str(folder), "--spec", str(spec), "--out",
                     str(out), "--in-process", "--no-progress"]) == 0
    assert "syntax_error 1" in capsys.readouterr().out
