"""What a scheduling round is made of, and how it is written: the scheduled messages (Entry), the items
waiting to be scheduled (Post), one round's changes (Round), and the one transaction that commits them.

Results are stored as JSON text; bytes in a result (Data that is not UTF-8) are kept as text with
replacement characters there, while the log keeps every message's Data byte for byte.
"""

from __future__ import annotations

import json
import threading

from aos_py.node.ans104 import DataItem
from aos_py.node.store import PENDING, Store, row_sum

try:
    import orjson

    def dump_json(obj: object) -> str:
        try:
            return orjson.dumps(obj).decode("utf-8")
        except TypeError:   # bytes or huge ints in a result: the slow path handles them
            return json.dumps(obj, separators=(",", ":"), default=_jsonable)
except ImportError:  # pragma: no cover - orjson is a dependency
    def dump_json(obj: object) -> str:
        return json.dumps(obj, separators=(",", ":"), default=_jsonable)


def _jsonable(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"cannot store a {type(value).__name__} in a result")


class Entry:
    """One scheduled message of one process, in memory until its round commits."""

    __slots__ = ("pid", "nonce", "id", "msg", "msg_json", "data", "root", "new", "result", "status", "frm",
                 "journal")

    def __init__(self, pid: str, nonce: int, mid: str, msg: dict, msg_json: str, data: bytes, root: str,
                 new: bool) -> None:
        self.pid, self.nonce, self.id, self.msg, self.msg_json = pid, nonce, mid, msg, msg_json
        self.data, self.root, self.new = data, root, new
        self.result: dict | None = None
        self.journal: str | None = None    # the message's host calls (runtime/journal.py), JSON
        self.status = PENDING
        self.frm = msg.get("From")


class Post:
    """An item waiting for the next round to schedule and commit it."""

    __slots__ = ("item", "kind", "done", "error", "target", "exclude")

    def __init__(self, item: DataItem, kind: str, target: str | None = None, exclude: tuple = ()) -> None:
        self.item, self.kind, self.target, self.exclude = item, kind, target, tuple(exclude)
        self.done = threading.Event()
        self.error: Exception | None = None


class Round:
    def __init__(self) -> None:
        self.new: list[Entry] = []
        self.computed: list[Entry] = []
        self.items: list[tuple] = []
        self.tags: list[tuple] = []
        self.procs: list[tuple] = []
        self.ok_extra: dict[str, list[tuple[str, bytes, str | None]]] = {}
        self.posts: list[Post] = []
        self.ids: set[tuple[str, str]] = set()


def commit_round(store: Store, rnd: Round) -> None:
    """Write a round in one transaction (one fsync): new items, processes, log rows and the results of
    messages scheduled in earlier rounds. Nothing a round did is acknowledged before this returns."""
    inserts = []
    new_ids = set()
    for e in rnd.new:
        new_ids.add(id(e))
        res = dump_json(e.result) if e.result is not None else None
        inserts.append((e.pid, e.nonce, e.id, e.msg["Timestamp"], e.msg["Block-Height"], e.msg["Hash-Chain"],
                        e.msg_json, e.data, e.status, res, e.journal,
                        row_sum(e.pid, e.nonce, e.msg_json, e.data, e.journal)))
    updates = [(e.status, dump_json(e.result), e.journal, row_sum(e.pid, e.nonce, e.msg_json, e.data, e.journal),
                e.pid, e.nonce) for e in rnd.computed if id(e) not in new_ids]
    ops: list[tuple[str, list | tuple]] = [
        ("INSERT OR IGNORE INTO items (id, owner, target, kind, raw, size, created) VALUES (?,?,?,?,?,?,?)",
         rnd.items),
        ("INSERT INTO item_tags VALUES (?,?,?,?)", rnd.tags),
        ("INSERT INTO processes (id, owner, name, module, created, env, cron) VALUES (?,?,?,?,?,?,?)",
         rnd.procs),
        ("INSERT INTO log (pid, nonce, id, ts, height, chain, msg, data, status, result, journal, sum) "
         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", inserts),
        ("UPDATE log SET status=?, result=?, journal=?, sum=? WHERE pid=? AND nonce=?", updates),
    ]
    if inserts or updates or rnd.items or rnd.procs:
        store.transaction(ops)
    for e in rnd.new:
        e.new = False


def root_of(msg: dict) -> str:
    """The message a pushed message was ultimately caused by (its Pushed-For tag), else itself."""
    for t in msg.get("Tags", ()):
        if t.get("name") == "Pushed-For":
            return t["value"]
    return msg["Id"]


def action_of(msg: dict) -> str | None:
    for t in msg.get("Tags", ()):
        if t.get("name") == "Action":
            return t.get("value")
    return None
