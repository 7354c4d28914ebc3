"""Score runtime results against the recorded aos results (tests/compat/).

Results are first normalised (masked addresses, canonical key order, tag
lists sorted, JSON Data parsed), then compared per case:

- default: volatile data ignored (Reference tags, Anchor, the Eval `test`
  dump); JSON Data compared parsed; everything else exact, colours included.
- loose: default, plus ANSI colours stripped; output / error / thrown compared
  as multisets of non-blank lines (trailing commas dropped); positions inside
  the process library's own modules (`[string ".handlers"]:N: `, `[string
  "json"]:N: `) and `stack traceback:` blocks removed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable

VOLATILE_TAGS = frozenset({"Reference", "Ref_"})
VOLATILE_FIELDS = frozenset({"Anchor"})
TEXT_FIELDS = ("output", "prompt", "error", "thrown")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ADDRESS = re.compile(r"(table|function|thread|userdata): (?:0x)?[0-9a-fA-F]+")
LIBRARY_POSITION = re.compile(r'\[string "(?:\.[^"]*|json)"\]:\d+: ')
TRACEBACK = re.compile(r"stack traceback:(?:\n\t[^\n]*)*")


# --------------------------------------------------------------------------
# normalisation of one result
# --------------------------------------------------------------------------

def strip_ansi(s):
    return ANSI.sub("", s) if isinstance(s, str) else s


def mask(s):
    return ADDRESS.sub(r"\1: <addr>", s) if isinstance(s, str) else s


def canonical(v):
    if isinstance(v, list):
        return [canonical(x) for x in v]
    if isinstance(v, dict):
        return {k: canonical(v[k]) for k in sorted(v)}
    return v


def js_text(v) -> str:
    """JSON text as JavaScript writes it (integral floats without '.0')."""
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return "null"
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        text = repr(v)
        if "e" in text:
            mantissa, exponent = text.split("e")
            sign = "-" if exponent.startswith("-") else "+"
            text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0')}"
        return text
    if isinstance(v, (int, str)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(js_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + js_text(x) for k, x in v.items()) + "}"
    return json.dumps(str(v), ensure_ascii=False)


def as_text(v):
    if v is None:
        return None
    if isinstance(v, str):
        return mask(v)
    return mask(js_text(canonical(v)))


def norm_value(v):
    return mask(v) if isinstance(v, str) else canonical(v)


def norm_tags(tags) -> list[dict]:
    if not isinstance(tags, list):
        return []
    out = []
    for t in tags:
        t = t if isinstance(t, dict) else {}
        out.append({"name": t.get("name"), "value": norm_value(t.get("value"))})
    out.sort(key=lambda t: ("null" if t["name"] is None else str(t["name"]), js_text(t["value"])))
    return out


def parse_json_data(data):
    if not isinstance(data, str):
        return None, False
    s = data.strip()
    if not s.startswith(("{", "[")):
        return None, False
    try:
        return canonical(json.loads(s)), True
    except ValueError:
        return None, False


def norm_message(m) -> dict:
    if not isinstance(m, dict):
        return {"invalid": as_text(m)}
    out: dict = {}
    tags = norm_tags(m.get("Tags"))
    if "Target" in m:
        out["Target"] = m["Target"]
    data = m.get("Data")
    out["Data"] = norm_value(data)
    parsed, ok = parse_json_data(data)
    if ok:
        out["data_json"] = parsed
    out["Tags"] = tags
    for k in sorted(m):
        if k not in ("Target", "Data", "Tags"):
            out[k] = norm_value(m[k])
    return out


def empty_line(case: str, i: int) -> dict:
    return {"case": case, "i": i, "thrown": None, "output": None, "print": None, "prompt": None,
            "error": None, "messages": [], "spawns": [], "assignments": [], "output_test": None}


def normalize(case: str, i: int, raw: dict) -> dict:
    """Normalised line for one raw result ({"thrown": text} or a handle() result)."""
    line = empty_line(case, i)
    if set(raw) == {"thrown"}:
        line["thrown"] = mask(raw["thrown"]) if isinstance(raw["thrown"], str) else as_text(raw["thrown"])
        return line
    output = raw.get("Output")
    if output is not None and not (isinstance(output, list) and not output):
        if isinstance(output, dict):
            line["output"] = as_text(output.get("data"))
            line["prompt"] = as_text(output.get("prompt"))
            printed = output.get("print")
            line["print"] = printed if isinstance(printed, bool) else None
            line["output_test"] = as_text(output.get("test"))
        else:
            line["output"] = as_text(output)
    line["error"] = as_text(raw.get("Error"))
    line["messages"] = [norm_message(m) for m in raw.get("Messages") or []]
    line["spawns"] = [norm_message(m) for m in raw.get("Spawns") or []]
    line["assignments"] = [canonical(a) for a in raw.get("Assignments") or []]
    return line


# --------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------

def loose_lines(s):
    if not isinstance(s, str):
        return s
    s = TRACEBACK.sub("", strip_ansi(s))
    s = LIBRARY_POSITION.sub("", s)
    lines = [ln.rstrip().rstrip(",") for ln in s.split("\n")]
    return sorted(ln for ln in lines if ln.strip())


def message_view(m, mode: str):
    if not isinstance(m, dict):
        return m
    out = {}
    for k, v in m.items():
        if k in VOLATILE_FIELDS:
            continue
        if k == "Tags":
            tags = [t for t in (v if isinstance(v, list) else []) if t.get("name") not in VOLATILE_TAGS]
            if mode == "loose":
                tags = [{"name": t["name"], "value": loose_lines(t["value"]) if isinstance(t["value"], str) else t["value"]}
                        for t in tags]
            out[k] = tags
        elif k != "volatile_tags":
            out[k] = v
    if "data_json" in out:
        out.pop("Data", None)
    if mode == "loose" and isinstance(out.get("Data"), str):
        out["Data"] = loose_lines(out["Data"])
    return out


def line_view(rec: dict, mode: str) -> dict:
    v = {"i": rec.get("i"), "print": rec.get("print")}
    for f in TEXT_FIELDS:
        value = rec.get(f)
        if mode == "loose":
            value = loose_lines(value)
        v[f] = value
    v["messages"] = [message_view(m, mode) for m in rec.get("messages") or []]
    v["spawns"] = [message_view(m, mode) for m in rec.get("spawns") or []]
    v["assignments"] = rec.get("assignments") or []
    return v


def first_difference(a, b, path=""):
    numbers = (int, float)
    if type(a) is not type(b) and not (isinstance(a, numbers) and isinstance(b, numbers)
                                       and not isinstance(a, bool) and not isinstance(b, bool)):
        return path or "value", a, b
    if isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}".lstrip("."), a.get(k, "<absent>"), b.get(k, "<absent>")
            if a[k] != b[k]:
                return first_difference(a[k], b[k], f"{path}.{k}".lstrip("."))
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path} (length {len(a)} vs {len(b)})", a, b
        for j, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{j}]")
    return path or "value", a, b


def compare_case(expected: list[dict], actual: list[dict], mode: str) -> list[str]:
    """Reasons why a case differs under `mode` (empty when equal)."""
    reasons = []
    if len(expected) != len(actual):
        reasons.append(f"expected {len(expected)} results, got {len(actual)}")
    by_i = {r["i"]: r for r in actual}
    for e in expected:
        a = by_i.get(e["i"])
        if a is None:
            reasons.append(f"i={e['i']}: missing")
            continue
        ve, va = line_view(e, mode), line_view(a, mode)
        if ve != va:
            path, x, y = first_difference(ve, va)
            reasons.append(f"i={e['i']} {path}: expected {json.dumps(x, ensure_ascii=False)[:300]} "
                           f"got {json.dumps(y, ensure_ascii=False)[:300]}")
    return reasons


def load_expected(lines: Iterable[str]) -> dict[str, list[dict]]:
    cases: dict[str, list[dict]] = {}
    for ln in lines:
        ln = ln.strip()
        if ln:
            rec = json.loads(ln)
            cases.setdefault(rec["case"], []).append(rec)
    return cases
