"""The committed demo model: small, a llama/SPM GGUF both engines run, and it answers in readable English."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from aos_py.inference.demo import demo_model_path
from aos_py.inference.demo.data import CHAT_SYSTEM, JOKE_SYSTEM, QA, TOPICS, chat_prompt, vocab_text
from aos_py.inference.gguf_check import describe_problem, read_header
from aos_py.resources import wasm_path

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_native = pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python (extra 'native') is not installed")
needs_wasm = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")
KNOWN_WORDS = {w.lower() for w in re.findall(r"[A-Za-z]+", vocab_text())}


def test_demo_model_file_is_small_and_well_formed() -> None:
    path = demo_model_path()
    assert path.is_file(), f"{path} is missing"
    assert path.stat().st_size <= 20 * 1024 * 1024
    assert describe_problem(path, ("llama",)) is None
    h = read_header(path)
    assert h.metadata["tokenizer.ggml.model"] == "llama"
    tokens = read_header(path, keep_arrays=True).metadata["tokenizer.ggml.tokens"]
    assert tokens[h.metadata["tokenizer.ggml.eot_token_id"]] == "<|end|>"
    assert "<0x0A>" in tokens, "byte fallback tokens present"


def _answer(engine, prompt: str, limit: int = 60) -> tuple[str, bool]:
    """Greedy answer and whether the model ended it itself (before `limit` pieces)."""
    engine.set_prompt(prompt)
    out = []
    for _ in range(limit):
        piece = engine.next()
        if piece is None:
            return "".join(out), True
        out.append(piece)
    return "".join(out), False


def _readable(text: str) -> bool:
    words = re.findall(r"[A-Za-z]+", text)
    return bool(words) and text.isascii() and "<|" not in text and all(w.lower() in KNOWN_WORDS for w in words)


@pytest.fixture(scope="module")
def native():
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python (extra 'native') is not installed")
    from aos_py.inference.native_engine import NativeEngine

    e = NativeEngine(n_threads=1, f32_kv=True)
    e.load(demo_model_path())
    return e


@needs_native
@pytest.mark.parametrize("topic", ["llamas", "coffee", "Robots", "penguin", "programmers"])
def test_tells_a_one_line_joke_on_the_topic(native, topic: str) -> None:
    text, ended = _answer(native, chat_prompt(f"Topic: {topic}", JOKE_SYSTEM))
    assert ended, f"the model ends its answer with <|end|>: {text!r}"
    assert "\n" not in text.strip() and _readable(text), text
    singular, plural = next((s, p) for s, p in TOPICS if topic.lower() in (s, p))
    assert singular in text.lower() or plural in text.lower(), f"the joke is about {topic}: {text!r}"


@needs_native
@pytest.mark.parametrize("question, expect", [("What is the capital of France?", "Paris"),
                                              ("How many legs does a llama have?", "four"),
                                              ("What is AO?", "messages")])
def test_answers_simple_questions(native, question: str, expect: str) -> None:
    text, ended = _answer(native, chat_prompt(question, CHAT_SYSTEM))
    assert ended and _readable(text) and expect in text, text
    assert (question, text.strip()) in QA


@needs_native
@needs_wasm
def test_both_engines_give_the_same_answers(native) -> None:
    from aos_py.inference.wasm_engine import WasmEngine

    wasm = WasmEngine()
    wasm.load(demo_model_path())
    for prompt in (chat_prompt("Topic: cats", JOKE_SYSTEM), chat_prompt("Hello!"),
                   chat_prompt("Tell me a joke about owls.", compact=True)):
        assert _answer(wasm, prompt) == _answer(native, prompt)


@pytest.mark.skipif(not (HAVE_TORCH and HAVE_LLAMA_CPP), reason="torch (extra 'train') and llama-cpp-python needed")
def test_training_network_computes_what_llama_cpp_computes(tmp_path) -> None:
    """The PyTorch model the demo is trained with mirrors llama.cpp's llama graph, so weights need no conversion."""
    import torch

    from aos_py.inference.demo.train import build_model, demo_vocab, export_weights
    from aos_py.inference.gguf_models import HParams, write_model
    from aos_py.inference.native_engine import NativeEngine

    torch.manual_seed(0)
    vocab = demo_vocab()
    hp = HParams(n_vocab=len(vocab), n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=96, n_ctx=64)
    model = build_model(hp)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    path = write_model(tmp_path / "t.gguf", "llama", vocab, hp, export_weights(model, hp), "F32")
    e = NativeEngine(n_threads=1, f32_kv=True)
    e.load(path)
    toks = e.tokenize("Why did the llama cross the road?")
    ours = np.stack([e.eval_tokens([t]) for t in toks])
    with torch.no_grad():
        ref = model(torch.tensor([toks]))[0].numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3 * float(np.abs(ref).max()))
