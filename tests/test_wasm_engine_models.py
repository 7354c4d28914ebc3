"""Helpers for the wasm engine tests: small seeded random-weight GGUF models and a numpy reference forward pass.

The models are written on the fly (a few MB at most); nothing is downloaded.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as QT

WORDS = ["the", "and", "of", "to", "in", "is", "that", "it", "was", "for", "on", "are", "with", "as", "his", "they",
         "hello", "world", "llama", "cat", "dog", "once", "upon", "time", "there"]
CHARS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()") + ["▁", "é", "ü", "中", "文"]


def spm_vocab(seed: int = 0, size: int = 600) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, characters, words and random pieces."""
    rng = np.random.default_rng(seed)
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    pieces = list(CHARS)
    for w in WORDS:  # every prefix, so that pairwise merges can build the whole word
        for i in range(2, len(w) + 2):
            for p in (("▁" + w)[:i], w[:i]):
                if len(p) > 1 and p not in pieces:
                    pieces.append(p)
    while len(pieces) < size:
        p = ("▁" if rng.random() < 0.5 else "") + "".join(rng.choice(CHARS[:26], size=rng.integers(2, 4)))
        if p not in pieces:
            pieces.append(p)
    scores = [0.0] * 259 + [-0.01 * i - (0.0 if len(p) > 1 else 5.0) for i, p in enumerate(pieces)]
    return toks + pieces, scores, types + [1] * len(pieces)


def _byte_chars() -> dict[int, str]:
    keep = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    out, extra = {}, 256
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(extra)
            extra += 1
    return out


BPE_CORPUS = ("Once upon a time, there was a little llama who lived in the mountains. The llama's name was Lily.\n"
              "def main():\n    return 42\n  if x == 1: print(\"hello world\")\n1234567890 3.14159 I'm you're "
              "they'll we've café naïve 中文字符 🙂 tabs\t\r\n   spaces\n") * 3
BPE_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def bpe_vocab(n_merges: int = 300) -> tuple[list[str], list[int], list[str]]:
    """A byte-level BPE vocabulary trained on a small built-in corpus, with llama3-style special tokens."""
    bm = _byte_chars()
    words = collections.Counter(re.findall(r" ?\w+| ?[^\w\s]+|\s+", BPE_CORPUS))
    seqs = {w: [bm[b] for b in w.encode()] for w in words}
    merges: list[str] = []
    for _ in range(n_merges):
        pairs: collections.Counter = collections.Counter()
        for w, c in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:], strict=False):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = pairs.most_common(1)[0]
        merges.append(f"{a} {b}")
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    toks = [bm[b] for b in range(256)]
    for m in merges:
        a, b = m.split(" ", 1)
        if a + b not in toks:
            toks.append(a + b)
    types = [1] * len(toks) + [3] * len(BPE_SPECIALS)
    return toks + BPE_SPECIALS, types, merges


def _kquant_random(w: np.ndarray, qt: QT, rng: np.random.Generator) -> np.ndarray:
    """Valid K-quant blocks with random contents scaled like w (gguf-py cannot quantize K types)."""
    n_out, n_in = w.shape
    nb = n_in // 256
    amax = float(np.abs(w).max())
    if qt == QT.Q4_K:
        blk = np.zeros((n_out, nb, 144), np.uint8)
        d = (amax / 15 / 32 * rng.uniform(0.5, 1.5, (n_out, nb))).astype(np.float16)
        dm = (amax / 63 * rng.uniform(0.5, 1.5, (n_out, nb))).astype(np.float16)
        blk[:, :, 0:2] = d.view(np.uint8).reshape(n_out, nb, 2)
        blk[:, :, 2:4] = dm.view(np.uint8).reshape(n_out, nb, 2)
        blk[:, :, 4:] = rng.integers(0, 256, (n_out, nb, 140), dtype=np.uint8)
        return blk.reshape(n_out, nb * 144)
    blk = np.zeros((n_out, nb, 210), np.uint8)
    blk[:, :, :192] = rng.integers(0, 256, (n_out, nb, 192), dtype=np.uint8)
    blk[:, :, 192:208] = rng.integers(-20, 20, (n_out, nb, 16), dtype=np.int8).view(np.uint8)
    d = (amax / 32 / 20 * rng.uniform(0.5, 1.5, (n_out, nb))).astype(np.float16)
    blk[:, :, 208:210] = d.view(np.uint8).reshape(n_out, nb, 2)
    return blk.reshape(n_out, nb * 210)


