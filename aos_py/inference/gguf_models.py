"""Small GGUF models with seeded random weights, for every architecture × tensor type the engines support.

Tests and benches make their models with this instead of downloading any: the files are real GGUF v3 that
llama.cpp loads, with real tokenizers (see gguf_vocab) and weights scaled so that greedy decoding has clear
winners (logits spread over several units), which keeps engine-vs-engine parity checks meaningful.

    write_random_model(path, arch="llama", vocab="spm", tensor_type="Q8_0", seed=1) -> Path
    python -m aos_py.inference.gguf_models out.gguf --arch phi3 --vocab spm --type Q4_K
    python -m aos_py.inference.gguf_models --all DIR        # one file per arch × type

Layouts (as llama.cpp reads them): `llama` has attn_q/attn_k/attn_v/attn_output and ffn_gate/ffn_up/ffn_down
and uses normal RoPE (adjacent pairs); `phi3` has a fused attn_qkv (q, then k, then v rows) and a fused
ffn_up (gate rows, then up rows) and uses NeoX RoPE (pairs i, i + d/2).
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from aos_py.inference.gguf_quant import BLOCK_SIZE, SUPPORTED_TYPES, QuantizeError, quantize
from aos_py.inference.gguf_vocab import Vocab, get_vocab

ARCHITECTURES = ("llama", "phi3")
FILE_TYPE = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K": 15, "Q6_K": 18}


@dataclass(frozen=True)
class HParams:
    """Shape of a llama-family model."""

    n_vocab: int
    n_embd: int = 256
    n_layer: int = 2
    n_head: int = 8
    n_head_kv: int = 4
    n_ff: int = 512
    n_ctx: int = 2048
    rms_eps: float = 1e-5
    rope_base: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def check(self, tensor_type: str) -> None:
        """Reject shapes the tensor type or attention layout cannot hold, with the reason."""
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.n_head % self.n_head_kv:
            raise ValueError(f"n_head ({self.n_head}) must be a multiple of n_head_kv ({self.n_head_kv})")
        if self.head_dim % 2:
            raise ValueError(f"the head size ({self.head_dim}) must be even for RoPE")
        block = BLOCK_SIZE.get(tensor_type, 1)
        for name, value in (("n_embd", self.n_embd), ("n_ff", self.n_ff)):
            if value % block:
                raise ValueError(f"{tensor_type} needs {name} to be a multiple of {block}, got {value}")
        if min(self.n_layer, self.n_ctx, self.n_vocab, self.n_ff) < 1:
            raise ValueError("n_layer, n_ctx, n_vocab and n_ff must be positive")


def random_weights(arch: str, hp: HParams, seed: int) -> dict[str, np.ndarray]:
    """Seeded random tensors (numpy shape (rows=out, cols=in)) for arch, scaled to keep activations O(1)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    rng = np.random.default_rng(seed)

    def mat(n_out: int, n_in: int, gain: float = 1.0) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in), dtype=np.float32) * (gain / np.sqrt(n_in))).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    e, kv = hp.n_embd, hp.head_dim * hp.n_head_kv
    w: dict[str, np.ndarray] = {"token_embd.weight": rng.standard_normal((hp.n_vocab, e), dtype=np.float32)}
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(e)
        if arch == "llama":
            w[p + "attn_q.weight"] = mat(e, e, 2.0)
            w[p + "attn_k.weight"] = mat(kv, e, 2.0)
            w[p + "attn_v.weight"] = mat(kv, e)
        else:
            w[p + "attn_qkv.weight"] = np.concatenate([mat(e, e, 2.0), mat(kv, e, 2.0), mat(kv, e)], axis=0)
        w[p + "attn_output.weight"] = mat(e, e)
        w[p + "ffn_norm.weight"] = norm(e)
        if arch == "llama":
            w[p + "ffn_gate.weight"] = mat(hp.n_ff, e, 2.0)
            w[p + "ffn_up.weight"] = mat(hp.n_ff, e)
        else:
            w[p + "ffn_up.weight"] = np.concatenate([mat(hp.n_ff, e, 2.0), mat(hp.n_ff, e)], axis=0)
        w[p + "ffn_down.weight"] = mat(e, hp.n_ff)
    w["output_norm.weight"] = norm(e)
    w["output.weight"] = mat(hp.n_vocab, e, 4.0)
    return w


def _add_vocab(writer: gguf.GGUFWriter, vocab: Vocab) -> None:
    writer.add_tokenizer_model(vocab.model)
    if vocab.pre:
        writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.token_types)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    if vocab.unk_id is not None:
        writer.add_unk_token_id(vocab.unk_id)
    if vocab.extra_eog:  # GGUF holds one end-of-turn id
        writer.add_eot_token_id(vocab.extra_eog[0])
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(False)
    if vocab.model == "llama":
        writer.add_add_space_prefix(True)


