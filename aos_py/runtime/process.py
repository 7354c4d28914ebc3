"""ProcessRuntime: one sandboxed Lua 5.3 state running the aos process library.

`handle(msg, env)` feeds one message through `process.handle` and returns the
JSON-shaped result. The message crosses into Lua as one table-constructor
string and the result comes back as one JSON string, so a message costs two
boundary crossings whatever its size.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lupa.lua53 as lua53

from aos_py.runtime.journal import HostJournal
from aos_py.runtime.luasrc import LuaSourceError, flat_args, to_lua
from aos_py.runtime.sources import read_chunk, read_source

try:  # orjson parses the result JSON about 3x faster; json is the fallback
    import orjson

    def _loads(text: bytes) -> object:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # not valid UTF-8 (binary data): keep the bytes
            return json.loads(_text(text))
except ImportError:  # pragma: no cover - orjson is a dependency
    def _loads(text: bytes) -> object:
        return json.loads(_text(text))

DEFAULT_MEMORY_LIMIT = 1 << 30
DEFAULT_COMPUTE_BUDGET = 200_000_000
HOOK_STEP = 1000
MAX_CALLBACK_EVENTS = 2000   # host log/progress events handed to Lua per llama call (the newest kept)

DataResolver = Callable[[str], "Path | str | None"]

LLAMA_METHODS = frozenset({
    "load", "set_prompt", "next", "run", "add", "stop", "info", "save_state",
    "load_state", "clear_state", "set_log_level", "set_callbacks",
})


class HandleError(Exception):
    """handle() itself failed: the process raised outside its handler machinery.

    The message must be treated as not applied (the network rule); the runtime's
    state may hold partial changes, so callers rebuild it by replay, unless
    `untouched`: the message failed before it could change anything lasting (e.g.
    its JSON Data did not decode), and the runtime may go on as it is.
    """

    def __init__(self, message: str, untouched: bool = False) -> None:
        super().__init__(message)
        self.untouched = untouched


def _deny_private(obj: object, attr: object, is_setting: bool) -> object:
    """lupa attribute filter: Lua never reaches Python internals."""
    if not isinstance(attr, str) or attr.startswith("_"):
        raise AttributeError("access denied")
    return attr


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _to_lua_value(value: object) -> object:
    """Python values the llama host returns, as lupa pushes them with no encoding."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return value


