"""Per-process input history, written after every submitted line so every way of leaving keeps it.

aos keeps `~/.<pid>.history` (a JSON array, last 100 entries) but only writes it on Ctrl-C; we write it on
each entry, under the data directory, so `.exit`, Ctrl-D and a crash all keep it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit.history import History

MAX_ENTRIES = 100


def history_path(data_dir: Path, process_id: str) -> Path:
    return data_dir / "history" / f"{process_id}.json"


def read_entries(path: Path) -> list[str]:
    """The saved entries, oldest first; an unreadable file counts as empty rather than stopping the shell."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, str)] if isinstance(entries, list) else []


class ProcessHistory(History):
    """prompt_toolkit history backed by one JSON array per process id."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._entries = read_entries(path)

    def load_history_strings(self) -> Iterable[str]:
        return list(reversed(self._entries))

    def store_string(self, string: str) -> None:
        if not string.strip() or string.strip() == ".exit":
            return  # recalling .exit is never wanted
        if self._entries and self._entries[-1] == string:
            return
        self._entries.append(string)
        del self._entries[:-MAX_ENTRIES]
        self.save()

    def save(self) -> None:
        """Write atomically (temp file + rename), so a kill mid-write never loses the old history."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._entries[-MAX_ENTRIES:]), encoding="utf-8")
        os.replace(tmp, self.path)