def write_model(path: Path, *, arch: str = "llama", qtype: str = "F32", tokenizer: str = "spm", d: int = 256,
                n_layer: int = 2, n_head: int = 4, n_kv: int = 2, ff: int = 512, ctx: int = 256, seed: int = 0,
                eos_id: int | None = None, tied: bool = False, name: str = "test model",
                scale: float = 0.3) -> Path:
    """Write a random-weight GGUF model; returns path."""
    qt = QT[qtype]
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name)
    w.add_context_length(ctx)
    w.add_embedding_length(d)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(d // n_head)
    if tokenizer == "spm":
        toks, scores, types = spm_vocab(seed)
        w.add_tokenizer_model("llama")
        w.add_token_list(toks)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2 if eos_id is None else eos_id)
        w.add_unk_token_id(0)
    else:
        toks, types, merges = bpe_vocab()
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe")
        w.add_token_list(toks)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(len(toks) - 5)
        w.add_eos_token_id(len(toks) - 4 if eos_id is None else eos_id)
        w.add_add_bos_token(True)
    vocab = len(toks)
    kvd = d // n_head * n_kv

    def tensor(name: str, shape: tuple[int, ...], scale: float = scale) -> None:
        if len(shape) == 1:
            w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
            return
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        if qt == QT.F32:
            w.add_tensor(name, a)
        elif qt == QT.F16:
            w.add_tensor(name, a.astype(np.float16))
        elif qt in (QT.Q8_0, QT.Q4_0):
            data = gguf.quants.quantize(a, qt)
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qt)
        else:
            data = _kquant_random(a, qt, rng)
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qt)

    tensor("token_embd.weight", (vocab, d), 1.0)
    tensor("output_norm.weight", (d,))
    if not tied:
        tensor("output.weight", (vocab, d))
    for i in range(n_layer):
        p = f"blk.{i}."
        tensor(p + "attn_norm.weight", (d,))
        tensor(p + "ffn_norm.weight", (d,))
        if arch == "phi3":
            tensor(p + "attn_qkv.weight", (d + 2 * kvd, d))
            tensor(p + "ffn_up.weight", (2 * ff, d))
        else:
            tensor(p + "attn_q.weight", (d, d))
            tensor(p + "attn_k.weight", (kvd, d))
            tensor(p + "attn_v.weight", (kvd, d))
            tensor(p + "ffn_gate.weight", (ff, d))
            tensor(p + "ffn_up.weight", (ff, d))
        tensor(p + "attn_output.weight", (d, d))
        tensor(p + "ffn_down.weight", (d, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ---- reference forward pass (float64 numpy, dequantized weights) ----------------------------------------------
def _field(reader: gguf.GGUFReader, key: str):
    f = reader.fields[key]
    return f.parts[f.data[0]].tolist()[0]


def reference_logits(path: Path, tokens: list[int]) -> np.ndarray:
    """Logits at the last position computed independently of the C engine (dequantize + float64 math)."""
    r = gguf.GGUFReader(str(path))
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    W = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(
        [int(x) for x in reversed(t.shape)]) for t in r.tensors}
    d = _field(r, f"{arch}.embedding_length")
    n_layer = _field(r, f"{arch}.block_count")
    n_head = _field(r, f"{arch}.attention.head_count")
    n_kv = _field(r, f"{arch}.attention.head_count_kv")
    eps = _field(r, f"{arch}.attention.layer_norm_rms_epsilon")
    base = _field(r, f"{arch}.rope.freq_base")
    ff = _field(r, f"{arch}.feed_forward_length")
    hd = d // n_head
    kvd = hd * n_kv
    T = len(tokens)
    pos = np.arange(T)
    inv = base ** (-np.arange(0, hd, 2) / hd)
    ang = pos[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(x: np.ndarray, nh: int) -> np.ndarray:
        x = x.reshape(T, nh, hd).copy()
        if arch == "phi3":
            a, b = x[..., : hd // 2].copy(), x[..., hd // 2:].copy()
        else:
            a, b = x[..., 0::2].copy(), x[..., 1::2].copy()
        ra = a * cos[:, None, :] - b * sin[:, None, :]
        rb = a * sin[:, None, :] + b * cos[:, None, :]
        if arch == "phi3":
            x[..., : hd // 2], x[..., hd // 2:] = ra, rb
        else:
            x[..., 0::2], x[..., 1::2] = ra, rb
        return x

    def norm(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    x = W["token_embd.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(n_layer):
        p = f"blk.{i}."
        h = norm(x, W[p + "attn_norm.weight"])
        if arch == "phi3":
            qkv = h @ W[p + "attn_qkv.weight"].T
            q, k, v = qkv[:, :d], qkv[:, d:d + kvd], qkv[:, d + kvd:]
        else:
            q, k, v = (h @ W[p + n].T for n in ("attn_q.weight", "attn_k.weight", "attn_v.weight"))
        q, k = rope(q, n_head), rope(k, n_kv)
        v = v.reshape(T, n_kv, hd)
        out = np.zeros((T, n_head, hd))
        for hh in range(n_head):
            kh = hh // (n_head // n_kv)
            s = q[:, hh] @ k[:, kh].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            out[:, hh] = s @ v[:, kh]
        x = x + out.reshape(T, d) @ W[p + "attn_output.weight"].T
        h = norm(x, W[p + "ffn_norm.weight"])
        if arch == "phi3":
            gu = h @ W[p + "ffn_up.weight"].T
            g, u = gu[:, :ff], gu[:, ff:]
        else:
            g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T
    out_w = W.get("output.weight", W["token_embd.weight"])
    return (norm(x[-1:], W["output_norm.weight"]) @ out_w.T)[0]
