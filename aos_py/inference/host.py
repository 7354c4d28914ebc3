"""The `_llama` host module a process reaches through `require("llama")`.

The runtime calls make_llama_host(data_resolver, engine_kind) on the first require in a process and exposes
the returned object's methods to Lua; lua/llama.lua builds aos-llama's API on top. Models are opened only as
WeaveDrive-style `/data/<id>` paths resolved by the node's data store, never as host paths. Every failure is
an exception with a user-facing message (the runtime turns it into a Lua error); a failed call changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from aos_py.inference.engine import LOG_DEBUG, Engine, EngineError, ModelLoadError
from aos_py.inference.gguf_check import KNOWN_ARCHITECTURES, describe_problem

ENGINE_KINDS = ("wasm", "native")
DataResolver = Callable[[str], Path | None]
_DATA_PATH = re.compile(r"^/data/([A-Za-z0-9_-]{1,128})$")


def make_engine(kind: str, n_ctx: int = 2048) -> Engine:
    """A fresh engine of the configured kind ("wasm" default, "native" = llama.cpp)."""
    if kind == "wasm":
        from aos_py.inference.wasm_engine import WasmEngine

        return WasmEngine(n_ctx=n_ctx)
    if kind == "native":
        from aos_py.inference.native_engine import NativeEngine

        return NativeEngine(n_ctx=n_ctx)
    raise EngineError(f"unknown llama engine {kind!r}; choose one of {', '.join(ENGINE_KINDS)}")


def _text(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise EngineError(f"{what} must be a string, got {type(value).__name__}")


class LlamaHost:
    """One process's model and context. The engine is created on the first load."""

    def __init__(self, data_resolver: DataResolver | None, engine_kind: str = "wasm") -> None:
        # an unknown kind is reported by the first call (from Lua), not here: the runtime builds this lazily
        self._kind_error = None if engine_kind in ENGINE_KINDS else \
            f"unknown llama engine {engine_kind!r} configured; choose one of {', '.join(ENGINE_KINDS)}"
        self.data_resolver = data_resolver
        self.engine_kind = engine_kind
        self.engine: Engine | None = None
        self._on_log: Callable[[int, str], object] | None = None
        self._on_progress: Callable[[float], object] | None = None
        self._log_level = LOG_DEBUG
        self._model_path: str | None = None

    # ---- helpers ---------------------------------------------------------------------------------------
    def _resolve(self, path: object) -> Path:
        raw = _text(path, "Llama.load(path): path").decode("utf-8", "replace")
        m = _DATA_PATH.match(raw)
        if not m:
            raise ModelLoadError(f"Llama.load needs a /data/<id> path to a model in the data store, got '{raw}'")
        if self.data_resolver is None:
            raise ModelLoadError(f"cannot load {raw}: this process has no data store attached")
        try:
            host_path = self.data_resolver(m.group(1))
        except Exception:  # noqa: BLE001 - an unresolvable id is "not found"
            host_path = None
        if host_path is None or not Path(host_path).is_file():
            raise ModelLoadError(f"cannot load {raw}: no data item with id {m.group(1)} "
                                 f"(import the model first, e.g. `aos model add FILE.gguf`)")
        return Path(host_path)

    def _check_kind(self) -> None:
        if self._kind_error:
            raise EngineError(self._kind_error)

    def _engine(self) -> Engine:
        self._check_kind()
        if self.engine is None:
            raise EngineError("no model is loaded: call Llama.load('/data/<id>') first")
        return self.engine

    # ---- the methods Lua sees --------------------------------------------------------------------------
    def load(self, path: object) -> None:
        self._check_kind()
        host_path = self._resolve(path)
        shown = _text(path, "path").decode("utf-8", "replace")
        archs = KNOWN_ARCHITECTURES if self.engine_kind == "wasm" else None
        problem = describe_problem(host_path, archs)
        if problem:
            raise ModelLoadError(f"cannot load {shown}: {problem}")
        # a fresh engine, so that a failed load leaves the loaded model in place (both are held while loading)
        engine = make_engine(self.engine_kind)
        engine.set_log_level(self._log_level)
        engine.set_callbacks(self._on_log, self._on_progress)
        try:
            engine.load(host_path)
        except ModelLoadError as exc:
            engine.stop()
            raise ModelLoadError(str(exc).replace(str(host_path), shown).replace(host_path.name, shown)) from None
        if self.engine is not None:
            self.engine.stop()
        self.engine = engine
        self._model_path = shown

    def set_prompt(self, text: object) -> None:
        self._engine().set_prompt(_text(text, "Llama.setPrompt(text): text"))

    def add(self, text: object) -> None:
        self._engine().add(_text(text, "Llama.add(text): text"))

    def next(self) -> str | None:
        return self._engine().next()

    def run(self, n: object) -> str:
        if isinstance(n, bool) or not isinstance(n, int | float) or n != int(n) or n < 0:
            raise EngineError(f"Llama.run(n) needs a whole number of tokens >= 0, got {n!r}")
        return self._engine().run(int(n))

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
        self._model_path = None

    def info(self) -> str:
        if self.engine is None:
            return f"aos-py llama engine ({self.engine_kind}); no model loaded"
        return self.engine.info()

    def save_state(self) -> bool:
        return self._engine().save_state()

    def load_state(self) -> bool:
        return self._engine().load_state()

    def clear_state(self) -> None:
        self._engine().clear_state()

    def set_log_level(self, level: object) -> None:
        self._check_kind()
        if isinstance(level, bool) or not isinstance(level, int | float):
            raise EngineError(f"log level must be a number (2 error .. 5 debug), got {level!r}")
        self._log_level = int(level)
        if self.engine is not None:
            self.engine.set_log_level(self._log_level)

    def set_callbacks(self, on_log: Callable[[int, str], object] | None,
                      on_progress: Callable[[float], object] | None) -> None:
        self._check_kind()
        self._on_log = on_log if callable(on_log) else None
        self._on_progress = on_progress if callable(on_progress) else None
        if self.engine is not None:
            self.engine.set_callbacks(self._on_log, self._on_progress)


def make_llama_host(data_resolver: DataResolver | None, engine_kind: str = "wasm") -> LlamaHost:
    """The object the runtime exposes to Lua as `_llama` (one per process)."""
    return LlamaHost(data_resolver, engine_kind)
