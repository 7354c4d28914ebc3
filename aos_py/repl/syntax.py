"""Is a Lua chunk finished? A real Lua 5.3 compile decides, so continuation matches the process's parser.

aos sends whatever Enter produced and a cut-off `function` fails; we keep reading lines instead while the
compiler's complaint is that the input ended too early (`... near <eof>`).
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_checker = None


def _compile_error():
    """A Lua function returning load()'s error for a text (None when it compiles); made on first use."""
    global _checker
    if _checker is None:
        import lupa.lua53 as lua53  # imported lazily: keeps REPL start-up fast

        runtime = lua53.LuaRuntime(register_eval=False, unpack_returned_tuples=True)
        _checker = runtime.eval('function(s) local f, e = load(s, "=input") return e end')
    return _checker


def compile_error(code: str) -> str | None:
    """The Lua syntax error of `code` as an expression or a statement block, or None when either form compiles."""
    with _lock:
        check = _compile_error()
        if check("return " + code) is None:
            return None
        return check(code)


def is_incomplete(code: str) -> bool:
    """True when `code` is a valid start of a Lua chunk that needs more lines (open block, table, call, long string)."""
    if not code.strip() or code.lstrip().startswith("."):
        return False
    err = compile_error(code)
    if err is None or not err.rstrip().endswith("<eof>"):
        return False
    if "unfinished string" in err:
        # a quoted string may only go on to the next line after a backslash
        return code.endswith("\\")
    return True
