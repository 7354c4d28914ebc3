"""Messages of the in-memory node of `aos test` (aos_py/testing/sim.py), shaped as aolite shapes them.

Tag lists, names in aos 2.0.4's form, the view a handler had of a message, aolite's message ids and the
standard fields of the messages the node makes (outboxes, node messages, spawns, Spawned notices), so the
scheduler itself only moves messages between queues (message_store.py keeps them).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

try:
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj, default=_jsonable)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, default=_jsonable, separators=(",", ":")).encode("utf-8")

    _loads = json.loads

if TYPE_CHECKING:
    from aos_py.testing.message_store import MessageIds

DEFAULT_MODULE = "DefaultDummyModule"

_NON_EXTRACTABLE = frozenset({
    "Data-Protocol", "Variant", "From-Process", "From-Module", "Type",
    "From", "Owner", "Anchor", "Target", "Data", "Tags", "Read-Only",
})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NORM_CACHE: dict[str, str] = {}


class SimError(Exception):
    """An aolite operation failed (the message says why, in aolite's words where aolite has them)."""


def _jsonable(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"cannot encode a {type(value).__name__}")


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def normalize_name(name: object) -> object:
    """aos 2.0.4's tag-name form: "x_custom-tag" -> "X-Custom-Tag"."""
    if not isinstance(name, str):
        return name
    hit = _NORM_CACHE.get(name)
    if hit is None:
        s = name.replace("_", "-").lower()
        hit = re.sub(r"(^|-)([a-z])", lambda m: m.group(1) + m.group(2).upper(), s)
        if len(_NORM_CACHE) < 4096:
            _NORM_CACHE[name] = hit
    return hit


def handled_view(msg: dict) -> dict:
    """A message as its handler saw it (aolite hands back the very table process.handle rewrote):
    names normalised, tags copied to the root, Tags as a name -> value map, TagArray the list,
    and a JSON Data decoded when Content-Type says so."""
    view = {normalize_name(k): v for k, v in msg.items()}
    tags = []
    for t in msg.get("Tags") or []:
        if isinstance(t, dict):
            tags.append({"name": normalize_name(t.get("name")), "value": t.get("value")})
    tag_map: dict = {}
    for t in tags:
        name = t["name"]
        if name not in _NON_EXTRACTABLE:
            view[name] = t["value"]
        if name not in tag_map:
            tag_map[name] = t["value"]
    # aos 2.0.4 normalises names ("X-MyTag" arrives as "X-Mytag"); the test also finds them as they were sent
    for t in msg.get("Tags") or []:
        if isinstance(t, dict) and isinstance(t.get("name"), str):
            original = t["name"]
            normal = normalize_name(original)
            if original != normal and normal in tag_map:
                tag_map.setdefault(original, tag_map[normal])
                if normal in view and original not in view:
                    view[original] = view[normal]
    view["TagArray"] = tags
    view["Tags"] = tag_map
    if tag_map.get("Content-Type") == "application/json" and isinstance(view.get("Data"), str):
        try:
            view["Data"] = _loads(view["Data"] or "{}")
        except ValueError:
            pass
    return view


def tag_list(tags: object) -> list[dict]:
    """Tags given as a {name: value} map or a [{name, value}] list, as a list."""
    if tags is None:
        return []
    if isinstance(tags, dict):
        if tags and all(isinstance(k, str) and k.isdigit() for k in tags):    # a Lua list through JSON
            tags = [tags[k] for k in sorted(tags, key=int)]
        else:
            return [{"name": str(k), "value": v} for k, v in tags.items()]
    if isinstance(tags, (list, tuple)):
        out = []
        for t in tags:
            if isinstance(t, dict) and "name" in t:
                out.append({"name": str(t["name"]), "value": t.get("value")})
            elif isinstance(t, (list, tuple)) and len(t) == 2:
                out.append({"name": str(t[0]), "value": t[1]})
            else:
                raise SimError("each tag needs a `name` and a `value`")
        return out
    raise SimError("tags must be a table (a {name = value} map or a list of {name = ..., value = ...})")


def sender_and_target(msg: object) -> tuple[str, str]:
    """From and Target of a message a test sends (SimError, in aolite's words, when one is missing)."""
    if not isinstance(msg, dict):
        raise SimError("a message must be a table")
    frm, target = msg.get("From"), msg.get("Target")
    if not isinstance(frm, str):
        raise SimError("From must be defined")
    if not isinstance(target, str):
        raise SimError("Target must be defined")
    return frm, target


def tag_value(tags: list[dict], name: str) -> object:
    """The value of the first tag called `name` (None: there is none)."""
    return next((t.get("value") for t in tags if t.get("name") == name), None)


def output_text(output: object) -> str:
    """What a result printed, as text (its Output in any of the forms a process gives it)."""
    if output is None:
        return ""
    if isinstance(output, dict):
        data = output.get("data")
        if data is None:
            return ""
        return data if isinstance(data, str) else _text(data)
    if isinstance(output, list):
        return "\n".join(_text(x) for x in output if x is not None)
    return _text(output)


def error_text(err: object) -> str:
    """A result's Error as a test reports it: no colours, no traceback preamble."""
    text = strip_ansi(_text(err))
    marker = "error:\n"
    i = text.rfind(marker)
    if i >= 0:
        text = text[i + len(marker):]
    return text.strip()


def eval_value(res: dict, response: dict | None) -> str | None:
    """What aolite's eval returns for the EvalRequest's result and its EvalResponse: the value as Lua
    source, or None; a failed evaluation raises SimError."""
    if res.get("Error"):
        raise SimError(f"Error in evaluation: {error_text(res['Error'])}")
    if response is None:
        return None
    if response.get("Error"):
        raise SimError(f"Error in evaluation: {response['Error']}")
    data = response.get("Data")
    return data if isinstance(data, str) and data else None


def outbox_message(out: dict, frm: str, module: str, pushed_for: str | None, ids: MessageIds,
                   timestamp: int, block_height: int) -> dict:
    """aolite's standard fields on an outbox message (From, Owner, Id, Timestamp, Block-Height, Module)."""
    tags = [dict(t) for t in (out.get("Tags") or []) if isinstance(t, dict)]
    names = {t.get("name") for t in tags}
    ref = tag_value(tags, "Reference")
    if "From-Process" not in names:
        tags.append({"name": "From-Process", "value": frm})
    if "From-Module" not in names:
        tags.append({"name": "From-Module", "value": module})
    if pushed_for and "Pushed-For" not in names:
        tags.append({"name": "Pushed-For", "value": pushed_for})
    mid = ids.referenced(frm, ref, f"{frm}#~")
    msg = {"Id": mid, "From": frm, "Owner": frm, "Target": out.get("Target"), "Anchor": out.get("Anchor"),
           "Data": out.get("Data") if out.get("Data") is not None else "", "Tags": tags,
           "Timestamp": timestamp, "Block-Height": block_height, "Module": module}
    if msg["Anchor"] is None:
        del msg["Anchor"]
    return msg


def outside_message(mid: str, frm: str, target: str, tags: list[dict], data: str, *, cron: bool,
                    timestamp: int, block_height: int) -> dict:
    """A message from an identity that is no process of the node (the node itself, a wallet)."""
    tl = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
          {"name": "Type", "value": "Message"}] + tags
    msg = {"Id": mid, "From": frm, "Owner": frm, "Target": target, "Data": data, "Tags": tl,
           "Timestamp": timestamp, "Block-Height": block_height, "Module": DEFAULT_MODULE}
    if cron:
        msg["Cron"] = True
    return msg


