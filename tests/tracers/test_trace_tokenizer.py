import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracegym.tracers import FRAME_SEP, SPECIAL_TOKENS, TRACE_CONTEXT_START, trace
from tracegym.tracers.programs import generate_program
from tracegym.tracers.tokenizer import BOS, BYTE_OFFSET, EOS, MASK, PAD, TraceTokenizer

TOK = TraceTokenizer()

texts_with_tokens = st.lists(st.one_of(st.text(), st.sampled_from(SPECIAL_TOKENS))).map("".join)


def test_tokenizer__vocab_layout():
    assert (PAD, BOS, EOS, MASK, BYTE_OFFSET) == (0, 1, 2, 3, 4)
    assert TOK.vocab_size == 4 + 256 + len(SPECIAL_TOKENS) == 268
    assert [TOK.token_to_id[t] for t in SPECIAL_TOKENS] == list(range(260, 268))
    assert TOK.encode("\x00\xff").tolist() == [4, 4 + 0xC3, 4 + 0xBF]


@given(texts_with_tokens)
def test_tokenizer__round_trip_exact(text):
    ids = TOK.encode(text)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert ((ids >= BYTE_OFFSET) & (ids < TOK.vocab_size)).all()
    assert TOK.decode(ids) == text


@given(st.text())
def test_tokenizer__plain_text_is_its_utf8_bytes(text):
    raw = text.encode("utf-8", "surrogatepass")
    if not any(t in text for t in SPECIAL_TOKENS):
        assert TOK.encode(text).tolist() == [b + BYTE_OFFSET for b in raw]


def test_tokenizer__special_tokens_are_single_ids_unknown_ones_bytes():
    ids = TOK.encode(f"{FRAME_SEP}<|foo|>{TRACE_CONTEXT_START}")
    assert ids[0] == TOK.token_to_id[FRAME_SEP]
    assert ids[-1] == TOK.token_to_id[TRACE_CONTEXT_START]
    assert len(ids) == 2 + len("<|foo|>")


def test_tokenizer__lone_surrogates_round_trip():
    text = "a\ud800b\udfff"
    assert TOK.decode(TOK.encode(text)) == text


def test_tokenizer__bos_eos_added_and_pad_bos_eos_skipped():
    ids = TOK.encode("hi", add_bos=True, add_eos=True)
    assert ids.tolist() == [BOS, 4 + ord("h"), 4 + ord("i"), EOS]
    assert TOK.decode(np.concatenate([ids, [PAD, PAD]])) == "hi"
    assert TOK.encode("").tolist() == [] and TOK.decode([]) == ""


@pytest.mark.parametrize("ids, message", [
    ([4, 3, 5], "ids[1] = 3 is the <mask> id; it has no text"),
    ([4, 268], "ids[1] = 268 is outside 0..267; it has no text"),
    ([-1], "ids[0] = -1 is outside 0..267; it has no text"),
])
def test_tokenizer__decode_rejects_ids_without_text(ids, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TOK.decode(ids)


def test_tokenizer__decode_invalid_utf8():
    ids = [4 + ord("a"), 4 + 0xFF]
    with pytest.raises(ValueError, match=re.escape("ids from position 0: the bytes are not UTF-8")):
        TOK.decode(ids)
    assert TOK.decode(ids, errors="replace") == "a\ufffd"


@pytest.mark.parametrize("bad, message", [
    (b"bytes", "text must be a str, got bytes"),
    (None, "text must be a str, got NoneType"),
])
def test_tokenizer__encode_rejects_non_text(bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TOK.encode(bad)


def test_tokenizer__decode_rejects_non_integer_ids():
    with pytest.raises(ValueError, match=re.escape("ids must be a 1-D integer sequence")):
        TOK.decode(np.array([1.5]))


@pytest.mark.parametrize("kind", ["straight_line", "loops", "mixed"])
def test_tokenizer__round_trips_real_traces(kind):
    for index in range(10):
        program = generate_program(3, index, kind=kind)
        text = trace(program.load(), *program.inputs[0].copy().args).to_cwm()
        ids = TOK.encode(text, add_bos=True, add_eos=True)
        assert TOK.decode(ids) == text
        assert len(ids) < len(text.encode())  # special tokens compress


def test_tokenizer__longest_special_token_wins():
    tok = TraceTokenizer(["<a>", "<a><b>"])
    assert tok.encode("<a><b><a>").tolist() == [261, 260]


def test_tokenizer__config_round_trips_through_json():
    d = json.loads(json.dumps(TOK.to_dict()))
    assert d["name"] == TOK.name and d["version"] == TOK.version == 1
    again = TraceTokenizer.from_dict(d)
    assert again.vocab_size == TOK.vocab_size and again.special_tokens == TOK.special_tokens
    TOK.check_compatible(d)


def test_tokenizer__refuses_another_config():
    d = {**TOK.to_dict(), "version": 2}
    with pytest.raises(ValueError, match=re.escape(
            "tokenizer mismatch (the checkpoint was made with another tokenizer): "
            "version: recorded 2, this tokenizer has 1")):
        TraceTokenizer.from_dict(d)
    other = TraceTokenizer(["<|x|>"]).to_dict()
    with pytest.raises(ValueError, match=re.escape("special_tokens: recorded ['<|x|>']")):
        TOK.check_compatible(other)


@pytest.mark.parametrize("tokens, message", [
    (["a", "a"], "special_tokens has duplicates"),
    ([""], "special_tokens must be non-empty strings"),
])
def test_tokenizer__bad_special_tokens(tokens, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TraceTokenizer(tokens)
