"""WasmEngine (our C engine) against NativeEngine (llama.cpp): same tokens, same greedy output, close logits.

llama.cpp runs with one thread and an F32 KV cache (its default F16 cache drifts from an F32 reference).
Bars: F32, F16, Q8_0 give identical greedy tokens for 64 steps; Q4_0, Q4_K, Q6_K agree on the top-1 token at
>= 95% of steps when both are fed the same sequence. Logit tolerances are relative to the largest logit
(llama.cpp rounds activations to F16 / 8-bit blocks inside its quantized dot products; our engine keeps them
F32, so the quantized types differ by about 1-2%).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from aos_py.inference import gguf_models as gm
from aos_py.inference.gguf_quant import SUPPORTED_TYPES

sys.path.insert(0, str(Path(__file__).parent))
from parity_strings import parity_strings  # noqa: E402

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
try:
    from aos_py.inference.wasm_engine import WasmEngine
    from aos_py.resources import wasm_path

    HAVE_WASM = wasm_path().is_file()
except ImportError:  # pragma: no cover - depends on the checkout
    HAVE_WASM = False

pytestmark = [
    pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python (extra 'native') is not installed"),
    pytest.mark.skipif(not HAVE_WASM, reason="wasm/llama.wasm is not built (run `make wasm`)"),
]

EXACT_TYPES = ("F32", "F16", "Q8_0")
# largest |logit difference| / max |logit| seen at any step
LOGIT_TOL = {"F32": 1e-4, "F16": 5e-3, "Q8_0": 0.05, "Q4_0": 0.06, "Q4_K": 0.06, "Q6_K": 0.06}
PROMPT = "The llama said hello to the world, and 42 processes answered"
N_STEPS = 64


def _engines(path: Path):
    from aos_py.inference.native_engine import NativeEngine

    native = NativeEngine(n_threads=1, f32_kv=True)
    native.load(path)
    wasm = WasmEngine()
    wasm.load(path)
    return native, wasm


def _greedy(engine, prompt: list[int], n: int) -> tuple[list[int], list[np.ndarray]]:
    """n argmax steps, not stopping at end-of-generation (the check wants 64 steps whatever comes out)."""
    engine.reset_context()
    logits = engine.eval_tokens(prompt)
    toks, all_logits = [], []
    for _ in range(n):
        all_logits.append(logits)
        t = int(np.argmax(logits))
        toks.append(t)
        logits = engine.eval_tokens([t])
    return toks, all_logits


@pytest.mark.parametrize("arch, vocab", [("llama", "spm"), ("phi3", "spm"), ("llama", "bpe")])
@pytest.mark.parametrize("ttype", SUPPORTED_TYPES)
def test_greedy_tokens_and_logits_match_llama_cpp(tmp_path, arch: str, vocab: str, ttype: str) -> None:
    path = gm.write_random_model(tmp_path / "m.gguf", arch, vocab, ttype, seed=11)
    native, wasm = _engines(path)
    prompt = native.tokenize(PROMPT)
    assert wasm.tokenize(PROMPT) == prompt
    ref, ref_logits = _greedy(native, prompt, N_STEPS)
    assert len(set(ref)) > 8, "the random model produces varied text, so the check is not trivial"
    if ttype in EXACT_TYPES:
        got, got_logits = _greedy(wasm, prompt, N_STEPS)
        first = next((i for i, (a, b) in enumerate(zip(ref, got, strict=True)) if a != b), None)
        assert first is None, f"{arch} {ttype}: greedy tokens differ from step {first}"
    else:
        # feed both the reference sequence and compare the choice at each step
        wasm.reset_context()
        logits = wasm.eval_tokens(prompt)
        got_logits = []
        for t in ref:
            got_logits.append(logits)
            logits = wasm.eval_tokens([t])
        agree = np.mean([int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(ref_logits, got_logits, strict=True)])
        assert agree >= 0.95, f"{arch} {ttype}: top-1 agreement {agree:.3f}"
    rel = max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(ref_logits, got_logits, strict=True))
    assert rel <= LOGIT_TOL[ttype], f"{arch} {ttype}: logits differ by {rel:.2e} of the largest"
    native.stop()
    wasm.stop()


VOCAB_SPECIALS = {"spm": ["<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>"],
                  "bpe": ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>"]}


@pytest.mark.parametrize("vocab", ["spm", "bpe"])
def test_tokenizer_ids_match_llama_cpp_on_1000_strings(tmp_path, vocab: str) -> None:
    path = gm.write_random_model(tmp_path / "m.gguf", "llama", vocab, "F32", n_layer=1)
    native, wasm = _engines(path)
    strings = parity_strings(1000, seed=7, specials=VOCAB_SPECIALS[vocab])
    assert len(set(strings)) > 950
    mismatches = []
    for s in strings:
        for special in (True, False):
            a = native.tokenize(s, add_bos=True, special=special)
            b = wasm.tokenize(s, add_bos=True, special=special)
            if a != b:
                mismatches.append((s, special, a, b))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"


@pytest.mark.parametrize("vocab", ["spm", "bpe"])
def test_token_pieces_match_llama_cpp(tmp_path, vocab: str) -> None:
    path = gm.write_random_model(tmp_path / "m.gguf", "llama", vocab, "F32", n_layer=1)
    native, wasm = _engines(path)
    n = native.n_vocab()
    assert wasm.n_vocab() == n
    diff = [t for t in range(n) if native.token_bytes(t) != wasm.token_bytes(t)]
    assert not diff, f"{len(diff)} pieces differ, e.g. {[(t, native.token_bytes(t), wasm.token_bytes(t)) for t in diff[:3]]}"
    for t in range(n):
        assert native.is_eog(t) == wasm.is_eog(t), f"token {t} ({native.token_bytes(t)!r}): end-of-generation differs"


def test_text_api_gives_the_same_text(tmp_path) -> None:
    """set_prompt / next / run as Lua sees them: the same pieces from both engines."""
    path = gm.write_random_model(tmp_path / "m.gguf", "llama", "bpe", "Q8_0", seed=3)
    native, wasm = _engines(path)
    outs = []
    for e in (native, wasm):
        e.set_prompt("Once upon a time")
        outs.append([e.next() for _ in range(5)] + [e.run(20)])
    assert outs[0] == outs[1]


def test_tokenizer_matches_for_a_model_named_phi3(tmp_path) -> None:
    """llama.cpp strips whitespace after control tokens when general.name says Phi-3 (real Phi-3 files do);
    the Llama Joker's prompts depend on it, so both engines must agree."""
    from aos_py.inference.gguf_vocab import spm_vocab

    vocab = spm_vocab(controls=("<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|endoftext|>"),
                      eog=("<|end|>",))
    hp = gm.HParams(n_vocab=len(vocab), n_layer=1)
    path = gm.write_model(tmp_path / "phi3.gguf", "phi3", vocab, hp, gm.random_weights("phi3", hp, 1), "F32",
                          name="Phi3 mini test")
    native, wasm = _engines(path)
    joker = "<|system|>\nTell a joke<|end|>\n<|user|>\nTopic: llamas<|end|>\n<|assistant|>\n"
    assert native.tokenize(joker) == wasm.tokenize(joker)
    assert native.tokenize("<|user|>\nTopic") == native.tokenize("<|user|>Topic"), "the whitespace is stripped"
    specials = ["<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|endoftext|>", "<s>", "</s>"]
    bad = [s for s in parity_strings(1000, seed=3, specials=specials) if native.tokenize(s) != wasm.tokenize(s)]
    assert not bad, f"{len(bad)} strings differ, e.g. {bad[:3]!r}"
