"""One spec file in its own Lua state: busted's API, luassert, and `require("aolite")` on a fresh node.

The spec runs with the full Lua standard library (it is the user's test code, not a process);
`package.path` gets busted's default `./src/?.lua;./src/?/?.lua;./src/?/init.lua` in front, and
modules of the aos library (json, bint, utils, ...) are found after the user's own. The processes
it spawns are sandboxed aos-py process runtimes in the in-memory node of aos_py/testing/sim.py.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import lupa.lua53 as lua53

from aos_py.runtime.sources import read_chunk
from aos_py.testing.services import faucet, start_services
from aos_py.testing.sim import SimError, SimNode, _dumps, _loads, _text

BUSTED_LPATH = "./src/?.lua;./src/?/?.lua;./src/?/init.lua;"

_SETUP = b"""
local load_bundled, emit, report, clock, options, aolite_call, spec_path = ...
python = nil
package.path = options.lpath .. package.path
os.exit = function() error("os.exit is not available in a spec (aos test runs many files in one process)", 2) end

-- modules of the aos library, loaded privately (for the testing modules) or found by require
local private = {}
local function bundled_chunk(name)
  local path = name:gsub("^%.", ""):gsub("%.", "/")
  local chunk = load_bundled(path .. ".lua", name) or load_bundled(path .. "/init.lua", name)
  return chunk
end
local function bundled(name)
  local m = private[name]
  if m ~= nil then return m end
  local chunk = bundled_chunk(name)
  if not chunk then error("module '" .. name .. "' is not part of the aos library", 2) end
  m = assert(load(chunk, name, "bt"))(name)
  if m == nil then m = true end
  private[name] = m
  return m
end
table.insert(package.searchers, function(name)
  if type(name) ~= "string" or name:find("^testing") then return nil end
  local chunk = bundled_chunk(name)
  if not chunk then return "\\n\\tno module '" .. name .. "' in the aos library" end
  return assert(load(chunk, name, "bt")), name
end)

local fmt = bundled("testing.format")
local luassert = assert(load(load_bundled("testing/luassert.lua", "testing.luassert"), "testing.luassert", "bt"))(fmt)
local busted = assert(load(load_bundled("testing/busted.lua", "testing.busted"), "testing.busted", "bt"))(
  report, clock, options, fmt, luassert, "@" .. spec_path)
busted.install(_G)