class ProcessRuntime:
    """One aos process: a Lua state with the aos library, a sandbox and limits."""

    def __init__(
        self,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        compute_budget: int | None = DEFAULT_COMPUTE_BUDGET,
        data_resolver: DataResolver | None = None,
        llama_engine: str | None = None,
    ) -> None:
        if memory_limit is not None and memory_limit < (1 << 20):
            raise ValueError(f"memory_limit must be at least 1 MiB, got {memory_limit}")
        if compute_budget is not None and compute_budget < HOOK_STEP:
            raise ValueError(f"compute_budget must be at least {HOOK_STEP} instructions, got {compute_budget}")
        self.memory_limit = memory_limit
        self._effective_limit = memory_limit or 0    # lowered by the node when its processes share little
        self.compute_budget = compute_budget
        self.data_resolver = data_resolver
        # which engine `require("llama")` uses: the argument, else $AOS_PY_LLAMA_ENGINE, else wasm
        self.llama_engine = llama_engine or os.environ.get("AOS_PY_LLAMA_ENGINE", "").strip() or "wasm"
        self._lock = threading.RLock()
        self._llama_host: Any = None
        self._journal: HostJournal | None = None
        self._pending_journal: list | None = None     # the journal of the message being replayed
        self.last_journal: list | None = None         # host calls of the message just handled
        self._closed = False
        self._lua = lua53.LuaRuntime(
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            encoding=None,
            attribute_filter=_deny_private,
            max_memory=memory_limit or 0,
        )
        bridge = read_source("_bridge.lua")
        if bridge is None:
            raise RuntimeError("the aos process library is missing lua/_bridge.lua")
        chunk = self._lua.eval(b"function(src) return load(src, '=bridge', 't') end")(bridge)
        if chunk is None:
            raise RuntimeError("lua/_bridge.lua does not compile")
        try:
            self._entry, self._ctl, self._entry_flat, self._state_dump = chunk(
                self._load_source,
                self._resolve_data,
                self._make_llama,
                compute_budget,
                HOOK_STEP,
            )
        except lua53.LuaError as exc:
            raise RuntimeError(f"the aos process library failed to load: {_text(exc.args[0] if exc.args else exc)}") from None
        self._needs_reset = False
        self._last_env: dict | None = None
        self._last_env_src = b""

    # -- callbacks reached from Lua (held only as upvalues of the bridge) ----

    def _load_source(self, relpath: bytes, chunkname: bytes) -> bytes | None:
        try:
            return read_chunk(_text(relpath), _text(chunkname))
        except Exception:  # noqa: BLE001 - a missing module, not a host crash
            return None

    def _resolve_data(self, data_id: bytes) -> bytes | None:
        if self.data_resolver is None:
            return None
        try:
            path = self.data_resolver(_text(data_id))
        except Exception:  # noqa: BLE001 - unresolvable data is "no such file"
            return None
        if path is None:
            return None
        p = Path(path)
        if not p.is_file():
            return None
        return str(p).encode("utf-8", "surrogateescape")

    def _make_llama(self) -> Callable[..., tuple[bool, object]]:
        if self._llama_host is None:
            from aos_py.inference.host import make_llama_host

            self._llama_host = make_llama_host(self.data_resolver, self.llama_engine)
            self._journal = HostJournal(self._llama_host)
            self._journal.begin(self._pending_journal)
        host = self._llama_host
        journal = self._journal

        def run(name: str, py_args: list) -> tuple[bool, object]:
            try:
                return True, getattr(host, name)(*py_args)
            except Exception as exc:  # noqa: BLE001 - surfaces in Lua as an error string
                return False, str(exc) or type(exc).__name__

        def call(method: bytes, *args: object) -> tuple:
            """(ok, value, then kind, a, b per host callback made during the call: the bridge plays them
            to Llama.onLog (kind 1) / Llama.onProgress (kind 2) in Lua)."""
            name = _text(method)
            if name not in LLAMA_METHODS:
                return False, f"llama: unknown method {name}".encode()
            events: list = []
            try:
                if name == "set_callbacks":   # the Lua functions stay in Lua; the host records events
                    py_args: list = [lambda *a: journal.event(0, a), lambda *a: journal.event(1, a)]
                else:
                    py_args = [self._from_lua_arg(a) for a in args]
                ok, value, events = journal.call(name, py_args, lambda: run(name, py_args))
            except Exception as exc:  # noqa: BLE001 - e.g. the engine could not be rebuilt
                ok, value = False, str(exc) or type(exc).__name__
            flat: list = []
            for ev in events[-MAX_CALLBACK_EVENTS:]:
                flat += [int(ev[0]) + 1, _to_lua_value(ev[1]) if len(ev) > 1 else None,
                         _to_lua_value(ev[2]) if len(ev) > 2 else None]
            return (ok, _to_lua_value(value), *flat)

        return call

    @staticmethod
    def _from_lua_arg(value: object) -> object:
        if isinstance(value, bytes):
            return _text(value)
        return value

    # -- public API ----------------------------------------------------------

    def handle(self, msg: dict, env: dict, journal: list | None = None) -> dict:
        """Run one message; returns {Output, Messages, Spawns, Assignments, Error, GasUsed}.

        A runaway message (compute budget or memory limit) gives an Error
        result. Raises HandleError when process.handle itself fails.
        `journal`: the host calls this message made when it was first computed (a replay answers them
        from it); afterwards `last_journal` holds the host calls of this message (None if it made none).
        """
        self._pending_journal = journal
        if self._journal is not None:
            self._journal.begin(journal)
        try:
            return self._handle(msg, env)
        finally:
            self.last_journal = self._journal.end() if self._journal is not None else None
            self._pending_journal = None

    def _handle(self, msg: dict, env: dict) -> dict:
        if self._closed:
            raise HandleError("this process runtime is closed")
        if not isinstance(msg, dict) or not isinstance(env, dict):
            raise HandleError("handle() needs a message dict and an env dict")
        try:
            flat = flat_args(msg)
            msg_src = to_lua(msg, "msg") if flat is None else b""
            if env != self._last_env:
                self._last_env_src = to_lua(env, "env")
                self._last_env = copy.deepcopy(env)
            env_src = self._last_env_src
        except LuaSourceError as exc:
            raise HandleError(f"invalid message: {exc}") from None
        with self._lock:
            if self._needs_reset:
                self._ctl[b"used"] = 0
                self._ctl[b"exhausted"] = False
                self._needs_reset = False
            try:
                if flat is None:
                    ok, text, gas, *rest = self._entry(msg_src, env_src)
                else:
                    ok, text, gas, *rest = self._entry_flat(env_src, *flat)
            except lua53.LuaMemoryError:
                self._needs_reset = True
                return self._limit_error(self._memory_message(), self._gas())
            except lua53.LuaError as exc:
                self._needs_reset = True
                if self._ctl[b"exhausted"]:
                    return self._limit_error(self._budget_message(), self._gas())
                raise HandleError(_text(exc.args[0] if exc.args else exc)) from None
            if self._ctl[b"exhausted"]:
                self._needs_reset = True
                return self._limit_error(self._budget_message(), gas)
        if not ok:
            message = _text(text)
            if message == "not enough memory":
                return self._limit_error(self._memory_message(), gas)
            raise HandleError(message, untouched=bool(rest and rest[0]))
        result = _loads(text)
        if result == []:  # an empty Lua table encodes as an array
            result = {}
        if not isinstance(result, dict):
            raise HandleError(f"process.handle returned {type(result).__name__}, not a result table")
        result["GasUsed"] = int(gas)
        error = result.get("Error")
        if isinstance(error, str) and "not enough memory" in error and self._effective_limit < self.memory_limit:
            # caught inside the handlers (aos's own text kept): say why the limit was lower than usual
            result["Error"] = f"{error}\n{self._memory_message()}"
        return result

    def warm(self) -> None:
        """After a replay: rebuild the llama engine's model now (not at the first live call that needs it)."""
        with self._lock:
            if self._journal is not None and not self._closed:
                self._journal.warm()

    def eval_lua(self, code: str) -> object:
        """Run host-side Lua in this state (tests and tools; not for process code)."""
        with self._lock:
            return self._lua.execute(code.encode("utf-8"))

    def state_dump(self) -> str:
        """The process's global state as canonical text (for comparing a process with
        a replay of its log: equal states give equal dumps). Does not change the state."""
        if self._closed:
            raise HandleError("this process runtime is closed")
        with self._lock:
            return _text(self._state_dump())

    def limit_memory(self, limit: int) -> None:
        """Lower (or restore) this process's memory limit for the next messages, at most its own limit: the
        node shares a memory budget between its processes."""
        if not self.memory_limit or self._closed:
            return
        limit = max(1 << 20, min(int(limit), self.memory_limit))
        if limit != self._effective_limit:
            self._lua.set_max_memory(limit, total=True)
            self._effective_limit = limit

    def memory_used(self) -> int:
        """Bytes currently allocated by this Lua state."""
        return int(self._lua.get_memory_used())

    def close(self) -> None:
        """Release the Lua state."""
        self._closed = True
        self._entry = None
        self._entry_flat = None
        self._state_dump = None
        self._ctl = None
        self._lua = None  # type: ignore[assignment]
        self._llama_host = None

    def __enter__(self) -> ProcessRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------

    def _gas(self) -> int:
        try:
            return int(self._ctl[b"used"])
        except Exception:  # noqa: BLE001
            return 0

    def _budget_message(self) -> str:
        return (f"compute budget exceeded: the message ran more than {self.compute_budget:,} "
                "Lua instructions and was stopped")

    def _memory_message(self) -> str:
        if self._effective_limit < self.memory_limit:
            return (f"memory limit exceeded: the node's processes share a memory budget and this one may use "
                    f"at most {self._effective_limit:,} bytes now (its own limit is {self.memory_limit:,}); "
                    "the message was stopped")
        return (f"memory limit exceeded: the process may use at most {self.memory_limit:,} bytes "
                "and the message was stopped")

    @staticmethod
    def _limit_error(message: str, gas: int) -> dict:
        return {"Error": message, "GasUsed": int(gas)}
