import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import tracegym.envs  # noqa: F401 - registers the envs
from tracegym.envs.exectrace.env import ExecTraceEnv, copy_previous_frame_prediction
from tracegym.envs.exectrace.source import frame_texts
from tracegym.errors import ActionError, TracegymError
from tracegym.tracers import FRAME_SEP, trace
from tracegym.tracers.programs import Program, generate_program
from tracegym.tracers.tokenizer import TraceTokenizer

# Fixed programs: a loop, a raising call, and a string value that spells a special token.
LOOP = Program(name="loop", source="def f(n):\n    t = 0\n    for i in range(n):\n"
               "        t += i\n    return t\n", entry="f", inputs=((3,), (4,)))
RAISES = Program(name="raises", source="def f(x):\n    return 10 // x\n", entry="f",
                 inputs=((0,),))
SPELLS = Program(name="spells", source="def f(a):\n    s = '<|' + 'frame_sep|>'\n"
                 "    return s + a\n", entry="f", inputs=(("!",),))
FIXED = [LOOP, RAISES, SPELLS]


def run_agent(env, policy, seed):
    """Play one episode; return the rewards and every step's output."""
    obs, info = env.reset(seed=seed)
    prefix, rewards, outputs, done = [], [], [(obs, info)], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(env, prefix))
        prefix.append(info.get("frame"))
        rewards.append(reward)
        outputs.append((obs, reward, terminated, truncated, info))
        done = terminated or truncated
    return rewards, outputs


def oracle(env, prefix):
    return env.unwrapped.true_next_frame


def copier(env, prefix):
    return copy_previous_frame_prediction(prefix)


@pytest.mark.parametrize("mode", ["step", "answer"])
@pytest.mark.parametrize("obs_format", ["text", "tokens"])
def test_env__passes_check_env(mode, obs_format):
    check_env(ExecTraceEnv(mode=mode, obs_format=obs_format, render_mode="ansi"),
              skip_render_check=True)


def test_env__registered_with_defaults():
    env = gym.make("tracegym/ExecTrace-v0")
    obs, info = env.reset(seed=0)
    assert env.unwrapped.mode == "step" and isinstance(obs, str)
    assert obs in env.observation_space and info["num_frames"] >= 1


@pytest.mark.parametrize("mode", ["step", "answer"])
@pytest.mark.parametrize("obs_format", ["text", "tokens"])
def test_env__same_seed_same_outputs(mode, obs_format):
    a, b = (ExecTraceEnv(mode=mode, obs_format=obs_format) for _ in range(2))
    for seed in range(3):
        ra, oa = run_agent(a, copier, seed)
        rb, ob = run_agent(b, copier, seed)
        assert ra == rb and len(oa) == len(ob)
        for x, y in zip(oa, ob):
            for u, v in zip(x, y):
                if isinstance(u, dict) and "tokens" in u:
                    assert all(np.array_equal(u[k], v[k]) for k in u)
                else:
                    assert u == v


def test_env__object_addresses_are_scrubbed():
    # a plain object's repr holds its address, which differs from run to run
    program = Program("addr", "def f(n):\n    o = object()\n    return n\n", "f", ((1,),))
    texts = set()
    for _ in range(2):
        env = ExecTraceEnv(programs=[program])
        env.reset(seed=2)
        texts.add(env.episode.trace.to_cwm())
    assert len(texts) == 1 and "<object object at 0x...>" in texts.pop()


def test_env__different_seeds_different_programs():
    env = ExecTraceEnv()
    sources = {env.reset(seed=s)[0] for s in range(5)}
    assert len(sources) == 5


@pytest.mark.parametrize("programs", ["generated", FIXED])
def test_step_mode__oracle_scores_every_frame_and_sees_the_whole_trace(programs):
    env = ExecTraceEnv(programs=programs)
    for seed in range(6):
        rewards, outputs = run_agent(env, oracle, seed)
        ep = env.episode
        assert rewards == [1.0] * len(ep.frame_texts)
        obs, _, terminated, truncated, info = outputs[-1]
        assert terminated and not truncated and info["correct"]
        assert obs == ep.trace.to_cwm()
        assert [o[4]["frame_index"] for o in outputs[1:]] == list(range(len(ep.frame_texts)))


def test_step_mode__copy_previous_frame_baseline_scores_less():
    env = ExecTraceEnv(kind="mixed")
    total = steps = 0
    for seed in range(20):
        rewards, _ = run_agent(env, copier, seed)
        total, steps = total + sum(rewards), steps + len(rewards)
    assert total / steps < 0.2


