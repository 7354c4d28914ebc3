"""The compute unit: one ProcessRuntime per live process, fed the messages of its log.

A runtime is built lazily by replaying the messages that computed without
Error. After an Error result (or a HandleError) the runtime is thrown away, so
that message's partial state changes vanish: the next message rebuilds it by
replay. Dry-runs live in dryrun.py.
"""

from __future__ import annotations

import json
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


def item_message(item: DataItem, pid: str, slot: Slot, module: str, *, cron: bool = False) -> dict:
    """The message the process sees (without Data): fields as the AO CU builds them."""
    owner = item.owner_address
    from_process = None
    tags = []
    for n, v in item.tags:
        tags.append({"name": n, "value": v})
        if n == "From-Process" and from_process is None:
            from_process = v
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
                 replay_source: Callable[[str], Iterable[tuple[str, bytes | None]]],
                 env_of: Callable[[str], dict], max_live: int = 2000) -> None:
        self.factory = runtime_factory
        self.replay_source = replay_source
        self.env_of = env_of
        self.max_live = max_live
        self.live: OrderedDict[str, ProcessRuntime] = OrderedDict()
        self.replayed = 0

    def _replay(self, pid: str, extra: Iterable[tuple[str, bytes | None]] = ()) -> ProcessRuntime:
        rt = self.factory()
        env = self.env_of(pid)
        for source in (self.replay_source(pid), extra):
            for msg_json, data in source:
                msg = _loads(msg_json)
                msg["Data"] = data_value(data)
                try:
                    rt.handle(msg, env)
                except HandleError:
                    pass   # it succeeded when first computed; a replay keeps going like the original did
                self.replayed += 1
        return rt

    def runtime(self, pid: str, extra: Iterable[tuple[str, bytes | None]] = ()) -> ProcessRuntime:
        rt = self.live.get(pid)
        if rt is not None:
            self.live.move_to_end(pid)
            return rt
        rt = self._replay(pid, extra)
        self.live[pid] = rt
        while len(self.live) > self.max_live:
            _old, victim = self.live.popitem(last=False)
            victim.close()
        return rt

    def compute(self, pid: str, msg: dict, extra: Iterable[tuple[str, bytes | None]] = ()) -> tuple[dict, bool]:
        """Run one message; returns (result, ok). A failed message leaves no trace in the process."""
        try:
            rt = self.runtime(pid, extra)
            res = rt.handle(msg, self.env_of(pid))
        except HandleError as exc:
            res = {"Error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a broken runtime must fail this message, not wedge the node
            res = {"Error": f"the process could not be run: {type(exc).__name__}: {exc}"}
        result = shape_result(res)
        ok = "Error" not in result
        if not ok:
            self.discard(pid)
        return result, ok

    def discard(self, pid: str) -> None:
        rt = self.live.pop(pid, None)
        if rt is not None:
            rt.close()

    def close(self) -> None:
        for rt in self.live.values():
            rt.close()
        self.live.clear()
