"""Fuzz: 2,000 malformed or random requests across every endpoint of `aos serve`. None may get a 5xx or
stop the server, and valid traffic keeps being served in the same run."""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.parse

import aiohttp
from yarl import URL

from aos_py.client import Client
from aos_py.node import ans104
from aos_py.node.http.server import Server
from aos_py.node.node import Node
from aos_py.node.wallet import Wallet

N_REQUESTS = 2000
W = Wallet.generate("ed25519")
PATHS = [("/", "GET POST"), ("/monitor/{pid}", "POST DELETE"), ("/result/{id}", "GET"), ("/results/{pid}", "GET"),
         ("/dry-run", "POST"), ("/state/{pid}", "GET"), ("/cron/{pid}", "GET"), ("/timestamp", "GET"),
         ("/health", "GET"), ("/processes/{pid}", "GET"), ("/graphql", "GET POST POST"), ("/raw/{id}", "GET"),
         ("/{id}/latest", "GET"), ("/{id}", "GET"), ("/{junk}", "GET POST"), ("/{junk}/{junk}", "GET")]
KEYS = ["process-id", "assign", "exclude", "base-layer", "from", "to", "sort", "limit", "from-nonce", "to-nonce",
        "timeout", "query", "variables", "no-busy", "x", ""]
GRAPHQL_BITS = ["{", "}", "(", ")", "[", "]", ":", "$", "!", "query", "transactions", "transaction", "ids", "owners",
                "tags", "name", "values", "edges", "node", "id", "cursor", "first", "after", "sort", "HEIGHT_DESC",
                '"ao"', '"x"', "10", "-1", "1e400", "...", "@skip", "#c\n", '"\\u12"', '"""b"""', "fragment", "null"]


def _junk(rnd: random.Random, n: int = 40) -> str:
    alphabet = "abcXYZ019-_~%/?&=#+.:;,!*'()[]{}<>\"\\ \t\u00e9\u4e2d\U0001f600\x00\x7f"
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, n)))


def _value(rnd: random.Random, ids: list[str], good_cursor: str) -> str:
    return rnd.choice([
        rnd.choice(ids), _junk(rnd), str(rnd.randint(-10**20, 10**20)), "undefined", "", "ASC", "DESC", "null",
        good_cursor, good_cursor[:-3], "eyJ", "e30=", "W10=", "eyJvcmRpbmF0ZSI6LTF9", "%" * rnd.randint(1, 4),
        "%ff%fe", "9" * rnd.randint(15, 60), ",".join(_junk(rnd, 5) for _ in range(rnd.randint(0, 70))),
    ])


