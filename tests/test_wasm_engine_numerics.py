"""WasmEngine numerics: logits agree with an independent numpy forward pass for every architecture and tensor
type, and the wasm build computes the same as the same C sources compiled natively."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_wasm_engine_models import reference_logits, write_model

from aos_py.inference.wasm_engine import WasmEngine

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Once upon a time there was a llama"

# Relative tolerance (max |diff| / max |logit|) against the float64 reference. F32 only sees float32 rounding;
# F16 rounds activations to half precision; the quantized types quantize activations to 8 bits per block,
# exactly as llama.cpp does, which moves the logits of these random (badly conditioned) models by up to ~10%.
# A wrong block decoding gives errors of order 1, far outside these bounds.
TOLERANCE = {"F32": 1e-5, "F16": 3e-3, "Q8_0": 0.15, "Q4_0": 0.15, "Q4_K": 0.15, "Q6_K": 0.15}


@pytest.fixture(scope="module", autouse=True)
def built_wasm():
    spec = importlib.util.spec_from_file_location("wasm_build_numerics", ROOT / "wasm" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader
    spec.loader.exec_module(mod)
    return mod.build_wasm(verbose=False)


@pytest.mark.parametrize("arch", ["llama", "phi3"])
@pytest.mark.parametrize("qtype", list(TOLERANCE))
def test_logits_match_reference(tmp_path, arch, qtype):
    path = write_model(tmp_path / f"{arch}-{qtype}.gguf", arch=arch, qtype=qtype, seed=11)
    e = WasmEngine()
    e.load(path)
    assert e.model_info()["weight_type"] == qtype
    tokens = e.tokenize(PROMPT)
    got = e.eval_tokens(tokens)
    want = reference_logits(path, tokens)
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    assert rel < TOLERANCE[qtype], f"{arch} {qtype}: relative error {rel:.2e}"
    # the top choices agree unless they are within the tolerance of each other
    top = int(np.argmax(got))
    assert want[top] >= want.max() - 2 * TOLERANCE[qtype] * np.abs(want).max()
    e.stop()


@pytest.mark.parametrize("qtype", ["F32", "Q8_0", "Q4_K", "Q6_K"])
def test_incremental_decoding_equals_batch(tmp_path, qtype):
    """Feeding tokens one at a time (KV cache) gives the same logits as one batch (more than one batch
    block of the C engine, so the prompt kernels and the batching code path are covered)."""
    path = write_model(tmp_path / "m.gguf", qtype=qtype, seed=5)
    e = WasmEngine()
    e.load(path)
    tokens = e.tokenize(PROMPT * 5)
    assert len(tokens) > 40
    batch = e.eval_tokens(tokens)
    e.reset_context()
    for t in tokens:
        last = e.eval_tokens([t])
    np.testing.assert_allclose(last, batch, rtol=0, atol=1e-4 * np.abs(batch).max())
    e.stop()


def test_tied_embeddings_and_gqa(tmp_path):
    path = write_model(tmp_path / "tied.gguf", qtype="F32", tied=True, n_head=8, n_kv=1, seed=9)
    e = WasmEngine()
    e.load(path)
    tokens = e.tokenize("hello world")
    got = e.eval_tokens(tokens)
    want = reference_logits(path, tokens)
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()
    e.stop()


@pytest.mark.parametrize(("qtype", "tokenizer", "tied"),
                         [("F32", "spm", False), ("Q8_0", "spm", False), ("Q8_0", "bpe", True), ("Q4_K", "spm", False)])
def test_wasm_equals_native_build(tmp_path, qtype, tokenizer, tied):
    """The wasm build computes what the native build does. The wasm build stores Q8_0 matrices whose row count
    is a multiple of 4 as interleaved groups of 4 rows (the native build keeps the file's layout); with the BPE
    vocabulary (400 tokens) and tied embeddings that includes the embedding table, which is also the output
    matrix; the SPM vocabulary (859 tokens) keeps the file's layout for it."""
    if shutil.which("cc") is None and shutil.which("gcc") is None and shutil.which("clang") is None:
        pytest.skip("no host C compiler to build the native comparison library")
    from aos_py.inference.wasm_native import CNativeEngine

    path = write_model(tmp_path / f"n-{qtype}.gguf", qtype=qtype, tokenizer=tokenizer, tied=tied, seed=4)
    w, n = WasmEngine(), CNativeEngine()
    w.load(path)
    n.load(path)
    tokens = w.tokenize(PROMPT)
    assert n.tokenize(PROMPT) == tokens
    lw, ln = w.eval_tokens(tokens), n.eval_tokens(tokens)
    assert np.abs(lw - ln).max() < 1e-3 * np.abs(ln).max()
    assert w.generate_greedy(tokens, 16) == n.generate_greedy(tokens, 16)
    w.stop()
    n.stop()