print = function(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  emit(table.concat(parts, "\\t"))
end

local aolite
package.preload["aolite"] = function()
  if not aolite then
    aolite = assert(load(load_bundled("testing/aolite.lua", "testing.aolite"), "testing.aolite", "bt"))(
      aolite_call, bundled)
  end
  return aolite
end
local busted_module = setmetatable({}, { __index = busted.api })
package.preload["busted"] = function() return busted_module end
package.preload["busted.runner"] = function() return function() end end
package.preload["luassert"] = function() return luassert.assert end
package.preload["luassert.spy"] = function() return luassert.spy end
package.preload["luassert.stub"] = function() return luassert.stub end
package.preload["luassert.mock"] = function() return luassert.mock end
package.preload["luassert.match"] = function() return luassert.match end
package.preload["aolite.lib.json"] = function() return bundled("json") end
package.preload["aolite.lib.log"] = function()
  local function at(level) return function(...) if (tonumber(PrintVerb) or 0) >= level then print(...) end end end
  return { warn = at(1), info = at(2), debug = at(3) }
end
PrintVerb = tonumber(os.getenv("AOLITE_PRINT_VERB")) or 0

return function()
  local fn, err = loadfile(spec_path)
  if not fn then
    report("error", tonumber(tostring(err):match(":(%d+):")) or 0, "(loading " .. spec_path .. ")", err, nil, nil, 0, nil)
    return
  end
  local ok, rec = xpcall(fn, busted.handler)
  if not ok then
    report("error", rec.line or 0, "(loading " .. spec_path .. ")", rec.message, nil, nil, 0, rec.traceback)
    return
  end
  busted.run()
end
"""


@dataclass
class TestRecord:
    __test__ = False             # not a pytest test class
    status: str                  # pass | fail | error | pending
    file: str
    line: int
    name: str
    message: str | None = None
    expected: str | None = None
    actual: str | None = None
    ms: float = 0.0
    detail: str | None = None


@dataclass
class FileResult:
    file: str
    records: list[TestRecord] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output_at: list[int] = field(default_factory=list)    # per output line: how many records came before it

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> FileResult:
        return FileResult(d["file"], [TestRecord(**r) for r in d["records"]], list(d["output"]), d["seconds"],
                          list(d.get("output_at") or []))

    def add_output(self, text: str) -> None:
        self.output.append(text)
        self.output_at.append(len(self.records))


def _str(value: object) -> str | None:
    if value is None:
        return None
    return _text(value)


class AoliteHost:
    """What lua/testing/aolite.lua calls: host(name, ...) -> True, values... | False, error text."""

    def __init__(self, echo) -> None:
        self.echo = echo
        self.node: SimNode | None = None

    def sim(self) -> SimNode:
        if self.node is None:
            self.node = SimNode(echo=self.echo)
        return self.node

    def close(self) -> None:
        if self.node is not None:
            self.node.close()
            self.node = None

    def __call__(self, name: bytes, *args: object) -> tuple:
        try:
            fn = getattr(self, "op_" + _text(name))
        except AttributeError:
            return False, f"aolite: unknown operation {_text(name)}".encode()
        try:
            out = fn(*args)
        except SimError as exc:
            return False, str(exc).encode("utf-8", "surrogateescape")
        except Exception as exc:  # noqa: BLE001 - a host failure becomes the spec's error, not a crash
            return False, f"aolite: {type(exc).__name__}: {exc}".encode("utf-8", "surrogateescape")
        if isinstance(out, tuple):
            return (True, *out)
        return True, out

    # -- operations (arguments arrive as Lua values: strings as bytes) --

    def op_spawn(self, pid, source, tags_json, opts_json, package_path):
        opts = _loads(opts_json) if opts_json else {}
        if not isinstance(opts, dict):
            opts = {}
        tags = _loads(tags_json) if tags_json else None
        src = _str(source) if isinstance(source, (bytes, str)) else None
        self.sim().spawn(_text(pid), src, tags, owner=opts.get("owner"),
                         blueprints=_list(opts.get("blueprints")), packages=_list(opts.get("packages")),
                         search_path=_str(package_path))
        return None

    def op_send(self, msg_json):
        return self.sim().send(_loads(msg_json))["Id"].encode()

    def op_queue(self, msg_json):
        return self.sim().queue(_loads(msg_json))["Id"].encode()

    def op_eval(self, pid, code):
        src = self.sim().eval(_text(pid), _text(code))
        return src.encode("utf-8", "surrogateescape") if src is not None else None

    def op_message(self, mid):
        text, rev = self.sim().message_json(_text(mid))
        return text, rev

    def op_autorun(self):
        if self.sim().auto:
            self.sim().run()

    def _entries(self, ids):
        if ids is None:
            return None
        store = self.sim().store
        return _dumps([[i, store[i].rev if i in store else 0] for i in ids])

    def op_history(self, pid):
        return self._entries(self.sim().history_of(_text(pid)))

    def op_ids(self):
        return self._entries(self.sim().all_ids())

    def op_queued(self, pid):
        return self._entries(self.sim().queued(_text(pid)))

    def op_reorder(self, pid, ids_json):
        ids = _loads(ids_json)
        if isinstance(ids, dict):
            ids = [ids[k] for k in sorted(ids, key=lambda k: int(k) if str(k).isdigit() else 0)]
        self.sim().reorder_queue(_text(pid), [str(i) for i in ids])

    def op_run(self, cycles=None):
        self.sim().run(int(cycles) if cycles is not None else None)

    def op_clear_all(self):
        self.sim().clear_all()

    def op_clear_messages(self, pid):
        self.sim().clear_messages(_text(pid))

    def op_set_auto(self, mode):
        self.sim().auto = bool(mode)

    def op_is_auto(self):
        return self.sim().auto

    def op_set_message_log(self, path):
        self.sim().message_log = _str(path)

    def op_get_message_log(self):
        p = self.sim().message_log
        return p.encode() if p else None

    def op_set_print(self, mode):
        self.sim().print_output = bool(mode)

    def op_is_print(self):
        return self.sim().print_output

    def op_load_file(self, pid, path):
        self.sim().load_file(_text(pid), _text(path))

    def op_load_blueprint(self, pid, name):
        self.sim().load_blueprint(_text(pid), _text(name))

    def op_install_package(self, pid, name):
        return self.sim().install_package(_text(pid), _text(name)).encode()

    def op_get_timestamp(self):
        return self.sim().timestamp

    def op_set_timestamp(self, ms):
        self.sim().set_timestamp(int(ms))

    def op_advance_time(self, ms):
        return self.sim().advance_time(int(ms))

    def op_get_block_height(self):
        return self.sim().block_height

    def op_set_block_height(self, n):
        self.sim().block_height = int(n)

    def op_tick(self, pid, tags_json=None):
        return self.sim().tick(_text(pid), _loads(tags_json) if tags_json else None)["Id"].encode()

    def op_prints(self, pid):
        return _dumps(self.sim().prints(_text(pid)))

    def op_output(self, pid):
        return self.sim().output(_text(pid)).encode("utf-8", "surrogateescape")

    def op_errors(self, pid):
        return _dumps(self.sim().errors(_text(pid)))

    def op_last_result(self, pid):
        res = self.sim().last_result(_text(pid))
        return _dumps(res) if res is not None else None

    def op_clear_output(self, pid):
        self.sim().clear_output(_text(pid))

    def op_start_services(self, workers=None):
        return _dumps(start_services(self.sim(), int(workers) if workers is not None else 2))

    def op_services(self):
        s = self.sim().services
        return _dumps(s) if s else None

    def op_faucet(self, pid, amount=None):
        return _dumps(faucet(self.sim(), _text(pid), _text(amount) if amount is not None else 1))

    def op_processes(self):
        return _dumps(list(self.sim().processes))


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=lambda k: int(k) if str(k).isdigit() else 0)]
    return [str(v) for v in value]


def _load_bundled(relpath: bytes, chunkname: bytes) -> bytes | None:
    try:
        return read_chunk(_text(relpath), _text(chunkname))
    except Exception:  # noqa: BLE001 - a missing module
        return None


def run_file(path: str, filter: str | None = None, bail: bool = False) -> FileResult:
    """Run one spec file (path as the user named it, relative to the current directory) on its own node."""
    result = FileResult(path)
    started = time.perf_counter()

    def emit(text: bytes) -> None:
        result.add_output(_text(text))

    def report(status, line, name, message, expected, actual, ms, detail) -> None:
        result.records.append(TestRecord(
            status=_text(status), file=path, line=int(line or 0), name=_text(name), message=_str(message),
            expected=_str(expected), actual=_str(actual), ms=float(ms or 0), detail=_str(detail)))

    host = AoliteHost(result.add_output)
    lua = lua53.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True, encoding=None)
    try:
        options = lua.table_from({b"filter": filter.encode() if filter else None, b"bail": bool(bail),
                                  b"lpath": BUSTED_LPATH.encode()})
        setup = lua.execute(_SETUP, _load_bundled, emit, report, time.perf_counter, options, host,
                            path.encode("utf-8", "surrogateescape"))
        setup()
    except lua53.LuaError as exc:
        result.records.append(TestRecord("error", path, 0, f"(running {path})", _text(exc.args[0] if exc.args else exc)))
    finally:
        host.close()
    result.seconds = time.perf_counter() - started
    return result
