"""A terminal spinner that appears only when something takes longer than 0.3 s.

Quick evals stay silent; slow ones (spawns, first load of a process, big .load bundles, model imports, model
loads) show ora-style dots with aos's bracketed status text, drawn on the real terminal and erased when done.
Nothing is drawn when stderr is not a terminal (pipes, files, CI logs).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _delay() -> float:
    """Seconds of quiet before a spinner appears ($AOS_PY_SPINNER_DELAY, default 0.3)."""
    try:
        return max(0.0, float(os.environ.get("AOS_PY_SPINNER_DELAY", "")))
    except ValueError:
        return 0.3


DELAY = _delay()


class Spinner:
    """Context manager: `with Spinner("[Computing...]"):` draws after DELAY seconds until the block ends.

    `status`, when given, is called on every frame and its text (if not None) replaces `text`: a progress
    line such as bytes copied, or a hint that appears once the work has taken a while."""

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

    def __init__(self, text: str, stream: TextIO | None = None, enabled: bool | None = None,
                 status: Callable[[], str | None] | None = None) -> None:
        self.text = text
        self.status = status
        self.stream = stream or sys.__stderr__ or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False
        self._lock = threading.Lock()

    def update(self, text: str) -> None:
        self.text = text

    def line(self) -> str:
        """The text the next frame shows."""
        status = self.status
        if status is not None:
            try:
                text = status()
            except Exception:  # a progress probe must never break the work it reports on
                text = None
            if text:
                return text
        return self.text

    def _width(self) -> int:
        """The terminal's width: a frame longer than one line could not be erased."""
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80

    def _frame(self, i: int) -> None:
        text = self.line()
        width = self._width()
        if len(text) > width - 3:
            text = text[:max(1, width - 4)] + "…"
        with self._lock:
            self.stream.write(f"\r\x1b[K\x1b[36m{FRAMES[i % len(FRAMES)]}\x1b[0m \x1b[90m{text}\x1b[0m")
            self.stream.flush()
            self._drawn = True

    def _run(self) -> None:
        if DELAY > 0 and self._stop.wait(DELAY):
            return
        i = 1 if DELAY <= 0 else 0
        while not self._stop.is_set():
            self._frame(i)
            i += 1
            self._stop.wait(0.08)

    def __enter__(self) -> Spinner:
        if self.enabled:
            if DELAY <= 0:   # no quiet period: the first frame is drawn before the work starts
                self._frame(0)
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
