"""The Engine over the C inference engine (wasm/*.c), independent of how the C code is run.

Two backends share this class: wasmtime running wasm/llama.wasm (WasmEngine) and the same sources compiled
natively and loaded with ctypes (used by the benchmark). A backend only has to call exported functions and
give the host address of a pointer; everything else (streaming the model in, strings, logits) lives here.
"""

from __future__ import annotations

import ctypes
import json
import os
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .engine import (
    DEFAULT_N_CTX,
    LOG_DEBUG,
    LOG_INFO,
    ContextFullError,
    Engine,
    EngineError,
    ModelLoadError,
)

# Signatures of the exported C functions: (result, args); "p" pointer, "u" uint32, "i" int32, "f" float, "" void.
SIGNATURES: dict[str, tuple[str, str]] = {
    "llm_error": ("p", ""),
    "llm_alloc": ("p", "u"),
    "llm_free": ("", "p"),
    "llm_reserve": ("p", "u"),
    "llm_release": ("", "p"),
    "llm_unload": ("", ""),
    "llm_load": ("i", "puu"),
    "llm_info": ("p", ""),
    "llm_model_name": ("p", ""),
    "llm_tokenize": ("i", "puiipi"),
    "llm_token_piece": ("i", "iipi"),
    "llm_eval": ("i", "pui"),
    "llm_logits": ("p", ""),
    "llm_n_vocab": ("u", ""),
    "llm_n_past": ("u", ""),
    "llm_n_ctx": ("u", ""),
    "llm_is_eog": ("i", "i"),
    "llm_bos": ("i", ""),
    "llm_eos": ("i", ""),
    "llm_add_bos": ("i", ""),
    "llm_reset": ("", ""),
    "llm_set_sampling": ("", "ffiuu"),
    "llm_argmax": ("i", ""),
    "llm_sample": ("i", ""),
    "llm_save_state": ("i", ""),
    "llm_load_state": ("i", ""),
    "llm_clear_state": ("", ""),
}

ERR_STATE = 4
CHUNK = 16 << 20  # bytes streamed per read while loading a model