def write_model(path: str | Path, arch: str, vocab: Vocab, hp: HParams, weights: Mapping[str, np.ndarray],
                tensor_type: str = "F32", name: str = "aos-py test model", output_type: str | None = None,
                metadata_arch: str | None = None) -> Path:
    """Write weights as a GGUF v3 file; 2-D matrices in tensor_type (output.weight in output_type when given),
    norms in F32. metadata_arch overrides general.architecture (to make deliberately unknown ones)."""
    if tensor_type not in SUPPORTED_TYPES:
        raise QuantizeError(f"unsupported tensor type {tensor_type!r}; choose one of {', '.join(SUPPORTED_TYPES)}")
    if len(vocab) != hp.n_vocab:
        raise ValueError(f"the vocabulary has {len(vocab)} tokens but n_vocab is {hp.n_vocab}")
    hp.check(tensor_type)
    if output_type is not None:
        hp.check(output_type)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = metadata_arch or arch
    writer = gguf.GGUFWriter(str(path), a)
    writer.add_name(name)
    writer.add_file_type(FILE_TYPE[tensor_type])
    writer.add_context_length(hp.n_ctx)
    writer.add_embedding_length(hp.n_embd)
    writer.add_block_count(hp.n_layer)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_head_count(hp.n_head)
    writer.add_head_count_kv(hp.n_head_kv)
    writer.add_rope_dimension_count(hp.head_dim)
    writer.add_rope_freq_base(hp.rope_base)
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_vocab_size(hp.n_vocab)
    writer.add_quantization_version(2)
    _add_vocab(writer, vocab)
    for tname, arr in weights.items():
        if arr.ndim == 1:
            writer.add_tensor(tname, np.ascontiguousarray(arr, dtype=np.float32))
            continue
        ttype = output_type if (tname == "output.weight" and output_type) else tensor_type
        data, qt = quantize(arr, ttype)
        writer.add_tensor(tname, data, raw_dtype=qt if qt not in (gguf.GGMLQuantizationType.F32,
                                                                   gguf.GGMLQuantizationType.F16) else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_random_model(path: str | Path, arch: str = "llama", vocab: str = "spm", tensor_type: str = "F32",
                       n_layer: int = 2, n_embd: int = 256, n_head: int = 8, n_head_kv: int = 4, n_ff: int = 512,
                       n_ctx: int = 2048, seed: int = 1, output_type: str | None = None) -> Path:
    """A seeded random-weight model (same seed and shape give the same file); a few MB with the defaults."""
    voc = get_vocab(vocab)
    hp = HParams(n_vocab=len(voc), n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv,
                 n_ff=n_ff, n_ctx=n_ctx)
    hp.check(tensor_type)
    weights = random_weights(arch, hp, seed)
    return write_model(path, arch, voc, hp, weights, tensor_type,
                       name=f"aos-py random model ({vocab} vocab, {tensor_type}, seed {seed})", output_type=output_type)


# ---- deliberately broken files, for the bad-input checks --------------------------------------------------

def write_truncated_model(path: str | Path, keep_fraction: float = 0.5, **kwargs: object) -> Path:
    """A valid random model cut short (its tensor data ends early)."""
    path = write_random_model(path, **kwargs)  # type: ignore[arg-type]
    data = path.read_bytes()
    path.write_bytes(data[: max(64, int(len(data) * keep_fraction))])
    return path


def write_unknown_arch_model(path: str | Path, arch_name: str = "nosucharch", seed: int = 1) -> Path:
    """A well-formed GGUF whose general.architecture no engine knows."""
    voc = get_vocab("spm")
    hp = HParams(n_vocab=len(voc), n_layer=1)
    return write_model(path, "llama", voc, hp, random_weights("llama", hp, seed), "F32", metadata_arch=arch_name)


def write_unknown_type_model(path: str | Path, type_id: int = 200, tensor: str = "blk.0.attn_q.weight",
                             seed: int = 1) -> Path:
    """A random model whose tensor's ggml type id in the header is patched to one that does not exist."""
    path = write_random_model(path, n_layer=1, seed=seed)
    data = bytearray(path.read_bytes())
    name = tensor.encode()
    key = struct.pack("<Q", len(name)) + name
    at = data.find(key)
    if at < 0:
        raise ValueError(f"tensor {tensor} not found in {path}")
    p = at + len(key)
    (n_dims,) = struct.unpack_from("<I", data, p)
    p += 4 + 8 * n_dims
    struct.pack_into("<I", data, p, type_id)
    path.write_bytes(bytes(data))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aos_py.inference.gguf_models",
                                 description="Write small GGUF models with seeded random weights.")
    ap.add_argument("out", nargs="?", help="output file (or directory with --all)")
    ap.add_argument("--all", metavar="DIR", help="write every architecture × tensor type into DIR")
    ap.add_argument("--arch", default="llama", choices=ARCHITECTURES)
    ap.add_argument("--vocab", default="spm", choices=("spm", "bpe"))
    ap.add_argument("--type", dest="tensor_type", default="F32", choices=SUPPORTED_TYPES)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embd", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--heads-kv", type=int, default=4)
    ap.add_argument("--ff", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    shape = dict(n_layer=args.layers, n_embd=args.embd, n_head=args.heads, n_head_kv=args.heads_kv,
                 n_ff=args.ff, n_ctx=args.ctx, seed=args.seed)
    try:
        if args.all:
            for arch in ARCHITECTURES:
                for t in SUPPORTED_TYPES:
                    p = write_random_model(Path(args.all) / f"{arch}-{args.vocab}-{t}.gguf", arch, args.vocab, t, **shape)
                    print(p)
        elif args.out:
            print(write_random_model(args.out, args.arch, args.vocab, args.tensor_type, **shape))
        else:
            ap.error("give an output file or --all DIR")
    except (ValueError, QuantizeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