def test_copy_previous_frame_prediction():
    assert copy_previous_frame_prediction([]) == ""
    assert copy_previous_frame_prediction(["a", "b"]) == "b"


def test_step_mode__observation_is_header_plus_frames_so_far():
    env = ExecTraceEnv(programs=[LOOP])
    obs, info = env.reset(seed=0)
    ep = env.episode
    assert obs == ep.header and obs.endswith(FRAME_SEP)
    obs, reward, *_ , info = env.step("nonsense")
    assert reward == 0.0 and not info["correct"]
    assert obs == ep.header + ep.frame_texts[0] and info["frame"] == ep.frame_texts[0]


def test_frame_texts__a_value_spelling_a_special_token_does_not_split_a_frame():
    t = trace(SPELLS.load(), "!")
    header, texts = frame_texts(t)
    assert header + "".join(texts) == t.to_cwm()
    assert len(texts) == len(t.frames)


def test_step_mode__max_steps_truncates():
    env = ExecTraceEnv(programs=[LOOP], max_steps=2)
    env.reset(seed=0)
    assert env.step("x")[2:4] == (False, False)
    assert env.step("x")[2:4] == (False, True)


def test_answer_mode__scores_the_result_repr():
    env = ExecTraceEnv(programs=[LOOP], mode="answer")
    obs, info = env.reset(seed=0)
    assert obs.startswith(LOOP.source.rstrip()) and obs.endswith(f"\n\n{info['call']}\n")
    n = 3 if info["call"] == "f(3)" else 4
    answer = repr(sum(range(n)))
    obs, reward, terminated, truncated, info = env.step(answer)
    assert (reward, terminated, truncated, info["answer"]) == (1.0, True, False, answer)
    env.reset(seed=0)
    assert env.step(answer + " ")[1] == 0.0


def test_answer_mode__a_raising_call_is_answered_by_its_exception_repr():
    env = ExecTraceEnv(programs=[RAISES], mode="answer")
    env.reset(seed=0)
    truth = "ZeroDivisionError('integer division or modulo by zero')"
    assert env.step(truth)[1] == 1.0


def test_env__cruxeval_programs():
    env = ExecTraceEnv(programs="cruxeval", mode="answer")
    env.reset(seed=0)
    program = env.episode.program
    assert program.origin == "cruxeval"
    assert env.step(program.outputs[0])[1] == 1.0


def test_env__callable_program_source_gets_the_env_rng():
    seen = []

    def draw(rng):
        seen.append(rng)
        return generate_program(int(rng.integers(100)), 0, kind="loops")

    env = ExecTraceEnv(programs=draw)
    env.reset(seed=0)
    assert seen and seen[0] is env.np_random


def test_tokens_format__decodes_to_the_text_observation():
    tok = TraceTokenizer()
    text_env, token_env = ExecTraceEnv(), ExecTraceEnv(obs_format="tokens")
    t_obs, _ = text_env.reset(seed=4)
    k_obs, _ = token_env.reset(seed=4)
    assert k_obs in token_env.observation_space
    ids = k_obs["tokens"]
    assert (ids[k_obs["length"]:] == 0).all()
    assert tok.decode(ids[:k_obs["length"]]) == t_obs
    # a token-array action is decoded before scoring
    frame = token_env.true_next_frame
    assert token_env.step(tok.encode(frame, add_eos=True))[1] == 1.0


def test_env__episodes_that_do_not_fit_are_skipped():
    lengths = {}
    for p in (LOOP, RAISES):
        header, texts = frame_texts(trace(p.load(), *p.inputs[0].args))
        lengths[p.name] = len(header + "".join(texts[:-1]))  # the longest step observation
    assert lengths["raises"] < lengths["loop"]
    env = ExecTraceEnv(programs=[LOOP, RAISES], max_length=lengths["raises"])
    for seed in range(5):
        env.reset(seed=seed)
        assert env.episode.program.name == "raises"
    env = ExecTraceEnv(programs=[LOOP], max_length=10)
    with pytest.raises(ValueError, match=re.escape("programs: none of 100 drawn episodes fits "
                                                   "max_length=10")):
        env.reset(seed=0)


def test_render__ansi_lists_the_frames_so_far():
    env = ExecTraceEnv(programs=[LOOP], render_mode="ansi")
    env.reset(seed=0)
    env.step("x")
    env.step("x")
    text = env.render()
    assert text.startswith("program loop: f(")
    assert "   0 call" in text and "   1 line" in text and "[2/" in text
    assert ExecTraceEnv(programs=[LOOP]).render() is None


