"""HTTP throughput of `aos serve`: signed messages accepted by POST / and result reads, over the wire
versus the same work done in-process on a Node, in the same run.

(1) POST /: --messages signed data items (Ed25519, signed before the clock starts; --rsa signs with an
    RSA-4096 wallet as aoconnect does) posted by 4 concurrent clients (aiohttp, one keep-alive connection
    each) to `aos serve` running in its own OS process. An item counts once its 202 came back, i.e. once
    it is durably scheduled (slot, hash chain, SQLite commit).
    Baseline: the same number of items handed to Node.submit() by 4 threads in this process.
(2) GET /result/:id: --reads reads of computed results by 4 concurrent clients.
    Baseline: Node.result() for the same messages from 4 threads in this process.

    .venv/bin/python bench/bench_http.py [--messages 2000] [--reads 4000] [--repeat 3] [--rsa]

Wire and in-process runs alternate --repeat times; every pair is printed and medians reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from aos_py.client import Client  # noqa: E402
from aos_py.node import ans104  # noqa: E402
from aos_py.node.wallet import Wallet, load_wallet  # noqa: E402

CLIENTS = 4
COUNTER = 'Count = 0\nHandlers.add("count", "Count", function(m) Count = Count + 1 end)'


def sign_items(wallet: Wallet, pid: str, n: int) -> list[bytes]:
    tags = [("Action", "Count"), ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Message")]
    salt = random.getrandbits(64)
    return [ans104.build(wallet, target=pid, anchor=f"{salt:016x}{i:016d}", tags=tags, data=" ").raw for i in range(n)]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in ("MU_URL", "CU_URL", "GATEWAY_URL"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "aos_py", "serve", "--port", "0", "--no-services",
                             "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    first = proc.stdout.readline().decode().strip()
    if not first.startswith("MU_URL="):
        proc.kill()
        raise SystemExit(f"aos serve did not start: {first!r}")
    for _ in range(6):
        proc.stdout.readline()
    return proc, first.split("=", 1)[1]


async def _drive(n_clients: int, jobs: list, work) -> float:
    """Run `work(session, job)` for every job with n_clients concurrent clients; returns seconds."""
    queue: asyncio.Queue = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)

    async def client() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await work(session, job)
    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(n_clients)))
    return time.perf_counter() - t0


def wire_post(url: str, items: list[bytes]) -> float:
    async def post(session: aiohttp.ClientSession, raw: bytes) -> None:
        async with session.post(url + "/", data=raw, headers={"Content-Type": "application/octet-stream"}) as r:
            await r.read()
            if r.status != 202:
                raise SystemExit(f"POST / answered {r.status}")
    return len(items) / asyncio.run(_drive(CLIENTS, items, post))


def wire_reads(url: str, pid: str, ids: list[str], reads: int) -> float:
    jobs = [ids[i % len(ids)] for i in range(reads)]

    async def read(session: aiohttp.ClientSession, mid: str) -> None:
        async with session.get(f"{url}/result/{mid}", params={"process-id": pid}) as r:
            await r.read()
            if r.status != 200:
                raise SystemExit(f"GET /result answered {r.status}")
    return reads / asyncio.run(_drive(CLIENTS, jobs, read))


def threaded(jobs: list, fn) -> float:
    """Rate of fn(job) over jobs from CLIENTS threads."""
    it = iter(jobs)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                job = next(it, None)
            if job is None:
                return
            fn(job)
    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(jobs) / (time.perf_counter() - t0)


def last_slot(client: Client, pid: str) -> int:
    rows = client.results(pid, limit=1, sort="DESC")
    return rows[0]["cursor"] if rows else -1


def wait_computed(client: Client, pid: str, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while last_slot(client, pid) < n:
        if time.monotonic() > deadline:
            raise SystemExit("messages were not computed in time")
        time.sleep(0.2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--reads", type=int, default=4000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rsa", action="store_true", help="sign with an RSA-4096 wallet (slow to prepare)")
    args, _ = p.parse_known_args()
    wallet = load_wallet(ROOT / "tests" / "vectors" / "wallet-a.json", create=False) if args.rsa \
        else Wallet.generate("ed25519")
    tmp = Path(tempfile.mkdtemp(prefix="aos-bench-http-"))
    proc, url = start_server(tmp / "served")
    remote = Client.remote(url, data_dir=tmp / "shell")
    local = Client.open(tmp / "inproc-client", services=False)
    try:
        posts, reads = [], []
        for n in range(args.repeat):
            # (1) POST /
            rpid = remote.spawn(wallet, name=f"wire-{n}")
            remote.eval(wallet, rpid, COUNTER)
            items = sign_items(wallet, rpid, args.messages)
            wire = wire_post(url, items)
            lpid = local.spawn(wallet, name=f"local-{n}")
            local.eval(wallet, lpid, COUNTER)
            litems = sign_items(wallet, lpid, args.messages)
            inproc = threaded(litems, local.node.submit)
            posts.append((wire, inproc))
            print(f"run {n + 1}: POST / {wire:,.0f} msg/s over HTTP, Node.submit {inproc:,.0f} msg/s in-process "
                  f"(ratio {wire / inproc:.2f})", flush=True)
            # (2) result reads, once everything is computed
            wait_computed(remote, rpid, args.messages + 1)
            wait_computed(local, lpid, args.messages + 1)
            rids = [ans104.parse(r).id for r in items]
            lids = [ans104.parse(r).id for r in litems]
            wire_r = wire_reads(url, rpid, rids, args.reads)
            jobs = [lids[i % len(lids)] for i in range(args.reads)]
            inproc_r = threaded(jobs, lambda mid, pid=lpid: local.node.result(pid, mid))
            reads.append((wire_r, inproc_r))
            print(f"run {n + 1}: GET /result {wire_r:,.0f} reads/s over HTTP, Node.result {inproc_r:,.0f} reads/s "
                  f"in-process (ratio {wire_r / inproc_r:.3f})", flush=True)
        med = lambda xs: statistics.median(xs)  # noqa: E731
        pw, pi = med([a for a, _ in posts]), med([b for _, b in posts])
        rw, ri = med([a for a, _ in reads]), med([b for _, b in reads])
        print(f"POST / from {CLIENTS} clients (median of {len(posts)}): {pw:,.0f} msg/s; "
              f"in-process Node.submit: {pi:,.0f} msg/s; ratio {pw / pi:.2f}")
        print(f"GET /result from {CLIENTS} clients (median): {rw:,.0f} reads/s; in-process Node.result: "
              f"{ri:,.0f} reads/s; ratio {rw / ri:.3f}")
    finally:
        remote.close()
        local.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
