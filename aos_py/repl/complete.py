"""Tab completion of global names and table fields, asked of the live process.

The process, not the REPL, knows what `Handlers` or `Balances` hold, so completion sends a small
read-only Lua snippet (a dry-run) that lists the keys of the table being typed, and caches the answer briefly.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable

from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document

LUA_KEYWORDS = ("and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
                "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while")
_TAIL = re.compile(r"((?:[A-Za-z_]\w*[.:])*)([A-Za-z_]\w*)?$")
CACHE_SECONDS = 5.0

KEYS_SNIPPET = """
local path, t = %s, _G
for part in string.gmatch(path, "[^.:]+") do
  if type(t) ~= "table" then t = nil break end
  t = t[part]
end
local seen, out = {}, {}
local function collect(tbl)
  if type(tbl) ~= "table" then return end
  for k, v in pairs(tbl) do
    if type(k) == "string" and not seen[k] and k:match("^[%%a_][%%w_]*$") then
      seen[k] = true
      out[#out + 1] = k .. (type(v) == "function" and "(" or "")
    end
  end
end
collect(t)
local ok, mt = pcall(getmetatable, t)
if ok and type(mt) == "table" then collect(mt.__index) end
table.sort(out)
print(table.concat(out, "\\n"))
"""


def keys_snippet(path: str) -> str:
    """The Lua that prints one key per line (functions end in `(`) of the table at a dotted path."""
    quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return KEYS_SNIPPET % quoted


def split_target(text_before_cursor: str) -> tuple[str, str] | None:
    """('Handlers', 'ad') for `x = Handlers.ad`; ('', 'pri') for a bare name; None when not completing a name."""
    m = _TAIL.search(text_before_cursor)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    start = m.start()
    if start > 0 and (text_before_cursor[start - 1].isalnum() or text_before_cursor[start - 1] in "_\"'"):
        return None
    return m.group(1).rstrip(".:"), m.group(2) or ""


DOT_COMMANDS = (".help", ".load", ".load-blueprint", ".editor", ".dryrun", ".monitor", ".unmonitor", ".live",
                ".pause", ".pad", ".update", ".exit")


def dot_completions(text: str, blueprints: Iterable[str]) -> list[tuple[str, int]]:
    """(completion, start offset) for a dot-command line: command names, then blueprint names."""
    if " " not in text:
        return [(c, -len(text)) for c in DOT_COMMANDS if c.startswith(text) and c != text]
    word, _, rest = text.partition(" ")
    if word == ".load-blueprint" and " " not in rest:
        return [(b, -len(rest)) for b in blueprints if b.startswith(rest) and b != rest]
    return []


class ProcessCompleter(Completer):
    """Completes from `fetch(path) -> list of key names` (the process's answer), cached per path."""

    def __init__(self, fetch: Callable[[str], list[str]], blueprints: Iterable[str] = ()) -> None:
        self.fetch = fetch
        self.blueprints = list(blueprints)
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def keys(self, path: str) -> list[str]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(path)
            if hit and now - hit[0] < CACHE_SECONDS:
                return hit[1]
        try:
            found = self.fetch(path)
        except Exception:  # completion must never break typing; no candidates instead
            found = []
        with self._lock:
            self._cache[path] = (now, found)
        return found

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def get_completions(self, document: Document, complete_event) -> Iterable[Completion]:
        if document.text.lstrip().startswith("."):
            for text, start in dot_completions(document.text_before_cursor.lstrip(), self.blueprints):
                yield Completion(text, start_position=start)
            return
        target = split_target(document.text_before_cursor)
        if target is None:
            return
        path, prefix = target
        names = self.keys(path)
        if not path:
            names = sorted(set(names) | set(LUA_KEYWORDS))
        for name in names:
            bare = name.rstrip("(")
            if bare.startswith(prefix) and bare != prefix or (bare == prefix and name.endswith("(")):
                yield Completion(name, start_position=-len(prefix), display=name)


def parse_keys(output: str) -> list[str]:
    """Key names from the snippet's printed output."""
    return [line.strip() for line in output.splitlines() if re.fullmatch(r"[A-Za-z_]\w*\(?", line.strip())]
