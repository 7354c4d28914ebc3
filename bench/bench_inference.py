"""Inference benchmark: WasmEngine against the same C compiled natively and against llama.cpp, on the same files.

It writes random-weight models (a ~110M-parameter llama in F32 and Q8_0, and unless --skip-large a ~2.5 GB
Q4_K model that exercises the large-model path; all deleted afterwards), then runs each engine in its own
worker process and reports generation tokens/s, prompt tokens/s, first-token latency and the worker's peak RSS.
Ratios are against llama.cpp with one thread, measured in the same run.

Usage: .venv/bin/python bench/bench_inference.py [--tokens 64] [--repeat 5] [--skip-large] [--engines wasm,c-native,...]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = ("Once upon a time, in a small village at the foot of the mountains, there lived a llama who loved to "
          "tell stories to the children. Every evening they gathered around the fire and")

# ---- a streaming GGUF writer (the large model does not fit comfortably in memory twice) ---------------------
GGUF_U32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_I32 = 4, 6, 7, 8, 9, 5
TYPE_IDS = {"F32": 0, "Q8_0": 8, "Q4_K": 12}
BLOCK = {"F32": (1, 4), "Q8_0": (32, 34), "Q4_K": (256, 144)}


def _s(x: str) -> bytes:
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, value: object) -> bytes:
    out = _s(key)
    if isinstance(value, bool):
        return out + struct.pack("<IB", GGUF_BOOL, value)
    if isinstance(value, int):
        return out + struct.pack("<II", GGUF_U32, value)
    if isinstance(value, float):
        return out + struct.pack("<If", GGUF_F32, value)
    if isinstance(value, str):
        return out + struct.pack("<I", GGUF_STRING) + _s(value)
    items = list(value)  # type: ignore[call-overload]
    if all(isinstance(v, str) for v in items):
        return out + struct.pack("<IIQ", GGUF_ARRAY, GGUF_STRING, len(items)) + b"".join(_s(v) for v in items)
    if all(isinstance(v, float) for v in items):
        return out + struct.pack("<IIQ", GGUF_ARRAY, GGUF_F32, len(items)) + np.asarray(items, "<f4").tobytes()
    return out + struct.pack("<IIQ", GGUF_ARRAY, GGUF_I32, len(items)) + np.asarray(items, "<i4").tobytes()


def _vocab(n: int) -> tuple[list[str], list[float], list[int]]:
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    words = PROMPT.replace(",", " ,").replace(".", " .").split()
    pieces: list[str] = []
    for w in sorted(set(words)):
        for i in range(1, len(w) + 1):
            for p in ("▁" + w[:i], w[:i]):
                if p not in pieces:
                    pieces.append(p)
    i = 0
    while len(toks) + len(pieces) < n:
        pieces.append(f"▁tok{i}")
        i += 1
    scores = [0.0] * len(toks) + [-0.001 * k for k in range(len(pieces))]
    return toks + pieces, scores, types + [1] * len(pieces)


def _random_blocks(qtype: str, rows: int, cols: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    if qtype == "F32":
        return (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(scale)).astype("<f4").view(np.uint8)
    nb = cols // BLOCK[qtype][0]
    if qtype == "Q8_0":
        blk = rng.integers(-127, 128, (rows, nb, 34), dtype=np.int8).view(np.uint8)
        blk[:, :, 0:2] = np.full((rows, nb), scale / 64, np.float16).view(np.uint8).reshape(rows, nb, 2)
        return blk
    blk = rng.integers(0, 256, (rows, nb, 144), dtype=np.uint8)
    blk[:, :, 0:2] = np.full((rows, nb), scale / 300, np.float16).view(np.uint8).reshape(rows, nb, 2)
    blk[:, :, 2:4] = np.full((rows, nb), scale / 100, np.float16).view(np.uint8).reshape(rows, nb, 2)
    return blk


def write_bench_model(path: Path, qtype: str, d: int, n_layer: int, n_head: int, ff: int, vocab: int,
                      seed: int = 0) -> Path:
    """A random-weight llama model written tensor by tensor (memory use stays at one tensor)."""
    rng = np.random.default_rng(seed)
    toks, scores, types = _vocab(vocab)
    meta = {
        "general.architecture": "llama", "general.name": f"bench-{qtype}", "general.alignment": 32,
        "llama.context_length": 2048, "llama.embedding_length": d, "llama.block_count": n_layer,
        "llama.feed_forward_length": ff, "llama.attention.head_count": n_head, "llama.attention.head_count_kv": n_head,
        "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.freq_base": 10000.0,
        "llama.rope.dimension_count": d // n_head, "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": toks,
        "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types, "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0,
    }
    tensors: list[tuple[str, int, int, str]] = [("token_embd.weight", len(toks), d, qtype), ("output_norm.weight", 1, d, "F32")]
    for i in range(n_layer):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", 1, d, "F32"), (p + "ffn_norm.weight", 1, d, "F32"),
                    (p + "attn_q.weight", d, d, qtype), (p + "attn_k.weight", d, d, qtype),
                    (p + "attn_v.weight", d, d, qtype), (p + "attn_output.weight", d, d, qtype),
                    (p + "ffn_gate.weight", ff, d, qtype), (p + "ffn_up.weight", ff, d, qtype),
                    (p + "ffn_down.weight", d, ff, qtype)]
    infos, offset, sizes = b"", 0, []
    for name, rows, cols, t in tensors:
        nbytes = rows * (cols // BLOCK[t][0]) * BLOCK[t][1]
        dims = struct.pack("<I", 1) + struct.pack("<Q", cols) if rows == 1 else struct.pack("<IQQ", 2, cols, rows)
        infos += _s(name) + dims + struct.pack("<IQ", TYPE_IDS[t], offset)
        sizes.append(nbytes)
        offset += (nbytes + 31) // 32 * 32
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(_kv(k, v) for k, v in meta.items())
    head += infos
    with open(path, "wb") as f:
        f.write(head + b"\0" * ((-len(head)) % 32))
        for (name, rows, cols, t), nbytes in zip(tensors, sizes, strict=True):
            if rows == 1:
                data = (1.0 + 0.1 * rng.standard_normal(cols)).astype("<f4").view(np.uint8)
            else:
                scale = 1.0 if name == "token_embd.weight" else 1.0 / np.sqrt(cols)
                step = max(1, (64 << 20) // max(1, nbytes // rows))
                for r0 in range(0, rows, step):
                    f.write(_random_blocks(t, min(step, rows - r0), cols, rng, scale).tobytes())
                data = None
            if data is not None:
                f.write(data.tobytes())
            f.write(b"\0" * ((-nbytes) % 32))
    return path


# ---- worker: one engine, one model, in its own process -------------------------------------------------------
def worker(engine: str, model: str, n_tokens: int, threads: int, prompt_words: int = 0) -> dict:
    import resource

    text = " ".join(PROMPT.split()[:prompt_words]) if prompt_words else PROMPT
    t0 = time.perf_counter()
    if engine in ("wasm", "c-native"):
        if engine == "wasm":
            from aos_py.inference.wasm_engine import WasmEngine as Eng
        else:
            from aos_py.inference.wasm_native import CNativeEngine as Eng
        e = Eng(n_ctx=512)
        e.load(model)
        load_s = time.perf_counter() - t0
        prompt = e.tokenize(text)
        t1 = time.perf_counter()
        logits = e.eval_tokens(prompt)
        prompt_s = time.perf_counter() - t1
        tok = int(np.argmax(logits))
        t2 = time.perf_counter()
        logits = e.eval_tokens([tok])
        first_s = time.perf_counter() - t2 + prompt_s
        t3 = time.perf_counter()
        for _ in range(n_tokens - 1):
            logits = e.eval_tokens([int(np.argmax(logits))])
        gen_s = time.perf_counter() - t3
    else:
        import llama_cpp

        llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=threads, n_threads_batch=threads,
                              n_batch=512, verbose=False)
        load_s = time.perf_counter() - t0
        prompt = llm.tokenize(text.encode(), add_bos=True)
        t1 = time.perf_counter()
        llm.eval(prompt)
        prompt_s = time.perf_counter() - t1
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t2 = time.perf_counter()
        llm.eval([tok])
        first_s = time.perf_counter() - t2 + prompt_s
        t3 = time.perf_counter()
        for _ in range(n_tokens - 1):
            llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
        gen_s = time.perf_counter() - t3
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"engine": engine, "load_s": load_s, "prompt_tokens": len(prompt), "prompt_tps": len(prompt) / prompt_s,
            "first_token_s": first_s, "gen_tps": (n_tokens - 1) / gen_s, "peak_rss": rss}


def run_worker(engine: str, model: Path, n_tokens: int, threads: int = 1, prompt_words: int = 0) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", engine, str(model), str(n_tokens), str(threads), str(prompt_words)]
    # numpy's OpenBLAS threads are of no use to a worker (it only takes argmaxes), so they are not started
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        print(f"  {engine}: failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def report(label: str, model: Path, rows: list[dict]) -> None:
    size = model.stat().st_size
    base = next((r for r in rows if r["engine"] == "llama.cpp-1t"), None)
    print(f"\n{label}: {model.name} ({size / 1e6:.0f} MB)")
    print(f"  {'engine':<14}{'gen tok/s':>10}{'ratio':>8}{'prompt tok/s':>14}{'first tok s':>13}{'load s':>8}"
          f"{'peak RSS MB':>13}{'RSS-file MB':>13}")
    for r in rows:
        ratio = r["gen_tps"] / base["gen_tps"] if base else float("nan")
        print(f"  {r['engine']:<14}{r['gen_tps']:>10.2f}{ratio:>8.2f}{r['prompt_tps']:>14.1f}{r['first_token_s']:>13.3f}"
              f"{r['load_s']:>8.2f}{r['peak_rss'] / 1e6:>13.0f}{(r['peak_rss'] - size) / 1e6:>13.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved runs per engine; the best is reported")
    ap.add_argument("--types", default="F32,Q8_0", help="110M model types to run ('' for none)")
    ap.add_argument("--engines", default="wasm,c-native,llama.cpp-1t,llama.cpp-all")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        engine, model, n, threads, words = args.worker
        print(json.dumps(worker(engine, model, int(n), int(threads), int(words))))
        return 0
    sys.path.insert(0, str(ROOT / "wasm"))
    import build  # wasm/build.py

    build.build_wasm(verbose=False)
    engines = args.engines.split(",")
    if "c-native" in engines:
        build.build_native(verbose=False)
    # compile (and cache) the wasm module once so that workers measure load, not compilation
    from aos_py.inference.wasm_engine import load_module

    load_module()
    cores = os.cpu_count() or 1
    print(f"inference benchmark: {cores} cores, {args.tokens} generated tokens per run, peak RSS is the worst run "
          "(machine may be shared: rates are best-of, ratios against llama.cpp with 1 thread)")
    with tempfile.TemporaryDirectory(prefix="aos-bench-") as tmp:
        for qtype in [t for t in args.types.split(",") if t]:
            path = write_bench_model(Path(tmp) / f"llama-110m-{qtype}.gguf", qtype, d=768, n_layer=12, n_head=12,
                                     ff=2048, vocab=32000)
            best: dict[str, dict] = {}
            for _ in range(args.repeat):  # interleaved, best of each: other load on the machine only slows runs down
                for eng in engines:
                    threads = cores if eng == "llama.cpp-all" else 1
                    r = run_worker(eng, path, args.tokens, threads)
                    if r:
                        b = best.setdefault(eng, r)
                        for k in ("gen_tps", "prompt_tps"):
                            b[k] = max(b[k], r[k])
                        for k in ("first_token_s", "load_s"):
                            b[k] = min(b[k], r[k])
                        b["peak_rss"] = max(b["peak_rss"], r["peak_rss"])
            report(f"~110M llama {qtype} (best of {args.repeat})", path, [best[e] for e in engines if e in best])
            path.unlink()
        if not args.skip_large:
            t = time.perf_counter()
            path = write_bench_model(Path(tmp) / "llama-large-Q4_K.gguf", "Q4_K", d=3072, n_layer=36, n_head=24,
                                     ff=8192, vocab=32000)
            print(f"\nwrote the large model in {time.perf_counter() - t:.0f} s")
            rows = [r for r in (run_worker("wasm", path, 4, prompt_words=6),) if r]
            report("large-model path (wasm32, Q4_K)", path, rows)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
