"""The Lua the processes of the in-memory node of `aos test` load, found as aolite finds it.

A spawn's source (code, a module path or a file), the project's modules a process requires (searched
on a package.path-style search path from the test's folder, compiled once per file version, so errors
name the file and line), aos-py's blueprints and the APM packages aos-py ships.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import lupa.lua53 as lua53

from aos_py.testing.messages import SimError, _text

DEFAULT_SEARCH_PATH = "./?.lua;./?/init.lua;./src/?.lua;./src/?/init.lua"

_MODULE_NAME = re.compile(r"^[A-Za-z0-9_\-/]+(\.[A-Za-z0-9_\-/]+)*$")
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;_-/()[]'<>=+*#@!?{}~|&^%$")
_compiler = None


def lua_string(text: str) -> str:
    """A Lua long-string literal holding `text` exactly."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[\n{text}]{eq}]"


def _lua_quote(text: str) -> str:
    """A Lua string literal of `text` (bytes outside a safe ASCII set as 3-digit escapes)."""
    raw = text.encode("utf-8", "surrogateescape")
    return '"' + "".join(chr(b) if b in _SAFE else f"\\{b:03d}" for b in raw) + '"'


def _compile(source: bytes, chunkname: str) -> bytes:
    """Source compiled to bytecode under `chunkname`; a syntax error becomes a chunk that raises it."""
    global _compiler
    if _compiler is None:
        rt = lua53.LuaRuntime(register_eval=False, register_builtins=False, encoding=None)
        _compiler = rt.eval(b"""function(src, name)
            local f, err = load(src, name, 't', {})
            if not f then return nil, err end
            return string.dump(f)
        end""")
    res = _compiler(source, chunkname.encode("utf-8"))
    code, err = res if isinstance(res, tuple) else (res, None)
    if code is None:
        return b"error(" + _lua_quote(_text(err)).encode("utf-8") + b", 0)"
    return code


class ModuleFiles:
    """The project's Lua files and virtual modules, as a spawn or a process's require finds them."""

    def __init__(self, cwd: Path | None) -> None:
        self.cwd = cwd
        self.search_path = DEFAULT_SEARCH_PATH
        self.modules: dict[str, bytes] = {}          # virtual modules (name -> source) processes can require
        self._cache: dict[str, tuple[float, bytes] | None] = {}

    def base(self) -> Path:
        return self.cwd if self.cwd is not None else Path.cwd()

    def find(self, name: str, search_path: str | None = None) -> Path | None:
        """The file `require(name)` loads through the search path (Lua's package.searchpath, .lua only)."""
        rel = name.lstrip(".").replace(".", "/")
        if not rel:
            return None
        for template in (search_path or self.search_path).split(";"):
            template = template.strip()
            if not template or "?" not in template or not template.endswith(".lua"):
                continue
            candidate = Path(template.replace("?", rel))
            if not candidate.is_absolute():
                candidate = self.base() / candidate
            if candidate.is_file():
                return candidate
        return None

    def display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.base().resolve()))
        except ValueError:
            return str(path)

    def user_module(self, relpath: str, name: str) -> bytes | None:
        """Source for a process's require of a module the library lacks: a virtual module, else a file."""
        if relpath.endswith("/init.lua") and relpath != "init.lua":
            return None   # the first lookup (".lua") already searched every template, ?/init.lua included
        if name in self.modules:
            return self.modules[name]
        path = self.find(name)
        if path is None:
            return None
        key = str(path)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        code = _compile(path.read_bytes(), "@" + self.display(path))
        self._cache[key] = (mtime, code)
        return code

    def file_module(self, path: Path) -> str:
        """Lua that requires `path` as a module (its errors name the file and line)."""
        name = self.file_module_name(path)
        self.modules[name] = _compile(path.read_bytes(), "@" + self.display(path))
        return f"return require({_lua_quote(name)})"

    def file_module_name(self, path: Path) -> str:
        return "@file:" + self.display(path)

    def boot_code(self, source: object, tmap: dict | None, parent: str | None) -> tuple[str | None, str | None]:
        """(Lua to run after the spawn message, the module path it came from) for aolite's rules."""
        on_boot = (tmap.get("On-Boot") if tmap is not None else None) or source
        if source is None and (on_boot is None or on_boot == "Data"):
            return None, None
        if on_boot is None or on_boot == "NODATA":
            return None, None
        if on_boot == "Data":
            if not isinstance(source, str):
                raise SimError("On-Boot = Data needs the source code as a string")
            return source, None
        if parent is not None:       # a process's spawn: only On-Boot = Data runs code (as on AO)
            return None, None
        text = str(on_boot)
        if text.endswith(".lua") and "\n" not in text:
            path = Path(text)
            if not path.is_absolute():
                path = self.base() / path
            if not path.is_file():
                raise SimError(f"no such file: {text}")
        elif _MODULE_NAME.match(text):
            found = self.find(text)
            if found is None:
                raise SimError(f"module '{text}' not found (searched {self.search_path} from {self.base()})")
            path = found
        else:
            return text, None       # plainly Lua code
        return self.file_module(path), text


def blueprint_code(name: str) -> str:
    """The Lua of one of aos-py's blueprints (lua/blueprints/<name>.lua)."""
    from aos_py.resources import lua_dir

    folder = lua_dir() / "blueprints"
    known = sorted(p.stem for p in folder.glob("*.lua"))
    if name not in known:
        raise SimError(f"unknown blueprint {name!r} (blueprints: {', '.join(known)})")
    return (folder / f"{name}.lua").read_text(encoding="utf-8")


def install_package(spec: str, run_code: Callable[[str, str], object]) -> str:
    """Install a shipped APM package (packages/), dependencies first, as the APM client installs a
    download: `run_code(lua, what)` runs the Lua that sets package.loaded[<name>] to its module and
    apm.installed[<name>] to its version. Returns name@version."""
    from aos_py.node.packages import PackageError, shipped_packages

    try:
        pkgs = {p.full_name: p for p in shipped_packages()}
    except PackageError as exc:
        raise SimError(str(exc)) from None
    if not isinstance(spec, str) or not spec:
        raise SimError("a package is named @vendor/name (optionally @version)")
    if spec.startswith("@"):
        rest, _, version = spec[1:].partition("@")
        name = "@" + rest
    else:
        name, _, version = spec.partition("@")
    pkg = pkgs.get(name)
    if pkg is None:
        raise SimError(f"no package {name} (shipped: {', '.join(sorted(pkgs))})")
    if version and version != pkg.version:
        raise SimError(f"package {name} ships version {pkg.version}, not {version}")
    for dep in sorted(pkg.dependencies):
        install_package(dep, run_code)
    key = name[len("@apm/"):] if name.startswith("@apm/") else name
    code = (f"local chunk = assert(load({lua_string(pkg.source)}, {_lua_quote('=' + name)}, 't', _G))\n"
            f"local module = chunk()\nif module == nil then module = true end\n"
            f"package.loaded[{_lua_quote(key)}] = module\n"
            f"if type(apm) == 'table' and type(apm.installed) == 'table' then "
            f"apm.installed[{_lua_quote(name)}] = {_lua_quote(pkg.version)} end")
    run_code(code, f"installing {name}")
    return f"{name}@{pkg.version}"
