"""The same C engine compiled natively (-O3 -march=native) and called through ctypes.

It exists to measure what WebAssembly costs (bench/bench_inference.py) and to check that the wasm build
computes the same thing as the native one. It is not a user-facing engine: use NativeEngine (llama.cpp).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

from .engine import DEFAULT_N_CTX, EngineError
from .wasm_cengine import SIGNATURES, CEngine

_CT = {"p": ctypes.c_void_p, "u": ctypes.c_uint32, "i": ctypes.c_int32, "f": ctypes.c_float, "": None}


def build_native_library() -> Path:
    """Compile (if needed) and return the native shared library of the C engine (needs a C compiler)."""
    build_py = Path(__file__).resolve().parents[2] / "wasm" / "build.py"
    if not build_py.is_file():
        raise EngineError("the C sources (wasm/) are not available in this installation")
    spec = importlib.util.spec_from_file_location("aos_wasm_build", build_py)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_native(verbose=False)


class CNativeEngine(CEngine):
    """The C engine as a native shared library. One model per process-wide library state, so only one
    instance may be loaded at a time."""

    kind = "c-native"
    _active: CNativeEngine | None = None

    def __init__(self, n_ctx: int = DEFAULT_N_CTX, library: str | os.PathLike[str] | None = None) -> None:
        super().__init__(n_ctx)
        path = Path(library) if library else build_native_library()
        self._lib = ctypes.CDLL(str(path))
        for name, (res, args) in SIGNATURES.items():
            fn = getattr(self._lib, name)
            fn.restype = _CT[res]
            fn.argtypes = [_CT[a] for a in args]
        self._model_buf = 0
        self._instance_alive = False

    def _new_instance(self) -> None:
        if CNativeEngine._active is not None and CNativeEngine._active is not self:
            CNativeEngine._active.stop()
        CNativeEngine._active = self
        self._instance_alive = True

    def _drop_instance(self) -> None:
        self._lib.llm_unload()
        if self._model_buf:
            self._lib.llm_release(self._model_buf)
            self._model_buf = 0
        self._instance_alive = False

    def _call(self, name: str, *args: int | float) -> int:
        out = getattr(self._lib, name)(*args)
        if name == "llm_reserve":
            self._model_buf = out or 0
        return 0 if out is None else int(out)

    def _host_addr(self, ptr: int) -> int:
        return ptr
