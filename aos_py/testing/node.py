"""aolite's API from Python: the object behind the `aos_node` pytest fixture.

Same operations as `require("aolite")` in a spec (snake_case, with the camelCase names as aliases),
on its own in-memory node. Messages come back as dicts shaped as the handler saw them (tags at the
root, `Tags` a name -> value map, `TagArray` the list); `eval` returns Python values (a Lua sequence
becomes a list, any other table a dict).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lupa.lua53 as lua53

from aos_py.testing import services as sim_services
from aos_py.testing.sim import SimError, SimNode, tag_list

_helper_lock = threading.Lock()
_helper: Any = None
_SPECIALS = set("^$()%.[]*+?")   # aos: "-" alone is not special


def _lua_helper() -> Any:
    global _helper
    if _helper is None:
        rt = lua53.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True)
        _helper = {
            "match": rt.eval("function(s, p) return string.match(s, p) ~= nil end"),
            "load": rt.eval("function(src) local f = assert(load(src, '=eval result', 't', "
                            "{ __bint = function(s) return s end, math = math })) return f() end"),
            "type": rt.eval("function(v) return type(v) end"),
        }
    return _helper


def _to_python(value: Any, depth: int = 0) -> Any:
    if lua53.lua_type(value) != "table":
        return value
    if depth > 100:
        return None
    items = list(value.items())
    if not items:
        return []
    keys = [k for k, _ in items]
    if all(isinstance(k, int) and not isinstance(k, bool) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
        return [_to_python(value[i], depth + 1) for i in range(1, len(keys) + 1)]
    return {k: _to_python(v, depth + 1) for k, v in items}


def lua_value(src: str | None) -> Any:
    """The value of `return <constructor>` text (what eval hands back) as Python."""
    if src is None:
        return None
    with _helper_lock:
        return _to_python(_lua_helper()["load"](src))


def _pattern_matches(pattern: Any, value: Any, msg: dict) -> bool:
    if pattern is None or pattern is False:
        return False
    if pattern == "_":
        return True
    if callable(pattern):
        return bool(pattern(value, msg))
    if isinstance(pattern, str):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return False
        p, v = pattern.lower(), str(value).lower()
        if any(c in _SPECIALS for c in p):
            with _helper_lock:
                return bool(_lua_helper()["match"](v, p))
        return v == p
    if isinstance(pattern, (list, tuple, set)):
        return any(_pattern_matches(sub, value, msg) for sub in pattern)
    return False


def matches_spec(msg: dict, spec: Any) -> bool:
    """aos's utils.matchesSpec: None matches all; a function decides; a string is the Action; a dict maps
    keys to patterns (exact text, "_" for present, a Lua pattern, a function, or a list of alternatives)."""
    if spec is None:
        return True
    if callable(spec):
        return bool(spec(msg))
    if isinstance(spec, str):
        return msg.get("Action") == spec
    if isinstance(spec, dict):
        for key, pattern in spec.items():
            value = msg.get(key)
            if value is None or value is False:
                return False
            if not _pattern_matches(pattern, value, msg):
                return False
        return True
    return False


class AosNode:
    """An in-memory AO node with aolite's operations (see aos_py/testing/sim.py for the model)."""

    def __init__(self, cwd: str | Path | None = None, *, timestamp: int | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self.sim = SimNode(cwd, timestamp=timestamp, echo=echo)

    # -- aolite --------------------------------------------------------------------------------------

    def spawn_process(self, pid: str, source: str | None = None, tags: Any = None, *, blueprints: Any = (),
                      packages: Any = (), owner: str | None = None) -> str:
        """aolite's spawnProcess(id, sourceOrModulePath, tags); `blueprints` / `packages` are installed first."""
        self.sim.spawn(pid, source, tags, owner=owner, blueprints=list(blueprints), packages=list(packages))
        return pid

    def send(self, msg: dict) -> dict:
        return self.sim.send(msg)

    def queue(self, msg: dict) -> dict:
        return self.sim.queue(msg)

    def eval(self, pid: str, code: str) -> Any:
        return lua_value(self.sim.eval(pid, code))

    def _autorun(self) -> None:
        if self.sim.auto:
            self.sim.run()

    def _messages(self, ids: list[str] | None, spec: Any, newest_first: bool, limit: int | None = None) -> list[dict]:
        out: list[dict] = []
        for mid in (reversed(ids) if newest_first else ids) if ids else ():
            m = self.sim.message(mid)
            if m is not None and matches_spec(m, spec):
                out.append(m)
                if limit and len(out) >= limit:
                    break
        return out

    def get_all_msgs(self, pid: str, match_spec: Any = None) -> list[dict] | None:
        """Messages sent to `pid`, newest first (as aolite returns them); None for an unknown process."""
        self._autorun()
        ids = self.sim.history_of(pid)
        if ids is None:
            return None
        return self._messages(ids, match_spec, True)

    def get_first_msg(self, pid: str, match_spec: Any = None) -> dict | None:
        self._autorun()
        found = self._messages(self.sim.history_of(pid), match_spec, False, 1)
        return found[0] if found else None

    def get_last_msg(self, pid: str, match_spec: Any = None) -> dict | None:
        self._autorun()
        found = self._messages(self.sim.history_of(pid), match_spec, True, 1)
        return found[0] if found else None

    def get_msgs(self, match_spec: Any = None) -> list[dict]:
        return self._messages(self.sim.all_ids(), match_spec, False)

    def get_msg_by_id(self, mid: str) -> dict | None:
        return self.sim.message(mid)

    def clear_all_messages(self, pid: str) -> bool:
        self.sim.clear_messages(pid)
        return True

    def clear_all_processes(self) -> None:
        self.sim.clear_all()

    def run_scheduler(self, cycles: int | None = None) -> int:
        return self.sim.run(cycles)

    def set_auto_schedule(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise SimError("setAutoSchedule expects a boolean")
        self.sim.auto = mode

    def is_auto_schedule(self) -> bool:
        return self.sim.auto

    def list_queue_messages(self, pid: str) -> list[dict] | None:
        ids = self.sim.queued(pid)
        return None if ids is None else self._messages(ids, None, False)

    def reorder_queue(self, pid: str, ids: list[str]) -> None:
        self.sim.reorder_queue(pid, list(ids))

    def set_message_log(self, path: str | Path | None) -> None:
        self.sim.message_log = str(path) if path else None

    def get_message_log(self) -> str | None:
        return self.sim.message_log

    def set_print_process_output(self, mode: bool) -> None:
        self.sim.print_output = bool(mode)

    # -- beyond aolite -------------------------------------------------------------------------------

    def load(self, pid: str, path: str | Path) -> None:
        self.sim.load_file(pid, path)

    def load_blueprint(self, pid: str, name: str) -> None:
        self.sim.load_blueprint(pid, name)

    def install_package(self, pid: str, name: str) -> str:
        return self.sim.install_package(pid, name)

    @property
    def timestamp(self) -> int:
        return self.sim.timestamp

    def set_timestamp(self, ms: int) -> None:
        self.sim.set_timestamp(ms)

    def advance_time(self, ms: int) -> int:
        return self.sim.advance_time(ms)

    @property
    def block_height(self) -> int:
        return self.sim.block_height

    def set_block_height(self, n: int) -> None:
        self.sim.block_height = int(n)

    def tick(self, pid: str, tags: Any = None) -> dict:
        return self.sim.tick(pid, tag_list(tags) if tags is not None else None)

    def prints(self, pid: str) -> list[str]:
        return self.sim.prints(pid)

    def output(self, pid: str) -> str:
        return self.sim.output(pid)

    def errors(self, pid: str) -> list[str]:
        return self.sim.errors(pid)

    def last_result(self, pid: str) -> dict | None:
        return self.sim.last_result(pid)

    def clear_output(self, pid: str) -> None:
        self.sim.clear_output(pid)

    def start_services(self, workers: int = 2) -> dict:
        """The node's services in this node: APM registry (shipped packages published), wAR, the Llama
        Herder and its workers serving the demo model. Every process sees them in its env tags."""
        return sim_services.start_services(self.sim, workers)

    @property
    def services(self) -> dict | None:
        return dict(self.sim.services) if self.sim.services else None

    def faucet(self, pid: str, amount: Any = 1) -> dict:
        return sim_services.faucet(self.sim, pid, amount)

    def processes(self) -> list[str]:
        return list(self.sim.processes)

    def close(self) -> None:
        self.sim.close()

    def __enter__(self) -> AosNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # aolite's own names
    spawnProcess = spawn_process
    getAllMsgs = get_all_msgs
    getFirstMsg = get_first_msg
    getLastMsg = get_last_msg
    getMsgs = get_msgs
    getMsgById = get_msg_by_id
    clearAllMessages = clear_all_messages
    clearAllProcesses = clear_all_processes
    runScheduler = run_scheduler
    setAutoSchedule = set_auto_schedule
    isAutoSchedule = is_auto_schedule
    listQueueMessages = list_queue_messages
    reorderQueue = reorder_queue
    setMessageLog = set_message_log
    getMessageLog = get_message_log
    setPrintProcessOutput = set_print_process_output
