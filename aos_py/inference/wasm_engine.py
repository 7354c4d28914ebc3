"""WasmEngine: the C llama engine compiled to wasm32-wasi, run by wasmtime.

The compiled machine code is cached on disk (Module.serialize, keyed by the wasm's hash and the wasmtime
version), so after the first use an engine starts in about a millisecond. Each load() gets a fresh instance:
a model is streamed straight into the instance's linear memory, and stop() gives all of it back.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from pathlib import Path

import wasmtime

from ..resources import wasm_path
from .engine import DEFAULT_N_CTX, EngineError
from .wasm_cengine import SIGNATURES, CEngine

_MASK = 0xFFFFFFFF
_lock = threading.Lock()
_engine: wasmtime.Engine | None = None
_modules: dict[str, wasmtime.Module] = {}


def cache_dir() -> Path:
    """Where compiled modules are kept: $AOS_PY_CACHE, else $AOS_PY_HOME/cache, else ~/.cache/aos-py."""
    if os.environ.get("AOS_PY_CACHE"):
        return Path(os.environ["AOS_PY_CACHE"])
    if os.environ.get("AOS_PY_HOME"):
        return Path(os.environ["AOS_PY_HOME"]) / "cache"
    return Path.home() / ".cache" / "aos-py"


def _wasmtime_version() -> str:
    """wasmtime's version, from its dist-info folder name (importlib.metadata takes ~40 ms on first use)."""
    site = Path(wasmtime.__file__).resolve().parent.parent
    for entry in os.scandir(site):
        if entry.name.startswith("wasmtime-") and entry.name.endswith(".dist-info"):
            return entry.name[len("wasmtime-"):-len(".dist-info")]
    from importlib.metadata import version

    return version("wasmtime")


def _wasm_engine() -> wasmtime.Engine:
    global _engine
    if _engine is None:
        cfg = wasmtime.Config()
        cfg.cranelift_opt_level = "speed"
        # relaxed SIMD gives the kernels fused multiply-add; deterministic mode makes every host compute the
        # same bits, which AO processes need (replaying a process must give the same output).
        cfg.wasm_relaxed_simd = True
        cfg.wasm_relaxed_simd_deterministic = True
        _engine = wasmtime.Engine(cfg)
    return _engine


def load_module(path: Path | None = None) -> wasmtime.Module:
    """The compiled engine module, from the in-process cache, the on-disk .cwasm cache, or compiled now."""
    path = Path(path) if path else wasm_path()
    if not path.is_file():
        raise EngineError(f"the wasm inference engine is not built ({path} is missing): run `make wasm`")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:32]
    with _lock:
        mod = _modules.get(digest)
        if mod is not None:
            return mod
        engine = _wasm_engine()
        cached = cache_dir() / "wasm" / f"llama-{digest}-wasmtime{_wasmtime_version()}.cwasm"
        mod = None
        if cached.is_file():
            try:
                mod = wasmtime.Module.deserialize_file(engine, str(cached))
            except Exception:  # noqa: BLE001 - a stale or corrupt cache entry is rebuilt below
                mod = None
        if mod is None:
            mod = wasmtime.Module(engine, data)
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes(mod.serialize())
                os.replace(tmp, cached)
                for old in cached.parent.glob("llama-*.cwasm"):  # builds of older sources
                    if old != cached:
                        old.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only cache only costs compile time
        _modules[digest] = mod
        return mod


def _to_i32(v: int) -> int:
    v &= _MASK
    return v - (1 << 32) if v >= 1 << 31 else v


class WasmEngine(CEngine):
    """The llama engine in WebAssembly: deterministic, sandboxed, one model per instance (use several
    instances for parallelism). Models up to about 3.5 GB fit the wasm32 address space."""

    kind = "wasm"
    max_model_bytes = 3_600_000_000

    def __init__(self, n_ctx: int = DEFAULT_N_CTX, wasm: str | os.PathLike[str] | None = None) -> None:
        super().__init__(n_ctx)
        self._module = load_module(Path(wasm) if wasm else None)
        self._store: wasmtime.Store | None = None
        self._funcs: dict[str, wasmtime.Func] = {}
        self._memory: wasmtime.Memory | None = None
        self._instance_alive = False

    def _new_instance(self) -> None:
        self._drop_instance()
        store = wasmtime.Store(_wasm_engine())
        instance = wasmtime.Instance(store, self._module, [])
        exports = instance.exports(store)
        init = exports.get("_initialize")
        if isinstance(init, wasmtime.Func):
            init(store)
        self._store = store
        self._memory = exports["memory"]
        self._funcs = {name: exports[name] for name in SIGNATURES}
        self._instance_alive = True

    def _drop_instance(self) -> None:
        self._store = None
        self._memory = None
        self._funcs = {}
        self._instance_alive = False

    def _call(self, name: str, *args: int | float) -> int:
        if self._store is None:
            raise EngineError("no model is loaded: call load(path) first")
        res, kinds = SIGNATURES[name]
        conv = [a if k == "f" else _to_i32(int(a)) for a, k in zip(args, kinds, strict=True)]
        try:
            out = self._funcs[name](self._store, *conv)
        except wasmtime.Trap as exc:
            self._loaded = False
            self._drop_instance()
            raise EngineError(f"the wasm engine trapped in {name}: {exc.message}") from None
        if res in ("p", "u"):
            return int(out) & _MASK
        return out if res else 0

    def _host_addr(self, ptr: int) -> int:
        assert self._memory is not None and self._store is not None
        base = ctypes.addressof(self._memory.data_ptr(self._store).contents)
        return base + ptr

    def memory_bytes(self) -> int:
        """Current size of the instance's linear memory."""
        if self._memory is None or self._store is None:
            return 0
        return self._memory.data_len(self._store)
