"""Live events: who subscribed to which process, and delivering what each round computed to them.

Delivery runs on its own thread, in round order: a callback may call back into the node (even wait
for a result) without stalling or deadlocking the scheduling rounds. A callback that fails is logged
and the others still get their events.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("aos_py.node")

Callback = Callable[[dict], None]


class Subscribers:
    """Callbacks per process id, and the thread that calls them."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callback]] = {}
        self._lock = threading.Lock()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._dispatch, name="aos-node-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._events.put(None)
            self._thread.join(timeout=10)

    def watched(self, pid: str) -> bool:
        return pid in self._subs

    def any(self) -> bool:
        return bool(self._subs)

    def subscribe(self, process: str, callback: Callback) -> Callable[[], None]:
        """Call `callback(event)` for every message computed for `process`; returns the unsubscribe."""
        with self._lock:
            self._subs.setdefault(process, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                lst = self._subs.get(process, [])
                if callback in lst:
                    lst.remove(callback)
                if not lst:
                    self._subs.pop(process, None)
        return unsubscribe

    def publish(self, batch: list[tuple[str, dict]]) -> None:
        """Queue (pid, event) pairs of one round for delivery."""
        if batch:
            self._events.put(batch)

    def _dispatch(self) -> None:
        while True:
            batch = self._events.get()
            if batch is None:
                return
            for pid, event in batch:
                with self._lock:
                    callbacks = list(self._subs.get(pid, ()))
                for cb in callbacks:
                    try:
                        cb(event)
                    except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the node
                        log.exception("subscriber callback failed")
