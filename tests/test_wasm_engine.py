"""WasmEngine behaviour: loading, the aos-llama text API, state, sampling, bad input, build and module cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from test_wasm_engine_models import write_model

from aos_py.inference import wasm_engine
from aos_py.inference.engine import ContextFullError, EngineError, ModelLoadError, SamplingConfig
from aos_py.inference.wasm_engine import WasmEngine

ROOT = Path(__file__).resolve().parents[1]


def _build_module():
    spec = importlib.util.spec_from_file_location("wasm_build_for_tests", ROOT / "wasm" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session", autouse=True)
def built_wasm() -> Path:
    return _build_module().build_wasm(verbose=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("wasm_models")
    return {
        "f32": write_model(d / "f32.gguf", qtype="F32", d=64, ff=128, seed=1),
        "bpe": write_model(d / "bpe.gguf", tokenizer="bpe", d=64, ff=128, seed=3),
    }


@pytest.fixture
def engine(models) -> WasmEngine:
    e = WasmEngine(n_ctx=256)
    e.load(models["f32"])
    yield e
    e.stop()


def test_load_reports_model_and_progress(models):
    e = WasmEngine()
    seen: list[float] = []
    logs: list[tuple[int, str]] = []
    e.set_callbacks(lambda lvl, s: logs.append((lvl, s)), seen.append)
    e.load(models["f32"])
    info = e.model_info()
    assert info["arch"] == "llama" and info["n_layer"] == 2 and info["n_embd"] == 64
    assert info["n_ctx"] == 256  # clamped to the model's training context
    assert "test model" in e.info() and "wasm" in e.info()
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert any("loaded" in s for _, s in logs)
    e.set_log_level(2)
    logs.clear()
    e.load(models["f32"])
    assert logs == []  # info messages are above level 2
    e.stop()


def test_spm_tokenize_words_and_byte_fallback(engine):
    ids = engine.tokenize("hello world")
    assert ids[0] == engine.bos_token() == 1
    assert [engine.token_bytes(t) for t in ids[1:]] == [b" hello", b" world"]
    # 'ж' is not in the vocabulary: it falls back to its UTF-8 bytes
    ids = engine.tokenize("ж", add_bos=False)
    assert [engine.token_bytes(t) for t in ids] == [b" ", b"\xd0", b"\xb6"]
    assert engine.detokenize(ids) == " ж"
    for s in ["Once upon a time", "naïve café 中文 ж!", "a  b\tc\n", "1234 x"]:
        assert engine.detokenize(engine.tokenize(s, add_bos=False)) == " " + s


def test_bpe_round_trip_and_special_tokens(models):
    e = WasmEngine()
    e.load(models["bpe"])
    for s in ["Hello world!", "  spaces\t\ttabs\r\n", "I'm they'll 12345", "🙂 中文字符 naïve", "def f():\n    return 1"]:
        ids = e.tokenize(s, add_bos=False)
        assert e.detokenize(ids) == s
    ids = e.tokenize("<|eot_id|>hi", add_bos=False, special=True)
    assert e.is_eog(ids[0]) and e.token_bytes(ids[0]) == b""
    plain = e.tokenize("<|eot_id|>hi", add_bos=False, special=False)
    assert len(plain) > 2 and not any(e.is_eog(t) for t in plain)
    assert e.tokenize("x")[0] == e.bos_token()
    e.stop()


def test_prompt_next_run_are_deterministic(engine):
    engine.set_prompt("Once upon a time")
    first = [engine.next() for _ in range(5)]
    assert all(isinstance(p, str) and p for p in first)
    engine.set_prompt("Once upon a time")
    assert engine.run(5) == "".join(first)
    n = engine.n_past()
    engine.add(" the llama")
    assert engine.n_past() > n
    assert isinstance(engine.run(3), str)


def test_greedy_matches_argmax_of_logits(engine):
    ids = engine.tokenize("the cat and the dog")
    logits = engine.eval_tokens(ids)
    assert logits.shape == (engine.n_vocab(),) and np.isfinite(logits).all()
    engine.reset_context()
    engine.eval_tokens(ids)
    assert engine.sample() == int(np.argmax(logits))
    out = engine.generate_greedy(ids, 8)
    assert len(out) == 8 and out[0] == int(np.argmax(logits))


def test_run_stops_at_end_of_generation(tmp_path):
    # Same weights twice; the second file declares as EOS a token that greedy decoding reaches at step k.
    plain = write_model(tmp_path / "plain.gguf", d=64, ff=128, seed=2)
    e = WasmEngine()
    e.load(plain)
    prompt = e.tokenize("hello")
    toks = e.generate_greedy(prompt, 12)
    k = next(i for i in range(2, 12) if toks[i] not in toks[:i] and toks[i] > 258)
    e.load(write_model(tmp_path / "eos.gguf", d=64, ff=128, seed=2, eos_id=toks[k]))
    assert e.is_eog(toks[k])
    e.set_prompt("hello")
    assert e.run(40) == e.detokenize(toks[:k])
    assert e.next() is None
    e.stop()


def test_save_load_clear_state(engine):
    engine.set_prompt("Once upon a time there was")
    assert engine.save_state() is True
    a = engine.run(6)
    assert engine.load_state() is True
    assert engine.run(6) == a
    engine.set_prompt("something else entirely")
    assert engine.load_state() is True
    assert engine.run(6) == a
    engine.clear_state()
    assert engine.load_state() is False


def test_seeded_sampling_reproducible(engine):
    engine.set_sampling(SamplingConfig(temperature=1.0, top_p=0.9, seed=7))
    engine.set_prompt("hello")
    a = engine.run(12)
    engine.set_sampling(SamplingConfig(temperature=1.0, top_p=0.9, seed=7))
    engine.set_prompt("hello")
    assert engine.run(12) == a
    outs = set()
    for seed in range(1, 6):
        engine.set_sampling(SamplingConfig(temperature=1.5, seed=seed))
        engine.set_prompt("hello")
        outs.add(engine.run(12))
    assert len(outs) > 1
    with pytest.raises(EngineError, match="top_p"):
        engine.set_sampling(SamplingConfig(top_p=0))


def test_context_limits(models):
    e = WasmEngine(n_ctx=32)
    e.load(models["f32"])
    assert e.n_ctx() == 32
    with pytest.raises(ContextFullError, match="context"):
        e.set_prompt("hello world " * 40)
    e.set_prompt("hello world " * 10)
    with pytest.raises(ContextFullError):
        e.run(100)
    # the engine stays usable after the error
    e.set_prompt("hello")
    assert isinstance(e.run(2), str)
    e.stop()


def _corrupt(src: Path, dst: Path, edit) -> Path:
    data = bytearray(src.read_bytes())
    dst.write_bytes(edit(data))
    return dst


def test_bad_model_files_give_clear_errors(models, tmp_path):
    e = WasmEngine()
    with pytest.raises(ModelLoadError, match="not found"):
        e.load(tmp_path / "missing.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"hello, not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        e.load(tmp_path / "junk.gguf")
    src = models["f32"]
    size = src.stat().st_size
    for cut in (20, 2000, size - 100):
        bad = _corrupt(src, tmp_path / f"cut{cut}.gguf", lambda d, c=cut: bytes(d[:c]))
        with pytest.raises(ModelLoadError, match="truncated"):
            e.load(bad)
    arch = _corrupt(src, tmp_path / "arch.gguf", lambda d: bytes(d).replace(b"llama", b"gptjx", 1))
    with pytest.raises(ModelLoadError, match="unsupported architecture 'gptjx'"):
        e.load(arch)
    # make the first tensor claim type Q5_K (13): the GGUF stays well-formed
    q5 = write_model(tmp_path / "q5.gguf", d=64, ff=128, qtype="F32")
    data = bytearray(q5.read_bytes())
    name = b"token_embd.weight"
    type_off = data.find(name) + len(name) + 4 + 2 * 8  # after n_dims and two dims
    assert int.from_bytes(data[type_off:type_off + 4], "little") == 0
    data[type_off:type_off + 4] = (13).to_bytes(4, "little")
    (tmp_path / "q5k.gguf").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="unsupported tensor type Q5_K"):
        e.load(tmp_path / "q5k.gguf")
    # after all of that the same engine still loads and runs a good model
    e.load(src)
    e.set_prompt("hello")
    assert isinstance(e.run(2), str)
    e.stop()


def test_too_large_for_wasm32_suggests_native(tmp_path):
    big = tmp_path / "huge.gguf"
    with open(big, "wb") as f:  # sparse: takes no disk space
        f.write(b"GGUF")
        f.truncate(WasmEngine.max_model_bytes + 1)
    e = WasmEngine()
    with pytest.raises(ModelLoadError, match="native engine"):
        e.load(big)


def test_calls_without_model_fail_clearly():
    e = WasmEngine()
    with pytest.raises(EngineError, match="no model is loaded"):
        e.tokenize("x")
    with pytest.raises(EngineError, match="no model is loaded"):
        e.set_prompt("x")
    assert "no model loaded" in e.info()


def test_build_is_idempotent(built_wasm):
    build = _build_module()
    before = built_wasm.stat().st_mtime_ns
    assert build.build_wasm(verbose=False) == built_wasm
    assert built_wasm.stat().st_mtime_ns == before


def test_compiled_module_is_cached_on_disk(tmp_path, monkeypatch, models):
    monkeypatch.setenv("AOS_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(wasm_engine, "_modules", {})
    wasm_engine.load_module()
    cached = list((tmp_path / "cache" / "wasm").glob("*.cwasm"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    monkeypatch.setattr(wasm_engine, "_modules", {})
    e = WasmEngine()  # deserialized from the cache file, not recompiled
    assert cached[0].stat().st_mtime_ns == stamp
    e.load(models["f32"])
    assert e.tokenize("hello")[0] == 1
    e.stop()


def test_instances_are_independent(models):
    a, b = WasmEngine(), WasmEngine()
    a.load(models["f32"])
    b.load(models["f32"])
    a.set_prompt("hello world")
    b.set_prompt("the cat")
    ra = a.run(4)
    b.set_prompt("hello world")
    assert b.run(4) == ra
    a.stop()
    b.stop()


def test_kv_cache_falls_back_to_f16_when_f32_does_not_fit(tmp_path):
    """A context whose F32 KV cache would not fit in wasm32 memory gets an F16 cache; results stay close."""
    path = write_model(tmp_path / "long.gguf", d=256, n_head=4, n_kv=4, ff=256, ctx=1 << 20, seed=8)
    small, big = WasmEngine(n_ctx=256), WasmEngine(n_ctx=1 << 20)
    small.load(path)
    big.load(path)
    assert small.model_info()["kv_type"] == "F32"
    assert big.model_info()["kv_type"] == "F16" and big.n_ctx() == 1 << 20
    tokens = small.tokenize("Once upon a time there was a llama")
    a, b = small.eval_tokens(tokens), big.eval_tokens(tokens)
    assert np.abs(a - b).max() < 1e-2 * np.abs(a).max()
    assert small.generate_greedy(tokens, 8) == big.generate_greedy(tokens, 8)
    big.set_prompt("hello")
    assert big.save_state() and big.load_state()
    small.stop()
    big.stop()
