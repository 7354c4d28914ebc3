"""Read and precompile the bundled Lua library (lua/) once per Python process.

Each Lua state asks for a module only when it is first required, so an idle
process pays only for what it loaded. Modules are compiled once (in a private
Lua state) and handed to every process as bytecode, which loads several times
faster than source; the bytecode keeps its debug information, so error
positions and variable names read as they would from source.
"""

from __future__ import annotations

import threading
from pathlib import Path

import lupa.lua53 as lua53

from aos_py.resources import lua_dir

_lock = threading.Lock()
_sources: dict[str, bytes | None] = {}
_chunks: dict[tuple[str, str], bytes] = {}
_compiler = None


def library_root() -> Path:
    """Directory of the aos process library."""
    return lua_dir()


def read_source(relpath: str) -> bytes | None:
    """Source of lua/<relpath>, or None when there is no such file (cached)."""
    with _lock:
        if relpath in _sources:
            return _sources[relpath]
    root = library_root().resolve()
    candidate = (root / relpath).resolve()
    data: bytes | None = None
    if candidate.is_relative_to(root) and candidate.is_file():
        data = candidate.read_bytes()
    with _lock:
        _sources[relpath] = data
    return data


def read_chunk(relpath: str, chunkname: str) -> bytes | None:
    """lua/<relpath> compiled under `chunkname` (bytecode), or its source when it does
    not compile (so that loading it reports the syntax error), or None."""
    key = (relpath, chunkname)
    with _lock:
        if key in _chunks:
            return _chunks[key]
    source = read_source(relpath)
    if source is None:
        return None
    global _compiler
    with _lock:
        if _compiler is None:
            rt = lua53.LuaRuntime(register_eval=False, register_builtins=False, encoding=None)
            _compiler = rt.eval(b"""function(src, name)
                local f = load(src, name, 't', {})
                if not f then return nil end
                return string.dump(f)
            end""")
        code = _compiler(source, chunkname.encode("utf-8"))
        result = code if code is not None else source
        _chunks[key] = result
    return result


def clear_cache() -> None:
    """Forget cached sources and chunks (for tools that edit lua/ while running)."""
    with _lock:
        _sources.clear()
        _chunks.clear()
