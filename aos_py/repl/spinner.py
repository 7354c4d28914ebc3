"""A terminal spinner that appears only when something takes longer than 0.3 s.

Quick evals stay silent; slow ones (spawns, first load of a process, big .load bundles) show
ora-style dots with aos's bracketed status text, drawn on the real terminal and erased when done.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
DELAY = 0.3


class Spinner:
    """Context manager: `with Spinner("[Computing...]"):` draws after DELAY seconds until the block ends."""

    current: Spinner | None = None

    @classmethod
    def clear_current(cls) -> None:
        """Erase the spinner's line so other output starts clean; it redraws on its next frame."""
        spin = cls.current
        if spin is not None:
            with spin._lock:
                if spin._drawn:
                    spin.stream.write("\r\x1b[K")
                    spin.stream.flush()

    def __init__(self, text: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.text = text
        self.stream = stream or sys.__stderr__ or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False
        self._lock = threading.Lock()

    def update(self, text: str) -> None:
        self.text = text

    def _run(self) -> None:
        if self._stop.wait(DELAY):
            return
        i = 0
        while not self._stop.is_set():
            with self._lock:
                self.stream.write(f"\r\x1b[K\x1b[36m{FRAMES[i % len(FRAMES)]}\x1b[0m \x1b[90m{self.text}\x1b[0m")
                self.stream.flush()
                self._drawn = True
            i += 1
            self._stop.wait(0.08)

    def __enter__(self) -> Spinner:
        if self.enabled:
            Spinner.current = self
            self._thread = threading.Thread(target=self._run, name="aos-spinner", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if Spinner.current is self:
            Spinner.current = None
        self._stop.set()
        if self._thread:
            self._thread.join()
        with self._lock:
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
