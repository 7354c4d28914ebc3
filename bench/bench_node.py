"""Node throughput: durable ping-pong between two processes, and restart replay time.

(1) Durable: processes A and B on the embedded node (synchronous=FULL, one
    fsync per scheduling round) play ping-pong; every message is signed by the
    node (Ed25519), slotted, hash-chained, computed and committed. Rate over
    --messages messages.
(2) Baseline, same run: the same ping-pong through two bare ProcessRuntimes in
    a Python loop (no signing, no scheduling, no SQLite). Ratio = (1) / (2).
(3) Restart: the log is grown to --replay messages, the node is closed and
    reopened, and both processes are rebuilt by replaying their logs.

    .venv/bin/python bench/bench_node.py [--messages 20000] [--repeat 3] [--replay 100000]

(1) and (2) alternate --repeat times (new processes each time); every pair is
printed and the medians are reported, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aos_py.client import Client, Wallet  # noqa: E402
from aos_py.node.node import Node  # noqa: E402
from aos_py.runtime import ProcessRuntime  # noqa: E402

PLAYER = """
Rally = Rally or 0
Handlers.add('ball', function(m) return m.Action == 'Ping' or m.Action == 'Pong' end, function(m)
  Rally = Rally + 1
  if Rally < Limit then
    Send({Target = m.From, Action = (m.Action == 'Ping') and 'Pong' or 'Ping'})
  end
end)
"""


def durable_rate(client: Client, wallet: Wallet, messages: int) -> tuple[float, str, str]:
    a = client.spawn(wallet, name="ping")
    b = client.spawn(wallet, name="pong")
    per = messages // 2
    for pid in (a, b):
        client.eval(wallet, pid, f"Limit = {per + 1}\n" + PLAYER)
    done = threading.Event()
    seen = [0]

    def count(event: dict) -> None:
        if event["action"] in ("Ping", "Pong"):
            seen[0] += 1
            if seen[0] >= messages:
                done.set()
    unsubs = [client.subscribe(a, count), client.subscribe(b, count)]
    t0 = time.perf_counter()
    client.eval(wallet, a, f"Send({{Target = '{b}', Action = 'Ping'}})")
    if not done.wait(600):
        raise SystemExit(f"ping-pong did not finish: {seen[0]} of {messages}")
    elapsed = time.perf_counter() - t0
    for u in unsubs:
        u()
    return messages / elapsed, a, b


def runtime_rate(messages: int) -> float:
    """The same ping-pong through bare ProcessRuntimes (compute only)."""
    env = {}
    rts = {}
    for name in ("A" * 43, "B" * 43):
        env[name] = {"Process": {"Id": name, "Owner": "O" * 43, "Tags": [
            {"name": "Name", "value": name[:1]}, {"name": "Authority", "value": "N" * 43}]},
            "Module": {"Id": "M" * 43, "Tags": []}}
        rt = ProcessRuntime()
        rt.handle({"Id": name, "Target": name, "Owner": "O" * 43, "From": "O" * 43, "Module": "M" * 43,
                   "Block-Height": 1, "Timestamp": 1, "Tags": env[name]["Process"]["Tags"], "Data": ""}, env[name])
        rt.handle({"Id": "E" + name[1:], "Target": name, "Owner": "O" * 43, "From": "O" * 43, "Module": "M" * 43,
                   "Block-Height": 1, "Timestamp": 2, "Data": f"Limit = {messages}\n" + PLAYER,
                   "Tags": [{"name": "Action", "value": "Eval"}]}, env[name])
        rts[name] = rt
    a, b = "A" * 43, "B" * 43
    out = {"Target": b, "Tags": [{"name": "Action", "value": "Ping"}]}
    sender = a
    t0 = time.perf_counter()
    for n in range(messages):
        target = out["Target"]
        msg = {"Id": f"{n:043d}", "Target": target, "Owner": "N" * 43, "From": sender, "Module": "M" * 43,
               "Block-Height": 1, "Timestamp": 3 + n, "Nonce": n, "Data": "",
               "Tags": out["Tags"] + [{"name": "From-Process", "value": sender}]}
        res = rts[target].handle(msg, env[target])
        if not res.get("Messages"):
            break
        out = res["Messages"][0]
        sender = target
    elapsed = time.perf_counter() - t0
    for rt in rts.values():
        rt.close()
    return messages / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--replay", type=int, default=100000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aos-bench-node-"))
    try:
        wallet = Wallet.generate("ed25519")
        client = Client.open(tmp / "node")
        rates, bases = [], []
        for n in range(max(1, args.repeat)):
            base = runtime_rate(args.messages)
            rounds = client.node.stats["rounds"]
            rate, a, b = durable_rate(client, wallet, args.messages)
            rates.append(rate)
            bases.append(base)
            print(f"run {n + 1}: durable {rate:,.0f} msg/s over {args.messages:,} messages "
                  f"(synchronous=FULL, {client.node.stats['rounds'] - rounds:,} commits); "
                  f"runtime-only {base:,.0f} msg/s; ratio {rate / base:.2f}")
        rate, base = statistics.median(rates), statistics.median(bases)
        ratio = statistics.median(r / b for r, b in zip(rates, bases, strict=True))
        print(f"durable ping-pong (median of {len(rates)}): {rate:,.0f} msg/s")
        print(f"runtime-only ping-pong (same run, median): {base:,.0f} msg/s")
        print(f"ratio durable/runtime (median): {ratio:.2f}")
        logged = sum(n for (n,) in client.node.store.query("SELECT COUNT(*) FROM log"))
        if logged < args.replay:
            more = args.replay - logged + 10
            _r, _a, _b = durable_rate(client, wallet, more)
        client.close()
        t0 = time.perf_counter()
        node = Node(tmp / "node", start=False)
        opened = time.perf_counter() - t0
        total = sum(n for (n,) in node.store.query("SELECT COUNT(*) FROM log WHERE status=1"))
        pids = [p for (p,) in node.store.query("SELECT id FROM processes")]
        for pid in pids:
            node.cu.runtime(pid)
        elapsed = time.perf_counter() - t0
        print(f"restart: open {opened:.2f} s (integrity check included), replay of {node.cu.replayed:,} "
              f"logged messages ({total:,} in the log) in {elapsed:.2f} s total = "
              f"{node.cu.replayed / (elapsed - opened):,.0f} msg/s")
        node.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