def spawn_message(pid: str, owner: str, module: str, tags: list[dict], parent: str | None, data: str | None,
                  timestamp: int, block_height: int) -> dict:
    """The message a process boots with (its Id is the process's id)."""
    boot_tags = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                 {"name": "Type", "value": "Process"}]
    boot_tags += [t for t in tags if t["name"] not in ("Data-Protocol", "Variant", "Type", "On-Boot")]
    if parent and not any(t["name"] == "From-Process" for t in boot_tags):
        boot_tags.append({"name": "From-Process", "value": parent})
    return {"Id": pid, "From": owner, "Owner": owner, "Target": pid, "Module": module,
            "Timestamp": timestamp, "Block-Height": block_height, "Tags": boot_tags,
            "Data": data if isinstance(data, str) else ""}


def spawned_notice(mid: str, parent: str, module: str, child: str, spawn_tags: list[dict],
                   pushed_for: str | None, timestamp: int, block_height: int) -> dict:
    """The Spawned message a process gets when a process it spawned exists."""
    tags = [t for t in spawn_tags if t.get("name") not in ("Data-Protocol", "Variant", "Type", "On-Boot")]
    tags += [{"name": "Data-Protocol", "value": "ao"}, {"name": "Type", "value": "Message"},
             {"name": "Action", "value": "Spawned"}, {"name": "Process", "value": child}]
    if pushed_for:
        tags.append({"name": "Pushed-For", "value": pushed_for})
    return {"Id": mid, "From": parent, "Owner": parent, "Target": parent, "Data": "",
            "Tags": tags, "Timestamp": timestamp, "Block-Height": block_height,
            "Module": module, "Process": child, "Action": "Spawned"}
