"""Cron: ticks for monitored processes spawned with `Cron-Interval` (and `Cron-Tag-*`).

Ticks are node-signed messages scheduled through the same durable path as
everything else, so they are in the log and replay like any message.
Only time intervals are supported (`N-second(s)`, `-minute(s)`, `-hour(s)`, `-day(s)`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aos_py.node.node import Node

log = logging.getLogger("aos_py.node.cron")

_UNITS = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800,
          "month": 2592000, "year": 31536000}
_INTERVAL = re.compile(r"^\s*(\d+)\s*-\s*([a-z]+?)s?\s*$")


def parse_interval(text: str) -> float:
    """'10-minutes' -> 600.0 seconds; a clear ValueError for anything else."""
    m = _INTERVAL.match(str(text).lower())
    if not m or m.group(2) not in _UNITS or int(m.group(1)) <= 0:
        raise ValueError(f"invalid Cron-Interval {text!r}: use N-seconds, N-minutes, N-hours or N-days")
    return int(m.group(1)) * _UNITS[m.group(2)]


def cron_tags(env_tags: list[dict]) -> list[tuple[str, str]]:
    """The tags a tick carries: each `Cron-Tag-<Name>: v` becomes `<Name>: v`."""
    out = []
    for t in env_tags:
        name = t.get("name", "")
        if name.startswith("Cron-Tag-") and len(name) > 9 and t.get("value"):
            out.append((name[9:], t["value"]))
    return out


class CronTable:
    """A thread that posts due ticks of monitored processes."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._next: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="aos-cron", daemon=True)
        self._counter = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def refresh(self) -> None:
        self._wake.set()

    def _monitored(self) -> list[tuple[str, float, list[dict]]]:
        rows = self.node.store.query("SELECT id, cron, env FROM processes WHERE monitored=1 AND cron IS NOT NULL")
        out = []
        for pid, cron, env in rows:
            try:
                out.append((pid, parse_interval(cron), json.loads(env)["Process"]["Tags"]))
            except ValueError:
                continue
        return out

    def _run(self) -> None:
        from aos_py.node import mu

        procs = []
        while not self._stop.is_set():
            try:
                procs = self._monitored()
            except Exception:  # noqa: BLE001 - store closing underneath us
                return
            now = time.monotonic()
            live = {pid for pid, _, _ in procs}
            for pid in list(self._next):
                if pid not in live:
                    del self._next[pid]
            soonest = 1.0
            for pid, interval, tags in procs:
                due = self._next.setdefault(pid, now + interval)
                if due <= now:
                    self._counter += 1
                    anchor = f"{time.time_ns() % 10**24:024d}{self._counter % 10**8:08d}"
                    try:
                        item = mu.cron_tick(self.node.key, pid, cron_tags(tags), anchor)
                        self.node.post_internal(item, pid)
                    except Exception as exc:  # noqa: BLE001
                        log.warning("cron tick for %s failed: %s", pid, exc)
                        if self._stop.is_set():
                            return
                    self._next[pid] = max(due + interval, now)
                    due = self._next[pid]
                soonest = min(soonest, max(0.01, due - now))
            self._wake.wait(soonest)
            self._wake.clear()

