"""The client API over HTTP: another aos-py node (`aos serve`) or a legacy AO network (MU, CU, gateway).

Selected when MU_URL and CU_URL are set, as the real aos reads them (GATEWAY_URL / GRAPHQL_URL,
SCHEDULER, AOS_MODULE and AUTHORITY too). Items are built and signed by the Client with the user's
wallet; this backend only moves them: POST to the MU, results from the CU (/result, /results, /dry-run),
process lookups through the gateway's GraphQL. Live messages are polled from /results, as aos does.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from aos_py.client.errors import ClientError, NodeUnavailable, NotFoundError, RejectedError, ResultTimeout

log = logging.getLogger("aos_py.client.http")

# what the real aos uses when the environment names nothing else (legacy testnet)
AOS_DEFAULT_MODULE = "ISShJH1ij-hPPt9St5UFFr_8Ys3Kj5cyg7zrMGt7H9s"
AOS_DEFAULT_SCHEDULER = "_GQ33BkPtZrqxA84vM8Zk-N2aO0toNNu_C-l-rawrBA"
TESTNET_AUTHORITY = "fcoN_xJeisVsPXA-trzVAuIiqO3ydLQxM-L4XbrQKzY"
POLL_SECONDS = 1.0
REQUEST_TIMEOUT = 60.0


@dataclass
class Endpoints:
    mu: str
    cu: str
    gateway: str
    graphql: str
    scheduler: str | None = None
    module: str | None = None
    authority: str | None = None

    @classmethod
    def from_env(cls, environ=None) -> Endpoints | None:
        """The endpoints named by MU_URL and CU_URL (None when either is unset)."""
        env = os.environ if environ is None else environ
        mu, cu = (env.get("MU_URL") or "").strip(), (env.get("CU_URL") or "").strip()
        if not mu or not cu:
            return None
        gateway = (env.get("GATEWAY_URL") or "").strip() or "https://arweave.net"
        graphql = (env.get("GRAPHQL_URL") or "").strip() or gateway.rstrip("/") + "/graphql"
        return cls(mu.rstrip("/"), cu.rstrip("/"), gateway.rstrip("/"), graphql,
                   (env.get("SCHEDULER") or "").strip() or None, (env.get("AOS_MODULE") or "").strip() or None,
                   (env.get("AUTHORITY") or "").strip() or None)


def _loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _error_text(body: bytes) -> str:
    try:
        obj = json.loads(body)
        if isinstance(obj, dict) and obj.get("error"):
            return str(obj["error"])
    except ValueError:
        pass
    return body.decode("utf-8", "replace").strip()[:500] or "(no details)"


def _cursor_ordinate(cursor: str) -> int | None:
    try:
        obj = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(obj["ordinate"])
    except (ValueError, TypeError, KeyError):
        return None


def _cursor(nonce: int, sort: str) -> str:
    text = json.dumps({"timestamp": 0, "ordinate": str(nonce), "cron": None, "sort": sort}, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


class HttpBackend:
    """Backend for Client over the legacy HTTP protocols."""

    remote = True

    def __init__(self, endpoints: Endpoints, timeout: float = REQUEST_TIMEOUT) -> None:
        self.ep = endpoints
        self.timeout = timeout
        self.wallet = None          # the Client's last signer (monitor items are signed with it)
        self._info: dict | None = None
        self._cursors: dict[tuple[str, int], str] = {}
        self._closed = False
        self._openers = {True: urllib.request.build_opener(urllib.request.ProxyHandler({})),
                         False: urllib.request.build_opener()}

    # -- plumbing --------------------------------------------------------------------------------------

    def _http(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None,
              timeout: float | None = None) -> tuple[int, bytes]:
        if self._closed:
            raise ClientError("this client is closed")
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with self._openers[_loopback(url)].open(req, timeout=timeout or self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read() or b""
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NodeUnavailable(f"cannot reach {url.split('?')[0]}: {reason}") from None

    def _check(self, status: int, body: bytes, what: str) -> None:
        if 200 <= status < 300:
            return
        text = f"{what}: {_error_text(body)}"
        if status == 404:
            raise NotFoundError(text)
        if status in (400, 403, 405, 409, 413, 415, 422):
            raise RejectedError(text)
        if status in (502, 503, 504):
            raise NodeUnavailable(f"{text} (HTTP {status})")
        raise ClientError(f"{text} (HTTP {status})")

    def _json(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None,
              what: str = "request", timeout: float | None = None) -> object:
        status, data = self._http(method, url, body, headers, timeout)
        self._check(status, data, what)
        try:
            return json.loads(data)
        except ValueError:
            raise ClientError(f"{what}: the server answered something that is not JSON") from None

    def _graphql(self, query: str, variables: dict) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        out = self._json("POST", self.ep.graphql, body, {"Content-Type": "application/json"}, "gateway query")
        if not isinstance(out, dict) or not isinstance(out.get("data"), dict):
            raise ClientError(f"gateway query failed: {str(out)[:300]}")
        return out["data"]

    def info(self) -> dict:
        """What the MU says about itself at GET / (an aos-py node names its address and module)."""
        if self._info is None:
            try:
                status, body = self._http("GET", self.ep.mu + "/", timeout=10)
                obj = json.loads(body) if status == 200 else {}
                self._info = obj if isinstance(obj, dict) else {}
            except (ValueError, ClientError):
                self._info = {}
        return self._info

    def _aos_py(self) -> bool:
        return self.info().get("node") == "aos-py"

    # -- the Client's calls --------------------------------------------------------------------------

    def call(self, method: str, *args, **kwargs):
        fn = getattr(self, "_" + method, None)
        if fn is None:
            raise ClientError(f"{method} is not available through a remote node (MU_URL / CU_URL are set); "
                              "unset them to use this machine's node")
        return fn(*args, **kwargs)

    @property
    def scheduler(self) -> str:
        return self.ep.scheduler or self.info().get("address") or AOS_DEFAULT_SCHEDULER

    def _authority(self) -> str:
        return self.ep.authority or self.info().get("address") or TESTNET_AUTHORITY

    def _default_module(self) -> str:
        return self.ep.module or self.info().get("aos_module") or AOS_DEFAULT_MODULE

    def _services(self) -> dict:
        return {}

    def _submit(self, raw: bytes) -> str:
        from aos_py.node import ans104

        try:
            item_id = ans104.parse(raw).id
        except ans104.ANS104Error as exc:
            raise RejectedError(str(exc)) from None
        self._json("POST", self.ep.mu, bytes(raw), {"Content-Type": "application/octet-stream",
                                                    "Accept": "application/json"}, "the MU refused the item")
        return item_id

    def _result_url(self, process: str, message_id: str, wait: float) -> str:
        q = urllib.parse.urlencode({"process-id": process, "timeout": f"{wait:g}"})
        return f"{self.ep.cu}/result/{urllib.parse.quote(message_id, safe='')}?{q}"

    def _wait_result(self, process: str, message_id: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(0.0, min(left, 20.0))
            t0 = time.monotonic()
            status, body = self._http("GET", self._result_url(process, message_id, wait), timeout=wait + 30)
            if status == 200:
                try:
                    res = json.loads(body)
                except ValueError:
                    raise ClientError("the CU answered a result that is not JSON") from None
                if isinstance(res, dict) and "error" in res and "Output" not in res:
                    raise ClientError(f"the CU could not compute {message_id}: {res['error']}")
                return res
            if status != 202:
                self._check(status, body, f"result of {message_id}")
            if time.monotonic() >= deadline:
                raise ResultTimeout(f"no result for message {message_id} on process {process} after {timeout} s")
            if time.monotonic() - t0 < 0.2:      # a CU that answers busy at once: do not hammer it
                time.sleep(0.2)

    def _result(self, process: str, message_id: str) -> dict | None:
        status, body = self._http("GET", self._result_url(process, message_id, 0))
        if status == 200:
            res = json.loads(body)
            return res if isinstance(res, dict) and ("Output" in res or "Error" in res) else None
        if status in (202, 404):
            return None
        self._check(status, body, f"result of {message_id}")
        return None

    def _edges(self, process: str, params: dict) -> list[dict]:
        url = f"{self.ep.cu}/results/{urllib.parse.quote(process, safe='')}?{urllib.parse.urlencode(params)}"
        page = self._json("GET", url, what=f"results of {process}")
        edges = page.get("edges") if isinstance(page, dict) else None
        if not isinstance(edges, list):
            raise ClientError(f"the CU answered results without edges: {str(page)[:200]}")
        rows = []
        for e in edges:
            if not isinstance(e, dict) or not isinstance(e.get("cursor"), str):
                continue
            nonce = _cursor_ordinate(e["cursor"])
            if nonce is None:
                continue
            self._cursors[(process, nonce)] = e["cursor"]
            if len(self._cursors) > 50_000:
                self._cursors.clear()
            meta = e.get("message") if isinstance(e.get("message"), dict) else {}
            rows.append({"cursor": nonce, "id": meta.get("id") or f"{process}#{nonce}", "from": meta.get("from"),
                         "action": meta.get("action"), "result": e.get("node") or {}})
        return rows

    def _page(self, process: str, after: int | None, limit: int, sort: str) -> list[dict]:
        limit = max(1, int(limit))
        params: dict = {"sort": sort, "limit": limit}
        if after is None:
            return self._edges(process, params)
        key = "from" if sort == "ASC" else "to"
        bound = after if sort == "ASC" else after - 1
        if bound < 0:
            return []
        cursor = self._cursors.get((process, bound)) or (_cursor(bound, sort) if self._aos_py() else None)
        if cursor is not None:
            params[key] = cursor
            rows = self._edges(process, params)
        else:    # a cursor this client has not seen, from a CU that only reads its own: filter the newest
            rows = self._edges(process, {"sort": "DESC", "limit": max(limit, 100)})
            if sort == "ASC":
                rows.reverse()
        keep = (lambda n: n > after) if sort == "ASC" else (lambda n: n < after)
        return [r for r in rows if keep(r["cursor"])][:limit]

    def _results(self, process: str, after: int | None = None, limit: int = 25, sort: str = "ASC") -> list[dict]:
        if sort not in ("ASC", "DESC"):
            raise RejectedError(f"sort must be 'ASC' or 'DESC', not {sort!r}")
        return [{"cursor": r["cursor"], "id": r["id"], "result": r["result"]}
                for r in self._page(process, after, limit, sort)]

    def _feed(self, process: str, after: int | None = None, limit: int = 100) -> list[dict]:
        return self._page(process, after, limit, "ASC")

    def _dryrun(self, process: str, data: str | bytes = "", tags=(), owner: str | None = None) -> dict:
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        all_tags = [{"name": str(n), "value": str(v)} for n, v in tags]
        all_tags += [{"name": "Data-Protocol", "value": "ao"}, {"name": "Type", "value": "Message"},
                     {"name": "Variant", "value": "ao.TN.1"}]
        body = {"Id": "1234", "Owner": owner or "1234", "Target": process, "Anchor": "0", "Data": data or "1234",
                "Tags": all_tags}
        url = f"{self.ep.cu}/dry-run?{urllib.parse.urlencode({'process-id': process})}"
        res = self._json("POST", url, json.dumps(body).encode(), {"Content-Type": "application/json"},
                         f"dry-run on {process}")
        if isinstance(res, dict) and "error" in res and "Output" not in res:
            raise ClientError(f"dry-run on {process} failed: {res['error']}")
        return res

    def _monitor(self, process: str, on: bool = True) -> None:
        from aos_py.node import ans104
        from aos_py.node.wallet import Wallet

        signer = self.wallet or Wallet.generate("ed25519")
        try:
            raw = ans104.build(signer, target=process, data=" ").raw
        except ans104.ANS104Error as exc:
            raise RejectedError(str(exc)) from None
        status, body = self._http("POST" if on else "DELETE", f"{self.ep.mu}/monitor/{urllib.parse.quote(process)}",
                                  raw, {"Content-Type": "application/octet-stream"})
        self._check(status, body, "monitor" if on else "unmonitor")

    _PROCESSES = """query ($owners: [String!], $tags: [TagFilter!]) {
      transactions(first: 100, owners: $owners, tags: $tags, sort: HEIGHT_DESC) {
        edges { node { id owner { address } tags { name value } block { timestamp } } } } }"""

    @staticmethod
    def _process_row(node: dict) -> dict:
        tags = {}
        for t in node.get("tags") or ():
            if isinstance(t, dict):
                tags.setdefault(t.get("name"), t.get("value"))
        created = None
        if str(tags.get("Timestamp") or "").isdigit():
            created = int(tags["Timestamp"])
        elif isinstance(node.get("block"), dict) and isinstance(node["block"].get("timestamp"), int):
            created = node["block"]["timestamp"] * 1000
        version = next((v for k, v in tags.items() if isinstance(k, str) and k.lower() == "aos-version"), None)
        return {"id": node.get("id"), "name": tags.get("Name"), "created": created, "version": version,
                "owner": (node.get("owner") or {}).get("address"), "module": tags.get("Module"),
                "cron": tags.get("Cron-Interval")}

    def _find_processes(self, owner: str, name: str | None = None) -> list[dict]:
        tags = [{"name": "Data-Protocol", "values": ["ao"]}, {"name": "Type", "values": ["Process"]}]
        if name is not None:
            tags.append({"name": "Name", "values": [name]})
        data = self._graphql(self._PROCESSES, {"owners": [owner], "tags": tags})
        edges = ((data.get("transactions") or {}).get("edges")) or []
        rows = [self._process_row(e["node"]) for e in edges if isinstance(e, dict) and isinstance(e.get("node"), dict)]
        rows = [r for r in rows if r["id"] and (name is None or r["name"] == name)]
        rows.sort(key=lambda r: r["created"] or 0, reverse=True)
        return [{k: r[k] for k in ("id", "name", "created", "version")} for r in rows]

    def _process_info(self, process: str) -> dict | None:
        q = """query ($ids: [ID!]!) { transactions(ids: $ids, tags: [{name: "Type", values: ["Process"]}]) {
               edges { node { id owner { address } tags { name value } block { timestamp } } } } }"""
        data = self._graphql(q, {"ids": [process]})
        edges = ((data.get("transactions") or {}).get("edges")) or []
        if not edges or not isinstance(edges[0], dict) or not isinstance(edges[0].get("node"), dict):
            return None
        r = self._process_row(edges[0]["node"])
        return {"id": r["id"], "owner": r["owner"], "name": r["name"], "module": r["module"], "created": r["created"],
                "cron": r["cron"], "monitored": None}

    def _llama_engine(self) -> str:
        raise ClientError("the remote node does not say which llama engine it runs")

    # -- live messages ---------------------------------------------------------------------------------

    def subscribe(self, process: str, callback: Callable[[dict], None]) -> Callable[[], None]:
        """Poll the CU's /results for `process` about once a second; call back for each new result, in order."""
        stop = threading.Event()
        try:
            latest = self._results(process, limit=1, sort="DESC")
        except ClientError:
            latest = []
        state = {"after": latest[0]["cursor"] if latest else None}

        def poll() -> None:
            while not stop.wait(POLL_SECONDS):
                for _ in range(20):
                    try:
                        rows = self._feed(process, after=state["after"], limit=100)
                    except ClientError as exc:   # the node is away for a moment: the next tick tries again
                        log.debug("live poll of %s failed: %s", process, exc)
                        break
                    for row in rows:
                        if stop.is_set():
                            return
                        state["after"] = row["cursor"]
                        try:
                            callback({"process": process, "id": row["id"], "from": row["from"],
                                      "action": row["action"], "result": row["result"]})
                        except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the feed
                            log.exception("subscriber callback failed")
                    if len(rows) < 100:
                        break
        threading.Thread(target=poll, name="aos-http-live", daemon=True).start()
        return stop.set

    def close(self) -> None:
        self._closed = True
