"""`aos serve` endpoints, in-process: status codes and JSON errors, GraphQL, SU paging, state, raw data,
assignments, and the client's remote backend (Client.remote / MU_URL + CU_URL)."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse

import pytest
from http_helpers import ROOT, http, http_json

from aos_py.client import Client, NotFoundError, RejectedError
from aos_py.node import ans104
from aos_py.node.http.server import Server
from aos_py.node.mu import MAX_ITEM_BYTES
from aos_py.node.node import Node
from aos_py.node.wallet import Wallet, load_wallet

ALICE = load_wallet(ROOT / "tests" / "vectors" / "wallet-a.json", create=False)
ED = Wallet.generate("ed25519")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("httpnode"))
    server = Server(node).start()
    client = Client.remote(server.url, data_dir=tmp_path_factory.mktemp("shell"))
    pid = client.spawn(ED, name="served")
    yield server, node, client, pid
    client.close()
    server.stop()
    node.close()


def _msg(target: str, data: str = "return 1", tags=(("Action", "Eval"),), signer=ED) -> bytes:
    tags = [*tags, ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Message")]
    return ans104.build(signer, target=target, tags=tags, data=data, anchor=f"{time.time_ns():032d}"[-32:]).raw


def _error(status: int, body: bytes) -> str:
    obj = json.loads(body)
    assert isinstance(obj.get("error"), str) and obj["error"], obj
    return obj["error"]


def test_client_errors_are_4xx_with_json(served):
    server, node, client, pid = served
    url = server.url
    good = _msg(pid)
    flipped = bytearray(good)
    flipped[-1] ^= 1
    unknown = "Q" * 43
    cases = [
        ("POST", "/", b"", 400, "empty body"),
        ("POST", "/", b"\x01\x00" + b"\x00" * 20, 400, "invalid data item"),
        ("POST", "/", bytes(flipped), 400, "invalid signature"),
        ("POST", "/", _msg(unknown), 404, "no process"),
        ("POST", f"/?process-id={pid}", b"", 400, "both process-id and assign"),
        ("POST", f"/?process-id={pid}&assign={unknown}", b"", 404, "no message"),
        ("GET", f"/result/{unknown}?process-id={pid}", None, 404, "not in the log"),
        ("GET", f"/result/{unknown}", None, 400, "process-id is required"),
        ("GET", f"/result/{unknown}?process-id={unknown}", None, 404, "no process"),
        ("GET", f"/results/{pid}?from=%%%bad", None, 400, "cursor"),
        ("GET", f"/results/{pid}?from={base64.b64encode(b'[1]').decode()}", None, 400, "cursor"),
        ("GET", f"/results/{pid}?sort=SIDEWAYS", None, 400, "sort"),
        ("GET", f"/results/{pid}?limit=-3", None, 400, "limit"),
        ("GET", "/results/short", None, 400, "not a process id"),
        ("GET", f"/{pid}?limit=x", None, 400, "limit"),
        ("GET", f"/{unknown}", None, 404, "no data"),
        ("GET", f"/{unknown}?process-id={pid}", None, 404, "not in the schedule"),
        ("GET", "/processes/" + unknown, None, 404, "no process"),
        ("GET", "/raw/" + unknown, None, 404, "no data"),
        ("GET", "/no/such/route", None, 404, "no such endpoint"),
        ("PUT", "/", b"x", 405, "not allowed"),
        ("POST", f"/dry-run?process-id={pid}", b"{not json", 400, "not JSON"),
        ("POST", f"/dry-run?process-id={pid}", b"[1,2]", 400, "JSON object"),
        ("POST", f"/dry-run?process-id={pid}", json.dumps({"Tags": [{"name": 1}]}).encode(), 400, "tag"),
        ("POST", f"/dry-run?process-id={unknown}", b"{}", 404, "no process"),
        ("POST", "/graphql", b'{"query": "{ transactions(first: \\"x\\") { edges { cursor } } }"}', 400, "first"),
        ("POST", "/graphql", b'{"query": "{ transactions { edges { "}', 400, "expected"),
        ("POST", "/graphql", b'{"query": "mutation { x }"}', 400, "only queries"),
        ("POST", "/graphql", b'{"query": "{ blocks { edges { cursor } } }"}', 400, "transactions"),
        ("POST", f"/monitor/{pid}", b"", 400, "signed data item"),
        ("POST", f"/monitor/{pid}", ans104.build(ED, target=unknown, data=" ").raw, 400, "target"),
        ("POST", f"/monitor/{pid}", ans104.build(ED, target=pid, data=" ").raw, 400, "without Cron-Interval"),
        ("GET", f"/cron/{pid}?limit=abc", None, 400, "limit"),
        ("GET", f"/state/{pid}?to=-1", None, 400, "to"),
    ]
    for method, path, body, status, words in cases:
        got, data = http(method, url + path, body)
        assert got == status, (method, path, got, data[:300])
        assert words in _error(got, data), (method, path, data[:300])


def test_oversize_bodies_are_413(served):
    server, _node, _client, pid = served
    got, data = http("POST", server.url + "/", b"\0" * (MAX_ITEM_BYTES + 1),
                     headers={"Content-Type": "application/octet-stream"})
    assert got == 413 and "limit" in _error(got, data)
    got, data = http("POST", f"{server.url}/dry-run?process-id={pid}", b" " * (2 << 20))
    assert got == 413
    got, data = http("POST", f"{server.url}/graphql", b" " * (2 << 20))
    assert got == 413
    got, data = http("GET", f"{server.url}/results/{pid}?from={'A' * 40000}")   # a long query is still answered
    assert got == 400


def test_mu_su_cu_round_trip(served):
    server, node, client, pid = served
    url = server.url
    status, body = http_json("POST", url + "/", _msg(pid, "Seen = 7; return Seen * 6"),
                             headers={"Content-Type": "application/octet-stream"})
    assert status == 202 and body["message"] == "Processing DataItem" and len(body["id"]) == 43
    mid = body["id"]
    status, res = http_json("GET", f"{url}/result/{mid}?process-id={pid}")
    assert status == 200 and res["Output"]["data"] == "42" and "Memory" not in res
    status, one = http_json("GET", f"{url}/{mid}?process-id={pid}")
    tags = {t["name"]: t["value"] for t in one["assignment"]["tags"]}
    assert tags["Message"] == mid and tags["Type"] == "Assignment" and one["message"]["owner"]["address"] == ED.address
    assert one["message"]["data"] == "Seen = 7; return Seen * 6"
    status, latest = http_json("GET", f"{url}/{pid}/latest")
    assert latest["message"]["id"] == mid
    status, proc = http_json("GET", f"{url}/processes/{pid}")
    assert proc["process_id"] == pid and proc["owner"]["address"] == ED.address
    status, raw = http("GET", f"{url}/raw/{mid}")
    assert ans104.parse_and_verify(raw).id == mid
    status, data = http("GET", f"{url}/{mid}")   # gateway: the item's data
    assert status == 200 and data == b"Seen = 7; return Seen * 6"
    status, dump = http("GET", f"{url}/state/{pid}")
    assert status == 200 and b"Seen" in dump
    status, info = http_json("GET", url + "/")
    assert info["address"] == node.address and isinstance(info["timestamp"], str)
    status, ts = http_json("GET", url + "/timestamp")
    assert len(ts["block_height"]) == 12


def test_su_pages_lose_nothing_when_messages_share_a_millisecond(served):
    server, node, client, _pid = served
    pid = client.spawn(ED, name="pages")
    for i in range(12):
        client.send(ED, pid, data=f"return {i}", tags=[("Action", "Eval")])
    seen, frm = [], None
    for _ in range(30):
        q = {"limit": 2} | ({"from": frm} if frm else {})
        status, page = http_json("GET", f"{server.url}/{pid}?{urllib.parse.urlencode(q)}")
        assert status == 200
        seen += [int(next(t["value"] for t in e["node"]["assignment"]["tags"] if t["name"] == "Nonce"))
                 for e in page["edges"]]
        if not page["page_info"]["has_next_page"]:
            break
        frm = page["edges"][-1]["cursor"]
    assert seen == list(range(13))
    status, page = http_json("GET", f"{server.url}/{pid}?from-nonce=3&to-nonce=5")
    assert [e["cursor"] for e in page["edges"]] == ["3", "4", "5"]
    status, page = http_json("GET", f"{server.url}/{pid}?from=undefined&to=undefined&limit=undefined")
    assert len(page["edges"]) == 13   # aoconnect's getMessages sends `undefined` for unset values


def test_results_cursors_and_timestamps(served):
    server, _node, client, _pid = served
    pid = client.spawn(ED, name="cursors")
    for i in range(4):
        client.eval(ED, pid, f"return {i}")
    status, page = http_json("GET", f"{server.url}/results/{pid}?limit=2")
    cur = json.loads(base64.b64decode(page["edges"][1]["cursor"]))
    assert cur["ordinate"] == "1" and cur["sort"] == "ASC" and page["pageInfo"]["hasNextPage"]
    status, nxt = http_json("GET", f"{server.url}/results/{pid}?from={page['edges'][1]['cursor']}&limit=10")
    assert [json.loads(base64.b64decode(e["cursor"]))["ordinate"] for e in nxt["edges"]] == ["2", "3", "4"]
    status, desc = http_json("GET", f"{server.url}/results/{pid}?sort=DESC&limit=1")
    assert json.loads(base64.b64decode(desc["edges"][0]["cursor"]))["ordinate"] == "4"
    status, by_ts = http_json("GET", f"{server.url}/results/{pid}?from={cur['timestamp'] - 1}&to={cur['timestamp']}")
    assert by_ts["edges"] and all(json.loads(base64.b64decode(e["cursor"]))["timestamp"] == cur["timestamp"]
                                  for e in by_ts["edges"])


def test_graphql_queries_of_aoconnect_scheduler_utils_and_aos(served):
    server, node, client, pid = served
    gql = server.url + "/graphql"

    def ask(query: str, variables: dict | None = None) -> dict:
        status, body = http_json("POST", gql, json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json"})
        assert status == 200, body
        return body["data"]

    module = client.default_module()
    d = ask("""query GetTransactions ($transactionIds: [ID!]!) { transactions(ids: $transactionIds) {
              edges { node { owner { address } tags { name value } block { id height timestamp } } } } }""",
            {"transactionIds": [module]})
    node0 = d["transactions"]["edges"][0]["node"]
    assert set(node0) == {"owner", "tags", "block"} and {"name": "Type", "value": "Module"} in node0["tags"]
    d = ask("""query GetSchedulerLocation ($owner: String!) { transactions (owners: [$owner]
              tags: [{ name: "Data-Protocol", values: ["ao"] }, { name: "Type", values: ["Scheduler-Location"] }]
              # the newest only
              sort: HEIGHT_DESC first: 1) { edges { node { tags { name value } } } } }""", {"owner": node.address})
    tags = {t["name"]: t["value"] for t in d["transactions"]["edges"][0]["node"]["tags"]}
    assert tags["Url"] == server.url and tags["Time-To-Live"]
    d = ask(f"""query {{ transactions(first: 10, owners: ["{ED.address}"], tags: [
              {{ name: "Data-Protocol", values: ["ao"] }}, {{ name: "Type", values: ["Process"] }},
              {{ name: "Name", values: ["served"] }}]) {{ edges {{ node {{ id tags {{ name value }} }} }} }} }}""")
    assert [e["node"]["id"] for e in d["transactions"]["edges"]] == [pid]
    d = ask("""query ($name: [String!]!) { mods: transactions(tags: [{name: "Type", values: ["Module"]},
              {name: "Data-Protocol", values: ["ao"]}, {name: "Name", values: $name}], sort: HEIGHT_DESC, first: 100) {
              pageInfo { hasNextPage } edges { cursor node { id block { timestamp } } } } }""", {"name": ["aos-py"]})
    assert d["mods"]["edges"][0]["node"]["id"] == module and d["mods"]["pageInfo"]["hasNextPage"] is False
    d = ask("""query ($ids: [ID!]!) { transactions(ids: $ids) { pageInfo { hasNextPage } edges { cursor node {
              id anchor signature recipient owner { address key } fee { winston ar } quantity { winston ar }
              data { size type } tags { name value } block { id timestamp height previous } parent { id } } } } }""",
            {"ids": [pid]})
    full = d["transactions"]["edges"][0]["node"]
    assert full["id"] == pid and full["owner"]["address"] == ED.address and full["data"]["size"] == "1"
    # paging with first/after
    first = ask('{ transactions(first: 1, tags: [{name: "Type", values: ["Process"]}]) { pageInfo { hasNextPage } '
                'edges { cursor node { id } } } }')["transactions"]
    after = first["edges"][0]["cursor"]
    second = ask(f'{{ transactions(first: 1, after: "{after}", tags: [{{name: "Type", values: ["Process"]}}]) '
                 '{ edges { node { id } } } }')["transactions"]
    assert first["pageInfo"]["hasNextPage"] and second["edges"][0]["node"]["id"] != first["edges"][0]["node"]["id"]


def test_assign_through_the_mu(served):
    server, _node, client, pid = served
    other = client.spawn(ED, name="assignee")
    client.eval(ED, other, 'ao.addAssignable("all", function(m) return true end)')
    mid = client.send(ED, pid, data="return 'shared'", tags=[("Action", "Eval")])
    status, body = http_json("POST", f"{server.url}/?process-id={other}&assign={mid}&exclude=Data")
    assert status == 202 and body["id"] == mid
    res = client.wait_result(other, mid)
    assert "Output" in res
    status, node = http_json("GET", f"{server.url}/{mid}?process-id={other}")
    tags = [(t["name"], t["value"]) for t in node["assignment"]["tags"]]
    assert ("Exclude", "Data") in tags and ("Message", mid) in tags and node["message"]["data"] == ""
    status, again = http_json("POST", f"{server.url}/?process-id={other}&assign={mid}")   # idempotent
    assert status == 202


def test_remote_client_backend(served, tmp_path, monkeypatch):
    server, node, client, pid = served
    monkeypatch.setenv("MU_URL", server.url)
    monkeypatch.setenv("CU_URL", server.url)
    monkeypatch.setenv("GATEWAY_URL", server.url)
    c = Client.open(tmp_path / "shell")
    try:
        assert c.is_remote and not c.hosting and c.node is None
        assert c.authority() == node.address and c.default_module() == client.default_module()
        new = c.spawn(ALICE, name="remote-rsa")     # an RSA wallet, as on Arweave
        assert node.proc(new)["owner"] == ALICE.address
        assert c.eval(ALICE, new, "Answer = 6 * 7; return Answer")["Output"]["data"] == "42"
        dr = c.dryrun(new, data="return Answer + 1", tags=[("Action", "Eval")], owner=ALICE.address)
        assert dr["Output"]["data"] == "43"
        assert [r["id"] for r in c.find_processes(ALICE.address)] == [new]
        assert c.find_processes(ALICE.address, "nope") == []
        info = c.process_info(new)
        assert info["owner"] == ALICE.address and info["name"] == "remote-rsa"
        assert c.process_info("Q" * 43) is None
        rows = c.results(new, limit=10)
        assert [r["cursor"] for r in rows] == [0, 1]
        assert c.results(new, after=0)[0]["cursor"] == 1
        assert [r["cursor"] for r in c.results(new, sort="DESC", limit=1)] == [1]
        feed = c.feed(new)
        assert feed[1]["from"] == ALICE.address and feed[1]["action"] == "Eval"
        assert c.result(new, "Q" * 43) is None
        with pytest.raises(NotFoundError):
            c.wait_result(new, "Q" * 43, timeout=2)
        with pytest.raises(NotFoundError):
            c.send(ALICE, "Q" * 43, data="x")
        with pytest.raises(RejectedError):
            c.spawn(ALICE, module="Q" * 43)
        events: list[dict] = []
        unsub = c.subscribe(new, events.append)
        c.send(ALICE, new, data="hello", tags=[("Action", "Hello")])
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            time.sleep(0.1)
        unsub()
        assert events and events[0]["action"] == "Hello" and "New Message From" in events[0]["result"]["Output"]["data"]
    finally:
        c.close()
