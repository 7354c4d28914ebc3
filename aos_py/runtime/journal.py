"""The host-call journal: `llama` calls recorded with the message, so a replay does not redo inference.

While a message is computed live, every call into the `_llama` host (and every log / progress callback
the host made during it) is recorded as [method, ok, value, callbacks]. The node keeps that list with
the message in its log. When the process is rebuilt by replaying its log, each call is answered from
the journal instead of the engine, and the recorded callbacks are played back into Lua, so the
process's Lua state comes out exactly as it was (callback events are handed to Lua with each call's
result, live or replayed, and played there). The engine itself is rebuilt lazily: the journal
keeps, per process, only the calls that shaped the engine state still in use (the last load, the saved
state, the calls since the last setPrompt), and runs them for real only when a live call needs the
engine. A process that never calls the engine again after a restart never loads its model again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

# calls that configure the host and are cheap and deterministic: always run, never journaled
ALWAYS_LIVE = frozenset({"set_callbacks", "set_log_level"})
# calls with no effect on the engine state (answered from the journal, never rebuilt)
READ_ONLY = frozenset({"info"})

Entry = list   # [method, ok, value, [[callback index, args...], ...]]


class HostJournal:
    """Records live host calls and answers replayed ones; rebuilds the engine state on demand."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.replaying: deque[Entry] | None = None
        self.recorded: list[Entry] = []
        self._calls: list[list] | None = None     # callbacks made during the current live call
        self._muted = False
        # the calls a fresh host needs to reach the current engine state (empty when the host is in sync)
        self._load: list[tuple] = []
        self._saved: list[tuple] = []
        self._ctx: list[tuple] = []
        self._stale = False

    # -- per message -------------------------------------------------------------------------------------

    def begin(self, journal: list[Entry] | None) -> None:
        self.replaying = deque(journal) if journal else None
        self.recorded = []

    def end(self) -> list[Entry] | None:
        """The journal of the message just handled (None when it made no host calls)."""
        self.replaying = None
        out, self.recorded = self.recorded, []
        return out or None

    # -- callbacks ---------------------------------------------------------------------------------------

    def event(self, index: int, args: tuple) -> None:
        """A host callback (0 = log(level, text), 1 = progress(fraction)) made during the current live call.

        It is recorded and handed back to Lua with the call's result (the bridge calls Llama.onLog /
        Llama.onProgress there): Python never calls into Lua from inside a host call."""
        if self._calls is not None and not self._muted:
            self._calls.append([index, *args])

    # -- calls -------------------------------------------------------------------------------------------

    def call(self, name: str, args: list,
             run: Callable[[], tuple[bool, object]]) -> tuple[bool, object, list[list]]:
        """Answer host call `name(*args)`: from the journal when replaying, else by running it.
        Returns (ok, value, callback events to play in Lua)."""
        if name in ALWAYS_LIVE:
            ok, value = run()
            return ok, value, []
        if self.replaying:
            entry = self.replaying[0]
            if entry[0] == name:
                self.replaying.popleft()
                ok, value = bool(entry[1]), entry[2]
                if ok:
                    self._track(name, args)
                self.recorded.append(entry)
                return ok, value, list(entry[3]) if len(entry) > 3 and entry[3] else []
            self.replaying = None      # the log and the code disagree: compute for real from here on
        ctx: list[tuple] = []
        if self._stale:
            ctx = self._catch_up(name)
        self._calls = []
        try:
            ok, value = run()
        finally:
            calls, self._calls = self._calls, None
        if ctx and not ok:          # a failed setPrompt changes nothing: the old context is still in use
            self._replay_calls(ctx)
        if ok and name == "load":   # a new engine: nothing remembered applies to it any more
            self._load, self._saved, self._ctx, self._stale = [], [], [], False
        self.recorded.append([name, ok, value, calls])
        return ok, value, calls

    def _catch_up(self, name: str) -> list[tuple]:
        """Bring the host up to date before live call `name`, skipping work that call would discard.

        A load replaces the engine (nothing to rebuild unless it fails); a setPrompt replaces the context
        (only the model and saved state are rebuilt; the old context is returned, to be restored if the
        setPrompt fails); a stop needs nothing; any other call needs the whole state."""
        if name in ("load", "stop"):
            if name == "stop":
                self._load, self._saved, self._ctx, self._stale = [], [], [], False
            return []        # a failed load leaves the journal stale: the next call rebuilds the old model
        if name == "set_prompt":
            ctx = self._ctx
            self._ctx = []
            self._rebuild()
            return ctx
        self._rebuild()
        return []

    def _track(self, name: str, args: list) -> None:
        """Keep the calls that a fresh host would need to reach the state after this (replayed) call."""
        if name in READ_ONLY:
            return
        self._stale = True
        call = (name, *args)
        if name == "load":
            self._load, self._saved, self._ctx = [call], [], []
        elif name == "stop":
            self._load, self._saved, self._ctx = [], [], []
            self._stale = False       # a fresh host has no model either
        elif name == "set_prompt":
            self._ctx = [call]
        elif name == "save_state":
            # a context that began from the previous saved state needs that state first
            base = self._saved if self._ctx and self._ctx[0][0] == "load_state" else []
            self._saved = [*base, *self._ctx, call]
        elif name == "load_state":
            self._ctx = [call]
        else:                          # add, next, run, clear_state
            self._ctx.append(call)

    def warm(self) -> None:
        """Load the model (and the saved state) now rather than at the first live call; the context in
        use, if any, stays lazy (a new prompt would discard it)."""
        calls = [*self._load, *self._saved]
        if not calls:
            return
        self._load, self._saved = [], []
        self._stale = bool(self._ctx)
        self._replay_calls(calls)

    def _rebuild(self) -> None:
        """Run the remembered calls on the real host (callbacks muted: their effects are already in Lua)."""
        calls = [*self._load, *self._saved, *self._ctx]
        self._load, self._saved, self._ctx = [], [], []
        self._stale = False
        self._replay_calls(calls)

    def _replay_calls(self, calls: list[tuple]) -> None:
        self._muted = True
        try:
            for name, *args in calls:
                getattr(self.host, name)(*args)
        finally:
            self._muted = False