class CEngine(Engine):
    """Engine logic over a backend that runs the C engine. Subclasses provide _call, _host_addr, _new_instance."""

    kind = "c"
    #: Largest model file this backend accepts (wasm32 addresses 4 GiB).
    max_model_bytes: int = 1 << 62

    def __init__(self, n_ctx: int = DEFAULT_N_CTX) -> None:
        super().__init__(n_ctx)
        self._loaded = False
        self._path: Path | None = None
        self._info: dict = {}
        self._piece_cache: dict[int, bytes] = {}

    # ---- backend hooks --------------------------------------------------------------------------------
    @abstractmethod
    def _new_instance(self) -> None:
        """Start a fresh instance of the C engine (drops any previous one and its memory)."""

    @abstractmethod
    def _drop_instance(self) -> None:
        """Release the instance and its memory."""

    @abstractmethod
    def _call(self, name: str, *args: int | float) -> int:
        """Call an exported function; pointer and uint32 results come back unsigned."""

    @abstractmethod
    def _host_addr(self, ptr: int) -> int:
        """Host address of an engine pointer (valid until the next call that may grow memory)."""

    # ---- memory helpers --------------------------------------------------------------------------------
    def _write(self, ptr: int, data: bytes) -> None:
        ctypes.memmove(self._host_addr(ptr), data, len(data))

    def _read(self, ptr: int, n: int) -> bytes:
        return ctypes.string_at(self._host_addr(ptr), n)

    def _cstr(self, ptr: int) -> str:
        if not ptr:
            return ""
        return ctypes.string_at(self._host_addr(ptr)).decode("utf-8", errors="replace")

    def _error(self) -> str:
        return self._cstr(self._call("llm_error"))

    def _need(self) -> None:
        if not self._loaded:
            raise EngineError("no model is loaded: call load(path) first")

    # ---- loading ---------------------------------------------------------------------------------------
    def load(self, path: str | os.PathLike[str]) -> None:
        """Stream the GGUF file into the engine's memory in chunks (no copy held in Python) and load it."""
        p = Path(path)
        if not p.is_file():
            raise ModelLoadError(f"model file not found: {p}")
        size = p.stat().st_size
        if size > self.max_model_bytes:
            raise ModelLoadError(
                f"model file {p.name} is {size / 1e9:.2f} GB; the {self.kind} engine holds models up to "
                f"{self.max_model_bytes / 1e9:.1f} GB: use the native engine (llama.cpp) for larger models")
        self.stop()
        self._new_instance()
        try:
            base = self._call("llm_reserve", size)
            if not base:
                raise ModelLoadError(self._error())
            self.log(LOG_INFO, f"loading {p.name} ({size / 1e6:.1f} MB)")
            self.progress(0.0)
            addr = self._host_addr(base)
            done = 0
            with open(p, "rb", buffering=0) as f:
                while done < size:
                    n = min(CHUNK, size - done)
                    view = memoryview((ctypes.c_ubyte * n).from_address(addr + done)).cast("B")
                    got = f.readinto(view)
                    if not got:
                        raise ModelLoadError(f"model file {p.name} shrank while loading ({done} of {size} bytes)")
                    done += got
                    self.progress(done / size)
            rc = self._call("llm_load", base, size, int(self.n_ctx_requested))
            if rc != 0:
                raise ModelLoadError(f"cannot load {p.name}: {self._error()}")
        except BaseException:
            self._drop_instance()
            raise
        self._loaded = True
        self._path = p
        self._info = json.loads(self._cstr(self._call("llm_info")))
        self._info["name"] = self._cstr(self._call("llm_model_name"))
        self._piece_cache = {}
        self._apply_sampling()
        self.log(LOG_INFO, f"loaded {p.name}: {self._info['arch']}, {self._info['n_layer']} layers, "
                           f"context {self._info['n_ctx']}")

    def stop(self) -> None:
        """Free the model, the context and the instance's memory."""
        if self._loaded or getattr(self, "_instance_alive", False):
            self._drop_instance()
        self._loaded = False
        self._piece_cache = {}

    # ---- primitives --------------------------------------------------------------------------------------
    def tokenize(self, text: str | bytes, add_bos: bool = True, special: bool = True) -> list[int]:
        self._need()
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        cap = len(data) + 16
        tp = self._call("llm_alloc", max(len(data), 1))
        op = self._call("llm_alloc", cap * 4)
        try:
            self._write(tp, data)
            n = self._call("llm_tokenize", tp, len(data), int(add_bos), int(special), op, cap)
            if n < 0:
                raise EngineError(f"tokenize failed: {self._error()}")
            if n > cap:
                raise EngineError(f"tokenize produced {n} tokens for {len(data)} bytes")
            return list(np.frombuffer(self._read(op, 4 * n), dtype=np.int32).tolist())
        finally:
            self._call("llm_free", tp)
            self._call("llm_free", op)

    def token_bytes(self, token: int) -> bytes:
        self._need()
        cached = self._piece_cache.get(token)
        if cached is not None:
            return cached
        buf = self._call("llm_alloc", 256)
        try:
            n = self._call("llm_token_piece", int(token), 0, buf, 256)
            if n > 256:
                self._call("llm_free", buf)
                buf = self._call("llm_alloc", n)
                n = self._call("llm_token_piece", int(token), 0, buf, n)
            out = self._read(buf, max(n, 0))
        finally:
            self._call("llm_free", buf)
        self._piece_cache[token] = out
        return out

    def eval_tokens(self, tokens: Sequence[int]) -> np.ndarray:
        self._need()
        toks = np.asarray(list(tokens), dtype=np.int32)
        if toks.size == 0:
            raise EngineError("eval_tokens needs at least one token")
        self._check_fits(int(toks.size))
        p = self._call("llm_alloc", 4 * toks.size)
        try:
            self._write(p, toks.tobytes())
            rc = self._call("llm_eval", p, int(toks.size), 1)
        finally:
            self._call("llm_free", p)
        if rc != 0:
            msg = self._error()
            raise ContextFullError(msg) if rc == ERR_STATE and "context" in msg else EngineError(msg)
        return self.logits()

    def logits(self) -> np.ndarray:
        """A copy of the logits at the last evaluated position."""
        self._need()
        n = self._call("llm_n_vocab")
        addr = self._host_addr(self._call("llm_logits"))
        return np.ctypeslib.as_array((ctypes.c_float * n).from_address(addr)).copy()

    def sample(self) -> int:
        self._need()
        return self._call("llm_sample")

    def is_eog(self, token: int) -> bool:
        self._need()
        return bool(self._call("llm_is_eog", int(token)))

    def reset_context(self) -> None:
        self._need()
        self._call("llm_reset")

    def n_past(self) -> int:
        self._need()
        return self._call("llm_n_past")

    def n_ctx(self) -> int:
        self._need()
        return self._call("llm_n_ctx")

    def n_vocab(self) -> int:
        self._need()
        return self._call("llm_n_vocab")

    def bos_token(self) -> int:
        self._need()
        return self._call("llm_bos")

    def eos_token(self) -> int:
        self._need()
        return self._call("llm_eos")

    def model_info(self) -> dict:
        """Architecture and shape of the loaded model."""
        self._need()
        return dict(self._info)

    def info(self) -> str:
        if not self._loaded:
            return f"aos-py llama engine ({self.kind}); no model loaded"
        i = self._info
        name = i.get("name") or (self._path.name if self._path else "?")
        return (f"aos-py llama engine ({self.kind}): {name} [{i['arch']}, {i['weight_type']}, {i['n_layer']} layers, "
                f"{i['n_embd']} embd, vocab {i['n_vocab']} ({i['tokenizer']}), context {i['n_ctx']}]")

    def save_state(self) -> bool:
        self._need()
        ok = bool(self._call("llm_save_state"))
        if not ok:
            raise EngineError(f"save_state failed: {self._error()}")
        self.log(LOG_DEBUG, f"saved context of {self.n_past()} tokens")
        return ok

    def load_state(self) -> bool:
        self._need()
        ok = bool(self._call("llm_load_state"))
        if ok:
            self._decoder.reset()
        return ok

    def clear_state(self) -> None:
        self._need()
        self._call("llm_clear_state")

    def _apply_sampling(self) -> None:
        if not self._loaded:
            return
        s = self.sampling
        seed = int(s.seed) & ((1 << 64) - 1)
        self._call("llm_set_sampling", float(s.temperature), float(s.top_p), int(s.top_k), seed & 0xFFFFFFFF,
                   seed >> 32)
