"""What the HTTP units answer, read from the node: SU pages and nodes, CU result pages and cursors,
process state, and the gateway's transaction records. Plain functions over a Node (blocking: the
server runs them on its worker threads)."""

from __future__ import annotations

import base64
import binascii
import json
import time

from aos_py.node.ans104 import ANS104Error, DataItem, b64url, parse
from aos_py.node.su import local_height


class BadRequest(ValueError):
    """A client's request that cannot be answered as asked (400)."""


class Missing(LookupError):
    """No such process, message or data (404)."""


try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _loads = json.loads


def is_id(text: object) -> bool:
    if not isinstance(text, str) or len(text) != 43:
        return False
    try:
        return len(base64.urlsafe_b64decode(text + "=")) == 32
    except (binascii.Error, ValueError):
        return False


def data_text(data: bytes) -> str:
    """Item data as JSON text: the text itself when it is UTF-8, else base64url."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return b64url(data)


def _item(raw: bytes | None) -> DataItem | None:
    if raw is None:
        return None
    try:
        return parse(raw)
    except ANS104Error:
        return None


# -- SU -----------------------------------------------------------------------------------------------

_LOG_COLS = "l.nonce, l.id, l.ts, l.height, l.chain, l.msg, l.data, i.raw"


def _message_json(node, msg: dict, data: bytes | None, raw: bytes | None) -> dict:
    item = _item(raw)
    if item is None and msg.get("Owner") == node.address:
        key = b64url(node.key.owner)
    else:
        key = b64url(item.owner) if item is not None else None
    anchor = msg.get("Anchor")
    target = msg.get("Target") if item is None else item.target_id
    return {"id": msg["Id"], "owner": {"address": msg.get("Owner"), "key": key},
            "data": data_text(data or b""), "tags": msg.get("Tags", []), "signature": msg.get("Signature"),
            "anchor": anchor, "target": target}


def _assignment_json(node, pid: str, nonce: int, mid: str, ts: int, height: int, chain: str, msg: dict) -> dict:
    """This SU signs no separate assignment items: an assignment is shown with the tags the reference SU
    gives it and the id of the message it assigns (the hash chain is over those ids, see su.py)."""
    tags = [{"name": "Process", "value": pid}, {"name": "Epoch", "value": "0"},
            {"name": "Nonce", "value": str(nonce)}, {"name": "Hash-Chain", "value": chain},
            {"name": "Block-Height", "value": str(height)}, {"name": "Timestamp", "value": str(ts)},
            {"name": "Data-Protocol", "value": "ao"}, {"name": "Type", "value": "Assignment"},
            {"name": "Variant", "value": "ao.TN.1"}]
    if nonce != 0:
        tags.append({"name": "Message", "value": mid})
    for name in msg.get("Exclude") or ():
        tags.append({"name": "Exclude", "value": str(name)})
    return {"id": mid, "owner": {"address": node.address, "key": b64url(node.key.owner)}, "tags": tags,
            "signature": None, "anchor": None, "target": None, "data": ""}


def _su_node(node, pid: str, row: tuple) -> dict:
    nonce, mid, ts, height, chain, msg_json, data, raw = row
    msg = _loads(msg_json)
    if raw is None and msg.get("Owner") != node.address:
        raw = node.gateway.raw(mid)
    return {"message": _message_json(node, msg, data, raw),
            "assignment": _assignment_json(node, pid, nonce, mid, ts, height, chain, msg)}


def _int_arg(value: str | None, what: str, lo: int = 0, hi: int = 2**62) -> int | None:
    if value is None or value in ("", "undefined", "null"):
        return None
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{what} must be an integer, got {value[:40]!r}") from None
    if not lo <= n <= hi:
        raise BadRequest(f"{what} must be between {lo} and {hi}")
    return n


def need_process(node, pid: str) -> dict:
    if not is_id(pid):
        raise BadRequest(f"not a process id: {str(pid)[:60]!r} (43 base64url characters)")
    p = node.proc(pid)
    if p is None:
        raise Missing(f"no process {pid} on this node")
    return p


def su_page(node, pid: str, query) -> dict:
    """GET /:pid: the process's schedule, oldest first (`from` exclusive, `to` inclusive, by timestamp; or
    `from-nonce`/`to-nonce`, both inclusive). A page never ends inside a millisecond shared by the next
    message, so paging by the timestamp cursor loses nothing."""
    need_process(node, pid)
    limit = _int_arg(query.get("limit"), "limit", 1, 10**9) or 100
    limit = min(limit, 1000)
    frm = _int_arg(query.get("from"), "from")
    to = _int_arg(query.get("to"), "to")
    from_nonce = _int_arg(query.get("from-nonce"), "from-nonce")
    to_nonce = _int_arg(query.get("to-nonce"), "to-nonce")
    nonce_mode = from_nonce is not None or to_nonce is not None
    sql = f"SELECT {_LOG_COLS} FROM log l LEFT JOIN items i ON i.id = l.id WHERE l.pid=?"
    args: list = [pid]
    if frm is not None:
        sql += " AND l.ts > ?"
        args.append(frm)
    if to is not None:
        sql += " AND l.ts <= ?"
        args.append(to)
    if from_nonce is not None:
        sql += " AND l.nonce >= ?"
        args.append(from_nonce)
    if to_nonce is not None:
        sql += " AND l.nonce <= ?"
        args.append(to_nonce)
    sql += " ORDER BY l.nonce LIMIT ?"
    args.append(limit + 1)
    rows = node.store.query(sql, args)
    more = len(rows) > limit
    rows = rows[:limit + 1]
    if more and not nonce_mode:
        last_ts = rows[limit][2]
        keep = [r for r in rows[:limit] if r[2] != last_ts]
        if keep:
            rows = keep
        else:   # one millisecond holds more than a page: give the whole millisecond
            rows = node.store.query(
                f"SELECT {_LOG_COLS} FROM log l LEFT JOIN items i ON i.id = l.id WHERE l.pid=? AND l.ts=? "
                "AND l.nonce >= ? ORDER BY l.nonce", (pid, last_ts, rows[0][0]))
            later = node.store.query("SELECT ts FROM log WHERE pid=? AND nonce > ? ORDER BY nonce LIMIT 1",
                                     (pid, rows[-1][0]))
            more = bool(later) and (to is None or later[0][0] <= to)
    else:
        rows = rows[:limit]
    edges = [{"cursor": str(r[0] if nonce_mode else r[2]), "node": _su_node(node, pid, r)} for r in rows]
    return {"page_info": {"has_next_page": more}, "edges": edges}


def su_message(node, pid: str, mid: str) -> dict:
    """GET /:id?process-id=P: one scheduled message with its assignment."""
    need_process(node, pid)
    if not is_id(mid):
        raise BadRequest(f"not a message id: {str(mid)[:60]!r}")
    rows = node.store.query(f"SELECT {_LOG_COLS} FROM log l LEFT JOIN items i ON i.id = l.id "
                            "WHERE l.pid=? AND l.id=? ORDER BY l.nonce LIMIT 1", (pid, mid))
    if not rows:
        raise Missing(f"message {mid} is not in the schedule of process {pid}")
    return _su_node(node, pid, rows[0])


def su_latest(node, pid: str) -> dict:
    need_process(node, pid)
    rows = node.store.query(f"SELECT {_LOG_COLS} FROM log l LEFT JOIN items i ON i.id = l.id "
                            "WHERE l.pid=? ORDER BY l.nonce DESC LIMIT 1", (pid,))
    if not rows:
        raise Missing(f"process {pid} has no scheduled messages yet")
    return _su_node(node, pid, rows[0])


def process_of_message(node, mid: str) -> str | None:
    rows = node.store.query("SELECT pid FROM log WHERE id=? ORDER BY seq LIMIT 1", (mid,))
    return rows[0][0] if rows else None


def su_process(node, pid: str) -> dict:
    """GET /processes/:pid."""
    p = need_process(node, pid)
    item = _item(node.gateway.raw(pid))
    if item is None:
        raise Missing(f"the spawn item of process {pid} is not on this node")
    rows = node.store.query("SELECT ts, height FROM log WHERE pid=? AND nonce=0", (pid,))
    ts, height = rows[0] if rows else (p["created"], local_height(p["created"]))
    return {"process_id": pid, "block": str(height), "owner": {"address": item.owner_address, "key": b64url(item.owner)},
            "tags": [{"name": n, "value": v} for n, v in item.tags], "timestamp": ts,
            "data": data_text(item.data), "anchor": item.anchor.decode("utf-8", "replace") if item.anchor else None,
            "signature": b64url(item.signature), "target": item.target_id}


def timestamp() -> dict:
    now = int(time.time() * 1000)
    return {"timestamp": str(now), "block_height": f"{local_height(now):012d}"}


# -- CU -----------------------------------------------------------------------------------------------

def encode_cursor(ts: int, nonce: int, sort: str) -> str:
    """The CU's results cursor: standard base64 of {timestamp, ordinate, cron, sort} (aos decodes it)."""
    text = json.dumps({"timestamp": ts, "ordinate": str(nonce), "cron": None, "sort": sort}, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def decode_bound(value: str | None, what: str) -> tuple[str, int] | None:
    """A `from`/`to` bound: ('nonce', n) from a cursor, ('ts', ms) from a plain timestamp, None if absent."""
    if value is None or value in ("", "undefined", "null"):
        return None
    if value.isdigit() and len(value) < 20:
        return ("ts", int(value))
    try:
        obj = json.loads(base64.b64decode(value + "=" * (-len(value) % 4), validate=False).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadRequest(f"{what}: not a cursor or a timestamp: {value[:60]!r}") from None
    if not isinstance(obj, dict):
        raise BadRequest(f"{what}: not a cursor: {value[:60]!r}")
    ordinate = obj.get("ordinate")
    if isinstance(ordinate, (str, int)) and not isinstance(ordinate, bool) and str(ordinate).isdigit() \
            and len(str(ordinate)) < 19:
        return ("nonce", int(ordinate))
    ts = obj.get("timestamp")
    if isinstance(ts, (int, str)) and not isinstance(ts, bool) and str(ts).isdigit() and len(str(ts)) < 20:
        return ("ts", int(ts))
    raise BadRequest(f"{what}: the cursor holds no ordinate or timestamp")


def _action(tags: list) -> str | None:
    for t in tags:
        if isinstance(t, dict) and t.get("name") == "Action":
            return t.get("value")
    return None


def results_page(node, pid: str, query, *, cron_only: bool = False) -> dict:
    """GET /results/:pid (and /cron/:pid): computed results as a connection. `from` is an exclusive lower
    bound and `to` an inclusive upper bound whatever the sort, as the reference CU reads them."""
    need_process(node, pid)
    sort = (query.get("sort") or "ASC").upper()
    if sort not in ("ASC", "DESC"):
        raise BadRequest(f"sort must be ASC or DESC, not {query.get('sort', '')[:20]!r}")
    default, cap = (500, 1000) if cron_only else (25, 1000)
    limit = _int_arg(query.get("limit"), "limit", 1, 10**9) or default
    limit = min(limit, cap)
    sql = "SELECT nonce, id, ts, msg, result FROM log WHERE pid=? AND status!=0"
    args: list = [pid]
    for key, op in (("from", ">"), ("to", "<=")):
        bound = decode_bound(query.get(key), key)
        if bound is not None:
            sql += f" AND {'nonce' if bound[0] == 'nonce' else 'ts'} {op} ?"
            args.append(bound[1])
    if cron_only:
        sql += " AND json_extract(msg, '$.Cron') = 1"
    sql += f" ORDER BY nonce {sort} LIMIT ?"
    args.append(limit + 1)
    rows = node.store.query(sql, args)
    edges = []
    for nonce, mid, ts, msg_json, result in rows[:limit]:
        msg = _loads(msg_json)
        edges.append({"cursor": encode_cursor(ts, nonce, sort), "node": _loads(result),
                      # extra (aoconnect drops unknown keys): lets aos-py's live feed tell its own Evals apart
                      "message": {"id": mid, "from": msg.get("From"), "action": _action(msg.get("Tags", []))}})
    return {"pageInfo": {"hasNextPage": len(rows) > limit}, "edges": edges}


def message_status(node, pid: str, mid: str) -> str:
    """'known' when the message is in the process's log, else 'unknown'."""
    return "known" if node.store.query("SELECT 1 FROM log WHERE pid=? AND id=? LIMIT 1", (pid, mid)) else "unknown"


def state(node, pid: str, to: str | None) -> tuple[bytes, dict]:
    """GET /state/:pid: the process's state rebuilt by replay (to slot `to`), as the runtime's canonical
    dump of its Lua globals (a Lua process has no WASM memory image), with the Last-* headers."""
    need_process(node, pid)
    upto = _int_arg(to, "to")
    from aos_py.node.cu import replay_logged

    def rows():
        for nonce, msg_json, data, journal in node.store.replay_rows_after(pid, -1):
            if upto is not None and nonce > upto:
                return
            yield msg_json, data, journal

    rt = node._make_runtime()
    try:
        last = replay_logged(rt, node.env(pid), rows())
        body = rt.state_dump().encode("utf-8")
    finally:
        rt.close()
    headers = {"Last-Ordinate": str(last["Nonce"]) if last else "",
               "Last-Timestamp": str(last["Timestamp"]) if last else "",
               "Last-Block-Height": str(last["Block-Height"]) if last else ""}
    return body, headers


# -- gateway ------------------------------------------------------------------------------------------

def _block(created: int) -> dict:
    height = local_height(created)
    return {"id": b64url(height.to_bytes(8, "big").rjust(32, b"\0")), "height": height,
            "timestamp": created // 1000, "previous": b64url((height - 1).to_bytes(8, "big").rjust(32, b"\0"))}


def _tx(node, item_id: str, owner: str | None, target: str | None, raw: bytes | None, size: int,
        created: int, tags: list[tuple[str, str]] | None) -> dict:
    item = _item(raw)
    if tags is None:
        tags = item.tags if item is not None else node.gateway.tags(item_id)
    content_type = next((v for n, v in tags if n.lower() == "content-type"), None)
    zero = {"winston": "0", "ar": "0.000000000000"}
    return {"id": item_id, "anchor": item.anchor.decode("utf-8", "replace") if item and item.anchor else "",
            "signature": b64url(item.signature) if item else "",
            "recipient": (item.target_id if item else target) or "",
            "owner": {"address": owner or (item.owner_address if item else ""),
                      "key": b64url(item.owner) if item else ""},
            "fee": zero, "quantity": zero,
            "data": {"size": str(len(item.data) if item else size), "type": content_type},
            "tags": [{"name": n, "value": v} for n, v in tags], "block": _block(created),
            "parent": None, "bundledIn": None, "__typename": "Transaction"}


def transactions(node, q) -> tuple[list[dict], bool]:
    """Gateway records matching a TxQuery (graphql.tx_query): (records, has next page)."""
    if q.ids is not None:
        recs = []
        for item_id in dict.fromkeys(q.ids):
            rows = node.store.query("SELECT id, owner, target, raw, size, created, rowid FROM items WHERE id=?",
                                    (item_id,))
            if rows:
                recs.append(rows[0])
                continue
            raw = node.gateway.raw(item_id) if is_id(item_id) else None   # a pushed message, kept in the log
            item = _item(raw)
            if item is not None:
                ts = node.store.query("SELECT ts FROM log WHERE id=? LIMIT 1", (item_id,))
                recs.append((item_id, item.owner_address, item.target_id, raw, len(item.data),
                             ts[0][0] if ts else 0, 0))
        out = []
        for rec in recs:
            tags = _item(rec[3]).tags if rec[3] is not None and _item(rec[3]) else node.gateway.tags(rec[0])
            if q.owners is not None and rec[1] not in q.owners:
                continue
            if q.recipients is not None and rec[2] not in q.recipients:
                continue
            if not all(any(n == name and v in values for n, v in tags) != neg for name, values, neg in q.tags):
                continue
            out.append((rec, tags))
        out.sort(key=lambda r: (r[0][5], r[0][6]), reverse=q.sort == "DESC")
        page = out[q.after:q.after + q.first]
        return ([_tx(node, r[0], r[1], r[2], r[3], r[4], r[5], tags) for r, tags in page],
                len(out) > q.after + q.first)
    sql = "SELECT id, owner, target, raw, size, created FROM items i WHERE 1=1"
    args: list = []
    for col, values in (("owner", q.owners), ("target", q.recipients)):
        if values is not None:
            sql += f" AND {col} IN ({','.join('?' * len(values))})" if values else " AND 0"
            args += values
    for name, values, neg in q.tags:
        sql += (" AND NOT" if neg else " AND") + " EXISTS (SELECT 1 FROM item_tags t WHERE t.id=i.id AND t.name=? " \
            f"AND t.value IN ({','.join('?' * len(values))}))"
        args += [name, *values]
    sql += f" ORDER BY created {q.sort}, rowid {q.sort} LIMIT ? OFFSET ?"
    args += [q.first + 1, q.after]
    rows = node.store.query(sql, args)
    return [_tx(node, r[0], r[1], r[2], r[3], r[4], r[5], None) for r in rows[:q.first]], len(rows) > q.first


def item_data(node, item_id: str) -> tuple[bytes | None, object, str]:
    """(bytes or None, path or None, content type) of a stored item's data or a stored file."""
    if not is_id(item_id):
        raise BadRequest(f"not an id: {str(item_id)[:60]!r}")
    rows = node.store.query("SELECT kind, file FROM items WHERE id=?", (item_id,))
    tags = node.gateway.tags(item_id)
    ctype = next((v for n, v in tags if n.lower() == "content-type"), None)
    if rows and rows[0][1]:
        path = node.gateway.resolve(item_id)
        if path is None:
            raise Missing(f"the file {item_id} is missing from the data store")
        return None, path, ctype or "application/octet-stream"
    item = _item(node.gateway.raw(item_id))
    if item is None:
        raise Missing(f"no data with id {item_id} on this node")
    ctype = ctype or next((v for n, v in item.tags if n.lower() == "content-type"), None)
    return item.data, None, ctype or "application/octet-stream"


def item_raw(node, item_id: str) -> tuple[bytes | None, object]:
    if not is_id(item_id):
        raise BadRequest(f"not an id: {str(item_id)[:60]!r}")
    raw = node.gateway.raw(item_id)
    if raw is not None:
        return raw, None
    rows = node.store.query("SELECT file FROM items WHERE id=?", (item_id,))
    if rows and rows[0][0]:
        path = node.gateway.resolve(item_id)
        if path is not None:
            return None, path
    raise Missing(f"no data with id {item_id} on this node")