@pytest.mark.parametrize("action", [3, None, b"bytes", np.array([1.5])])
def test_step__non_text_action_raises(action):
    env = ExecTraceEnv(programs=[LOOP])
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape(
            "action: expected a str (or a 1-D integer token array), got "
            f"{type(action).__name__}")):
        env.step(action)


def test_step__token_action_with_mask_id_raises():
    env = ExecTraceEnv(programs=[LOOP])
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape("action: ids[0] = 3 is the <mask> id")):
        env.step(np.array([3, 4]))


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "bogus"}, "mode must be one of ['step', 'answer'], got 'bogus'"),
    ({"obs_format": "pixels"}, "obs_format must be one of ['text', 'tokens'], got 'pixels'"),
    ({"programs": "humaneval"}, "programs must be one of ['generated', 'cruxeval'], a list of "
                                "Program or a callable rng -> Program, got 'humaneval'"),
    ({"programs": []}, "programs: the list is empty"),
    ({"programs": ["def f(): pass"]}, "programs[0]: expected a Program, got str"),
    ({"programs": 3}, "programs must be one of ['generated', 'cruxeval'], a list of Program or "
                      "a callable rng -> Program, got int"),
    ({"kind": "deep"}, "kind must be one of ['straight_line', 'loops', 'mixed'], got 'deep'"),
    ({"max_length": 0}, "max_length must be >= 1, got 0"),
    ({"max_tokens": 1.5}, "max_tokens must be an int, got 1.5"),
    ({"max_steps": 0}, "max_steps must be >= 1, got 0"),
    ({"render_mode": "human"}, "render_mode must be one of ['ansi'], got 'human'"),
])
def test_env__bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ExecTraceEnv(**kwargs)


def test_env__frame_text_is_the_trace_datasets_for_the_same_call(tmp_path):
    # an object's repr carries its address: the dataset a model trains on and the env that
    # scores it must write it the same way, or the model is scored on text it never saw
    import json

    from tracegym.datasets.traces import build_trace_dataset
    from tracegym.tracers.programs import programs_from_directory

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "box.py").write_text(
        "def f(n):\n    box = object()\n    items = [box, n]\n    return repr(items)\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"box.py": {"f": ["3"]}}))
    build_trace_dataset(tmp_path / "out", source=tmp_path / "src", spec=spec, sandbox=False,
                        progress=False)
    lines = (tmp_path / "out" / "traces.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert len(lines) == 1 and record["outcome"] == "ok"

    env = ExecTraceEnv(programs=programs_from_directory(tmp_path / "src", spec))
    env.reset(seed=0)
    ep = env.episode
    assert ep.header + "".join(ep.frame_texts) == record["cwm"]
    assert "<object object at 0x...>" in record["cwm"] and ep.answer == record["return_repr"]


# -- reset(options=...) and the episode's end -----------------------------------------------

@pytest.mark.parametrize("mode", ["step", "answer"])
def test_reset_options__program_plays_that_program(mode):
    env = ExecTraceEnv(programs=[LOOP], mode=mode)
    obs, info = env.reset(seed=0, options={"program": RAISES})
    assert info["program"] == "raises" and info["call"] == "f(0)"
    assert env.reset(seed=0)[1]["program"] == "loop"  # that reset only


@pytest.mark.parametrize("program, message", [
    ("loop", "options['program']: expected a Program, got str"),
    (Program(name="bare", source="def f():\n    return 1\n", entry="f", inputs=()),
     "options['program'] ('bare'): has no inputs to call it with"),
])
def test_reset_options__bad_programs(program, message):
    with pytest.raises(TracegymError, match=re.escape(message)):
        ExecTraceEnv(programs=FIXED).reset(options={"program": program})


def test_reset_options__a_program_that_does_not_fit_is_refused():
    env = ExecTraceEnv(programs=FIXED, max_length=60)
    with pytest.raises(TracegymError, match=re.escape(
            "options['program'] ('loop'): its episode does not fit max_length=60")):
        env.reset(options={"program": LOOP})


def test_step_mode__after_the_last_frame_step_raises_reset_needed():
    # used to raise a bare RuntimeError; answer mode used to score a second answer
    from tracegym.episode import ResetNeededError

    env = ExecTraceEnv(programs=[RAISES])
    env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.true_next_frame)
        done = terminated or truncated
    with pytest.raises(ResetNeededError, match=re.escape("ExecTraceEnv: the episode has ended "
                                                         "(terminated)")):
        env.step("x")
