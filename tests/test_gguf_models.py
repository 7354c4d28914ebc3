"""The random-weight GGUF writer: valid ggml block layouts, real vocabularies, files llama.cpp accepts."""

from __future__ import annotations

import importlib.util

import gguf
import numpy as np
import pytest

from aos_py.inference import gguf_models as gm
from aos_py.inference.gguf_quant import SUPPORTED_TYPES, QuantizeError, dequantize, quantize
from aos_py.inference.gguf_vocab import SPM_SPACE, TT_BYTE, TT_CONTROL, bpe_vocab, bytes_to_unicode, spm_vocab

HAVE_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
needs_llama_cpp = pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python (extra 'native') is not installed")

# relative RMS error each type must stay under on Gaussian data (ggml's own quantizers reach about these)
MAX_REL_RMS = {"F32": 0.0, "F16": 1e-3, "Q8_0": 0.01, "Q6_K": 0.03, "Q4_0": 0.12, "Q4_K": 0.12}


@pytest.mark.parametrize("ttype", SUPPORTED_TYPES)
def test_quantizers_round_trip_through_reference_dequantizer(ttype: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 512)).astype(np.float32) * rng.uniform(0.01, 3.0, (6, 1)).astype(np.float32)
    data, qt = quantize(x, ttype)
    if ttype not in ("F32", "F16"):
        block, nbytes = gguf.GGML_QUANT_SIZES[qt]
        assert data.dtype == np.uint8 and data.shape == (6, 512 // block * nbytes)
    y = dequantize(data, ttype).reshape(x.shape)
    rel = np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x**2))
    assert rel <= MAX_REL_RMS[ttype], f"{ttype}: relative RMS error {rel:.4f}"


def test_quantizer_rejects_bad_rows_and_types() -> None:
    with pytest.raises(QuantizeError, match="multiple of 256"):
        quantize(np.zeros((2, 128), np.float32), "Q4_K")
    with pytest.raises(QuantizeError, match="unsupported tensor type"):
        quantize(np.zeros((2, 256), np.float32), "Q5_K")


def test_spm_vocab_has_byte_fallback_control_tokens_and_scored_pieces() -> None:
    v = spm_vocab()
    assert v.model == "llama"
    byte_tokens = [t for t, ty in zip(v.tokens, v.token_types, strict=True) if ty == TT_BYTE]
    assert byte_tokens == [f"<0x{b:02X}>" for b in range(256)]
    assert v.tokens[v.bos_id] == "<s>" and v.tokens[v.eos_id] == "</s>"
    assert v.token_types[v.bos_id] == TT_CONTROL
    pieces = [t for t, ty in zip(v.tokens, v.token_types, strict=True) if ty == 1]
    assert len(pieces) > 500 and len(set(v.tokens)) == len(v.tokens)
    assert any(p.startswith(SPM_SPACE) and len(p) > 3 for p in pieces)
    assert any(len(p.encode()) > 1 and len(p) == 1 for p in pieces), "multi-byte characters are pieces too"
    scores = [s for s, ty in zip(v.scores, v.token_types, strict=True) if ty == 1]
    assert len(set(scores)) == len(scores), "piece scores give a strict merge priority"


def test_bpe_vocab_merges_are_consistent() -> None:
    v = bpe_vocab()
    assert v.model == "gpt2" and v.pre == "llama-bpe"
    assert v.tokens[:256] == [bytes_to_unicode()[b] for b in range(256)]
    vocab = set(v.tokens)
    assert len(v.merges) > 500
    for m in v.merges:
        a, b = m.split(" ")
        assert a in vocab and b in vocab and a + b in vocab, m


