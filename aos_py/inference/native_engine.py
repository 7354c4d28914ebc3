"""NativeEngine: the Engine interface over llama.cpp (llama-cpp-python's C API), for speed and GPUs.

It uses the low-level API rather than llama_cpp.Llama so that it holds no per-position logits table (that
class keeps n_ctx × n_vocab floats), decodes in n_batch chunks, snapshots state with llama_state_*, and can be
made deterministic for parity checks: n_threads=1 and an F32 KV cache (llama.cpp's default F16 cache
drifts from an F32 reference). All cores and every layer on the GPU (when llama.cpp was built with one) by default.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aos_py.inference.engine import (
    DEFAULT_N_CTX,
    LOG_DEBUG,
    LOG_INFO,
    ContextFullError,
    Engine,
    EngineError,
    ModelLoadError,
)

GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1


def _lib():  # the llama_cpp module, imported on first use (it is the optional 'native' extra)
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise EngineError("the native engine needs llama-cpp-python: pip install 'aos-py[native]'") from exc
    return llama_cpp


_backend_ready = False
_quiet_logger = None


def _init_backend() -> None:
    """Initialise llama.cpp once per OS process and keep its own log lines off stderr."""
    global _backend_ready, _quiet_logger
    if _backend_ready:
        return
    lc = _lib()
    lc.llama_backend_init()

    @lc.llama_log_callback
    def quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:  # noqa: ARG001
        return None

    _quiet_logger = quiet  # keep the ctypes callback alive
    lc.llama_log_set(quiet, ctypes.c_void_p(0))
    _backend_ready = True


def default_threads() -> int:
    """All cores, unless AOS_PY_LLAMA_THREADS says otherwise (llama.cpp's threads spin while they wait, so on a
    busy machine, or with several workers, fewer threads than cores can be much faster)."""
    env = os.environ.get("AOS_PY_LLAMA_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise EngineError(f"AOS_PY_LLAMA_THREADS must be a positive whole number, got {env!r}")
        return int(env)
    return os.cpu_count() or 1


class NativeEngine(Engine):
    """llama.cpp engine. n_threads None = all cores; n_gpu_layers None = all layers when a GPU is present."""

    kind = "native"

    def __init__(self, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None, n_gpu_layers: int | None = None,
                 f32_kv: bool = False, n_batch: int = 512) -> None:
        super().__init__(n_ctx)
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = n_gpu_layers
        self.f32_kv = f32_kv
        self.n_batch = n_batch
        self._model = None
        self._ctx = None
        self._vocab = None
        self._path: Path | None = None
        self._n_past = 0
        self._logits: np.ndarray | None = None
        self._snapshot: tuple[bytes, int, np.ndarray | None] | None = None
        self._piece_cache: dict[int, bytes] = {}
        self._rng = np.random.default_rng(self.sampling.seed)
        self._progress_cb = None
        self._n_ctx = n_ctx

    # ---- loading ---------------------------------------------------------------------------------------
    def load(self, path: str | os.PathLike[str]) -> None:
        lc = _lib()
        _init_backend()
        p = Path(path)
        if not p.is_file():
            raise ModelLoadError(f"model file not found: {p}")
        self.stop()
        mp = lc.llama_model_default_params()
        gpu = bool(lc.llama_supports_gpu_offload())
        mp.n_gpu_layers = self.n_gpu_layers if self.n_gpu_layers is not None else (999 if gpu else 0)

        @lc.llama_progress_callback
        def on_progress(fraction: float, user_data: ctypes.c_void_p) -> bool:  # noqa: ARG001
            try:
                self.progress(float(fraction))
            except Exception:  # noqa: BLE001 - a failing callback must not abort the load
                pass
            return True

        self._progress_cb = on_progress
        mp.progress_callback = on_progress
        self.log(LOG_INFO, f"loading {p.name} ({p.stat().st_size / 1e6:.1f} MB)")
        model = lc.llama_model_load_from_file(str(p).encode(), mp)
        if not model:
            raise ModelLoadError(_load_failure_reason(p))
        n_train = int(lc.llama_model_n_ctx_train(model))
        n_ctx = min(self.n_ctx_requested, n_train) if n_train > 0 else self.n_ctx_requested
        cp = lc.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = min(self.n_batch, n_ctx)
        cp.n_ubatch = min(self.n_batch, n_ctx)
        cp.n_threads = self.n_threads
        cp.n_threads_batch = self.n_threads
        cp.no_perf = True
        if self.f32_kv:
            cp.type_k = GGML_TYPE_F32
            cp.type_v = GGML_TYPE_F32
            cp.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
        ctx = lc.llama_init_from_model(model, cp)
        if not ctx:
            lc.llama_model_free(model)
            raise ModelLoadError(f"cannot create a context of {n_ctx} positions for {p.name} (out of memory?)")
        self._model, self._ctx = model, ctx
        self._n_ctx = n_ctx  # llama.cpp rounds its context up (to 256); the limit users see is the model's
        self._vocab = lc.llama_model_get_vocab(model)
        self._path = p
        self._n_past = 0
        self._logits = None
        self._snapshot = None
        self._piece_cache = {}
        self._rng = np.random.default_rng(self.sampling.seed)
        self.log(LOG_INFO, f"loaded {p.name}: {self._desc()}, context {n_ctx}, {self.n_threads} threads, "
                           f"{mp.n_gpu_layers} GPU layers")

    def stop(self) -> None:
        """Free the context and the model."""
        lc = _lib() if (self._ctx or self._model) else None
        if lc is not None:
            if self._ctx:
                lc.llama_free(self._ctx)
            if self._model:
                lc.llama_model_free(self._model)
        self._ctx = self._model = self._vocab = None
        self._n_past = 0
        self._logits = None
        self._snapshot = None

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _need(self) -> None:
        if not self._ctx:
            raise EngineError("no model is loaded: call load(path) first")

    def _desc(self) -> str:
        buf = ctypes.create_string_buffer(256)
        _lib().llama_model_desc(self._model, buf, 256)
        return buf.value.decode(errors="replace")

    def meta(self, key: str) -> str | None:
        """A GGUF metadata value of the loaded model as text (None when absent)."""
        self._need()
        buf = ctypes.create_string_buffer(512)
        n = _lib().llama_model_meta_val_str(self._model, key.encode(), buf, 512)
        return buf.value.decode(errors="replace") if n >= 0 else None

    # ---- primitives --------------------------------------------------------------------------------------
    def tokenize(self, text: str | bytes, add_bos: bool = True, special: bool = True) -> list[int]:
        self._need()
        lc = _lib()
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        cap = len(data) + 8
        out = (lc.llama_token * cap)()
        n = lc.llama_tokenize(self._vocab, data, len(data), out, cap, add_bos, special)
        if n < 0:
            cap = -n
            out = (lc.llama_token * cap)()
            n = lc.llama_tokenize(self._vocab, data, len(data), out, cap, add_bos, special)
            if n < 0:
                raise EngineError(f"tokenize failed for {len(data)} bytes")
        return list(out[:n])

    def token_bytes(self, token: int) -> bytes:
        self._need()
        cached = self._piece_cache.get(token)
        if cached is not None:
            return cached
        lc = _lib()
        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self._vocab, int(token), buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self._vocab, int(token), buf, -n, 0, False)
        out = buf.raw[: max(n, 0)]
        self._piece_cache[token] = out
        return out

    def eval_tokens(self, tokens: Sequence[int]) -> np.ndarray:
        self._need()
        lc = _lib()
        toks = [int(t) for t in tokens]
        if not toks:
            raise EngineError("eval_tokens needs at least one token")
        self._check_fits(len(toks))
        n_vocab = self.n_vocab()
        for t in toks:
            if not 0 <= t < n_vocab:
                raise EngineError(f"token id {t} is outside the vocabulary (0..{n_vocab - 1})")
        for i in range(0, len(toks), self.n_batch):
            chunk = toks[i: i + self.n_batch]
            arr = (lc.llama_token * len(chunk))(*chunk)
            batch = lc.llama_batch_get_one(arr, len(chunk))
            rc = lc.llama_decode(self._ctx, batch)
            if rc != 0:
                raise ContextFullError(f"llama.cpp could not decode {len(chunk)} tokens (code {rc})") if rc == 1 \
                    else EngineError(f"llama.cpp decode failed (code {rc})")
            self._n_past += len(chunk)
        ptr = lc.llama_get_logits_ith(self._ctx, -1)
        self._logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()
        return self._logits

    def logits(self) -> np.ndarray:
        """A copy of the logits at the last evaluated position."""
        self._need()
        if self._logits is None:
            raise EngineError("no logits yet: evaluate a prompt first")
        return self._logits.copy()

    def sample(self) -> int:
        self._need()
        if self._logits is None:
            raise EngineError("no logits yet: evaluate a prompt first")
        return sample_token(self._logits, self.sampling.temperature, self.sampling.top_p, self.sampling.top_k, self._rng)

    def is_eog(self, token: int) -> bool:
        self._need()
        return bool(_lib().llama_vocab_is_eog(self._vocab, int(token)))

    def reset_context(self) -> None:
        self._need()
        _lib().llama_memory_clear(_lib().llama_get_memory(self._ctx), True)
        self._n_past = 0
        self._logits = None
        self._rng = np.random.default_rng(self.sampling.seed)

    def n_past(self) -> int:
        self._need()
        return self._n_past

    def n_ctx(self) -> int:
        self._need()
        return min(self._n_ctx, int(_lib().llama_n_ctx(self._ctx)))

    def n_vocab(self) -> int:
        self._need()
        return int(_lib().llama_vocab_n_tokens(self._vocab))

    def bos_token(self) -> int:
        self._need()
        return int(_lib().llama_vocab_bos(self._vocab))

    def eos_token(self) -> int:
        self._need()
        return int(_lib().llama_vocab_eos(self._vocab))

    def info(self) -> str:
        if not self._ctx:
            return "aos-py llama engine (native, llama.cpp); no model loaded"
        name = self.meta("general.name") or (self._path.name if self._path else "?")
        return (f"aos-py llama engine (native, llama.cpp): {name} [{self._desc()}, vocab {self.n_vocab()}, "
                f"context {self.n_ctx()}, {self.n_threads} threads]")

    def save_state(self) -> bool:
        self._need()
        lc = _lib()
        size = lc.llama_state_get_size(self._ctx)
        buf = (ctypes.c_ubyte * size)()
        n = lc.llama_state_get_data(self._ctx, buf, size)
        if n == 0:
            raise EngineError("save_state failed: llama.cpp returned no state")
        self._snapshot = (bytes(buf[:n]), self._n_past, None if self._logits is None else self._logits.copy())
        self.log(LOG_DEBUG, f"saved context of {self._n_past} tokens ({n / 1e6:.1f} MB)")
        return True

    def load_state(self) -> bool:
        self._need()
        if self._snapshot is None:
            return False
        data, n_past, logits = self._snapshot
        buf = (ctypes.c_ubyte * len(data)).from_buffer_copy(data)
        if _lib().llama_state_set_data(self._ctx, buf, len(data)) == 0:
            raise EngineError("load_state failed: llama.cpp rejected the snapshot")
        self._n_past = n_past
        self._logits = None if logits is None else logits.copy()
        self._decoder.reset()
        return True

    def clear_state(self) -> None:
        self._need()
        self._snapshot = None

    def _apply_sampling(self) -> None:
        self._rng = np.random.default_rng(self.sampling.seed)


def sample_token(logits: np.ndarray, temperature: float, top_p: float, top_k: int, rng: np.random.Generator) -> int:
    """Greedy argmax when temperature <= 0; otherwise temperature, top-k and top-p (nucleus) sampling."""
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    order = np.argsort(-z, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    p = np.exp(z[order] - z[order[0]])
    p /= p.sum()
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        order, p = order[:keep], p[:keep] / p[:keep].sum()
    return int(order[rng.choice(len(order), p=p)])


def _load_failure_reason(path: Path) -> str:
    """llama.cpp only says it failed; read the header ourselves to say why."""
    from aos_py.inference.gguf_check import GGUFFormatError, describe_problem, read_header

    problem = describe_problem(path)
    if problem:
        return f"cannot load {path.name}: {problem}"
    try:
        arch = read_header(path).architecture
    except (GGUFFormatError, OSError):
        arch = None
    return f"cannot load {path.name}: llama.cpp does not support this model (architecture '{arch}')"
