"""``tracegym train --help`` lists every TrainConfig field with its default and docstring (and,
after ``--reasoner NAME``, NAME's model keys), without importing torch for a plain --help."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, fields

import pytest

from tracegym.cli import main
from tracegym.dataclass_docs import attribute_docs, describe_fields
from tracegym.training.config import TrainConfig


def train_help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["train", *argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_train_help__names_every_train_config_field_with_default_and_doc(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    out = train_help(capsys)
    docs = attribute_docs(TrainConfig)
    flat = " ".join(out.split())  # docs are wrapped
    for f in fields(TrainConfig):
        default = getattr(TrainConfig(), f.name)
        shown = default if isinstance(default, str) and default else repr(default)
        assert f"\n  {f.name}={shown}\n" in out, f.name
        assert docs[f.name] and " ".join(docs[f.name].split()) in flat, f.name
    assert "model.H_cycles" not in out  # a reasoner's keys only when one is named


def test_train_help__lists_the_model_keys_of_the_named_reasoner(capsys):
    from tracegym.agents.reasoners import REASONERS

    out = train_help(capsys, "--reasoner", "hrm")
    for key in REASONERS["hrm"].valid_keys():
        assert (f"  model.{key}=" in out) == (key != "loss"), key  # loss is a TrainConfig field
    assert "model.halt_max_steps=16" in out and "model.depth=" not in out
    assert "no reasoner 'nope'" in train_help(capsys, "--reasoner", "nope")


def test_train_help__plain_help_imports_no_torch():
    code = ("import sys\nfrom tracegym.cli import main\ntry:\n    main(['train', '--help'])\n"
            "except SystemExit:\n    pass\nprint('LOADED', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.rstrip().endswith("LOADED False")


@dataclass
class _Base:
    a: int = 1
    """base a,
    on two lines"""
    b: int = 2
    """base b"""
    c: int = 3


@dataclass
class _Sub(_Base):
    a: int = 4
    """sub a"""


def test_attribute_docs__field_docstrings_subclass_wins_and_no_source_is_empty():
    from dataclasses import make_dataclass

    from tracegym.agents.reasoners import TRMConfig

    assert attribute_docs(_Sub) == {"a": "sub a", "b": "base b"}
    assert attribute_docs(_Base)["a"] == "base a, on two lines"
    assert attribute_docs(make_dataclass("Made", [("x", int)])) == {}
    docs = TRMConfig.field_docs()  # the generated common keys take their template's docs
    assert docs["H_cycles"].startswith("T: full recursions")
    assert docs["dim"].startswith("model width D: embeddings")
    assert docs["norm"] == '"post" (TRM) or "pre" norm blocks'  # BackboneConfig's
    assert describe_fields([("a", "", "x " * 20)], width=30).splitlines() == [
        "  a=''", "      x x x x x x x x x x x x", "      x x x x x x x x"]
