import re

import numpy as np
import pytest

from tracegym.checks import check_int, check_positive_int, check_seed, unknown_names_message
from tracegym.errors import TracegymError


def test_check_int__returns_a_plain_int_for_python_and_numpy_ints():
    assert check_int("n", np.int64(3), 0, 5) == 3 and type(check_int("n", np.int64(3))) is int
    assert check_positive_int("m", None, optional=True) is None


@pytest.mark.parametrize("call, message", [
    (lambda: check_int("train", 0, 1), "train must be >= 1, got 0"),
    (lambda: check_int("train", 2.5, 1), "train must be an int, got 2.5"),
    (lambda: check_int("flag", True), "flag must be an int, got True"),
    (lambda: check_int("flag", np.bool_(True)), "flag must be an int, got np.True_"),
    (lambda: check_int("k", 8, 0, 7), "k must be in 0..7, got 8"),
    (lambda: check_int("k", 8, high=7), "k must be <= 7, got 8"),
    (lambda: check_positive_int("max_steps", 0, optional=True), "max_steps must be >= 1, got 0"),
    (lambda: check_positive_int("max_steps", "x", optional=True),
     "max_steps must be an int or None, got 'x'"),
    (lambda: check_seed(-1), "seed must be in 0..2**63-1, got -1"),
    (lambda: check_seed(2**63, "index"), "index must be in 0..2**63-1, got 9223372036854775808"),
    (lambda: check_seed("a"), "seed must be an int, got 'a'"),
])
def test_checks__name_the_field_and_the_value(call, message):
    with pytest.raises(TracegymError, match=re.escape(message)):
        call()


def test_checks__the_old_homes_share_them():
    from tracegym import rng
    from tracegym.datasets import common

    assert rng.check_seed is check_seed and common.check_int is check_int


def test_unknown_names_message__sorted_names_closest_valid_one_and_the_valid_list():
    message = unknown_names_message({"zzz", "dimm"}, ["dim", "depth"], "key", kind="config",
                                    context=" for reasoner 'trm'")
    assert message == ("unknown config key(s) ['dimm', 'zzz'] for reasoner 'trm' ('dimm': did "
                       "you mean 'dim'?); valid keys: dim, depth")
    assert unknown_names_message(["q"], ("dim",), "option") == \
        "unknown option(s) ['q']; valid options: dim"


def test_unknown_names_message__the_config_checks_share_it():
    pytest.importorskip("torch", reason="the agents layer needs the train extra")
    from tracegym.agents.backbones import config as backbones
    from tracegym.agents.reasoners import config as reasoners

    assert backbones.unknown_names_message is unknown_names_message
    assert reasoners.unknown_names_message is unknown_names_message
