"""One process of the in-memory node of `aos test` (aos_py/testing/sim.py).

A sandboxed aos-py `ProcessRuntime` (Lua 5.3 with the aos 2.0.4 library) whose `require` also finds the
project's own Lua files, driven directly by the test host through the hooks of
lua/testing/process_hooks.lua, with the queue, prints, errors, results and cron schedule the node keeps
for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lupa.lua53 as lua53

from aos_py.runtime import ProcessRuntime
from aos_py.runtime.sources import read_source
from aos_py.testing.messages import SimError, _dumps, _text, error_text, output_text

NODE_ID = "aos-test-node"            # owner of the services, sender of cron ticks, every process's Authority
RESULTS_KEPT = 1000                  # recent results kept per process

_SERVICE_TAGS = (("APM-Registry", "apm-registry"), ("Wrapped-AR", "war"), ("Llama-Herder", "herder"))


class _Runtime(ProcessRuntime):
    """A ProcessRuntime whose `require` also finds the project's own Lua files (as aolite's does)."""

    def __init__(self, user_module: Callable[[str, str], bytes | None],
                 data_resolver: Callable[[str], Path | None]) -> None:
        self._user_module = user_module      # set first: the library's own loading already asks for modules
        super().__init__(data_resolver=data_resolver)

    def _load_source(self, relpath: bytes, chunkname: bytes) -> bytes | None:
        src = super()._load_source(relpath, chunkname)
        if src is None:
            src = self._user_module(_text(relpath), _text(chunkname))
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

    def hook(self, name: str, *args: object) -> Any:
        """Call one of the host hooks of lua/testing/process_hooks.lua in this process."""
        try:
            return self.runtime.call(self.hooks[name.encode()], *args)
        except lua53.LuaError as exc:
            raise SimError(f"{self.id}: {_text(exc.args[0] if exc.args else exc)}") from None

    def keep_result(self, mid: object, res: dict) -> list[str]:
        """Keep a result (its Output among the prints, its Error among the errors); returns both as text."""
        self.results.append({"Id": mid, **res})
        shown = []
        out = output_text(res.get("Output"))
        if out:
            self.prints.append(out)
            shown.append(out)
        if res.get("Error"):
            err = error_text(res["Error"])
            self.errors.append(err)
            shown.append(err)
        return shown

    @contextmanager
    def acting_owner(self) -> Iterator[str]:
        """The Owner the host loads code as: its Owner, or (renounced) the Owner it was spawned with."""
        current = self.runtime.get_global("Owner")
        stand_in = not isinstance(current, bytes) or not current
        if stand_in:
            self.runtime.set_global("Owner", self.owner.encode())
        try:
            yield self.owner if stand_in else _text(current)
        finally:
            if stand_in and self.runtime.get_global("Owner") == self.owner.encode():
                self.runtime.set_global("Owner", current)

    def reorder(self, ids: list[str]) -> None:
        """aolite's reorderQueue: `ids` must be a permutation of the queued ids."""
        if len(ids) != len(self.queue):
            raise SimError(f"newOrderIds must have exactly {len(self.queue)} items")
        if sorted(ids) != sorted(self.queue):
            raise SimError("newOrderIds must be a permutation of the queued message ids")
        self.queue = deque(ids)

    def next_child_id(self, taken: Container[str]) -> str:
        """The id of the next process it spawns: <its id>:<its spawn count>, skipping ids `taken`."""
        self.spawn_counter += 1
        child = f"{self.id}:{self.spawn_counter}"
        while child in taken:
            self.spawn_counter += 1
            child = f"{self.id}:{self.spawn_counter}"
        return child

    def use_module(self) -> None:
        """aolite's Module tag: load the Lua module that implements its process module."""
        used = self.hook("use_module", self.module.encode("utf-8"))
        if isinstance(used, tuple) and len(used) > 1 and used[1]:
            raise SimError(f"aolite: the process module {self.module} of {self.id} failed to load: "
                           f"{_text(used[1])}")

    def cron_tags(self) -> list[dict]:
        """Its Cron-Tag-<Name> spawn tags as the <Name> tags of a cron message."""
        out = []
        for t in self.env["Process"]["Tags"]:
            name = t.get("name", "")
            if name.startswith("Cron-Tag-") and len(name) > 9 and t.get("value") not in (None, ""):
                out.append({"name": name[9:], "value": t["value"]})
        return out

    def schedule_cron(self, after: int) -> None:
        """The next cron tick falls one Cron-Interval after `after` (ms)."""
        self.next_cron = after + max(1, int(self.cron * 1000))    # type: ignore[operator]


def cron_interval(tags: Mapping[str, object]) -> float | None:
    """A spawn's Cron-Interval tag in seconds (None: no cron)."""
    if not tags.get("Cron-Interval"):
        return None
    from aos_py.node.cron import parse_interval

    try:
        return parse_interval(str(tags["Cron-Interval"]))
    except ValueError as exc:
        raise SimError(str(exc)) from None


def first_cron_due(processes: Mapping[str, SimProcess], end: int) -> tuple[int, str] | None:
    """(when, process id) of the earliest cron tick due by `end` (ms), or None."""
    due = [(p.next_cron, pid) for pid, p in processes.items()
           if p.cron is not None and p.next_cron is not None and p.next_cron <= end]
    return min(due) if due else None


def env_tags(tags: list[dict], pid: str, module: str, services: dict | None) -> list[dict]:
    """A process's tags as its env shows them: Module, Name and Authority, and the node's services."""
    out = [dict(t) for t in tags]
    names = {t["name"] for t in out}
    if "Module" not in names:
        out.append({"name": "Module", "value": module})
    if "Name" not in names:
        out.append({"name": "Name", "value": pid})
    out.append({"name": "Authority", "value": NODE_ID})
    if services:
        for name, key in _SERVICE_TAGS:
            if key in services and name not in names:
                out.append({"name": name, "value": services[key]})
    return out


def new_process(pid: str, owner: str, module: str, tags: list[dict], *, tags_as_globals: bool, now: int,
                services: dict | None, user_module: Callable[[str, str], bytes | None],
                data_resolver: Callable[[str], Path | None]) -> SimProcess:
    """A process with a fresh runtime, the host hooks loaded and aolite's globals set, not booted yet (no
    message handled). `tags`: its spawn tags; `now`: the node's clock (ms), its cron ticks count from it."""
    tmap = {t["name"]: t["value"] for t in tags}
    cron = cron_interval(tmap)
    runtime = _Runtime(user_module, data_resolver)
    env = {"Process": {"Id": pid, "Owner": owner, "Tags": env_tags(tags, pid, module, services)},
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
        proc.next_cron = now + int(cron * 1000)
    # aolite: the tags become globals, Owner is the spawner (or the process itself), Name its id
    globals_ = {"Owner": owner, "Name": tmap.get("Name", pid)}
    if tags_as_globals:
        globals_.update({k: v for k, v in tmap.items() if isinstance(k, str)})
    proc.hook("set_globals", _dumps(globals_))
    return proc
