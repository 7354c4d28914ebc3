"""The compute unit: one ProcessRuntime per live process, fed the messages of its log.

A runtime is built lazily by replaying the messages that computed without
Error. After an Error result (or a HandleError) the runtime is thrown away, so
that message's partial state changes vanish: the next message rebuilds it by
replay. Dry-runs live in dryrun.py.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from aos_py.node.ans104 import DataItem, b64url
from aos_py.node.su import Slot
from aos_py.runtime import HandleError, ProcessRuntime

RESULT_LISTS = ("Messages", "Spawns", "Assignments")

try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _loads = json.loads


def item_message(item: DataItem, pid: str, slot: Slot, module: str, *, cron: bool = False,
                 authorities: frozenset[str] | set[str] = frozenset()) -> dict:
    """The message the process sees (without Data): fields as the AO CU builds them.

    From is the signed From-Process tag, as on AO (aos itself drops a claim from a signer that is not an
    authority: "Message is not trusted"), except that a claim to BE an authority (the node's messenger,
    which owns the node's services) is ignored unless an authority signed it: From is then the signer.
    aos trusts any message whose From is an authority, so that claim would let a user pose as the node."""
    owner = item.owner_address
    from_process = None
    tags = []
    for n, v in item.tags:
        tags.append({"name": n, "value": v})
        if n == "From-Process" and from_process is None:
            from_process = v
    if from_process is not None and from_process in authorities and owner not in authorities:
        from_process = None
    msg = {"Id": item.id, "Signature": b64url(item.signature), "Owner": owner,
           "Target": item.target_id or pid, "From": from_process or owner, "Tags": tags,
           "Epoch": slot.epoch, "Nonce": slot.nonce, "Timestamp": slot.timestamp,
           "Block-Height": slot.height, "Hash-Chain": slot.chain, "Cron": cron, "Read-Only": False,
           "Module": module}
    if item.anchor:
        try:
            msg["Anchor"] = item.anchor.decode("utf-8")
        except UnicodeDecodeError:
            msg["Anchor"] = b64url(item.anchor)
    if from_process:
        msg["Forwarded-By"] = owner
    return msg


def data_value(data: bytes | None) -> str | bytes:
    """Data as the process sees it: text when it is UTF-8, else the raw bytes."""
    if not data:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(data)


NODE_MEMORY_DEFAULT = 2 << 30   # the Lua heaps of all live processes together (AOS_PY_NODE_MEMORY)


def node_memory_cap() -> int:
    """The node's memory budget for process heaps: $AOS_PY_NODE_MEMORY ("2g", "512m", bytes; 0 = none)."""
    text = os.environ.get("AOS_PY_NODE_MEMORY", "").strip().lower()
    if not text:
        return NODE_MEMORY_DEFAULT
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
    try:
        value = int(float(text[:-1] if scale != 1 else text) * scale)
    except ValueError:
        raise ValueError(f"AOS_PY_NODE_MEMORY must be a size such as 2g or 512m, not {text!r}") from None
    return max(value, 0)


def journal_list(journal: str | None) -> list | None:
    """A logged journal (JSON text; see aos_py/runtime/journal.py) as the runtime takes it."""
    return json.loads(journal) if journal else None


def replay_logged(rt: ProcessRuntime, env: dict, rows: Iterable[tuple[str, bytes | None, str | None]],
                  ) -> dict | None:
    """Feed logged (msg json, data, journal) rows to a runtime as they were first computed (their logged
    llama calls answered from the journal); returns the last message applied."""
    msg = None
    for msg_json, data, journal in rows:
        msg = _loads(msg_json)
        msg["Data"] = data_value(data)
        try:
            rt.handle(msg, env, journal_list(journal))
        except HandleError:
            pass   # it succeeded when first computed; a replay keeps going like the original did
    return msg


def shape_result(res: dict) -> dict:
    """{Output, Messages, Spawns, Assignments, GasUsed[, Error]} with the lists always present."""
    out = {"Output": res.get("Output") if res.get("Output") is not None else ""}
    for k in RESULT_LISTS:
        v = res.get(k)
        out[k] = v if isinstance(v, list) else []
    out["GasUsed"] = res.get("GasUsed", 0)
    if res.get("Error") is not None:
        out["Error"] = res["Error"]
    return out


class ComputeUnit:
    """Runtimes of live processes (LRU-bounded); rebuilt from the log on demand."""

    def __init__(self, runtime_factory: Callable[[], ProcessRuntime],
                 replay_source: Callable[[str], Iterable[tuple[str, bytes | None, str | None]]],
                 env_of: Callable[[str], dict], max_live: int = 2000, memory_cap: int | None = None) -> None:
        self.factory = runtime_factory
        self.replay_source = replay_source
        self.env_of = env_of
        self.max_live = max_live
        self.live: OrderedDict[str, ProcessRuntime] = OrderedDict()
        self.replayed = 0
        # the scheduling thread and the off-thread pool (parallel.py) compute different processes at once:
        # the lock guards `live`; `in_use` keeps a runtime that is computing from being evicted
        self._lock = threading.Lock()
        self._in_use: set[str] = set()
        # one memory budget for the Lua heaps of all live processes (the host's RSS stays bounded):
        # idle runtimes are evicted (rebuilt by replay when needed) and limits lowered to what is left
        self.memory_cap = memory_cap if memory_cap is not None else node_memory_cap()
        self._mem: dict[str, int] = {}
        self._mem_total = 0

    def is_live(self, pid: str) -> bool:
        return pid in self.live

    def uses_llama(self, pid: str) -> bool:
        """Whether the process has loaded the llama host (its messages may run for a long time)."""
        rt = self.live.get(pid)
        return rt is not None and getattr(rt, "_llama_host", None) is not None

    def _replay(self, pid: str, extra: Iterable[tuple[str, bytes | None, str | None]] = ()) -> ProcessRuntime:
        rt = self.factory()
        env = self.env_of(pid)
        for source in (self.replay_source(pid), extra):
            replay_logged(rt, env, self._counted(source))
        return rt

    def _counted(self, rows: Iterable) -> Iterable:
        for row in rows:
            self.replayed += 1
            yield row

    def runtime(self, pid: str, extra: Iterable[tuple[str, bytes | None, str | None]] = ()) -> ProcessRuntime:
        with self._lock:
            rt = self.live.get(pid)
            if rt is not None:
                self.live.move_to_end(pid)
                return rt
        rt = self._replay(pid, extra)
        victims = []
        with self._lock:
            self.live[pid] = rt
            if len(self.live) > self.max_live:
                for old in list(self.live):
                    if len(self.live) <= self.max_live:
                        break
                    if old != pid and old not in self._in_use:
                        self._forget_memory(old)
                        victims.append(self.live.pop(old))
        for victim in victims:
            victim.close()
        return rt

    def compute(self, pid: str, msg: dict,
                extra: Iterable[tuple[str, bytes | None, str | None]] = ()) -> tuple[dict, bool, str | None]:
        """Run one message; returns (result, ok, journal json or None). A failed message leaves no trace."""
        with self._lock:
            self._in_use.add(pid)
        journal = None
        untouched = False
        try:
            rt = self.runtime(pid, extra)
            self._fit_memory(pid, rt)
            res = rt.handle(msg, self.env_of(pid))
            self._note_memory(pid, rt)
            if rt.last_journal:
                journal = json.dumps(rt.last_journal, separators=(",", ":"))
        except HandleError as exc:
            res = {"Error": str(exc)}
            untouched = exc.untouched
        except Exception as exc:  # noqa: BLE001 - a broken runtime must fail this message, not wedge the node
            res = {"Error": f"the process could not be run: {type(exc).__name__}: {exc}"}
        finally:
            with self._lock:
                self._in_use.discard(pid)
        result = shape_result(res)
        ok = "Error" not in result
        if not ok and not untouched:   # its partial changes go: the runtime is rebuilt from the log
            self.discard(pid)
        return result, ok, journal if ok else None

    def _note_memory(self, pid: str, rt: ProcessRuntime) -> None:
        used = rt.memory_used()
        with self._lock:
            self._mem_total += used - self._mem.get(pid, 0)
            self._mem[pid] = used

    def _forget_memory(self, pid: str) -> None:
        """(with the lock held)"""
        self._mem_total -= self._mem.pop(pid, 0)

    def memory_in_use(self) -> int:
        """Bytes of Lua heap the live processes held after their last messages."""
        return self._mem_total

    def _fit_memory(self, pid: str, rt: ProcessRuntime) -> None:
        """Before a message: make room within the node's budget (evicting idle runtimes, least recently
        used first) and give the process at most what is left."""
        cap = self.memory_cap
        if not cap:
            return
        own = rt.memory_limit or cap
        victims = []
        with self._lock:
            others = self._mem_total - self._mem.get(pid, 0)
            if others + own > cap:
                for old in list(self.live):
                    if others + own <= cap:
                        break
                    if old == pid or old in self._in_use or old not in self._mem:
                        continue
                    others -= self._mem[old]
                    self._forget_memory(old)
                    victims.append(self.live.pop(old))
        for victim in victims:
            victim.close()
        rt.limit_memory(max(cap - others, 1 << 20))

    def discard(self, pid: str) -> None:
        with self._lock:
            self._forget_memory(pid)
            rt = self.live.pop(pid, None)
        if rt is not None:
            rt.close()

    def close(self) -> None:
        for rt in self.live.values():
            rt.close()
        self.live.clear()
        self._mem.clear()
        self._mem_total = 0