def _body(rnd: random.Random, good: bytes, pid: str) -> bytes:
    kind = rnd.randrange(9)
    if kind == 0:
        return b""
    if kind == 1:
        return rnd.randbytes(rnd.randint(1, 3000))
    if kind == 2:   # a real item with bytes changed
        raw = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
        return bytes(raw)
    if kind == 3:
        return good[:rnd.randrange(len(good))]
    if kind == 4:   # plausible headers, junk after
        return rnd.choice([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\xff\xff"]) + rnd.randbytes(rnd.randint(0, 700))
    if kind == 5:
        return json.dumps(rnd.choice([
            {"Tags": [{"name": _junk(rnd), "value": rnd.choice([_junk(rnd), 1, None, [1], {"a": 1}])}], "Data": _junk(rnd)},
            {"Target": pid, "Owner": rnd.choice([1, None, [], "x"]), "Timestamp": rnd.choice(["x", -1, 1e30, None])},
            {"Id": {"a": [1]}, "Anchor": [1, 2], "Tags": "x"}, {"Block-Height": "nope"}, {"Data": {"deep": [[[[1]]]]}},
            [1, 2, 3], "text", 12, None, {"query": _junk(rnd), "variables": rnd.choice([[], "x", {"a": {"b": 1}}])},
        ])).encode()
    if kind == 6:   # GraphQL-shaped nonsense
        q = " ".join(rnd.choice(GRAPHQL_BITS) for _ in range(rnd.randint(1, 60)))
        return json.dumps({"query": q, "variables": rnd.choice([None, {}, {"ids": [pid]}, {"ids": "x"}, [1]])}).encode()
    if kind == 7:
        return b"[" * rnd.randint(1, 50000)
    return _junk(rnd, 400).encode("utf-8", "surrogatepass")


async def _fuzz(server_url: str, pid: str, mid: str, good: bytes, client: Client, seed: int) -> dict:
    rnd = random.Random(seed)
    ids = [pid, mid, "Q" * 43, "A" * 42, "-" * 43, "short"]
    cursor_rows = client.results(pid, limit=1)
    good_cursor = "eyJ0aW1lc3RhbXAiOjEsIm9yZGluYXRlIjoiMCIsImNyb24iOm51bGwsInNvcnQiOiJBU0MifQ=="
    assert cursor_rows
    stats = {"by_status": {}, "valid": 0, "fives": []}
    conn = aiohttp.TCPConnector(limit=8)
    sem = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as http:
        async def one(i: int) -> None:
            template, methods = rnd.choice(PATHS)
            method = rnd.choice(methods.split()) if rnd.random() < 0.85 else \
                rnd.choice(["GET", "POST", "DELETE", "PUT", "HEAD", "PATCH"])
            path = template.format(pid=rnd.choice(ids), id=rnd.choice(ids),
                                            junk=urllib.parse.quote(_junk(rnd, 60), safe=""))
            pairs = [(rnd.choice(KEYS), _value(rnd, ids, good_cursor)) for _ in range(rnd.randint(0, 5))]
            if rnd.random() < 0.2:   # raw, possibly malformed query text
                qs = urllib.parse.quote(_junk(rnd, 200), safe="!$&'()*+,;=:@/?%[]{}<>\"\\~-._")
            else:
                qs = urllib.parse.urlencode(pairs)
            url = URL(server_url + path + ("?" + qs if qs else ""), encoded=True)
            body = _body(rnd, good, pid) if method in ("POST", "PUT", "DELETE", "PATCH") else None
            headers = {"Content-Type": rnd.choice(["application/octet-stream", "application/json", "text/plain"])}
            async with sem:
                try:
                    async with http.request(method, url, data=body, headers=headers) as resp:
                        text = await resp.read()
                        status = resp.status
                except aiohttp.ClientError as exc:
                    raise AssertionError(f"request {i} {method} {url} broke the connection: {exc}") from None
            stats["by_status"][status] = stats["by_status"].get(status, 0) + 1
            if status >= 500:
                stats["fives"].append((method, str(url)[:200], status, text[:300]))
            if status >= 400 and method != "HEAD":
                assert "error" in json.loads(text), (method, str(url)[:200], status, text[:200])

        async def valid(k: int) -> None:   # real traffic between the junk: still served, correctly
            loop = asyncio.get_running_loop()
            res = await loop.run_in_executor(None, client.eval, W, pid, f"return {k} * 2")
            assert res["Output"]["data"] == str(k * 2), res
            stats["valid"] += 1

        tasks = []
        for i in range(N_REQUESTS):
            tasks.append(one(i))
            if i % 200 == 0:
                tasks.append(valid(i))
        await asyncio.gather(*tasks)
    return stats


def test_fuzz_endpoints(tmp_path):
    node = Node(tmp_path / "node")
    server = Server(node).start()
    client = Client.remote(server.url, data_dir=tmp_path / "shell")
    try:
        pid = client.spawn(W, name="fuzzed")
        mid = client.send(W, pid, data="return 'hi'", tags=[("Action", "Eval")])
        client.wait_result(pid, mid)
        good = ans104.build(W, target=pid, anchor="f" * 32, data="return 1",
                            tags=[("Action", "Eval"), ("Data-Protocol", "ao"), ("Type", "Message")]).raw
        t0 = time.monotonic()
        stats = asyncio.run(_fuzz(server.url, pid, mid, good, client, seed=20240613))
        assert not stats["fives"], stats["fives"][:5]
        assert sum(stats["by_status"].values()) == N_REQUESTS and stats["valid"] == N_REQUESTS // 200
        assert any(400 <= s < 500 for s in stats["by_status"]), stats
        # the node is intact after it all
        assert client.eval(W, pid, "return 'still here'")["Output"]["data"] == "still here"
        assert time.monotonic() - t0 < 60
    finally:
        client.close()
        server.stop()
        node.close()
