"""NativeEngine (llama.cpp): the engine API users and the Lua binding rely on."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from aos_py.inference import gguf_models as gm
from aos_py.inference.engine import ContextFullError, EngineError, ModelLoadError, SamplingConfig

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="llama-cpp-python (extra 'native') is not installed")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return gm.write_random_model(tmp_path_factory.mktemp("m") / "m.gguf", "llama", "spm", "Q8_0", n_ctx=256, seed=2)


def engine(path, **kw):
    from aos_py.inference.native_engine import NativeEngine

    e = NativeEngine(**kw)
    e.load(path)
    return e


def test_load_info_and_context_follow_the_model(model) -> None:
    e = engine(model, n_ctx=4096)
    assert e.n_ctx() == 256, "the context is capped at the model's trained length"
    assert "native" in e.info() and "aos-py random model" in e.info()
    assert e.n_vocab() == len(gm.get_vocab("spm"))
    e.stop()
    assert "no model loaded" in e.info()
    with pytest.raises(EngineError, match="no model is loaded"):
        e.set_prompt("hi")


def test_greedy_generation_is_deterministic_and_matches_logits(model) -> None:
    e = engine(model)
    e.set_prompt("The llama")
    first = e.run(12)
    e.set_prompt("The llama")
    assert e.run(12) == first and len(first) > 0
    # generate_greedy follows the argmax of the logits eval_tokens returns
    prompt = e.tokenize("The llama")
    toks = e.generate_greedy(prompt, 6)
    e.reset_context()
    logits = e.eval_tokens(prompt)
    for t in toks:
        assert int(np.argmax(logits)) == t
        logits = e.eval_tokens([t])


def test_batched_prompt_equals_token_by_token(model) -> None:
    text = "one two three four five six seven eight nine ten " * 3
    big = engine(model, n_batch=512, n_threads=1, f32_kv=True)
    small = engine(model, n_batch=8, n_threads=1, f32_kv=True)
    toks = big.tokenize(text)
    assert len(toks) > 16
    a = big.eval_tokens(toks)
    b = small.eval_tokens(toks)
    assert small.n_past() == big.n_past() == len(toks)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_prompt_overflow_raises_and_changes_nothing(model) -> None:
    e = engine(model)
    e.set_prompt("Hello there")
    before = e.n_past()
    with pytest.raises(ContextFullError, match="context holds 256"):
        e.set_prompt("hello " * 400)
    assert e.n_past() == before
    with pytest.raises(ContextFullError, match="do not fit"):
        e.add("hello " * 300)
    assert e.n_past() == before
    assert e.next() is not None, "the context still works after the refused calls"


def test_generation_past_the_end_of_the_context_is_a_clear_error(tmp_path) -> None:
    path = gm.write_random_model(tmp_path / "small.gguf", n_ctx=32, n_layer=1, seed=4)
    e = engine(path)
    e.set_prompt("Hi")
    with pytest.raises(ContextFullError, match="32 of 32 positions are used"):
        e.run(100)
    assert e.n_past() == 32, "the context (model length 32, though llama.cpp allocates 256) is full"


def test_save_and_load_state_restore_the_continuation(model) -> None:
    e = engine(model)
    assert e.load_state() is False, "nothing saved yet"
    e.set_prompt("A system prompt that is primed once")
    assert e.save_state() is True
    a = e.run(10)
    e.add(" and something else")
    assert e.load_state() is True
    assert e.run(10) == a
    e.clear_state()
    assert e.load_state() is False


def test_seeded_sampling_is_reproducible(model) -> None:
    e = engine(model)
    outs = []
    for seed in (5, 5, 6):
        e.set_sampling(SamplingConfig(temperature=1.5, top_p=0.95, seed=seed))
        e.set_prompt("Tell me")
        outs.append(e.run(16))
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]
    e.set_sampling(SamplingConfig(temperature=1.0, top_k=1, seed=9))
    e.set_prompt("Tell me")
    sampled = e.run(10)
    e.set_sampling(SamplingConfig())
    e.set_prompt("Tell me")
    assert e.run(10) == sampled, "top_k=1 is greedy"
    with pytest.raises(EngineError, match="top_p"):
        e.set_sampling(SamplingConfig(temperature=1.0, top_p=0.0))


def test_callbacks_report_loading(model) -> None:
    from aos_py.inference.native_engine import NativeEngine

    logs, progress = [], []
    e = NativeEngine()
    e.set_callbacks(lambda lvl, text: logs.append((lvl, text)), progress.append)
    e.set_log_level(4)
    e.load(model)
    e.set_prompt("hi")
    assert progress and progress[-1] == pytest.approx(1.0)
    assert any("loaded" in t for _, t in logs)
    assert all(lvl <= 4 for lvl, _ in logs), "debug lines are filtered at level 4"


@pytest.mark.parametrize("kind, message", [
    ("truncated", "truncated"),
    ("unknown_arch", "does not support this model .architecture 'nosucharch'"),
    ("unknown_type", "unknown tensor type"),
    ("not_gguf", "not a GGUF model file"),
    ("missing", "model file not found"),
])
def test_bad_files_give_specific_errors(tmp_path, kind: str, message: str) -> None:
    from aos_py.inference.native_engine import NativeEngine

    path = tmp_path / "bad.gguf"
    if kind == "truncated":
        gm.write_truncated_model(path, n_layer=1)
    elif kind == "unknown_arch":
        gm.write_unknown_arch_model(path)
    elif kind == "unknown_type":
        gm.write_unknown_type_model(path)
    elif kind == "not_gguf":
        path.write_bytes(b"<html>not a model</html>")
    with pytest.raises(ModelLoadError, match=message):
        NativeEngine().load(path)


def test_token_ids_out_of_range_are_refused(model) -> None:
    e = engine(model)
    with pytest.raises(EngineError, match="outside the vocabulary"):
        e.eval_tokens([10**6])
    assert e.n_past() == 0


def test_run_stops_at_end_of_generation() -> None:
    from aos_py.inference.demo import demo_model_path

    e = engine(demo_model_path())
    e.set_prompt("<|user|>\nHello!<|end|>\n<|assistant|>\n")
    text = e.run(200)
    assert 0 < len(text) < 200 and e.n_past() < 60, "stopped at <|end|>, far before 200 pieces"
    assert e.next() is None and e.run(3) == ""


def test_thread_count_defaults_to_all_cores_and_can_be_configured(monkeypatch) -> None:
    import os

    from aos_py.inference.native_engine import NativeEngine

    monkeypatch.delenv("AOS_PY_LLAMA_THREADS", raising=False)
    assert NativeEngine().n_threads == (os.cpu_count() or 1)
    monkeypatch.setenv("AOS_PY_LLAMA_THREADS", "3")
    assert NativeEngine().n_threads == 3
    assert NativeEngine(n_threads=1).n_threads == 1
    monkeypatch.setenv("AOS_PY_LLAMA_THREADS", "lots")
    with pytest.raises(EngineError, match="AOS_PY_LLAMA_THREADS"):
        NativeEngine()