def test_same_seed_same_file_and_other_seed_differs(tmp_path) -> None:
    a = gm.write_random_model(tmp_path / "a.gguf", "llama", "spm", "Q8_0", seed=3)
    b = gm.write_random_model(tmp_path / "b.gguf", "llama", "spm", "Q8_0", seed=3)
    c = gm.write_random_model(tmp_path / "c.gguf", "llama", "spm", "Q8_0", seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("arch", gm.ARCHITECTURES)
@pytest.mark.parametrize("ttype", SUPPORTED_TYPES)
def test_written_file_reads_back(tmp_path, arch: str, ttype: str) -> None:
    path = gm.write_random_model(tmp_path / "m.gguf", arch, "spm", ttype, n_layer=1)
    r = gguf.GGUFReader(str(path))
    assert bytes(r.fields["general.architecture"].parts[-1]).decode() == arch
    names = {t.name: t for t in r.tensors}
    if arch == "llama":
        assert {"blk.0.attn_q.weight", "blk.0.ffn_gate.weight"} <= names.keys()
    else:
        qkv = names["blk.0.attn_qkv.weight"]
        assert list(qkv.shape) == [256, 256 + 2 * 128]
        assert list(names["blk.0.ffn_up.weight"].shape) == [256, 2 * 512]
    assert names["blk.0.attn_output.weight"].tensor_type.name == ttype
    assert names["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    assert int(r.fields[f"{arch}.context_length"].parts[-1][0]) == 2048


def test_bad_shapes_and_names_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="multiple of 256"):
        gm.write_random_model(tmp_path / "x.gguf", tensor_type="Q4_K", n_embd=128, n_head=4, n_head_kv=2)
    with pytest.raises(ValueError, match="unknown architecture"):
        gm.write_random_model(tmp_path / "x.gguf", arch="gpt9")
    with pytest.raises(ValueError, match="unknown vocabulary"):
        gm.write_random_model(tmp_path / "x.gguf", vocab="wordpiece")
    assert not (tmp_path / "x.gguf").exists()


def test_cli_writes_every_arch_and_type(tmp_path, capsys) -> None:
    assert gm.main(["--all", str(tmp_path), "--layers", "1"]) == 0
    files = sorted(p.name for p in tmp_path.glob("*.gguf"))
    assert len(files) == len(gm.ARCHITECTURES) * len(SUPPORTED_TYPES)
    assert gm.main([str(tmp_path / "bad.gguf"), "--type", "Q4_K", "--embd", "128", "--heads", "4"]) == 2
    assert "multiple of 256" in capsys.readouterr().err


def _llama(path, **kw):
    import llama_cpp

    return llama_cpp.Llama(str(path), n_ctx=256, n_threads=1, verbose=False, type_k=0, type_v=0, **kw)


@needs_llama_cpp
@pytest.mark.parametrize("arch", gm.ARCHITECTURES)
@pytest.mark.parametrize("ttype", SUPPORTED_TYPES)
def test_llama_cpp_loads_and_runs_every_arch_and_type(tmp_path, arch: str, ttype: str) -> None:
    path = gm.write_random_model(tmp_path / "m.gguf", arch, "spm", ttype, n_layer=1)
    llm = _llama(path, logits_all=True)
    toks = llm.tokenize(b"Hello world")
    llm.eval(toks)
    logits = np.asarray(llm.scores[len(toks) - 1])
    assert np.isfinite(logits).all() and logits.std() > 0.5, "logits are spread out, so greedy has clear winners"


@needs_llama_cpp
def test_close_quantizations_keep_greedy_output(tmp_path) -> None:
    """Same seed, F32 vs Q8_0: the quantizer is accurate enough that llama.cpp picks the same first tokens."""
    outs = []
    for t in ("F32", "Q8_0"):
        llm = _llama(gm.write_random_model(tmp_path / f"{t}.gguf", "llama", "spm", t, seed=5))
        gen = llm.generate(llm.tokenize(b"The llama"), temp=0.0)
        outs.append([next(gen) for _ in range(8)])
    assert outs[0] == outs[1]


@needs_llama_cpp
@pytest.mark.parametrize("vocab", ["spm", "bpe"])
def test_llama_cpp_tokenizes_with_the_vocab(tmp_path, vocab: str) -> None:
    llm = _llama(gm.write_random_model(tmp_path / "m.gguf", "llama", vocab, "F32", n_layer=1), vocab_only=True)
    text = "The quick brown fox, 42 llamas\n\tand café 🦙!"
    ids = llm.tokenize(text.encode(), add_bos=False)
    assert llm.detokenize(ids).decode().lstrip(" ") == text
    common = b"the quick brown fox jumps over the lazy dog"
    assert len(llm.tokenize(common, add_bos=False)) < len(common) // 3, "learned pieces cover common words"


@needs_llama_cpp
@pytest.mark.parametrize("writer", ["truncated", "unknown_arch", "unknown_type"])
def test_broken_files_are_rejected_by_llama_cpp(tmp_path, writer: str) -> None:
    fn = {"truncated": gm.write_truncated_model, "unknown_arch": gm.write_unknown_arch_model,
          "unknown_type": gm.write_unknown_type_model}[writer]
    path = fn(tmp_path / "bad.gguf")
    with pytest.raises(ValueError, match="Failed to load model"):
        _llama(path)
