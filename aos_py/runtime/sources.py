"""Read the bundled Lua library (lua/) once per Python process.

Each Lua state asks for a module's source only when it is first required,
so an idle process pays only for what it loaded.
"""

from __future__ import annotations

import threading
from pathlib import Path

from aos_py.resources import lua_dir

_lock = threading.Lock()
_cache: dict[str, bytes | None] = {}


def library_root() -> Path:
    """Directory of the aos process library."""
    return lua_dir()


def read_source(relpath: str) -> bytes | None:
    """Source of lua/<relpath>, or None when there is no such file (cached)."""
    with _lock:
        if relpath in _cache:
            return _cache[relpath]
    root = library_root().resolve()
    candidate = (root / relpath).resolve()
    data: bytes | None = None
    if candidate.is_relative_to(root) and candidate.is_file():
        data = candidate.read_bytes()
    with _lock:
        _cache[relpath] = data
    return data


def clear_cache() -> None:
    """Forget cached sources (for tools that edit lua/ while running)."""
    with _lock:
        _cache.clear()
