"""The messages of the in-memory node of `aos test` (aos_py/testing/sim.py), kept as aolite keeps them.

Every message by id (as sent, then as its handler saw it), the ids sent to each process, aolite's
message ids, and the message log file ($AOLITE_MSG_LOG or setMessageLog) every new message goes to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container

from aos_py.testing.messages import _dumps, handled_view


class StoredMessage:
    """A message in the node's store: as sent, then as its handler saw it (`rev` 1), its JSON cached."""

    __slots__ = ("raw", "view", "rev", "_json")

    def __init__(self, raw: dict) -> None:
        self.raw = raw
        self.view: dict | None = None
        self.rev = 0
        self._json: bytes | None = None

    def current(self) -> dict:
        return self.view if self.view is not None else self.raw

    def handled(self) -> None:
        if self.view is None:
            self.view = handled_view(self.raw)
            self.rev = 1
            self._json = None

    def json(self) -> bytes:
        if self._json is None:
            self._json = _dumps(self.current())
        return self._json


class MessageIds:
    """aolite's message ids: `<From>#<Reference>` where a message has a Reference, else a node counter;
    an id already in `taken` (the node's store) gets a counted suffix, so no id is used twice."""

    def __init__(self, taken: Container[str]) -> None:
        self._taken = taken
        self._counter = 0
        self._node_ref = 0

    def next(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def unused(self, mid: str) -> str:
        while mid in self._taken:
            mid = self.next(mid + "~")
        return mid

    def referenced(self, frm: str, ref: object, fallback_prefix: str) -> str:
        """The id of a message `frm` sent with Reference `ref` (no Reference: a counted `fallback_prefix`)."""
        return self.unused(f"{frm}#{ref}" if ref is not None else self.next(fallback_prefix))

    def outside_reference(self) -> int:
        """The next Reference of the messages from identities that are no process of the node."""
        self._node_ref += 1
        return self._node_ref


class MessageStore:
    """Every message of the node by id, and the ids sent to each target, oldest first."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.entries: dict[str, StoredMessage] = {}
        self.ids = MessageIds(self.entries)
        self.history: dict[str, list[str]] = {}
        self.log_path: str | None = os.environ.get("AOLITE_MSG_LOG") or None
        self._echo = echo

    def record(self, msg: dict, target: str) -> StoredMessage:
        """Keep `msg` (once: a message sent again keeps its entry) as sent to `target`."""
        entry = self.entries.get(msg["Id"])
        if entry is None:
            entry = StoredMessage(msg)
            self.entries[msg["Id"]] = entry
            if self.log_path:
                self._log(msg)
        self.history.setdefault(target, []).append(msg["Id"])
        return entry

    def _log(self, msg: dict) -> None:
        try:
            with open(self.log_path, "ab") as fh:      # type: ignore[arg-type]
                fh.write(_dumps(msg) + b"\n")
        except OSError as exc:
            self._echo(f"aolite: Unable to open message log file: {exc}")

    def current(self, mid: str) -> dict | None:
        entry = self.entries.get(mid)
        return entry.current() if entry is not None else None

    def json(self, mid: str) -> tuple[bytes | None, int]:
        """(the message as JSON, its revision: 0 as sent, 1 as handled); (None, 0) for no such message."""
        entry = self.entries.get(mid)
        if entry is None:
            return None, 0
        return entry.json(), entry.rev

    def clear(self) -> None:
        self.entries.clear()
        self.history.clear()
