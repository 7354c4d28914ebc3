"""Write Python message values as Lua table constructors.

The runtime hands each message to Lua as the source text of one table
constructor, compiled by Lua's own (C) parser: one string crosses the
Python/Lua boundary instead of one call per field, and bytes survive
unchanged. Values follow JSON semantics (integral floats become integers,
None becomes nil), matching a host that passes the message as JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\x7f"\\]')
_BYTE_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\x7f-\xff"\\]')

_STR_ESCAPES = {i: f"\\{i:03d}" for i in range(32)}
_STR_ESCAPES[0x7F] = "\\127"
_STR_ESCAPES[ord("\\")] = "\\\\"
_STR_ESCAPES[ord('"')] = '\\"'

_BYTE_ESCAPES = dict(_STR_ESCAPES)
_BYTE_ESCAPES.update({i: f"\\{i:03d}" for i in range(0x80, 0x100)})

_MIN_INT = -(2**63)
_MAX_INT = 2**63 - 1
_MAX_DEPTH = 100


class LuaSourceError(ValueError):
    """A value that cannot be given to a process (unsupported type, too deep)."""


def _string(s: str) -> str:
    if _NEEDS_ESCAPE.search(s):
        s = s.translate(_STR_ESCAPES)
    return '"' + s + '"'


def _bytes(b: bytes | bytearray | memoryview) -> str:
    s = bytes(b).decode("latin-1")
    if _BYTE_NEEDS_ESCAPE.search(s):
        s = s.translate(_BYTE_ESCAPES)
    return '"' + s + '"'


def _number(v: int | float) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "(0/0)"
        if math.isinf(v):
            return "1e999" if v > 0 else "-1e999"
        if v.is_integer() and _MIN_INT < v < _MAX_INT:
            v = int(v)
        else:
            return repr(v)
    if _MIN_INT < v <= _MAX_INT:
        return str(v)
    if v == _MIN_INT:
        return "(-9223372036854775807-1)"
    return repr(float(v))


def _write_tags(items: list | tuple, out: list[str]) -> bool:
    """Fast path for a list of {name, value} string pairs (message tags)."""
    parts = []
    for item in items:
        if type(item) is not dict or len(item) != 2:
            return False
        name = item.get("name")
        value = item.get("value")
        if type(name) is not str or type(value) is not str:
            return False
        parts.append("{name=" + _string(name) + ",value=" + _string(value) + "}")
    out.append("{" + ",".join(parts) + "}")
    return True


def _write(v: object, out: list[str], depth: int, where: str) -> None:
    # `where` names the key being written, only for error messages.
    t = type(v)
    if t is str:
        out.append(_string(v))  # type: ignore[arg-type]
    elif t is dict:
        if depth >= _MAX_DEPTH:
            raise LuaSourceError(f"{where}: nested more than {_MAX_DEPTH} levels deep")
        out.append("{")
        for k, item in v.items():  # type: ignore[attr-defined]
            if type(k) is str:
                out.append("[" + _string(k) + "]=")
            elif isinstance(k, int) and not isinstance(k, bool):
                out.append("[" + _number(k) + "]=")
            else:
                raise LuaSourceError(f"{where}: key {k!r} is not a string or an integer")
            if type(item) is str:
                out.append(_string(item))
            else:
                _write(item, out, depth + 1, str(k))
            out.append(",")
        out.append("}")
    elif t is list or t is tuple:
        if depth >= _MAX_DEPTH:
            raise LuaSourceError(f"{where}: nested more than {_MAX_DEPTH} levels deep")
        if _write_tags(v, out):  # type: ignore[arg-type]
            return
        out.append("{")
        for item in v:  # type: ignore[attr-defined]
            _write(item, out, depth + 1, where)
            out.append(",")
        out.append("}")
    elif v is None:
        out.append("nil")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, (int, float)):
        out.append(_number(v))
    elif isinstance(v, str):
        out.append(_string(v))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out.append(_bytes(v))
    elif isinstance(v, Mapping):
        _write(dict(v), out, depth, where)
    elif isinstance(v, Sequence):
        _write(list(v), out, depth, where)
    else:
        raise LuaSourceError(f"{where}: values of type {type(v).__name__} cannot be sent to a process")


def to_lua(value: object, name: str = "value") -> bytes:
    """`return <constructor>` for value, as UTF-8 bytes ready for Lua's load()."""
    out = ["return "]
    _write(value, out, 0, name)
    return "".join(out).encode("utf-8", "surrogateescape")


# str -> UTF-8 bytes of field names, tag names and short tag values: a node's
# messages repeat them (Data-Protocol, ao, process ids), and a dict hit is
# cheaper than encoding again
_ENCODED: dict[str, bytes] = {}
_ENCODED_MAX = 8192


def _encoded(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if len(text) <= 64:
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        _ENCODED[text] = raw
    return raw


def flat_args(msg: dict) -> list | None:
    """[nroot, ntags, k1, v1, ..., name1, value1, ...] for a message whose fields are
    scalars and whose Tags are name/value strings; None when it has another shape."""
    args: list = [0, -1]
    append = args.append
    known = _ENCODED.get
    tags = None
    for k, v in msg.items():
        if type(k) is not str:
            return None
        if k == "Tags":
            tags = v
            continue
        t = type(v)
        if t is str:
            v = v.encode("utf-8", "surrogateescape")
        elif t is int:
            if not _MIN_INT < v <= _MAX_INT:
                return None
        elif t is float:
            if v != v or v in (math.inf, -math.inf):
                return None
            if v.is_integer() and _MIN_INT < v < _MAX_INT:
                v = int(v)
        elif t is bytes:
            pass
        elif v is not None and t is not bool:
            return None
        append(known(k) or _encoded(k))
        append(v)
    args[0] = (len(args) - 2) // 2
    if tags is not None:
        if type(tags) is not list:
            return None
        for tag in tags:
            if type(tag) is not dict or len(tag) != 2:
                return None
            name = tag.get("name")
            value = tag.get("value")
            if type(name) is not str or type(value) is not str:
                return None
            append(known(name) or _encoded(name))
            append(known(value) or _encoded(value))
        args[1] = len(tags)
    return args
