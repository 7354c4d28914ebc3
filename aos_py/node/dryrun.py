"""Dry-runs: evaluate a message against a process's latest committed state and keep nothing.

Each dry-run runs on a throwaway runtime, so nothing it does can leak into the
process or into a later dry-run. To keep them fast, a replayed spare runtime
per process is prepared ahead of time (in a background thread, after each use)
and only the messages logged since it was built are applied before the dry-run.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from aos_py.node.cu import replay_logged, shape_result
from aos_py.runtime import HandleError, ProcessRuntime

log = logging.getLogger("aos_py.node.dryrun")


class DryRunner:
    def __init__(self, factory: Callable[[], ProcessRuntime],
                 rows_after: Callable[[str, int], Iterable[tuple[int, str, bytes | None, str | None]]],
                 env_of: Callable[[str], dict], max_spares: int = 8) -> None:
        self.factory = factory
        self.rows_after = rows_after
        self.env_of = env_of
        self.max_spares = max_spares
        self._spares: OrderedDict[str, tuple[ProcessRuntime, int]] = OrderedDict()
        self._lock = threading.Lock()          # guards _spares
        self._run_lock = threading.Lock()      # one dry-run at a time
        self._wanted: list[str] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._prepare_loop, name="aos-dryrun-spares", daemon=True)
        self._thread.start()

    def _catch_up(self, pid: str, rt: ProcessRuntime, last: int) -> int:
        env = self.env_of(pid)
        done = [last]

        def rows():
            for nonce, msg_json, data, journal in self.rows_after(pid, last):
                yield msg_json, data, journal
                done[0] = nonce
        replay_logged(rt, env, rows())
        return done[0]

    def run(self, pid: str, msg: dict) -> dict:
        with self._run_lock:
            with self._lock:
                spare = self._spares.pop(pid, None)
            rt, last = spare if spare else (self.factory(), -1)
            try:
                self._catch_up(pid, rt, last)
                try:
                    res = rt.handle(msg, self.env_of(pid))
                except HandleError as exc:
                    res = {"Error": str(exc)}
                return shape_result(res)
            finally:
                rt.close()
                self._want(pid)

    def _want(self, pid: str) -> None:
        with self._wake:
            if pid not in self._wanted:
                self._wanted.append(pid)
            self._wake.notify()

    def _prepare_loop(self) -> None:
        while True:
            with self._wake:
                while not self._wanted and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                pid = self._wanted.pop(0)
            try:
                rt = self.factory()
                last = self._catch_up(pid, rt, -1)
            except Exception as exc:  # noqa: BLE001 - a spare is an optimisation only
                log.debug("could not prepare a dry-run runtime for %s: %s", pid, exc)
                continue
            with self._lock:
                old = self._spares.pop(pid, None)
                self._spares[pid] = (rt, last)
                while len(self._spares) > self.max_spares:
                    _p, (victim, _n) = self._spares.popitem(last=False)
                    victim.close()
            if old is not None:
                old[0].close()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout=10)
        with self._lock:
            for rt, _n in self._spares.values():
                rt.close()
            self._spares.clear()
