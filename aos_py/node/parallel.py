"""Compute of slow processes off the node's scheduling thread.

Most messages take microseconds and are computed inline by the scheduling round. A process that
runs an LLM (or any message that took long), and a process whose runtime must first be rebuilt by
replaying its log, is computed on a small thread pool instead: while it works, the rounds go on
scheduling, computing and committing everybody else's messages (Lua and the inference engines
release the GIL). Each process still sees its messages one at a time and in slot order: while one
of its messages is in flight, the rest of its queue waits; results are folded back into a later
round, which pushes their outboxes and commits them like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

SLOW_SECONDS = 0.02   # a process whose message took longer than this computes off the round from then on
POOL_THREADS = 4


class Offload:
    """Which processes compute off-thread, what is in flight, and what has finished."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="aos-compute")
        self._lock = threading.Lock()
        self.slow: set[str] = set()
        self.busy: dict[str, object] = {}          # pid -> the entry in flight
        self._done: list[tuple[object, tuple, float]] = []
        self._warmed: list[str] = []
        self._idle = threading.Condition(self._lock)

    def is_busy(self, pid: str) -> bool:
        return pid in self.busy

    def start(self, pid: str, entry: object, work: Callable[[], tuple[dict, bool, str | None]]) -> None:
        """Run `work` for `entry` of `pid` on the pool; its (result, ok, journal) is collected by take_done()."""
        self.busy[pid] = entry

        def run() -> None:
            t0 = time.perf_counter()
            try:
                outcome = work()
            except Exception as exc:  # noqa: BLE001 - compute() already shapes errors; this is a last guard
                outcome = ({"Output": "", "Messages": [], "Spawns": [], "Assignments": [], "GasUsed": 0,
                            "Error": f"the process could not be run: {type(exc).__name__}: {exc}"}, False, None)
            with self._lock:
                self._done.append((entry, outcome, time.perf_counter() - t0))
                self._idle.notify_all()
            self._wake()

        self._pool.submit(run)

    def warm(self, pid: str, work: Callable[[], object]) -> None:
        """Prepare a process off-thread (rebuild its runtime, load its model); its messages wait meanwhile."""
        self.busy[pid] = None

        def run() -> None:
            try:
                work()
            except Exception:  # noqa: BLE001 - warming is an optimisation; the first message rebuilds anyway
                pass
            with self._lock:
                self._warmed.append(pid)
                self._idle.notify_all()
            self._wake()

        self._pool.submit(run)

    def take_done(self) -> list[tuple[object, tuple, float]]:
        """Finished (entry, (result, ok, journal), seconds); their processes are free for their next message."""
        with self._lock:
            done, self._done = self._done, []
            warmed, self._warmed = self._warmed, []
        for entry, _outcome, _s in done:
            self.busy.pop(entry.pid, None)      # type: ignore[attr-defined]
        for pid in warmed:
            self.busy.pop(pid, None)
        return done

    def has_done(self) -> bool:
        with self._lock:
            return bool(self._done or self._warmed)

    def note(self, pid: str, seconds: float, uses_llama: bool) -> None:
        """After a compute: a process that was slow (or runs an LLM) computes off-thread next time; one
        that was fast (a replay that is now done) is computed inline again."""
        if seconds > SLOW_SECONDS or uses_llama:
            self.slow.add(pid)
        else:
            self.slow.discard(pid)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until nothing is in flight (results may still wait in take_done)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._done) + len(self._warmed) < len(self.busy) and time.monotonic() < deadline:
                self._idle.wait(0.1)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
