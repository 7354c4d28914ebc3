"""The node's read side: results, waiting, pages, dry-runs, lookups, subscriptions, cron switches.

A mixin of Node; it reads the store (committed state only) and the node's
in-memory result cache, and never schedules anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aos_py.node import modules
from aos_py.node.errors import NotFound, Rejected


class NodeReads:
    def result(self, process: str, message_id: str) -> dict | None:
        with self._cv:
            hit = self._results.get(message_id + process)
        if hit is not None:
            return hit
        rows = self.store.query("SELECT result FROM log WHERE pid=? AND id=? AND status!=0", (process, message_id))
        return json.loads(rows[0][0]) if rows else None

    def cached_result(self, process: str, message_id: str) -> dict | None:
        """A recent result from memory only (never touches the store: safe on an event loop)."""
        with self._cv:
            return self._results.get(message_id + process)

    def wait_result(self, process: str, message_id: str, timeout: float = 30.0) -> dict:
        start = time.monotonic()
        deadline = start + timeout
        if self.proc(process) is None:
            raise NotFound(f"no process {process} on this node")
        checked = False
        while True:
            res = self.result(process, message_id)
            if res is not None:
                return res
            now = time.monotonic()
            # an id that is neither logged nor being posted will never get a result; say so early, after
            # a grace period that covers an item posted a moment ago whose round has not committed yet
            if not checked and (now - start > 1.0 or now >= deadline):
                checked = True
                if not self.store.query("SELECT 1 FROM log WHERE pid=? AND id=?", (process, message_id)) \
                        and not self._in_flight(process, message_id):
                    raise NotFound(f"message {message_id} is not in the log of process {process}")
            left = deadline - now
            if left <= 0:
                raise TimeoutError(f"no result for message {message_id} on process {process} after {timeout} s")
            with self._cv:
                self._cv.wait(min(left, 0.25))

    def _in_flight(self, process: str, message_id: str) -> bool:
        with self._cv:
            return any(p.item.id == message_id for p in self._posts)

    def results(self, process: str, *, after: int | None = None, limit: int = 25, sort: str = "ASC") -> list[dict]:
        if sort not in ("ASC", "DESC"):
            raise Rejected(f"sort must be 'ASC' or 'DESC', not {sort!r}")
        if self.proc(process) is None:
            raise NotFound(f"no process {process} on this node")
        sql = "SELECT nonce, id, result FROM log WHERE pid=? AND status!=0"
        args: list = [process]
        if after is not None:
            sql += " AND nonce > ?" if sort == "ASC" else " AND nonce < ?"
            args.append(int(after))
        sql += f" ORDER BY nonce {sort} LIMIT ?"
        args.append(max(0, int(limit)))
        return [{"cursor": n, "id": i, "result": json.loads(r)} for n, i, r in self.store.query(sql, args)]

    def feed(self, process: str, *, after: int | None = None, limit: int = 100) -> list[dict]:
        """results() rows (oldest first) with each message's From and Action, for a live feed catching up."""
        if self.proc(process) is None:
            raise NotFound(f"no process {process} on this node")
        sql = "SELECT nonce, id, msg, result FROM log WHERE pid=? AND status!=0"
        args: list = [process]
        if after is not None:
            sql += " AND nonce > ?"
            args.append(int(after))
        sql += " ORDER BY nonce ASC LIMIT ?"
        args.append(max(0, int(limit)))
        out = []
        for n, i, m, r in self.store.query(sql, args):
            msg = json.loads(m)
            action = next((t.get("value") for t in msg.get("Tags", ()) if t.get("name") == "Action"), None)
            out.append({"cursor": n, "id": i, "from": msg.get("From"), "action": action, "result": json.loads(r)})
        return out

    def dryrun(self, process: str, *, data: str | bytes = "", tags: list[tuple[str, str]] = (),
               owner: str | None = None) -> dict:
        p = self.proc(process)
        if p is None:
            raise NotFound(f"no process {process} on this node")
        latest = self.su.latest(process) or (0, int(time.time() * 1000), 0)
        who = owner or "1234"
        all_tags = [{"name": str(n), "value": str(v)} for n, v in tags]
        all_tags += [{"name": "Data-Protocol", "value": "ao"}, {"name": "Type", "value": "Message"},
                     {"name": "Variant", "value": "ao.TN.1"}]
        msg = {"Id": "1234", "Owner": who, "From": who, "Target": process, "Anchor": "0", "Tags": all_tags,
               "Data": data if data else "", "Timestamp": latest[1], "Block-Height": latest[2],
               "Nonce": latest[0], "Epoch": 0, "Cron": False, "Read-Only": True, "Module": p["module"]}
        for t in all_tags:
            if t["name"] == "From-Process":
                msg["From"] = t["value"]
                break
        return self.dryrunner.run(process, msg)

    def find_processes(self, owner: str, name: str | None = None) -> list[dict]:
        sql = ("SELECT p.id, p.name, p.created, (SELECT value FROM item_tags t WHERE t.id = p.id "
               "AND lower(t.name) = 'aos-version' ORDER BY t.idx LIMIT 1) FROM processes p WHERE p.owner=?")
        args: list = [owner]
        if name is not None:
            sql += " AND p.name=?"
            args.append(name)
        sql += " ORDER BY p.created DESC, p.rowid DESC"
        return [{"id": i, "name": n, "created": c, "version": v} for i, n, c, v in self.store.query(sql, args)]

    def subscribe(self, process: str, callback: Callable[[dict], None]) -> Callable[[], None]:
        """Call `callback(event)` for every message computed for `process`; returns the unsubscribe."""
        return self.subscribers.subscribe(process, callback)

    def monitor(self, process: str, on: bool = True) -> None:
        p = self.proc(process)
        if p is None:
            raise NotFound(f"no process {process} on this node")
        if on and not p["cron"]:
            raise Rejected(f"process {process} was spawned without Cron-Interval; there is nothing to monitor")
        self.store.transaction([("UPDATE processes SET monitored=? WHERE id=?", (1 if on else 0, process))])
        p["monitored"] = on
        self.cron.refresh()

    def log_rows(self, process: str) -> list[tuple[int, str, str]]:
        """(nonce, id, hash chain) of every slot of `process`, in order."""
        return self.store.query("SELECT nonce, id, chain FROM log WHERE pid=? ORDER BY nonce", (process,))

    def default_module(self) -> str:
        return modules.DEFAULT_MODULE_ID
