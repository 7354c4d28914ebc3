"""The in-memory AO node of `aos test`: aolite's model of AO, with aos-py's process runtime.

Processes have free-form ids ("sender", "token"); each is a `ProcessRuntime` (a sandboxed Lua 5.3 state
with the aos 2.0.4 library) driven directly, without signing, SQLite or threads. Messages get aolite's
ids (`<From>#<Reference>`, the sender's own ao.send counter), wait in per-process queues and run when the
scheduler runs: after every `send` while auto-scheduling is on (the default), or on `run()`. A process
drains its queue when it runs; processes run in the order they became ready. Everything is synchronous
and deterministic.

The same node serves the spec files' `require("aolite")` (lua/testing/aolite.lua) and the pytest
fixture (aos_py/testing/pytest_plugin.py).
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lupa.lua53 as lua53

from aos_py.runtime import HandleError, ProcessRuntime
from aos_py.runtime.sources import read_source

try:
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj, default=_jsonable)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, default=_jsonable, separators=(",", ":")).encode("utf-8")

    _loads = json.loads

NODE_ID = "aos-test-node"            # owner of the services, sender of cron ticks, every process's Authority
DEFAULT_MODULE = "DefaultDummyModule"
MAX_MESSAGES_PER_RUN = 100_000       # a scheduler run that handles more is a message loop
DEFAULT_CYCLES = 1000                # aolite's default cycle limit of one scheduler run
RESULTS_KEPT = 1000                  # recent results kept per process
DEFAULT_SEARCH_PATH = "./?.lua;./?/init.lua;./src/?.lua;./src/?/init.lua"

_NON_EXTRACTABLE = frozenset({
    "Data-Protocol", "Variant", "From-Process", "From-Module", "Type",
    "From", "Owner", "Anchor", "Target", "Data", "Tags", "Read-Only",
})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_\-/]+(\.[A-Za-z0-9_\-/]+)*$")
_NORM_CACHE: dict[str, str] = {}


class SimError(Exception):
    """An aolite operation failed (the message says why, in aolite's words where aolite has them)."""


def _jsonable(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"cannot encode a {type(value).__name__}")


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def normalize_name(name: object) -> object:
    """aos 2.0.4's tag-name form: "x_custom-tag" -> "X-Custom-Tag"."""
    if not isinstance(name, str):
        return name
    hit = _NORM_CACHE.get(name)
    if hit is None:
        s = name.replace("_", "-").lower()
        hit = re.sub(r"(^|-)([a-z])", lambda m: m.group(1) + m.group(2).upper(), s)
        if len(_NORM_CACHE) < 4096:
            _NORM_CACHE[name] = hit
    return hit


def handled_view(msg: dict) -> dict:
    """A message as its handler saw it (aolite hands back the very table process.handle rewrote):
    names normalised, tags copied to the root, Tags as a name -> value map, TagArray the list,
    and a JSON Data decoded when Content-Type says so."""
    view = {normalize_name(k): v for k, v in msg.items()}
    tags = []
    for t in msg.get("Tags") or []:
        if isinstance(t, dict):
            tags.append({"name": normalize_name(t.get("name")), "value": t.get("value")})
    tag_map: dict = {}
    for t in tags:
        name = t["name"]
        if name not in _NON_EXTRACTABLE:
            view[name] = t["value"]
        if name not in tag_map:
            tag_map[name] = t["value"]
    # aos 2.0.4 normalises names ("X-MyTag" arrives as "X-Mytag"); the test also finds them as they were sent
    for t in msg.get("Tags") or []:
        if isinstance(t, dict) and isinstance(t.get("name"), str):
            original = t["name"]
            normal = normalize_name(original)
            if original != normal and normal in tag_map:
                tag_map.setdefault(original, tag_map[normal])
                if normal in view and original not in view:
                    view[original] = view[normal]
    view["TagArray"] = tags
    view["Tags"] = tag_map
    if tag_map.get("Content-Type") == "application/json" and isinstance(view.get("Data"), str):
        try:
            view["Data"] = _loads(view["Data"] or "{}")
        except ValueError:
            pass
    return view


def tag_list(tags: object) -> list[dict]:
    """Tags given as a {name: value} map or a [{name, value}] list, as a list."""
    if tags is None:
        return []
    if isinstance(tags, dict):
        if tags and all(isinstance(k, str) and k.isdigit() for k in tags):    # a Lua list through JSON
            tags = [tags[k] for k in sorted(tags, key=int)]
        else:
            return [{"name": str(k), "value": v} for k, v in tags.items()]
    if isinstance(tags, (list, tuple)):
        out = []
        for t in tags:
            if isinstance(t, dict) and "name" in t:
                out.append({"name": str(t["name"]), "value": t.get("value")})
            elif isinstance(t, (list, tuple)) and len(t) == 2:
                out.append({"name": str(t[0]), "value": t[1]})
            else:
                raise SimError("each tag needs a `name` and a `value`")
        return out
    raise SimError("tags must be a table (a {name = value} map or a list of {name = ..., value = ...})")


def lua_string(text: str) -> str:
    """A Lua long-string literal holding `text` exactly."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[\n{text}]{eq}]"


class _Msg:
    __slots__ = ("raw", "view", "rev", "_json")

    def __init__(self, raw: dict) -> None:
        self.raw = raw
        self.view: dict | None = None
        self.rev = 0
        self._json: bytes | None = None

    def current(self) -> dict:
        return self.view if self.view is not None else self.raw

    def handled(self) -> None:
        if self.view is None:
            self.view = handled_view(self.raw)
            self.rev = 1
            self._json = None

    def json(self) -> bytes:
        if self._json is None:
            self._json = _dumps(self.current())
        return self._json


class _Runtime(ProcessRuntime):
    """A ProcessRuntime whose `require` also finds the project's own Lua files (as aolite's does)."""

    def __init__(self, node: SimNode) -> None:
        self._node = node
        super().__init__(data_resolver=node.resolve_data)

    def _load_source(self, relpath: bytes, chunkname: bytes) -> bytes | None:
        src = super()._load_source(relpath, chunkname)
        if src is None:
            src = self._node.user_module(_text(relpath), _text(chunkname))
        return src

    def host_call(self, code: bytes, *args: object) -> Any:
        """Run host Lua in this state (the test host only; never process code)."""
        with self._lock:
            return self._lua.execute(code, *args)

    def call(self, fn: Any, *args: object) -> Any:
        """Call a Lua function of this state (a host hook)."""
        with self._lock:
            return fn(*args)

    def get_global(self, name: str) -> Any:
        with self._lock:
            return self._lua.globals()[name.encode()]

    def set_global(self, name: str, value: object) -> None:
        with self._lock:
            self._lua.globals()[name.encode()] = value


class SimProcess:
    """One process of the in-memory node."""

    def __init__(self, pid: str, owner: str, module: str, runtime: _Runtime, env: dict, hooks: Any,
                 cron: float | None) -> None:
        self.id = pid
        self.owner = owner
        self.module = module
        self.runtime = runtime
        self.env = env
        self.hooks = hooks
        self.queue: deque[str] = deque()
        self.spawn_counter = 0
        self.prints: list[str] = []
        self.errors: list[str] = []
        self.results: deque[dict] = deque(maxlen=RESULTS_KEPT)
        self.cron = cron
        self.next_cron: int | None = None


_compiler = None


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


_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;_-/()[]'<>=+*#@!?{}~|&^%$")


def _lua_quote(text: str) -> str:
    """A Lua string literal of `text` (bytes outside a safe ASCII set as 3-digit escapes)."""
    raw = text.encode("utf-8", "surrogateescape")
    return '"' + "".join(chr(b) if b in _SAFE else f"\\{b:03d}" for b in raw) + '"'


class SimNode:
    """An in-memory AO node: aolite's API over aos-py process runtimes."""

    def __init__(self, cwd: str | Path | None = None, *, timestamp: int | None = None, block_height: int = 0,
                 echo: Callable[[str], None] | None = None) -> None:
        self.cwd = Path(cwd) if cwd is not None else None
        self.processes: dict[str, SimProcess] = {}
        self.store: dict[str, _Msg] = {}
        self.history: dict[str, list[str]] = {}
        self.ready: dict[str, None] = {}
        self.auto = True
        self.message_log: str | None = os.environ.get("AOLITE_MSG_LOG") or None
        flag = os.environ.get("AOLITE_PRINT_OUTPUT", "")
        self.print_output = flag not in ("", "0")
        self.timestamp = int(time.time() * 1000) if timestamp is None else int(timestamp)
        self.block_height = int(block_height)
        self.echo = echo or print
        self.search_path = DEFAULT_SEARCH_PATH
        self.modules: dict[str, bytes] = {}          # virtual modules (name -> source) processes can require
        self.data: dict[str, Path] = {}              # /data/<id> mounts
        self.services: dict | None = None
        self._module_cache: dict[str, tuple[float, bytes] | None] = {}
        self._counter = 0
        self._node_ref = 0
        self._closed = False

    # -- files and data --------------------------------------------------------------------------

    def _base(self) -> Path:
        return self.cwd if self.cwd is not None else Path.cwd()

    def find_module_file(self, name: str, search_path: str | None = None) -> Path | None:
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
                candidate = self._base() / candidate
            if candidate.is_file():
                return candidate
        return None

    def _display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self._base().resolve()))
        except ValueError:
            return str(path)

    def user_module(self, relpath: str, name: str) -> bytes | None:
        """Source for a process's require of a module the library lacks: a virtual module, else a file."""
        if relpath.endswith("/init.lua") and relpath != "init.lua":
            return None   # the first lookup (".lua") already searched every template, ?/init.lua included
        if name in self.modules:
            return self.modules[name]
        path = self.find_module_file(name)
        if path is None:
            return None
        key = str(path)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._module_cache.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        code = _compile(path.read_bytes(), "@" + self._display(path))
        self._module_cache[key] = (mtime, code)
        return code

    def add_data(self, data_id: str, path: str | Path) -> None:
        """Mount a host file as /data/<data_id> for every process."""
        self.data[data_id] = Path(path)

    def resolve_data(self, data_id: str) -> Path | None:
        return self.data.get(data_id)

    # -- spawning ----------------------------------------------------------------------------------

    def _env_tags(self, tags: list[dict], pid: str, module: str) -> list[dict]:
        out = [dict(t) for t in tags]
        names = {t["name"] for t in out}
        if "Module" not in names:
            out.append({"name": "Module", "value": module})
        if "Name" not in names:
            out.append({"name": "Name", "value": pid})
        out.append({"name": "Authority", "value": NODE_ID})
        if self.services:
            for name, key in (("APM-Registry", "apm-registry"), ("Wrapped-AR", "war"), ("Llama-Herder", "herder")):
                if key in self.services and name not in names:
                    out.append({"name": name, "value": self.services[key]})
        return out

    def spawn(self, pid: str, source: str | None = None, tags: object = None, *, owner: str | None = None,
              parent: str | None = None, blueprints: list[str] | tuple = (), packages: list[str] | tuple = (),
              search_path: str | None = None, data: str | None = None) -> SimProcess:
        """aolite's spawnProcess(id, sourceOrModulePath, tags), plus blueprints / packages installed first.

        `source` is Lua code when the tags say On-Boot = Data, else a module path ("path.to.module",
        resolved like require), a file path ("dir/file.lua") or, when it plainly is code, code. `None`: no
        code. `parent`: spawned by that process (its Spawns), which becomes the Owner.
        """
        if not isinstance(pid, str) or not pid:
            raise SimError("processId must be defined")
        if pid in self.processes:
            raise SimError(f"aolite: Process with ID {pid} already exists")
        if search_path:
            self.search_path = search_path
        tlist = tag_list(tags)
        tmap = {t["name"]: t["value"] for t in tlist}
        module = str(tmap.get("Module") or DEFAULT_MODULE)
        owner = owner or parent or pid
        code, module_path = self._boot_code(source, tmap if tags is not None else None, parent)

        cron = None
        if tmap.get("Cron-Interval"):
            from aos_py.node.cron import parse_interval

            try:
                cron = parse_interval(str(tmap["Cron-Interval"]))
            except ValueError as exc:
                raise SimError(str(exc)) from None
        runtime = _Runtime(self)
        env = {"Process": {"Id": pid, "Owner": owner, "Tags": self._env_tags(tlist, pid, module)},
               "Module": {"Id": module, "Owner": NODE_ID, "Tags": [{"name": "Type", "value": "Module"}]}}
        hooks_src = read_source("testing/process_hooks.lua")
        if hooks_src is None:
            raise SimError("lua/testing/process_hooks.lua is missing")
        try:
            hooks = runtime.host_call(b"return load(..., '@lua/testing/process_hooks.lua', 't')()", hooks_src)
        except lua53.LuaError as exc:
            runtime.close()
            raise SimError(f"cannot prepare process {pid}: {_text(exc)}") from None
        proc = SimProcess(pid, owner, module, runtime, env, hooks, cron)
        if cron is not None:
            proc.next_cron = self.timestamp + int(cron * 1000)
        # aolite: the tags become globals, Owner is the spawner (or the process itself), Name its id
        globals_ = {"Owner": owner, "Name": tmap.get("Name", pid)}
        if tags is not None:
            globals_.update({k: v for k, v in tmap.items() if isinstance(k, str)})
        self._hook(proc, "set_globals", _dumps(globals_))

        boot_tags = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                     {"name": "Type", "value": "Process"}]
        boot_tags += [t for t in tlist if t["name"] not in ("Data-Protocol", "Variant", "Type", "On-Boot")]
        if parent and not any(t["name"] == "From-Process" for t in boot_tags):
            boot_tags.append({"name": "From-Process", "value": parent})
        boot = {"Id": pid, "From": owner, "Owner": owner, "Target": pid, "Module": module,
                "Timestamp": self.timestamp, "Block-Height": self.block_height, "Tags": boot_tags,
                "Data": data if isinstance(data, str) else ""}
        self.processes[pid] = proc
        res = self._handle(proc, boot, deliver=False)
        if res.get("Error"):
            raise SimError(f"aolite: spawning {pid} failed: {_error_text(res['Error'])}")
        self._hook(proc, "after_boot")
        for name in blueprints or ():
            self._load_blueprint(pid, name)
        for name in packages or ():
            self._install_package(pid, name)
        if code is not None:
            self.run_code(pid, code, what=f"loading {module_path or 'the source of ' + pid}")
        self._hook(proc, "install_eval")
        if module != DEFAULT_MODULE:     # aolite's Module tag: a Lua module implementing the process module
            used = self._hook(proc, "use_module", module.encode("utf-8"))
            if isinstance(used, tuple) and len(used) > 1 and used[1]:
                raise SimError(f"aolite: the process module {module} of {pid} failed to load: {_text(used[1])}")
        if self.auto:
            self.run()
        return proc

    def _boot_code(self, source: object, tmap: dict | None, parent: str | None) -> tuple[str | None, str | None]:
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
                path = self._base() / path
            if not path.is_file():
                raise SimError(f"no such file: {text}")
        elif _MODULE_NAME.match(text):
            found = self.find_module_file(text)
            if found is None:
                raise SimError(f"module '{text}' not found (searched {self.search_path} from {self._base()})")
            path = found
        else:
            return text, None       # plainly Lua code
        return self._file_module(path), text

    def _file_module(self, path: Path) -> str:
        """Lua that requires `path` as a module (its errors name the file and line)."""
        name = "@file:" + self._display(path)
        self.modules[name] = _compile(path.read_bytes(), "@" + self._display(path))
        return f"return require({_lua_quote(name)})"

    def _hook(self, proc: SimProcess, name: str, *args: object) -> Any:
        try:
            return proc.runtime.call(proc.hooks[name.encode()], *args)
        except lua53.LuaError as exc:
            raise SimError(f"{proc.id}: {_text(exc.args[0] if exc.args else exc)}") from None

    # -- code, blueprints and packages ------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def run_code(self, pid: str, code: str, what: str = "evaluating code") -> dict:
        """Evaluate Lua in a process as its Owner's Eval message would (not recorded as a message).
        Raises SimError when the code fails; returns the result."""
        proc = self._proc(pid)
        current = proc.runtime.get_global("Owner")
        stand_in = not isinstance(current, bytes) or not current
        if stand_in:          # the process has no Owner (renounced): the host still loads code into it
            proc.runtime.set_global("Owner", proc.owner.encode())
        owner = proc.owner if stand_in else _text(current)
        msg = {"Id": self._next_id("~load-"), "From": owner, "Owner": owner, "Target": pid,
               "Module": proc.module, "Timestamp": self.timestamp, "Block-Height": self.block_height,
               "Tags": [{"name": "Action", "value": "Eval"}], "Data": code}
        try:
            res = self._handle(proc, msg)
        finally:
            if stand_in and proc.runtime.get_global("Owner") == proc.owner.encode():
                proc.runtime.set_global("Owner", current)
        if res.get("Error"):
            raise SimError(f"{pid}: {what} failed: {_error_text(res['Error'])}")
        return res

    def load_file(self, pid: str, path: str | Path) -> dict:
        """Evaluate a Lua file in a process (like `.load FILE`; its requires resolve like the spec's)."""
        p = Path(path)
        if not p.is_absolute():
            p = self._base() / p
        if not p.is_file():
            raise SimError(f"no such file: {path}")
        code = self._file_module(p)
        try:
            res = self.run_code(pid, code, what=f"loading {self._display(p)}")
        finally:   # a later load of the same file runs it again (like .load)
            self._proc(pid).runtime.host_call(b"package.loaded[...] = nil", ("@file:" + self._display(p)).encode())
        if self.auto:
            self.run()
        return res

    def load_blueprint(self, pid: str, name: str) -> dict:
        """Load one of aos-py's blueprints (lua/blueprints/<name>.lua) into a process."""
        res = self._load_blueprint(pid, name)
        if self.auto:
            self.run()
        return res

    def _load_blueprint(self, pid: str, name: str) -> dict:
        from aos_py.resources import lua_dir

        folder = lua_dir() / "blueprints"
        known = sorted(p.stem for p in folder.glob("*.lua"))
        if name not in known:
            raise SimError(f"unknown blueprint {name!r} (blueprints: {', '.join(known)})")
        code = (folder / f"{name}.lua").read_text(encoding="utf-8")
        return self.run_code(pid, code, what=f"loading blueprint {name}")

    def install_package(self, pid: str, spec: str) -> str:
        """Install a shipped APM package (packages/), dependencies first, as the APM client installs a
        download: package.loaded[<name>] = its module, apm.installed[<name>] = version. Returns name@version."""
        done = self._install_package(pid, spec)
        if self.auto:
            self.run()
        return done

    def _install_package(self, pid: str, spec: str) -> str:
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
            self._install_package(pid, dep)
        key = name[len("@apm/"):] if name.startswith("@apm/") else name
        code = (f"local chunk = assert(load({lua_string(pkg.source)}, {_lua_quote('=' + name)}, 't', _G))\n"
                f"local module = chunk()\nif module == nil then module = true end\n"
                f"package.loaded[{_lua_quote(key)}] = module\n"
                f"if type(apm) == 'table' and type(apm.installed) == 'table' then "
                f"apm.installed[{_lua_quote(name)}] = {_lua_quote(pkg.version)} end")
        self.run_code(pid, code, what=f"installing {name}")
        return f"{name}@{pkg.version}"

    # -- messages ----------------------------------------------------------------------------------

    def _proc(self, pid: object) -> SimProcess:
        proc = self.processes.get(pid) if isinstance(pid, str) else None
        if proc is None:
            raise SimError(f"aolite: No such process: {pid}")
        return proc

    def _standard(self, out: dict, frm: str, module: str, pushed_for: str | None) -> dict:
        """aolite's standard fields on an outbox message (From, Owner, Id, Timestamp, Block-Height, Module)."""
        tags = [dict(t) for t in (out.get("Tags") or []) if isinstance(t, dict)]
        names = {t.get("name") for t in tags}
        ref = next((t.get("value") for t in tags if t.get("name") == "Reference"), None)
        if "From-Process" not in names:
            tags.append({"name": "From-Process", "value": frm})
        if "From-Module" not in names:
            tags.append({"name": "From-Module", "value": module})
        if pushed_for and "Pushed-For" not in names:
            tags.append({"name": "Pushed-For", "value": pushed_for})
        mid = f"{frm}#{ref}" if ref is not None else self._next_id(f"{frm}#~")
        while mid in self.store:
            mid = self._next_id(mid + "~")
        msg = {"Id": mid, "From": frm, "Owner": frm, "Target": out.get("Target"), "Anchor": out.get("Anchor"),
               "Data": out.get("Data") if out.get("Data") is not None else "", "Tags": tags,
               "Timestamp": self.timestamp, "Block-Height": self.block_height, "Module": module}
        if msg["Anchor"] is None:
            del msg["Anchor"]
        return msg

    def _record(self, msg: dict, target: str, queue: bool) -> _Msg:
        entry = self.store.get(msg["Id"])
        if entry is None:
            entry = _Msg(msg)
            self.store[msg["Id"]] = entry
            if self.message_log:
                self._log(msg)
        self.history.setdefault(target, []).append(msg["Id"])
        proc = self.processes.get(target)
        if queue and proc is not None:
            proc.queue.append(msg["Id"])
            self.ready[target] = None
        return entry

    def _log(self, msg: dict) -> None:
        try:
            with open(self.message_log, "ab") as fh:      # type: ignore[arg-type]
                fh.write(_dumps(msg) + b"\n")
        except OSError as exc:
            self.echo(f"aolite: Unable to open message log file: {exc}")

    def _user_message(self, msg: dict, check_target: bool = True) -> dict:
        if not isinstance(msg, dict):
            raise SimError("a message must be a table")
        frm, target = msg.get("From"), msg.get("Target")
        if not isinstance(frm, str):
            raise SimError("From must be defined")
        if not isinstance(target, str):
            raise SimError("Target must be defined")
        proc = self._proc(frm)
        if check_target and target not in self.processes:
            raise SimError(f"aolite: Target process not found: {target}")
        try:
            out = _loads(self._hook(proc, "send", _dumps(msg)))
        except SimError as exc:
            raise SimError(f"send: {exc}") from None
        return self._standard(out, frm, proc.module, None)

    def send(self, msg: dict) -> dict:
        """aolite's send: the From process's ao.send builds the message; then the scheduler runs (if auto)."""
        m = self._user_message(msg)
        self._record(m, m["Target"], queue=True)
        if self.auto:
            self.run()
        return self.message(m["Id"])

    def queue(self, msg: dict) -> dict:
        """Queue a message without running the scheduler (aolite's documented queue())."""
        m = self._user_message(msg)
        self._record(m, m["Target"], queue=True)
        return self.message(m["Id"])

    def inject(self, frm: str, target: str, tags: list[tuple[str, object]] | list[dict], data: str = "",
               *, cron: bool = False, run: bool = True) -> dict:
        """A message from an identity that is not a process of this node (the node itself, a wallet)."""
        self._node_ref += 1
        tl = tag_list(list(tags))
        tl = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
              {"name": "Type", "value": "Message"}] + tl
        mid = f"{frm}#{self._node_ref}"
        while mid in self.store:
            mid = self._next_id(mid + "~")
        msg = {"Id": mid, "From": frm, "Owner": frm, "Target": target, "Data": data, "Tags": tl,
               "Timestamp": self.timestamp, "Block-Height": self.block_height, "Module": DEFAULT_MODULE}
        if cron:
            msg["Cron"] = True
        self._record(msg, target, queue=True)
        if run and self.auto:
            self.run()
        return self.message(mid)

    def eval(self, pid: str, code: str) -> str | None:
        """aolite's eval: an EvalRequest from the process to itself; returns the value as Lua source
        (`return ...`), or None. Raises SimError("Error in evaluation: ...") when the code fails."""
        proc = self._proc(pid)
        if not isinstance(code, str):
            raise SimError("eval needs the code as a string")
        if self.auto:
            self.run()
        req = self._user_message({"From": pid, "Target": pid, "Action": "EvalRequest", "Data": code})
        self._record(req, pid, queue=False)
        ref = next((t["value"] for t in req["Tags"] if t["name"] == "Reference"), None)
        response: dict | None = None

        def intercept(m: dict) -> bool:
            nonlocal response
            tags = {t.get("name"): t.get("value") for t in m["Tags"]}
            if m["Target"] == pid and tags.get("Action") == "EvalResponse" and tags.get("X-Reference") == ref:
                self._record(m, pid, queue=False).handled()
                response = handled_view(m)
                return True
            return False

        self._hook(proc, "eval_first")
        try:
            res = self._handle(proc, req, intercept=intercept)
        finally:
            self._hook(proc, "eval_restore")
        self.store[req["Id"]].handled()
        if self.auto:
            self.run()
        if res.get("Error"):
            raise SimError(f"Error in evaluation: {_error_text(res['Error'])}")
        if response is None:
            return None
        if response.get("Error"):
            raise SimError(f"Error in evaluation: {response['Error']}")
        data = response.get("Data")
        return data if isinstance(data, str) and data else None

    # -- the scheduler -----------------------------------------------------------------------------

    def run(self, cycles: int | None = None) -> int:
        """Run ready processes until their queues are empty (aolite's runScheduler); returns messages handled."""
        limit = DEFAULT_CYCLES if cycles is None else int(cycles)
        handled = 0
        for _ in range(max(limit, 0)):
            if not self.ready:
                break
            batch = list(self.ready)
            self.ready.clear()
            for pid in batch:
                proc = self.processes.get(pid)
                while proc is not None and proc.queue:
                    mid = proc.queue.popleft()
                    entry = self.store.get(mid)
                    if entry is None:
                        continue
                    self._handle(proc, entry.raw)
                    entry.handled()
                    handled += 1
                    if handled > MAX_MESSAGES_PER_RUN:
                        raise SimError(f"the scheduler handled more than {MAX_MESSAGES_PER_RUN:,} messages in one "
                                       "run: is a process answering its own messages forever?")
                    proc = self.processes.get(pid)
        return handled

    def _handle(self, proc: SimProcess, msg: dict, *, deliver: bool = True,
                intercept: Callable[[dict], bool] | None = None) -> dict:
        try:
            res = proc.runtime.handle(msg, proc.env)
        except HandleError as exc:
            raise SimError(f"Error in process {proc.id}: {exc}") from None
        proc.results.append({"Id": msg.get("Id"), **res})
        out = _output_text(res.get("Output"))
        if out:
            proc.prints.append(out)
            if self.print_output:
                self.echo(f"[{proc.id}] {out}")
        if res.get("Error"):
            err = _error_text(res["Error"])
            proc.errors.append(err)
            if self.print_output:
                self.echo(f"[{proc.id}] {err}")
        elif deliver or intercept:
            self._deliver(proc, res, msg.get("Id"), intercept)
        return res

    def _deliver(self, proc: SimProcess, res: dict, pushed_for: str | None,
                 intercept: Callable[[dict], bool] | None = None) -> None:
        for out in res.get("Messages") or []:
            if not isinstance(out, dict):
                continue
            m = self._standard(out, proc.id, proc.module, pushed_for)
            if intercept is not None and intercept(m):
                continue
            target = m.get("Target")
            if not isinstance(target, str):
                continue
            self._record(m, target, queue=True)
        for sp in res.get("Spawns") or []:
            if isinstance(sp, dict):
                self._spawn_child(proc, sp, pushed_for)
        for a in res.get("Assignments") or []:
            if not isinstance(a, dict) or not isinstance(a.get("Processes"), list):
                continue
            entry = self.store.get(a.get("Message"))
            if entry is None:
                continue
            for target in a["Processes"]:
                if isinstance(target, str) and target in self.processes:
                    self._record(entry.raw, target, queue=True)

    def _spawn_child(self, parent: SimProcess, sp: dict, pushed_for: str | None) -> None:
        parent.spawn_counter += 1
        child = f"{parent.id}:{parent.spawn_counter}"
        while child in self.processes:
            parent.spawn_counter += 1
            child = f"{parent.id}:{parent.spawn_counter}"
        tags = [dict(t) for t in (sp.get("Tags") or []) if isinstance(t, dict)]
        ref = next((t.get("value") for t in tags if t.get("name") == "Reference"), None)
        data = sp.get("Data")
        on_boot = next((t.get("value") for t in tags if t.get("name") == "On-Boot"), None)
        try:
            self.spawn(child, data if on_boot == "Data" else None,
                       [t for t in tags if t.get("name") != "On-Boot"] + (
                           [{"name": "On-Boot", "value": "Data"}] if on_boot == "Data" else []),
                       parent=parent.id, data=data if isinstance(data, str) else None)
        except SimError as exc:
            if child in self.processes:
                self.processes[child].errors.append(str(exc))
            else:
                parent.errors.append(str(exc))
                return
        notice_tags = [t for t in tags if t.get("name") not in ("Data-Protocol", "Variant", "Type", "On-Boot")]
        notice_tags += [{"name": "Data-Protocol", "value": "ao"}, {"name": "Type", "value": "Message"},
                        {"name": "Action", "value": "Spawned"}, {"name": "Process", "value": child}]
        if pushed_for:
            notice_tags.append({"name": "Pushed-For", "value": pushed_for})
        mid = f"{parent.id}#{ref}" if ref is not None else self._next_id(f"{parent.id}#~spawn-")
        while mid in self.store:
            mid = self._next_id(mid + "~")
        notice = {"Id": mid, "From": parent.id, "Owner": parent.id, "Target": parent.id, "Data": "",
                  "Tags": notice_tags, "Timestamp": self.timestamp, "Block-Height": self.block_height,
                  "Module": parent.module, "Process": child, "Action": "Spawned"}
        self._record(notice, parent.id, queue=True)

    # -- reading messages --------------------------------------------------------------------------

    def message(self, mid: str) -> dict | None:
        entry = self.store.get(mid)
        return entry.current() if entry is not None else None

    def message_json(self, mid: str) -> tuple[bytes | None, int]:
        entry = self.store.get(mid)
        if entry is None:
            return None, 0
        return entry.json(), entry.rev

    def history_of(self, pid: str) -> list[str] | None:
        """Ids of the messages sent to `pid`, oldest first (None: no such process and nothing sent to it)."""
        if pid not in self.processes and pid not in self.history:
            return None
        return list(self.history.get(pid, ()))

    def all_ids(self) -> list[str]:
        return list(self.store)

    def queued(self, pid: str) -> list[str] | None:
        proc = self.processes.get(pid)
        return list(proc.queue) if proc is not None else None

    def reorder_queue(self, pid: str, ids: list[str]) -> None:
        proc = self.processes.get(pid)
        if proc is None:
            raise SimError(f"No queue found for processId: {pid}")
        if len(ids) != len(proc.queue):
            raise SimError(f"newOrderIds must have exactly {len(proc.queue)} items")
        if sorted(ids) != sorted(proc.queue):
            raise SimError("newOrderIds must be a permutation of the queued message ids")
        proc.queue = deque(ids)

    def clear_messages(self, pid: str) -> None:
        if pid is None:
            raise SimError("processId must be provided")
        self.history[pid] = []

    def clear_all(self) -> None:
        """aolite's clearAllProcesses: every process, queue and message goes."""
        for proc in self.processes.values():
            proc.runtime.close()
        self.processes.clear()
        self.store.clear()
        self.history.clear()
        self.ready.clear()
        self.services = None

    def close(self) -> None:
        self.clear_all()
        self._closed = True

    # -- time, cron, output ----------------------------------------------------------------------

    def set_timestamp(self, ms: int) -> None:
        self.timestamp = int(ms)

    def advance_time(self, ms: int) -> int:
        """Move the clock forward; processes spawned with a Cron-Interval get the ticks that fall due.
        Returns the ticks sent."""
        end = self.timestamp + int(ms)
        ticks = 0
        while True:
            due = [(p.next_cron, pid) for pid, p in self.processes.items()
                   if p.cron is not None and p.next_cron is not None and p.next_cron <= end]
            if not due:
                break
            at, pid = min(due)
            self.timestamp = max(self.timestamp, at)
            proc = self.processes[pid]
            proc.next_cron = at + max(1, int(proc.cron * 1000))    # type: ignore[operator]
            self.tick(pid)
            ticks += 1
            if ticks > MAX_MESSAGES_PER_RUN:
                raise SimError("too many cron ticks in one advance")
        self.timestamp = end
        return ticks

    def tick(self, pid: str, tags: object = None) -> dict:
        """One cron message for a process: its Cron-Tag-<Name> spawn tags as <Name> tags (plus `tags`)."""
        proc = self._proc(pid)
        cron_tags = []
        for t in proc.env["Process"]["Tags"]:
            name = t.get("name", "")
            if name.startswith("Cron-Tag-") and len(name) > 9 and t.get("value") not in (None, ""):
                cron_tags.append({"name": name[9:], "value": t["value"]})
        return self.inject(NODE_ID, pid, cron_tags + tag_list(tags), "", cron=True)

    def prints(self, pid: str) -> list[str]:
        return [strip_ansi(p) for p in self._proc(pid).prints]

    def output(self, pid: str) -> str:
        return "\n".join(self.prints(pid))

    def errors(self, pid: str) -> list[str]:
        return list(self._proc(pid).errors)

    def last_result(self, pid: str) -> dict | None:
        proc = self._proc(pid)
        return dict(proc.results[-1]) if proc.results else None

    def clear_output(self, pid: str) -> None:
        proc = self._proc(pid)
        proc.prints.clear()
        proc.errors.clear()

    # -- services -------------------------------------------------------------------------------------

    def start_services(self, workers: int = 2) -> dict:
        """The node's services in this node: APM registry (shipped packages published), wAR, the Llama
        Herder and its workers serving the demo model. Every process sees them in its env tags."""
        from aos_py.testing.services import start_services

        return start_services(self, workers)

    def faucet(self, pid: str, amount: object = 1) -> dict:
        from aos_py.testing.services import faucet

        return faucet(self, pid, amount)


def _output_text(output: object) -> str:
    if output is None:
        return ""
    if isinstance(output, dict):
        data = output.get("data")
        if data is None:
            return ""
        return data if isinstance(data, str) else _text(data)
    if isinstance(output, list):
        return "\n".join(_text(x) for x in output if x is not None)
    return _text(output)


def _error_text(err: object) -> str:
    text = strip_ansi(_text(err))
    marker = "error:\n"
    i = text.rfind(marker)
    if i >= 0:
        text = text[i + len(marker):]
    return text.strip()
