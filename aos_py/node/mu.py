"""The messenger unit's rules: what it accepts from outside and the items it signs when it pushes outboxes.

Incoming items are verified and checked before anything is scheduled. Who sent
a message is always read from the signature (Owner) and the signed
From-Process tag, never from other claims. Outbox Messages, Spawns and the
Spawned notices become new items signed by the node's Ed25519 key (cheap to
sign, and the Authority of every process the node spawns).
"""

from __future__ import annotations

from aos_py.node import ans104
from aos_py.node.ans104 import ANS104Error, DataItem

MAX_ITEM_BYTES = 10 * 1024 * 1024
_DROP_ON_PUSH = {"Data-Protocol", "Type", "From-Process", "From-Module", "Assignments", "Pushed-For"}
_DROP_ON_NOTICE = {"Data-Protocol", "Variant", "Type"}


class RejectedItem(ValueError):
    """An item the MU refuses; the message says why. Nothing was scheduled."""


class UnsendableMessage(RejectedItem):
    """An outbox message that no AO item can carry (a tag that is not UTF-8 text)."""


def accept(raw: bytes) -> DataItem:
    """Parse, verify and check an item posted to the MU."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise RejectedItem(f"a data item must be bytes, got {type(raw).__name__}")
    if len(raw) > MAX_ITEM_BYTES:
        raise RejectedItem(f"data item of {len(raw):,} bytes is over the {MAX_ITEM_BYTES:,}-byte limit")
    try:
        item = ans104.parse_and_verify(bytes(raw))
        ans104.check_tags(item.tags)   # the ANS-104 limits: 128 tags, names <= 1024 and values <= 3072 bytes
    except ANS104Error as exc:
        raise RejectedItem(f"invalid data item: {exc}") from None
    proto = item.tag("Data-Protocol")
    if proto != "ao":
        raise RejectedItem(f"not an ao item: Data-Protocol is {proto!r}, expected 'ao'")
    kind = item.tag("Type")
    if kind not in ("Process", "Message"):
        raise RejectedItem(f"unsupported Type {kind!r}: the MU accepts Process and Message items")
    if kind == "Process" and not item.tag("Module"):
        raise RejectedItem("a Process item needs a Module tag")
    if kind == "Message" and not item.target:
        raise RejectedItem("a Message item needs a target process")
    for name, value in item.tags:
        if name.endswith("+link") or value.endswith("+link"):
            raise RejectedItem(f"tag {name!r}: names and values ending in '+link' are reserved")
    return item


def _tags(raw_tags: object) -> list[tuple[str, str]]:
    """Outbox tags as (name, value) strings; empty names or values cannot go on the wire and are left out."""
    out = []
    if not isinstance(raw_tags, list):
        return out
    for t in raw_tags:
        if not isinstance(t, dict):
            continue
        name, value = t.get("name"), t.get("value")
        if type(name) is str and type(value) is str:   # the usual case
            if name and value:
                out.append((name, value))
            continue
        if value is None or name is None:
            continue
        name = name if isinstance(name, str) else str(name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif not isinstance(value, str):
            value = str(value)
        if name and value:
            out.append((name, value))
    return out


def _anchor(value: object) -> bytes | None:
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return raw if len(raw) == 32 else None
    return None


def _data(value: object) -> bytes:
    """Outbox Data as bytes; Lua strings are bytes, so Data that is not UTF-8 arrives exactly as sent."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else str(value).encode("utf-8")


def _text_tags(tags: list[tuple[str, str]]) -> list[tuple[str, str]]:
    for name, value in tags:
        for text in (name, value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise UnsendableMessage(f"tag {name.encode('utf-8', 'surrogateescape')!r} is not UTF-8 text "
                                        "(AO message tags are text; send binary data in Data)") from None
    return tags


def push_message(signer, pid: str, module: str, root: str, out: dict) -> DataItem:
    """Item for one outbox message of process `pid`."""
    target = out.get("Target")
    if not isinstance(target, str) or len(target) != 43:
        raise RejectedItem(f"outbox message target {target!r} is not a process id")
    tags = [t for t in _text_tags(_tags(out.get("Tags"))) if t[0] not in _DROP_ON_PUSH]
    tags += [("Data-Protocol", "ao"), ("Type", "Message"), ("From-Process", pid), ("From-Module", module),
             ("Pushed-For", root)]
    return ans104.build(signer, target=target, anchor=_anchor(out.get("Anchor")), tags=tags,
                        data=_data(out.get("Data")))


def push_spawn(signer, pid: str, module: str, root: str, out: dict, scheduler: str) -> DataItem:
    """Item for one outbox Spawn of process `pid`; the node stays an Authority of the child."""
    tags = _tags(out.get("Tags"))
    names = {n for n, _ in tags}
    if "Module" not in names:
        raise RejectedItem("outbox spawn has no Module tag")
    variant = next((v for n, v in tags if n == "Variant"), "ao.TN.1")
    tags = [t for t in tags if t[0] not in _DROP_ON_PUSH and t[0] != "Variant"]
    tags += [("Data-Protocol", "ao"), ("Variant", variant), ("Type", "Process"), ("From-Process", pid),
             ("From-Module", module), ("Pushed-For", root)]
    if "Scheduler" not in names:
        tags.append(("Scheduler", scheduler))
    if not any(n == "Authority" and signer.address in v.split(",") for n, v in tags):
        tags.append(("Authority", signer.address))
    return ans104.build(signer, anchor=_anchor(out.get("Anchor")), tags=tags, data=_data(out.get("Data")))


def spawned_notice(signer, parent: str, spawn: DataItem) -> DataItem:
    """The spawn-success message to the parent (`Action: Spawned`, `Process: <child>`)."""
    tags = [t for t in spawn.tags if t[0] not in _DROP_ON_NOTICE]
    tags += [("Data-Protocol", "ao"), ("Type", "Message"), ("Process", spawn.id), ("Action", "Spawned"),
             ("Variant", spawn.tag("Variant", "ao.TN.1"))]
    return ans104.build(signer, target=parent, tags=tags, data=b"")


def cron_tick(signer, pid: str, cron_tags: list[tuple[str, str]], anchor: str) -> DataItem:
    """A cron message for `pid`, carrying its Cron-Tag-* tags; the 32-char anchor keeps tick ids distinct."""
    tags = list(cron_tags) + [("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Message")]
    return ans104.build(signer, target=pid, anchor=anchor, tags=tags, data=b"")


def rebuild_pushed(signer, msg: dict, data: bytes) -> bytes | None:
    """The exact signed bytes of a message the node pushed, from its log row (None if it is not one).

    Pushed messages are stored once, in the log: their item is every field of the logged message
    (signature, target, anchor, tags, data) plus the signer's public key, so it is written again on
    demand instead of being stored twice."""
    if msg.get("Owner") != signer.address or "Signature" not in msg:
        return None
    tags = [(t["name"], t["value"]) for t in msg["Tags"]]
    anchor = msg.get("Anchor", "").encode("utf-8")
    target = ans104.b64url_decode(msg["Target"]) if msg.get("Target") else b""
    raw = ans104.serialize(signer.signature_type, ans104.b64url_decode(msg["Signature"]), signer.owner, target,
                           anchor, ans104.encode_tags(tags), len(tags), data)
    return raw if ans104.parse(raw).id == msg["Id"] else None
