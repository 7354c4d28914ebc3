"""Locate the files that ship with aos-py (Lua library, APM packages, wasm engine).

In a source checkout they live at the repository root (lua/, packages/, wasm/);
in an installed wheel they are copied to aos_py/_data/ by setup.py.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent
_INSTALLED = _PKG / "_data"
_CHECKOUT = _PKG.parent


def _find(name: str) -> Path:
    for base in (_INSTALLED, _CHECKOUT):
        candidate = base / name
        if candidate.exists():
            return candidate
    return _CHECKOUT / name


def lua_dir() -> Path:
    """Directory holding the aos process library (process.lua, handlers.lua, ...)."""
    return _find("lua")


def service_source(name: str) -> str:
    """The Lua source of one of the node's own processes (lua/services/<name>.lua)."""
    return (lua_dir() / "services" / f"{name}.lua").read_text(encoding="utf-8")


def packages_dir() -> Path:
    """Directory holding the APM packages published into the local registry."""
    return _find("packages")


def wasm_path() -> Path:
    """Path of the compiled inference engine, wasm/llama.wasm."""
    return _find("wasm") / "llama.wasm"
