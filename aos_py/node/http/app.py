"""`aos serve`: the node's MU, CU, SU and gateway over HTTP, on one origin (aiohttp).

Routes (spec §2):
  MU       POST /  (a signed data item, or ?process-id=&assign= for an assignment)
           POST|DELETE /monitor/:pid
  CU       GET /result/:id?process-id=   GET /results/:pid   POST /dry-run?process-id=
           GET /state/:pid   GET /cron/:pid
  SU       GET /   GET /timestamp   GET /:pid (pages)   GET /:id?process-id=   GET /processes/:pid
           GET /:pid/latest   GET /health
  gateway  POST|GET /graphql   GET /raw/:id   GET /:id (the data of an item or file that is not a process)

Every handler validates its input; a client's mistake is a 4xx with {"error": ...}. The node is
blocking and thread-safe, so node work runs on a thread pool and the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from aos_py.node import modules
from aos_py.node.ans104 import ANS104Error, parse_and_verify
from aos_py.node.errors import NodeError, NotFound, Rejected
from aos_py.node.gateway import GatewayError
from aos_py.node.http import graphql, views
from aos_py.node.http.views import BadRequest, Missing, is_id
from aos_py.node.mu import MAX_ITEM_BYTES
from aos_py.node.store import StoreError

log = logging.getLogger("aos_py.node.http")

MAX_JSON_BYTES = 1 << 20          # dry-run and GraphQL bodies
RESULT_WAIT = 25.0                # /result waits this long for a computation, then answers 202 (busy)
MAX_LINE = 64 * 1024              # request line and header limits (long query strings are the client's)
NODE_KEY = web.AppKey("node", object)
GATE_KEY = web.AppKey("gate", object)

try:
    import orjson

    def _dumps(obj: object) -> bytes:
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return json.dumps(obj, default=_jsonable).encode()
except ImportError:  # pragma: no cover - orjson is a dependency
    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, default=_jsonable).encode()


def _jsonable(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def reply(obj: object, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=_dumps(obj), status=status, content_type="application/json", headers=headers)


def error(status: int, text: str) -> web.Response:
    return reply({"error": text}, status)


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Every failure becomes a JSON {"error"}: 4xx for what the client sent, 5xx only for the node's own faults."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = {404: f"no such endpoint: {request.method} {request.path[:200]}",
                405: f"method {request.method} is not allowed on {request.path[:200]}",
                413: f"request body over the limit ({exc.text})"}.get(exc.status, exc.reason)
        return error(exc.status, text)
    except BadRequest as exc:
        return error(400, str(exc))
    except (Missing, NotFound) as exc:
        return error(404, str(exc))
    except (Rejected, GatewayError, graphql.GraphQLError, ANS104Error) as exc:
        return error(400, str(exc))
    except TimeoutError as exc:
        return error(503, str(exc))
    except (StoreError, NodeError) as exc:
        return error(503, str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the server answers; it never dies on a request
        log.exception("error answering %s %s", request.method, request.path[:200])
        return error(500, f"internal error: {type(exc).__name__}")


class Gate:
    """Runs blocking node calls on worker threads, and lets requests wait for results without holding one."""

    def __init__(self, node, workers: int = 16) -> None:
        self.node = node
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aos-http")
        self.loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, dict[str, list[asyncio.Future]]] = {}
        self._unsubs: dict[str, object] = {}

    async def run(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, fn, *args)

    def _on_event(self, event: dict) -> None:      # a node thread
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._resolve, event.get("process"), event.get("id"), event.get("result"))

    def _resolve(self, pid: str, mid: str, result: dict) -> None:
        for fut in self._waiting.get(pid, {}).pop(mid, ()):
            if not fut.done():
                fut.set_result(result)

    async def wait_result(self, pid: str, mid: str, timeout: float) -> dict | None:
        """The result of `mid` on `pid`, waiting up to `timeout` s for it to be computed; None if it is not yet."""
        self.loop = asyncio.get_running_loop()
        fut = self.loop.create_future()
        per = self._waiting.setdefault(pid, {})
        per.setdefault(mid, []).append(fut)
        if pid not in self._unsubs:
            self._unsubs[pid] = self.node.subscribe(pid, self._on_event)
        try:
            res = await self.run(self.node.result, pid, mid)
            if res is not None:
                return res
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), min(left, 1.0))
                except TimeoutError:   # missed events are caught by a look now and then
                    res = await self.run(self.node.result, pid, mid)
                    if res is not None:
                        return res
        finally:
            lst = per.get(mid)
            if lst is not None and fut in lst:
                lst.remove(fut)
                if not lst:
                    per.pop(mid, None)
            if not per and self._waiting.get(pid) is per:
                self._waiting.pop(pid, None)
                unsub = self._unsubs.pop(pid, None)
                if unsub is not None:
                    unsub()

    def close(self) -> None:
        for unsub in self._unsubs.values():
            unsub()
        self._unsubs.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _node(request: web.Request):
    return request.app[NODE_KEY]


def _gate(request: web.Request) -> Gate:
    return request.app[GATE_KEY]


def _query_value(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return None if value in (None, "", "undefined", "null") else value


# -- MU -------------------------------------------------------------------------------------------------

async def mu_post(request: web.Request) -> web.Response:
    pid = _query_value(request, "process-id")
    assign = _query_value(request, "assign")
    if pid is not None or assign is not None:
        return await _assign(request, pid, assign)
    raw = await request.read()
    if not raw:
        raise BadRequest("empty body: POST a signed ANS-104 data item (Content-Type: application/octet-stream)")
    node = _node(request)
    item_id = await _gate(request).run(node.submit, raw)
    return reply({"message": "Processing DataItem", "id": item_id}, 202)


async def _assign(request: web.Request, pid: str | None, mid: str | None) -> web.Response:
    if pid is None or mid is None:
        raise BadRequest("an assignment needs both process-id and assign")
    if not is_id(pid) or not is_id(mid):
        raise BadRequest("process-id and assign must be 43-character ids")
    exclude = [x for x in (request.query.get("exclude") or "").split(",") if x]
    if len(exclude) > 64 or any(len(x) > 256 for x in exclude):
        raise BadRequest("exclude: at most 64 field names")
    node = _node(request)
    await _gate(request).run(node.assign, pid, mid, exclude)
    return reply({"message": "Processing Assignment", "id": mid}, 202)


async def _monitor_item(request: web.Request, pid: str):
    if not is_id(pid):
        raise BadRequest(f"not a process id: {pid[:60]!r}")
    raw = await request.read()
    if not raw:
        raise BadRequest("monitor needs a signed data item in the body (target = the process)")
    item = await _gate(request).run(parse_and_verify, raw)
    if item.target_id != pid:
        raise BadRequest("the monitor item's target is not the process in the path")
    return item


async def monitor_on(request: web.Request) -> web.Response:
    pid = request.match_info["pid"]
    await _monitor_item(request, pid)
    await _gate(request).run(_node(request).monitor, pid, True)
    return web.Response(text="Monitoring process")


async def monitor_off(request: web.Request) -> web.Response:
    pid = request.match_info["pid"]
    await _monitor_item(request, pid)
    await _gate(request).run(_node(request).monitor, pid, False)
    return web.Response(text="Process deleted")


# -- CU -------------------------------------------------------------------------------------------------

async def cu_result(request: web.Request) -> web.Response:
    mid = request.match_info["id"]
    pid = _query_value(request, "process-id")
    if pid is None:
        raise BadRequest("process-id is required: GET /result/<message id>?process-id=<process id>")
    if not is_id(mid):
        raise BadRequest(f"not a message id: {mid[:60]!r}")
    node = _node(request)
    res = node.cached_result(pid, mid)     # recent results straight from memory, without a thread hop
    if res is not None:
        return reply(res)
    gate = _gate(request)
    await gate.run(views.need_process, node, pid)
    wait = RESULT_WAIT
    if _query_value(request, "timeout") is not None:     # aos-py clients ask for a shorter wait
        try:
            wait = max(0.0, min(RESULT_WAIT, float(request.query["timeout"])))
        except ValueError:
            raise BadRequest("timeout must be a number of seconds") from None
    res = await gate.run(node.result, pid, mid)
    if res is None:
        if await gate.run(views.message_status, node, pid, mid) == "unknown":
            raise Missing(f"message {mid} is not in the log of process {pid}")
        res = await gate.wait_result(pid, mid, wait)
    if res is None:
        return reply({"message": f"Evaluation of process {pid} to message {mid} is in progress."}, 202)
    return reply(res)


async def cu_results(request: web.Request) -> web.Response:
    page = await _gate(request).run(views.results_page, _node(request), request.match_info["pid"], request.query)
    return reply(page)


async def cu_cron(request: web.Request) -> web.Response:
    page = await _gate(request).run(lambda: views.results_page(_node(request), request.match_info["pid"],
                                                               request.query, cron_only=True))
    return reply(page)


async def _json_body(request: web.Request) -> object:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_JSON_BYTES, actual_size=request.content_length)
    body = await request.read()
    if len(body) > MAX_JSON_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_JSON_BYTES, actual_size=len(body))
    try:
        return json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the body's JSON is nested too deeply") from None


def _flat(value: object) -> bool:
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        return True
    if isinstance(value, list):
        return len(value) <= 1000 and all(isinstance(v, scalar) for v in value)
    if isinstance(value, dict):
        return len(value) <= 1000 and all(isinstance(v, scalar) for v in value.values())
    return False


def dryrun_message(node, pid: str, body: object) -> dict:
    """The message a dry-run evaluates (spec §2.2): the body's fields over defaults, Timestamp and
    Block-Height from the latest evaluation, From = From-Process or Owner, Read-Only."""
    if not isinstance(body, dict):
        raise BadRequest("the dry-run body must be a JSON object {Id, Owner, Target, Data, Tags, ...}")
    p = views.need_process(node, pid)
    tags = body.get("Tags", [])
    if not isinstance(tags, list) or len(tags) > 1000:
        raise BadRequest("Tags must be a list of {name, value}")
    clean = []
    for t in tags:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise BadRequest("each tag must be {name: string, value: string}")
        value = t.get("value")
        if isinstance(value, (dict, list)):
            raise BadRequest(f"tag {t['name']!r}: the value must be a string")
        clean.append({"name": t["name"], "value": value if isinstance(value, str) else
                      ("" if value is None else json.dumps(value))})
    data = body.get("Data", "")
    if data is None:
        data = ""
    elif not isinstance(data, str):
        data = json.dumps(data)
    latest = node.su.latest(pid) or (0, int(time.time() * 1000), 0)
    msg = {}
    for key, value in body.items():    # extra fields pass through to the process: JSON scalars, or flat lists
        if key in ("Tags", "Data"):
            continue
        if not _flat(value):
            raise BadRequest(f"dry-run field {key[:60]!r}: only strings, numbers, booleans and flat lists or "
                             "objects of them can pass through")
        msg[key] = value
    owner = body.get("Owner", "1234")
    msg.update({"Id": str(body.get("Id", "1234")), "Owner": owner if isinstance(owner, str) else str(owner),
                "Target": pid, "Anchor": str(body.get("Anchor", "0")), "Data": data, "Tags": clean,
                "Epoch": 0, "Nonce": latest[0], "Cron": False, "Read-Only": True, "Module": p["module"]})
    for key, default in (("Timestamp", latest[1]), ("Block-Height", latest[2])):
        value = body.get(key, default)
        try:
            msg[key] = int(value)
        except (TypeError, ValueError):
            raise BadRequest(f"{key} must be an integer") from None
    msg["From"] = next((t["value"] for t in clean if t["name"] == "From-Process"), msg["Owner"])
    return msg


async def cu_dryrun(request: web.Request) -> web.Response:
    pid = _query_value(request, "process-id")
    body = await _json_body(request)
    if pid is None and isinstance(body, dict):
        pid = body.get("Target") if isinstance(body.get("Target"), str) else None
    if pid is None:
        raise BadRequest("process-id is required: POST /dry-run?process-id=<process id>")
    node = _node(request)

    def run() -> dict:
        msg = dryrun_message(node, pid, body)
        return node.dryrunner.run(pid, msg)
    return reply(await _gate(request).run(run))


async def cu_state(request: web.Request) -> web.Response:
    body, headers = await _gate(request).run(views.state, _node(request), request.match_info["pid"],
                                             _query_value(request, "to"))
    return web.Response(body=body, content_type="application/octet-stream", headers=headers)


# -- SU -------------------------------------------------------------------------------------------------

async def root(request: web.Request) -> web.Response:
    node = _node(request)
    return reply({"timestamp": str(int(time.time() * 1000)), "address": node.address,
                  "node": "aos-py", "aos_module": modules.DEFAULT_MODULE_ID})


async def su_timestamp(request: web.Request) -> web.Response:
    return reply(views.timestamp())


async def health(request: web.Request) -> web.Response:
    return reply({"ok": True})


async def su_process(request: web.Request) -> web.Response:
    return reply(await _gate(request).run(views.su_process, _node(request), request.match_info["pid"]))


async def su_latest(request: web.Request) -> web.Response:
    return reply(await _gate(request).run(views.su_latest, _node(request), request.match_info["id"]))


async def by_id(request: web.Request) -> web.StreamResponse:
    """GET /:id — an SU message (with process-id), an SU page (a process), else gateway data."""
    item_id = request.match_info["id"]
    node = _node(request)
    if not is_id(item_id):
        raise BadRequest(f"not an id: {item_id[:60]!r} (43 base64url characters)")
    pid = _query_value(request, "process-id")

    def lookup() -> tuple:
        if pid is not None and pid != item_id:
            return "json", views.su_message(node, pid, item_id)
        if node.proc(item_id) is not None:
            return "json", views.su_page(node, item_id, request.query)
        if pid is not None:
            owner = views.process_of_message(node, item_id)
            if owner is None:
                raise Missing(f"no process or message {item_id} on this node")
            return "json", views.su_message(node, owner, item_id)
        return "data", views.item_data(node, item_id)

    kind, value = await _gate(request).run(lookup)
    if kind == "json":
        return reply(value)
    data, path, ctype = value
    if path is not None:
        return web.FileResponse(path, headers={"Content-Type": ctype})
    return web.Response(body=data, headers={"Content-Type": ctype})


# -- gateway --------------------------------------------------------------------------------------------

async def gql(request: web.Request) -> web.Response:
    if request.method == "GET":
        query = request.query.get("query")
        try:
            variables = json.loads(request.query.get("variables") or "null")
        except (ValueError, RecursionError):
            raise BadRequest("variables is not JSON (or nested too deeply)") from None
    else:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequest('the body must be a JSON object {"query": ..., "variables": {...}}')
        query, variables = body.get("query"), body.get("variables")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("no GraphQL query given")
    node = _node(request)
    root_fields = graphql.parse(query, variables)

    def answer() -> dict:
        data = {}
        for f in root_fields:
            if f.name == "transactions":
                q = graphql.tx_query(f.args)
                recs, more = views.transactions(node, q)
                conn = {"pageInfo": {"hasNextPage": more},
                        "edges": [{"cursor": graphql.encode_cursor(q.after + i + 1), "node": r}
                                  for i, r in enumerate(recs)]}
                data[f.alias] = graphql.project(conn, f.selections)
            elif f.name == "transaction":
                tid = f.args.get("id")
                if not isinstance(tid, str):
                    raise graphql.GraphQLError("transaction needs an id")
                recs, _ = views.transactions(node, graphql.tx_query({"ids": [tid], "first": 1}))
                data[f.alias] = graphql.project(recs[0] if recs else None, f.selections)
            elif f.name == "__typename":
                data[f.alias] = "Query"
            else:
                raise graphql.GraphQLError(f"this gateway answers transactions and transaction, not {f.name!r}")
        return {"data": data}
    try:
        return reply(await _gate(request).run(answer))
    except graphql.GraphQLError as exc:
        return reply({"error": str(exc), "errors": [{"message": str(exc)}], "data": None}, 400)


async def raw(request: web.Request) -> web.StreamResponse:
    data, path = await _gate(request).run(views.item_raw, _node(request), request.match_info["id"])
    if path is not None:
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})
    return web.Response(body=data, content_type="application/octet-stream")


# -- the application ------------------------------------------------------------------------------------

def build_app(node, workers: int = 16) -> web.Application:
    """The HTTP application over `node` (a started Node)."""
    app = web.Application(client_max_size=MAX_ITEM_BYTES, middlewares=[errors_middleware])
    gate = Gate(node, workers)
    app[NODE_KEY] = node
    app[GATE_KEY] = gate

    async def on_startup(app: web.Application) -> None:
        gate.loop = asyncio.get_running_loop()

    async def on_cleanup(app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, gate.close)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    r = app.router
    r.add_post("/", mu_post)
    r.add_get("/", root)
    r.add_post("/monitor/{pid}", monitor_on)
    r.add_delete("/monitor/{pid}", monitor_off)
    r.add_get("/result/{id}", cu_result)
    r.add_get("/results/{pid}", cu_results)
    r.add_post("/dry-run", cu_dryrun)
    r.add_get("/state/{pid}", cu_state)
    r.add_get("/cron/{pid}", cu_cron)
    r.add_get("/timestamp", su_timestamp)
    r.add_get("/health", health)
    r.add_get("/processes/{pid}", su_process)
    r.add_post("/graphql", gql)
    r.add_get("/graphql", gql)
    r.add_get("/raw/{id}", raw)
    r.add_get("/{id}/latest", su_latest)
    r.add_get("/{id}", by_id)
    return app


def scheduler_location(node, url: str):
    """The node's Scheduler-Location record (scheduler-utils finds the SU of a process through it)."""
    from aos_py.node import ans104

    return ans104.build(node.key, tags=[("Data-Protocol", "ao"), ("Variant", "ao.TN.1"),
                                        ("Type", "Scheduler-Location"), ("Url", url),
                                        ("Time-To-Live", "3600000")], data=b"")
